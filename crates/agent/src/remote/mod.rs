//! Remote access: delegations of kind `remote` ([`crate::delegation`]) for a `stagepass` on
//! the far side of an SSH or Codespaces port forward. The remote side reaches only the
//! proxy's loopback listener (same Host and Origin checks), where a key gets access tokens of
//! its profiles (`endpoint`) and serves as the proxy key for its routes (`crate::proxy`).
//! Never a refresh token, never an id_token, never a sign-in.

pub(crate) mod endpoint;

use stagepass_proto::{
    AgentError, DelegationKind, ErrorKind, RemoteGrantRequest, RemoteGranted, Response,
};

use crate::delegation::scope::Scope;
use crate::delegation::{self, NewKey, Record, now};
use crate::errors;
use crate::sessions::Agent;

/// `Request::RemoteGrant`.
pub(crate) async fn grant(
    agent: &Agent,
    request: RemoteGrantRequest,
) -> Result<Response, AgentError> {
    let bad = |message: String| errors::reply(ErrorKind::BadRequest, message, None);
    delegation::check_ttl(request.ttl_secs, delegation::MAX_TTL_SECS, "a remote key")?;
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
    delegation::check_name(&name, "remote key")?;
    let config = agent
        .config()
        .map_err(|err| errors::from_core(&err, None))?;
    let scope = Scope::resolve(&config, &request.routes, &request.profiles).map_err(bad)?;
    let proxy_url = delegation::proxy_url(agent, "the remote endpoint")?;
    let (key, record) = agent
        .delegations
        .grant(
            NewKey {
                name,
                kind: DelegationKind::Remote,
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
        info: record.remote_info(),
        proxy_url,
    }))
}

/// `Request::RemoteList`.
pub(crate) fn list(agent: &Agent) -> Response {
    Response::RemoteKeys(
        agent
            .delegations
            .list(Some(DelegationKind::Remote))
            .iter()
            .map(Record::remote_info)
            .collect(),
    )
}

/// `Request::RemoteRevoke`.
pub(crate) async fn revoke(agent: &Agent, name: &str) -> Result<Response, AgentError> {
    let record = delegation::revoke(agent, name, Some(DelegationKind::Remote)).await?;
    Ok(Response::RemoteKeys(vec![record.remote_info()]))
}
