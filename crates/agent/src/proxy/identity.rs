//! The identity a route adds: the route profile's token, from the agent's one token path
//! (`session::token`: memory, single-flight refresh, never an interactive sign-in).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use stagepass_core::config::Config;
use stagepass_core::credential_map::MappedToken;
use stagepass_core::proxy_config::{Identity, Route};
use stagepass_proto::{AgentError, ErrorKind, Secret, TokenKind};

use crate::audit::fingerprint;
use crate::errors;
use crate::session::{self, Session};
use crate::sessions::Agent;
use crate::sync::lock;

/// A proxied request may stream for a while; the token should outlive its start.
const MIN_VALID: Duration = Duration::from_secs(30);

const BEARER: &str = "Bearer ";

/// The header to add. The token in it is fingerprinted only when the upstream refuses it
/// (to force a refresh), which keeps a SHA-256 off every request.
pub(crate) struct Injected {
    pub name: HeaderName,
    pub value: HeaderValue,
    bearer: bool,
}

impl Injected {
    /// The token the header carries.
    fn token(&self) -> &str {
        let value = self.value.to_str().unwrap_or_default();
        if self.bearer {
            value.strip_prefix(BEARER).unwrap_or(value)
        } else {
            value
        }
    }
}

/// The header values built for the tokens in use, one per profile, token kind and form: a
/// token lives for minutes or hours and goes out with every request, so its value is built
/// (formatted, checked, copied) once, not per request. An entry is used only while it
/// carries exactly the token the session would hand out now.
#[derive(Default)]
pub(crate) struct Values {
    entries: Mutex<Vec<Entry>>,
}

struct Entry {
    profile: String,
    kind: TokenKind,
    bearer: bool,
    value: HeaderValue,
}

impl Entry {
    fn is(&self, profile: &str, kind: TokenKind, bearer: bool) -> bool {
        self.kind == kind && self.bearer == bearer && self.profile == profile
    }
}

impl Values {
    fn get(
        &self,
        profile: &str,
        kind: TokenKind,
        bearer: bool,
        token: &str,
    ) -> Option<HeaderValue> {
        let entries = lock(&self.entries);
        let entry = entries
            .iter()
            .find(|entry| entry.is(profile, kind, bearer))?;
        let sent = entry.value.as_bytes();
        let sent = if bearer {
            sent.strip_prefix(BEARER.as_bytes())?
        } else {
            sent
        };
        (sent == token.as_bytes()).then(|| entry.value.clone())
    }

    /// Drops the value of a token the session no longer hands out, so that no copy of it
    /// outlives it here.
    fn forget(&self, profile: &str, kind: TokenKind, bearer: bool) {
        lock(&self.entries).retain(|entry| !entry.is(profile, kind, bearer));
    }

    fn put(&self, profile: &str, kind: TokenKind, bearer: bool, value: HeaderValue) {
        let mut entries = lock(&self.entries);
        entries.retain(|entry| !entry.is(profile, kind, bearer));
        entries.push(Entry {
            profile: profile.to_string(),
            kind,
            bearer,
            value,
        });
    }
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
    let (name, bearer) = match &route.identity {
        Identity::Header(header) => (
            HeaderName::from_bytes(header.as_bytes()).map_err(|_| bad_header(header))?,
            false,
        ),
        Identity::Backstage | Identity::Bearer => (AUTHORIZATION, true),
    };
    let values = &agent.proxy.identities;
    let profile = session.name();
    let built = session::peek_token(agent, &session, kind, MIN_VALID, |token| {
        values.get(profile, kind, bearer, token)
    })
    .flatten();
    let value = match built {
        Some(value) => value,
        None => {
            values.forget(profile, kind, bearer);
            let grant = session::token(agent, &session, kind, MIN_VALID).await?;
            let value = header_value(grant.token.expose(), bearer)
                .ok_or_else(|| bad_header("a token that is not header-safe"))?;
            values.put(profile, kind, bearer, value.clone());
            value
        }
    };
    Ok(Injected {
        name,
        value,
        bearer,
    })
}

/// The header's value for `token`, zeroized when the last request that carries it is done.
fn header_value(token: &str, bearer: bool) -> Option<HeaderValue> {
    let prefix = if bearer { BEARER } else { "" };
    let mut text = String::with_capacity(prefix.len() + token.len());
    text.push_str(prefix);
    text.push_str(token);
    let mut value =
        HeaderValue::from_maybe_shared(Bytes::from_owner(Zeroized(Secret::new(text)))).ok()?;
    // Kept out of hyper's debug output and HPACK tables.
    value.set_sensitive(true);
    Some(value)
}

/// A secret's bytes as the owner of a [`Bytes`].
struct Zeroized(Secret<String>);

impl AsRef<[u8]> for Zeroized {
    fn as_ref(&self) -> &[u8] {
        self.0.expose().as_bytes()
    }
}

/// After the upstream refused `rejected`: makes the next [`identity`] refresh first.
/// Whether it will (see `session::token_rejected`'s rate limit).
pub(crate) fn force_refresh(
    agent: &Agent,
    config: &Config,
    route: &Route,
    rejected: &Injected,
) -> bool {
    let Ok(session) = route_session(agent, config, route) else {
        return false;
    };
    session::token_rejected(agent, &session, &fingerprint(rejected.token()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_reused_only_for_the_same_token() {
        let values = Values::default();
        let value = header_value("t1", true).unwrap();
        assert!(value.is_sensitive());
        assert_eq!(value, "Bearer t1");
        values.put("p", TokenKind::Access, true, value);
        assert_eq!(
            values.get("p", TokenKind::Access, true, "t1").unwrap(),
            "Bearer t1"
        );
        assert!(values.get("p", TokenKind::Access, true, "t2").is_none());
        assert!(values.get("p", TokenKind::Id, true, "t1").is_none());
        assert!(values.get("q", TokenKind::Access, true, "t1").is_none());
        assert!(values.get("p", TokenKind::Access, false, "t1").is_none());
        values.put(
            "p",
            TokenKind::Access,
            false,
            header_value("t1", false).unwrap(),
        );
        assert_eq!(
            values.get("p", TokenKind::Access, false, "t1").unwrap(),
            "t1"
        );
        values.forget("p", TokenKind::Access, true);
        assert!(values.get("p", TokenKind::Access, true, "t1").is_none());
        assert!(header_value("bad\ntoken", true).is_none());
        let injected = Injected {
            name: AUTHORIZATION,
            value: header_value("t1", true).unwrap(),
            bearer: true,
        };
        assert_eq!(injected.token(), "t1");
    }
}
