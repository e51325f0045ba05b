//! The identity a route adds: the route profile's token, from the agent's one token path
//! (`handlers::token::serve`: memory, single-flight refresh, never an interactive sign-in).

use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use stagepass_core::config::Config;
use stagepass_core::credential_map::MappedToken;
use stagepass_core::proxy_config::{Identity, Route};
use stagepass_proto::{AgentError, ErrorKind, Response, Secret, TokenKind};

use crate::audit::fingerprint;
use crate::errors;
use crate::handlers::{mark_rejected, serve_token};
use crate::sessions::{Agent, Session};

/// A proxied request may stream for a while; the token should outlive its start.
const MIN_VALID: Duration = Duration::from_secs(30);

/// The header to add, and the token (to force a refresh when it is refused; fingerprinted
/// only then, which keeps a SHA-256 off every request).
pub(crate) struct Injected {
    pub name: HeaderName,
    pub value: HeaderValue,
    pub token: Secret<String>,
}

/// `config`: the one the request was routed with (read once per request).
pub(crate) async fn identity(
    agent: &Agent,
    config: &Config,
    route: &Route,
) -> Result<Injected, AgentError> {
    let (name, session) = session(agent, config, route)?;
    let kind = match route.token {
        MappedToken::Access => TokenKind::Access,
        MappedToken::Id => TokenKind::Id,
    };
    let Response::Token(grant) = serve_token(agent, name, &session, kind, MIN_VALID).await? else {
        return Err(errors::reply(
            ErrorKind::Internal,
            "the token path answered something else than a token",
            None,
        ));
    };
    let token = grant.token.expose();
    let (header, value) = match &route.identity {
        Identity::Header(header) => (
            HeaderName::from_bytes(header.as_bytes()).map_err(|_| bad_header(header))?,
            token.clone(),
        ),
        _ => (AUTHORIZATION, format!("Bearer {token}")),
    };
    let mut value =
        HeaderValue::from_str(&value).map_err(|_| bad_header("a token that is not header-safe"))?;
    // Kept out of hyper's debug output and HPACK tables.
    value.set_sensitive(true);
    Ok(Injected {
        name: header,
        value,
        token: grant.token,
    })
}

/// After the upstream refused `rejected`: makes the next [`identity`] refresh first.
/// Whether it will (see `mark_rejected`'s rate limit).
pub(crate) fn force_refresh(
    agent: &Agent,
    config: &Config,
    route: &Route,
    rejected: &Secret<String>,
) -> bool {
    let Ok((name, session)) = session(agent, config, route) else {
        return false;
    };
    mark_rejected(agent, name, &session, &fingerprint(rejected.expose()))
}

/// The route profile's session.
fn session<'a>(
    agent: &Agent,
    config: &'a Config,
    route: &Route,
) -> Result<(&'a str, Arc<Session>), AgentError> {
    let (name, profile) = config
        .profile(Some(&route.profile))
        .map_err(|err| errors::from_core(&err, Some(&route.profile)))?;
    Ok((name, agent.session(name, profile)))
}

fn bad_header(what: &str) -> AgentError {
    errors::reply(
        ErrorKind::Config,
        format!("cannot send {what} as a header"),
        None,
    )
}
