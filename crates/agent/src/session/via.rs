//! Backstage behind an identity-aware proxy (`via_profile`): the Backstage user token comes
//! from the proxy sign-in provider, asked through the proxy with the IdP profile's access
//! token. That profile holds the refresh token and the sign-in; this one holds only the
//! short-lived Backstage token, so it signs in, refreshes and signs out through it.

use std::time::Duration;

use stagepass_core::backstage::token_through_proxy;
use stagepass_core::config::ViaProfile;
use stagepass_proto::{AccessToken, AgentError, ErrorKind, TokenKind};

use super::{Session, resolve_profile, token_service, transitions};
use crate::errors;
use crate::sessions::Agent;

/// The IdP token sent to the proxy must outlive the request; a margin, not a lifetime.
const IDP_TOKEN_MIN_VALID: Duration = Duration::from_secs(30);

/// The profile a sign-in (or sign-out) of `name` is really about.
pub(crate) fn sign_in_profile(agent: &Agent, name: &str) -> String {
    resolve_profile(agent, Some(name))
        .ok()
        .and_then(|(_, profile)| Some(profile.via()?.profile.clone()))
        .unwrap_or_else(|| name.to_string())
}

/// Fetches a new Backstage token (called with the session held, like any refresh); a
/// failure is a transition too, audited and announced like any failed refresh.
pub(super) async fn refresh(
    agent: &Agent,
    session: &Session,
    url: &str,
    via: &ViaProfile,
) -> Result<(), AgentError> {
    match fetch(agent, session, url, via).await {
        Ok(tokens) => {
            transitions::refreshed_via(agent, session, tokens);
            Ok(())
        }
        Err(error) => transitions::refresh_via_failed(agent, session, error),
    }
}

async fn fetch(
    agent: &Agent,
    session: &Session,
    url: &str,
    via: &ViaProfile,
) -> Result<stagepass_core::tokens::TokenSet, AgentError> {
    let provider = &via.auth_provider;
    let (via_name, via_profile) = resolve_profile(agent, Some(&via.profile))?;
    let via_session = agent.sessions.get(&via_name, &via_profile);
    // Boxed: serving a token may refresh, and this is a refresh (of another profile: the
    // config refuses a `via_profile` that is not an OIDC one, so this recurses once).
    let idp_token = Box::pin(token_service::token(
        agent,
        &via_session,
        TokenKind::Access,
        IDP_TOKEN_MIN_VALID,
    ))
    .await?
    .token;
    // Asked for as `TokenKind::Access` above.
    let idp_token = AccessToken::new(idp_token.expose().clone());
    token_through_proxy(url, provider, &idp_token, &agent.deps.http, agent.now())
        .await
        .map_err(|err| {
            let mut error = errors::from_core(&err, Some(session.name()));
            if error.kind != ErrorKind::IdpUnreachable {
                error.hint = Some(format!(
                    "the proxy at {url} must accept `{via_name}`'s access token as a bearer \
                     (oauth2-proxy: --skip-jwt-bearer-tokens, and its audience among \
                     --oidc-extra-audience) and Backstage must run the `{provider}` sign-in provider"
                ));
            }
            error
        })
}
