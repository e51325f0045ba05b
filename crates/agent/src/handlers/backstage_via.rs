//! Backstage behind an identity-aware proxy (`via_profile`): the Backstage user token comes
//! from the proxy sign-in provider, asked through the proxy with the IdP profile's access
//! token. That profile holds the refresh token and the sign-in; this one holds only the
//! short-lived Backstage token, so it signs in, refreshes and signs out through it.

use std::time::Duration;

use stagepass_core::backstage::token_through_proxy;
use stagepass_core::config::ViaProfile;
use stagepass_core::refresh;
use stagepass_proto::{AgentError, ErrorKind, EventKind, Response, TokenKind};

use super::{resolve_profile, token};
use crate::audit::fingerprint;
use crate::errors;
use crate::sessions::{Agent, Session};

/// The IdP token sent to the proxy must outlive the request; a margin, not a lifetime.
const IDP_TOKEN_MIN_VALID: Duration = Duration::from_secs(30);

/// The profile a sign-in (or sign-out) of `name` is really about.
pub(crate) fn sign_in_profile(agent: &Agent, name: &str) -> String {
    resolve_profile(agent, Some(name))
        .ok()
        .and_then(|(_, profile)| Some(profile.via()?.profile.clone()))
        .unwrap_or_else(|| name.to_string())
}

/// Fetches a new Backstage token for `name` (called with its session held, like any refresh).
pub(crate) async fn refresh(
    agent: &Agent,
    name: &str,
    session: &Session,
    url: &str,
    via: &ViaProfile,
) -> Result<(), AgentError> {
    let provider = &via.auth_provider;
    let (via_name, via_profile) = resolve_profile(agent, Some(&via.profile))?;
    let via_session = agent.session(&via_name, &via_profile);
    // Boxed: serving a token may refresh, and this is a refresh (of another profile: the
    // config refuses a `via_profile` that is not an OIDC one, so this recurses once).
    let idp_token = match Box::pin(token::serve(
        agent,
        &via_name,
        &via_session,
        TokenKind::Access,
        IDP_TOKEN_MIN_VALID,
    ))
    .await?
    {
        Response::Token(grant) => grant.token,
        other => {
            return Err(errors::reply(
                ErrorKind::Internal,
                format!("expected a token of `{via_name}`, got {other:?}"),
                None,
            ));
        }
    };
    let fetched = token_through_proxy(url, provider, &idp_token, &agent.deps.http, agent.now())
        .await
        .map_err(|err| {
            let mut error = errors::from_core(&err, Some(name));
            if error.kind != ErrorKind::IdpUnreachable {
                error.hint = Some(format!(
                    "the proxy at {url} must accept `{via_name}`'s access token as a bearer \
                     (oauth2-proxy: --skip-jwt-bearer-tokens, and its audience among \
                     --oidc-extra-audience) and Backstage must run the `{provider}` sign-in provider"
                ));
            }
            error
        });
    let tokens = match fetched {
        Ok(tokens) => tokens,
        Err(error) => {
            if error.kind == ErrorKind::IdpUnreachable {
                session.data().record_failure(agent.now(), error.clone());
            }
            return Err(error);
        }
    };
    let new_token = fingerprint(tokens.access_token.expose());
    {
        let mut data = session.data();
        let refresh_at = tokens.expires_at.map(|expires_at| {
            refresh::refresh_due(tokens.received_at, expires_at, refresh::jitter())
        });
        data.replace_tokens(tokens);
        // Nothing to keep in the keychain: the IdP profile's refresh token is what lasts.
        data.unsaved = false;
        data.loaded = true;
        data.needs_sign_in = None;
        data.refresh_at = refresh_at;
    }
    agent.schedule_changed.notify_one();
    agent.announce(EventKind::Refreshed, name, session);
    token::record_refresh(agent, name, session, Some(new_token), "ok");
    Ok(())
}
