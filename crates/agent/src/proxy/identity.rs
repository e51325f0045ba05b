//! The identity a route adds: the route profile's token, from the agent's one token path
//! (`session::token`: memory, single-flight refresh, never an interactive sign-in).

use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use stagepass_core::config::Config;
use stagepass_core::credential_map::MappedToken;
use stagepass_core::proxy_config::{Identity, Route};
use stagepass_proto::{AgentError, ErrorKind, Secret, TokenKind};

use crate::audit::fingerprint;
use crate::errors;
use crate::session::{self, Session};
use crate::sessions::Agent;

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
    let session = route_session(agent, config, route)?;
    let kind = match route.token {
        MappedToken::Access => TokenKind::Access,
        MappedToken::Id => TokenKind::Id,
    };
    let grant = session::token(agent, &session, kind, MIN_VALID).await?;
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
/// Whether it will (see `session::token_rejected`'s rate limit).
pub(crate) fn force_refresh(
    agent: &Agent,
    config: &Config,
    route: &Route,
    rejected: &Secret<String>,
) -> bool {
    let Ok(session) = route_session(agent, config, route) else {
        return false;
    };
    session::token_rejected(agent, &session, &fingerprint(rejected.expose()))
}

/// The route profile's session.
fn route_session(
    agent: &Agent,
    config: &Config,
    route: &Route,
) -> Result<Arc<Session>, AgentError> {
    let (name, profile) = config
        .profile(Some(&route.profile))
        .map_err(|err| errors::from_core(&err, Some(&route.profile)))?;
    Ok(agent.session(name, profile))
}

fn bad_header(what: &str) -> AgentError {
    errors::reply(
        ErrorKind::Config,
        format!("cannot send {what} as a header"),
        None,
    )
}
