//! The local identity-aware proxy: a loopback HTTP listener that forwards to each route's
//! upstream with the signed-in user's token, for browsers (session cookie from a launch URL)
//! and local programs (the proxy key).
//!
//! It starts with the agent when the config has routes. When it cannot listen (the port is
//! taken), the agent serves everything else, and `status` says why the proxy does not.

mod access;
mod ask;
mod forward;
mod guard;
mod headers;
mod identity;
mod listener;
mod mcp;
pub(crate) mod reply;
mod scope_refusal;
mod secrets;
mod stats;
mod upstream;

pub(crate) use secrets::random_hex;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};

use stagepass_core::proxy_config::{Local, Route};
use stagepass_proto::{AgentError, ErrorKind, ProxyLaunch, ProxyStatus, Response, Secret};
use tokio::net::TcpListener;

use crate::accept::{self, Gate};
use crate::errors;
use crate::sessions::Agent;

/// The proxy's part of the agent's state.
#[derive(Default)]
pub(crate) struct ProxyState {
    pub access: access::BrowserAccess,
    pub stats: stats::ProxyStats,
    pub upstreams: upstream::Upstreams,
    pub identities: identity::Values,
    /// Set once at start: the port, and whether it serves or why not.
    started: OnceLock<Started>,
}

struct Started {
    port: u16,
    serving: Result<(), String>,
}

/// Starts the listener when the config has routes or remote keys exist (the remote endpoint
/// is on it); never fails the agent.
pub(crate) async fn start(agent: &Arc<Agent>) {
    let Ok(config) = agent.config() else { return };
    if config.routes.is_empty() && !agent.delegations.any() {
        return;
    }
    let port = config.proxy.port;
    let serving = listen(agent, port).await;
    match &serving {
        Ok(()) => {
            tracing::info!(url = %format!("http://127.0.0.1:{port}"), routes = config.routes.len(), "proxy serving")
        }
        Err(why) => tracing::error!("proxy not serving: {why}"),
    }
    let _ = agent.proxy.started.set(Started { port, serving });
    let flusher = agent.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(stats::WINDOW);
        tick.tick().await;
        loop {
            tick.tick().await;
            flusher.proxy.stats.flush(&flusher);
            flusher.proxy.upstreams.prune();
        }
    });
}

async fn listen(agent: &Arc<Agent>, port: u16) -> Result<(), String> {
    let v4 = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|err| {
            let taken = err.kind() == std::io::ErrorKind::AddrInUse;
            if taken {
                format!(
                    "127.0.0.1:{port} is in use by another program (another stagepass agent?); \
                     stop it or set another `port` in [proxy] (`stagepass doctor --proxy-port \
                     PORT` checks one)"
                )
            } else {
                format!("cannot listen on 127.0.0.1:{port}: {err}")
            }
        })?;
    let key = secrets::load_or_create_key(&agent.options.runtime_dir)
        .map_err(|err| format!("cannot write the proxy key in the runtime dir: {err}"))?;
    let shared = Arc::new(listener::Listener::new(port, key));
    // One cap for both sockets: they are one listener to its users.
    let gate = Gate::new(accept::Listener::Proxy);
    tokio::spawn(listener::accept(
        agent.clone(),
        v4,
        shared.clone(),
        gate.share(),
    ));
    // [::1] as well, for clients that resolve localhost to it first; optional, since some
    // machines have no IPv6 loopback.
    match TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).await {
        Ok(v6) => {
            tokio::spawn(listener::accept(agent.clone(), v6, shared, gate));
        }
        Err(err) => tracing::debug!("proxy: no [::1]:{port}: {err}"),
    }
    Ok(())
}

/// The listener's URL, or why it does not serve.
pub(crate) fn serving_url(agent: &Agent) -> Result<String, String> {
    let started = agent
        .proxy
        .started
        .get()
        .ok_or("no [[route]] in the config when the agent started")?;
    started.serving.clone()?;
    Ok(format!("http://127.0.0.1:{}", started.port))
}

/// For `status`: `None` when no proxy was started.
pub(crate) fn status(agent: &Agent) -> Option<ProxyStatus> {
    let started = agent.proxy.started.get()?;
    let routes = agent
        .config()
        .map(|config| {
            config
                .routes
                .iter()
                .map(|route| (route.name.clone(), route.local_url(started.port)))
                .collect()
        })
        .unwrap_or_default();
    Some(ProxyStatus {
        url: format!("http://127.0.0.1:{}", started.port),
        serving: started.serving.is_ok(),
        reason: started.serving.clone().err(),
        routes,
    })
}

/// Writes the counts gathered so far (at shutdown).
pub(crate) fn flush(agent: &Agent) {
    agent.proxy.stats.flush(agent);
}

/// `Request::ProxyLaunch`: a one-time URL that gives a browser a session on the route.
pub(crate) fn launch(agent: &Agent, requested: Option<&str>) -> Result<Response, AgentError> {
    let config = agent
        .config()
        .map_err(|err| errors::from_core(&err, None))?;
    let not_serving = |why: String| {
        errors::reply(
            ErrorKind::Config,
            format!("the local proxy is not serving: {why}"),
            Some("see `stagepass status`; the agent starts the proxy when the config has [[route]] tables (restart it after adding the first: `stagepass agent stop`)".into()),
        )
    };
    let Some(started) = agent.proxy.started.get() else {
        return Err(not_serving(
            "no [[route]] in the config when the agent started".into(),
        ));
    };
    started.serving.clone().map_err(not_serving)?;
    let names = || {
        config
            .routes
            .iter()
            .map(|route| route.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let route: &Route = match requested {
        Some(name) => config
            .routes
            .iter()
            .find(|route| route.name == name)
            .ok_or_else(|| {
                errors::reply(
                    ErrorKind::BadRequest,
                    format!("no route `{name}`; routes: {}", names()),
                    None,
                )
            })?,
        None => match config.routes.as_slice() {
            [only] => only,
            _ => {
                return Err(errors::reply(
                    ErrorKind::BadRequest,
                    format!("several routes: name one of {}", names()),
                    None,
                ));
            }
        },
    };
    let origin = match &route.local {
        Local::Path(_) => format!("http://127.0.0.1:{}", started.port),
        Local::Host(host) => format!("http://{host}:{}", started.port),
    };
    let token = agent.proxy.access.mint(&route.name).map_err(|err| {
        errors::reply(
            ErrorKind::Internal,
            format!("cannot mint a launch token: {err}"),
            None,
        )
    })?;
    Ok(Response::ProxyLaunch(ProxyLaunch {
        route: route.name.clone(),
        url: Secret::new(format!(
            "{origin}{}?t={}",
            access::LAUNCH_PATH,
            token.expose()
        )),
    }))
}
