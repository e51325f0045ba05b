//! `stagepass backstage whoami`: who the user of a Backstage profile is there.

use std::time::Duration;

use stagepass_core::backstage;
use stagepass_proto::{AccessToken, AgentError, BackstageIdentity, ErrorKind, Response, TokenKind};

use crate::errors;
use crate::session::{self, resolve_profile};
use crate::sessions::Agent;

/// Enough validity for the two calls to Backstage that follow.
const MIN_VALID: Duration = Duration::from_secs(30);

/// Asks Backstage's UserInfo endpoint and catalog who the profile's user is, with the token
/// the agent holds: the token is used here and never handed to the caller.
pub(crate) async fn whoami(agent: &Agent, requested: Option<&str>) -> Result<Response, AgentError> {
    let (name, profile) = resolve_profile(agent, requested)?;
    let Some(url) = profile.backstage_url().map(String::from) else {
        return Err(errors::reply(
            ErrorKind::BadRequest,
            format!("profile `{name}` is not a Backstage profile"),
            Some(
                "name a profile with kind = \"backstage\" and the backend's url, e.g. \
                 `stagepass backstage whoami backstage`"
                    .into(),
            ),
        ));
    };
    let session = agent.session(&name, &profile);
    let grant = session::token(agent, &session, TokenKind::Access, MIN_VALID).await?;
    let provider = agent
        .provider(&name, &profile)
        .await
        .map_err(|err| errors::from_core(&err, Some(&name)))?;
    // Backstage's discovery document names it; the fallback is where the plugin serves it.
    let userinfo = provider
        .userinfo_endpoint()
        .unwrap_or_else(|| format!("{}/v1/userinfo", profile.issuer()));
    // The grant was asked for as `TokenKind::Access`.
    let token = AccessToken::new(grant.token.expose().clone());
    let identity = backstage::whoami(&url, &userinfo, &token, &agent.deps.http)
        .await
        .map_err(|err| errors::from_core(&err, Some(&name)))?;
    Ok(Response::BackstageIdentity(BackstageIdentity {
        profile: name,
        url,
        display_name: identity.display_name().map(String::from),
        email: identity.email().map(String::from),
        user_entity_ref: identity.user_entity_ref,
        ownership_entity_refs: identity.ownership_entity_refs,
        entity: identity.entity,
    }))
}
