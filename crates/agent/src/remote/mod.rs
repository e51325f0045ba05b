//! Remote access: scoped, expiring, revocable keys for a `stagepass` on the far side of an
//! SSH or Codespaces port forward. The remote side reaches only the proxy's loopback
//! listener (same Host and Origin checks), where a key gets access tokens of its profiles
//! (`endpoint`) and serves as the proxy key for its routes (`crate::proxy`). Never a refresh
//! token, never an id_token, never a sign-in.

pub(crate) mod endpoint;
pub(crate) mod scope;
pub(crate) mod store;

use stagepass_core::clock::unix_secs;
use stagepass_proto::{AgentError, ErrorKind, RemoteGrantRequest, RemoteGranted, Response};

use crate::errors;
use crate::sessions::Agent;
pub(crate) use store::{Accepted, RemoteKeys, Verdict};

/// A week: a key for a Codespace that lives longer is granted again.
pub(crate) const MAX_TTL_SECS: u64 = 7 * 86_400;

pub(crate) fn now(agent: &Agent) -> u64 {
    unix_secs(agent.now())
}

/// `Request::RemoteGrant`.
pub(crate) async fn grant(
    agent: &Agent,
    request: RemoteGrantRequest,
) -> Result<Response, AgentError> {
    let bad = |message: String| errors::reply(ErrorKind::BadRequest, message, None);
    if request.ttl_secs == 0 || request.ttl_secs > MAX_TTL_SECS {
        return Err(bad(format!(
            "a remote key lives between 1 second and 7 days, not {} s",
            request.ttl_secs
        )));
    }
    if request.remote_port == Some(0) {
        return Err(bad("--remote-port 0 is not a port".into()));
    }
    let name = match request.name {
        Some(name) => name,
        None => {
            let suffix = crate::proxy::random_hex().map_err(|err| {
                errors::reply(
                    ErrorKind::Internal,
                    format!("cannot name the remote key: {err}"),
                    None,
                )
            })?;
            format!("remote-{}", &suffix.expose()[..6])
        }
    };
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid_name {
        return Err(bad(format!(
            "remote key name `{name}`: use 1 to 64 letters, digits, `.`, `_` or `-`"
        )));
    }
    let config = agent
        .config()
        .map_err(|err| errors::from_core(&err, None))?;
    let scope = scope::Scope::resolve(&config, &request.routes, &request.profiles).map_err(bad)?;
    // The key is useless until the listener serves: say so now, not on the remote side.
    let proxy_url = crate::proxy::serving_url(agent).map_err(|why| {
        errors::reply(
            ErrorKind::Config,
            format!("the remote endpoint is the local proxy's listener, which is not serving: {why}"),
            Some("add a [[route]] to the config, or check `stagepass status`, then restart the agent (`stagepass agent stop`)".into()),
        )
    })?;
    let (key, info) = agent
        .remote
        .grant(
            store::NewKey {
                name,
                scope,
                remote_port: request.remote_port,
                ttl_secs: request.ttl_secs,
            },
            now(agent),
        )
        .await
        .map_err(bad)?;
    Ok(Response::RemoteGranted(RemoteGranted {
        key,
        info,
        proxy_url,
    }))
}

/// `Request::RemoteList`.
pub(crate) fn list(agent: &Agent) -> Response {
    Response::RemoteKeys(agent.remote.list())
}

/// `Request::RemoteRevoke`.
pub(crate) async fn revoke(agent: &Agent, name: &str) -> Result<Response, AgentError> {
    match agent.remote.revoke(name, now(agent)).await {
        Ok(Some(info)) => Ok(Response::RemoteKeys(vec![info])),
        Ok(None) => {
            let names: Vec<String> = agent
                .remote
                .list()
                .into_iter()
                .map(|key| key.name)
                .collect();
            Err(errors::reply(
                ErrorKind::BadRequest,
                format!(
                    "no remote key `{name}`; keys: {}",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
                Some("`stagepass remote list` shows them".into()),
            ))
        }
        Err(message) => Err(errors::reply(ErrorKind::Internal, message, None)),
    }
}
