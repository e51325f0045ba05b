//! Credentials for git and docker: the config maps the server to a profile and token kind;
//! the token comes from the session service's single-flight path, so a helper never
//! refreshes or reads the keychain by itself. Shared by the local socket and the remote
//! endpoint.

use stagepass_core::Secret;
use stagepass_core::config::Config;
use stagepass_core::credential_map::{
    self, DEFAULT_USERNAME, GitAuth, MappedToken, Mapping, Target,
};
use stagepass_proto::{AgentError, CredentialGrant, ErrorKind, TokenGrant, TokenKind, Tool};

use crate::audit::fingerprint;
use crate::errors;
use crate::session::{self, resolve_profile};
use crate::sessions::Agent;

/// Maps `url` to a profile and token kind, has `fetch` get that token (the local socket's
/// path may sign in; the remote endpoint's checks its key's scope first), and answers the
/// credential: the one place that knows how a mapped server takes its token. `None`: no
/// mapping, nothing handed out.
pub(crate) async fn mapped(
    agent: &Agent,
    tool: Tool,
    url: &str,
    bearer_ok: bool,
    fetch: impl AsyncFnOnce(&str, TokenKind) -> Result<TokenGrant, AgentError>,
) -> Result<Option<CredentialGrant>, AgentError> {
    let config = agent
        .config()
        .map_err(|err| errors::from_core(&err, None))?;
    let Some((mapping, bearer)) = lookup(&config, tool, url) else {
        return Ok(None);
    };
    let kind = match mapping.token {
        MappedToken::Access => TokenKind::Access,
        MappedToken::Id => TokenKind::Id,
    };
    let grant = fetch(mapping.profile, kind).await?;
    Ok(Some(CredentialGrant {
        username: username(agent, mapping)?,
        bearer: bearer && bearer_ok,
        grant,
    }))
}

/// A server refused `token`: marks it bad when the agent holds it for the server's profile.
/// The profile, when the URL is mapped, and whether the token was marked.
pub(crate) fn reject(
    agent: &Agent,
    tool: Tool,
    url: &str,
    token: &Secret<String>,
) -> Result<(Option<String>, bool), AgentError> {
    let config = agent
        .config()
        .map_err(|err| errors::from_core(&err, None))?;
    let Some((mapping, _)) = lookup(&config, tool, url) else {
        return Ok((None, false));
    };
    let (name, profile) = resolve_profile(agent, Some(mapping.profile))?;
    let session = agent.session(&name, &profile);
    let marked = session::token_rejected(agent, &session, &fingerprint(token.expose()));
    Ok((Some(name), marked))
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
    let from_claims = session.read(|data| {
        data.tokens()?
            .id_claims
            .as_ref()?
            .get(claim)?
            .as_str()
            .map(String::from)
    });
    from_claims.ok_or_else(|| {
        errors::reply(
            ErrorKind::Config,
            format!("the id_token of profile `{name}` has no string claim `{claim}`"),
            Some(format!(
                "set `username` instead of `username_from = \"{claim}\"`, or see `stagepass claims {name}`"
            )),
        )
    })
}
