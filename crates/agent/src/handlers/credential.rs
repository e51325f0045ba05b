//! Credentials for git and docker. The config maps the server to a profile; the token comes
//! from the same single-flight path as `stagepass token`, so a helper never refreshes or
//! reads the keychain by itself.

use std::time::Duration;

use stagepass_core::Secret;
use stagepass_core::config::Config;
use stagepass_core::credential_map::{
    self, DEFAULT_USERNAME, GitAuth, MappedToken, Mapping, Target,
};
use stagepass_proto::{AgentError, CredentialGrant, ErrorKind, Response, TokenKind, Tool};

use super::login::SignInRequest;
use super::{resolve_profile, token};
use crate::audit::fingerprint;
use crate::conn::Connection;
use crate::errors;
use crate::sessions::{Agent, Session};

/// A git push or a docker pull can take a while after the helper answers; the token should
/// outlive the start of it.
const HELPER_MIN_VALID: Duration = Duration::from_secs(60);
/// At most one refresh per profile this often because a server rejected a token: a server
/// that rejects every token (wrong audience, say) must not make the agent hammer the IdP.
const REJECTION_INTERVAL: Duration = Duration::from_secs(10);

pub(crate) async fn credential(
    agent: &Agent,
    conn: &mut Connection,
    tool: Tool,
    url: &str,
    bearer_ok: bool,
    sign_in: Option<SignInRequest>,
) -> Result<Response, AgentError> {
    let fetch = async |profile: &str, kind: TokenKind| {
        token::get_token(agent, conn, Some(profile), kind, HELPER_MIN_VALID, sign_in).await
    };
    mapped(agent, tool, url, bearer_ok, fetch).await
}

/// Maps `url` to a profile and token kind, has `fetch` get that token (the local socket's
/// path may sign in; the remote endpoint's checks its key's scope first), and answers the
/// credential: the one place that knows how a mapped server takes its token.
pub(crate) async fn mapped(
    agent: &Agent,
    tool: Tool,
    url: &str,
    bearer_ok: bool,
    fetch: impl AsyncFnOnce(&str, TokenKind) -> Result<Response, AgentError>,
) -> Result<Response, AgentError> {
    let config = agent
        .config()
        .map_err(|err| errors::from_core(&err, None))?;
    let Some((mapping, bearer)) = lookup(&config, tool, url) else {
        return Ok(Response::Credential(None));
    };
    let kind = match mapping.token {
        MappedToken::Access => TokenKind::Access,
        MappedToken::Id => TokenKind::Id,
    };
    let response = fetch(mapping.profile, kind).await?;
    let Response::Token(grant) = response else {
        return Err(errors::reply(
            ErrorKind::Internal,
            "the token path gave no token".to_string(),
            None,
        ));
    };
    Ok(Response::Credential(Some(CredentialGrant {
        username: username(agent, mapping)?,
        bearer: bearer && bearer_ok,
        grant,
    })))
}

/// Marks `token` bad when it is the one the agent holds for the server's profile.
pub(crate) fn reject(
    agent: &Agent,
    tool: Tool,
    url: &str,
    token: &Secret<String>,
) -> Result<Response, AgentError> {
    let config = agent
        .config()
        .map_err(|err| errors::from_core(&err, None))?;
    let Some((mapping, _)) = lookup(&config, tool, url) else {
        return Ok(Response::Rejected {
            profile: None,
            marked: false,
        });
    };
    let (name, profile) = resolve_profile(agent, Some(mapping.profile))?;
    let session = agent.session(&name, &profile);
    let marked = mark_rejected(agent, &name, &session, &fingerprint(token.expose()));
    Ok(Response::Rejected {
        profile: Some(name),
        marked,
    })
}

/// Marks the token with fingerprint `rejected` bad when `session` holds it, so the next
/// hand-out refreshes first; at most once per [`REJECTION_INTERVAL`], so a server that
/// rejects every token cannot make the agent hammer the IdP. Whether it was marked.
pub(crate) fn mark_rejected(agent: &Agent, name: &str, session: &Session, rejected: &str) -> bool {
    let now = agent.now();
    let mut data = session.data();
    let holds_it = data.tokens.as_ref().is_some_and(|tokens| {
        fingerprint(tokens.access_token.expose()) == rejected
            || tokens
                .id_token
                .as_ref()
                .is_some_and(|id| fingerprint(id.expose()) == rejected)
    });
    let too_soon = data
        .rejection_forced_at
        .is_some_and(|at| now < at + REJECTION_INTERVAL && at <= now);
    let marked = holds_it && !too_soon;
    if marked {
        data.rejected = Some(rejected.to_string());
        data.rejection_forced_at = Some(now);
        tracing::info!(profile = %name, "a server rejected the current token; refreshing before the next hand-out");
    }
    marked
}

/// The mapping for `url`, and whether its server takes bearer tokens.
fn lookup<'a>(config: &'a Config, tool: Tool, url: &str) -> Option<(Mapping<'a>, bool)> {
    match tool {
        Tool::Git => {
            let host = credential_map::match_git(&config.git, &Target::parse(url)?)?;
            Some((host.mapping(), host.auth == GitAuth::Bearer))
        }
        Tool::Docker => {
            let entry = credential_map::match_docker(&config.docker, url)?;
            Some((entry.mapping(), false))
        }
    }
}

fn username(agent: &Agent, mapping: Mapping<'_>) -> Result<String, AgentError> {
    if let Some(username) = mapping.username {
        return Ok(username.to_string());
    }
    let Some(claim) = mapping.username_from else {
        return Ok(DEFAULT_USERNAME.to_string());
    };
    let (name, profile) = resolve_profile(agent, Some(mapping.profile))?;
    let session = agent.session(&name, &profile);
    let data = session.data();
    data.tokens
        .as_ref()
        .and_then(|tokens| tokens.id_claims.as_ref()?.get(claim)?.as_str().map(String::from))
        .ok_or_else(|| {
            errors::reply(
                ErrorKind::Config,
                format!("the id_token of profile `{name}` has no string claim `{claim}`"),
                Some(format!(
                    "set `username` instead of `username_from = \"{claim}\"`, or see `stagepass claims {name}`"
                )),
            )
        })
}
