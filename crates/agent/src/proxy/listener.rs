//! The loopback HTTP listener: one hyper HTTP/1 connection per accepted socket, every request
//! through the guard before anything else, then the launch URL or a route.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderValue, LOCATION, SET_COOKIE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use stagepass_core::config::Config;
use stagepass_core::proxy_config::{Local as RouteLocal, Route};
use stagepass_proto::remote::PATH_PREFIX;
use tokio::net::TcpListener;

use super::access::{LAUNCH_PATH, SESSION_TTL};
use super::forward::{Local, forward};
use super::guard::{self, Credential, Refused};
use super::mcp;
use super::reply::{Body, empty, text};
use super::scope_refusal;
use super::stats::Outcome;
use crate::accept::Gate;
use crate::delegation::scope::Missing;
use crate::sessions::Agent;

/// A client that has not sent its request head by then is dropped (slowloris).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// What every connection of one listener shares.
pub(crate) struct Listener {
    pub port: u16,
    pub key: stagepass_proto::Secret<String>,
    /// Built once: every request looks for it.
    cookie: String,
}

impl Listener {
    pub(crate) fn new(port: u16, key: stagepass_proto::Secret<String>) -> Self {
        // Cookie names are not scoped to a port: two agents on two ports need two names.
        let cookie = format!("stagepass_{port}");
        Self { port, key, cookie }
    }

    pub(crate) fn cookie_name(&self) -> &str {
        &self.cookie
    }
}

pub(crate) async fn accept(
    agent: Arc<Agent>,
    socket: TcpListener,
    listener: Arc<Listener>,
    mut gate: Gate,
) {
    loop {
        let (stream, permit) = gate.accept(|| socket.accept()).await;
        let _ = stream.set_nodelay(true);
        let agent = agent.clone();
        let listener = listener.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = service_fn(move |request| {
                let agent = agent.clone();
                let listener = listener.clone();
                async move { Ok::<_, Infallible>(handle(&agent, &listener, request).await) }
            });
            let served = http1::Builder::new()
                // One write per response: small heads and bodies are cheaper copied than
                // vectored.
                .writev(false)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
            if let Err(err) = served {
                tracing::debug!("proxy connection ended: {err}");
            }
        });
    }
}

async fn handle(agent: &Agent, listener: &Listener, request: Request<Incoming>) -> Response<Body> {
    let config = match agent.config() {
        Ok(config) => config,
        Err(err) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("stagepass proxy: {err}"),
            );
        }
    };
    let admitted = admit(&config, listener, &request, agent);
    let (host, credential) = match admitted {
        Ok(admitted) => admitted,
        Err(turned) => {
            agent.proxy.stats.count(None, Outcome::Refused, false, None);
            tracing::debug!("proxy refused a request: {}", turned.why.0);
            return match turned.mcp {
                Some((host, endpoint)) => {
                    mcp::unauthorized(&host, &endpoint, turned.why.0, turned.presented)
                }
                None => text(StatusCode::FORBIDDEN, turned.why.0),
            };
        }
    };
    let host_name = host
        .rsplit_once(':')
        .map_or(host.as_str(), |(name, _)| name);
    let Some(credential) = credential else {
        let path = request.uri().path();
        if path == LAUNCH_PATH {
            return launch(agent, listener, &config, &host, &request);
        }
        if let Some((route, endpoint)) = mcp::metadata_target(&config, host_name, path) {
            return mcp::metadata(route, &host, &endpoint);
        }
        return crate::remote::endpoint::serve(agent, request).await;
    };
    // A handle on the parsed target (a reference count), so that the path after the route's
    // prefix can be borrowed while the request itself moves on.
    let target = request.uri().clone();
    let Some((route, rest)) = select(&config.routes, host_name, target.path()) else {
        let names: Vec<String> = config
            .routes
            .iter()
            .map(|route| route.local_url(listener.port))
            .collect();
        return text(
            StatusCode::NOT_FOUND,
            format!(
                "stagepass proxy: no route here; routes: {}",
                names.join(", ")
            ),
        );
    };
    let delegation = match &credential {
        Credential::Local => None,
        Credential::Delegation(accepted) => Some(accepted),
    };
    let counted = delegation.map(|accepted| (accepted.name.as_str(), accepted.kind));
    let method = request.method().clone();
    let local = Local {
        host: &host,
        prefix: match &route.local {
            RouteLocal::Path(prefix) => prefix,
            RouteLocal::Host(_) => "",
        },
        cookie: listener.cookie_name(),
    };
    let mut request = request.map(BodyExt::boxed);
    let mut class = None;
    if let Some(accepted) = delegation {
        // At an MCP endpoint a POST the delegation may not send is checked per message as
        // what it amounts to (see `mcp`), when reads would pass: outside its routes or paths
        // nothing is read and nothing reaches the upstream, not even the tool list.
        if method == Method::POST
            && mcp::is_endpoint(route, rest)
            && accepted.scope.check(&route.name, &method, rest) == Err(Missing::Method)
            && accepted
                .scope
                .check(&route.name, &Method::GET, rest)
                .is_ok()
        {
            match mcp::classify(agent, &config, route, &local, request, rest).await {
                Ok((read, classified)) => {
                    request = read;
                    class = Some(classified);
                }
                Err(response) => return response,
            }
        }
        let checked = class.as_ref().map_or(method.clone(), mcp::Class::method);
        if let Err(missing) = accepted.scope.check(&route.name, &checked, rest) {
            let mut refusal = scope_refusal::Refusal {
                accepted,
                route: &route.name,
                method: &method,
                path: rest,
                missing,
                asked: None,
                mcp: class.as_ref(),
            };
            // A delegation made with `--ask` waits for the developer's answer instead.
            let refused = match accepted.scope.ask {
                Some(secs) => super::ask::wait(agent, &refusal, secs)
                    .await
                    .err()
                    .map(Some),
                None => Some(None),
            };
            if let Some(asked) = refused {
                refusal.asked = asked;
                let route_info = Some((route.name.as_str(), route.profile.as_str()));
                agent
                    .proxy
                    .stats
                    .count(route_info, Outcome::Refused, false, counted);
                scope_refusal::audit(agent, &refusal);
                return scope_refusal::response(&refusal);
            }
        }
    }
    let forwarded = forward(
        agent,
        &config,
        route,
        &local,
        request,
        (rest, target.query()),
    )
    .await;
    agent.proxy.stats.count(
        Some((&route.name, &route.profile)),
        forwarded.outcome,
        forwarded.retried,
        counted,
    );
    if let Some(accepted) = delegation {
        scope_refusal::audit_request(
            agent,
            accepted,
            &route.name,
            &method,
            rest,
            forwarded.outcome,
            class.as_ref().and_then(mcp::Class::tool),
        );
    }
    forwarded.response
}

/// Why a request did not get through `admit`.
struct Turned {
    why: Refused,
    /// At an MCP endpoint, a missing or wrong key is a 401 pointing to the metadata:
    /// `(host, the endpoint's local path)`.
    mcp: Option<(String, String)>,
    /// Whether a key came along (then it was wrong, expired or revoked).
    presented: bool,
}

impl From<Refused> for Turned {
    fn from(why: Refused) -> Self {
        Turned {
            why,
            mcp: None,
            presented: false,
        }
    }
}

/// The guard's three doors (see `guard`): the Host and the credential. The launch URL, the
/// remote endpoint and the MCP endpoints' metadata check their own credential or need none
/// (`None` here).
fn admit(
    config: &Config,
    listener: &Listener,
    request: &Request<Incoming>,
    agent: &Agent,
) -> Result<(String, Option<Credential>), Turned> {
    // Absolute-form targets are for forward proxies, which this is not.
    if request.uri().authority().is_some() {
        return Err(Refused("stagepass proxy: not a forward proxy").into());
    }
    let headers = request.headers();
    let named = config.routes.iter().filter_map(|route| match &route.local {
        RouteLocal::Host(host) => Some(host.as_str()),
        RouteLocal::Path(_) => None,
    });
    // The remote keys' ports are looked up only for a Host that does not name the listener's.
    let host = guard::check_host(headers, listener.port, || agent.delegations.ports(), named)?;
    guard::check_browser(headers, &host)?;
    let path = request.uri().path();
    if path == LAUNCH_PATH || path.starts_with(PATH_PREFIX) {
        return Ok((host, None));
    }
    let host_name = host
        .rsplit_once(':')
        .map_or(host.as_str(), |(name, _)| name);
    if path.starts_with(mcp::METADATA_PREFIX)
        && mcp::metadata_target(config, host_name, path).is_some()
    {
        return Ok((host, None));
    }
    let endpoint = mcp::endpoint_of(config, host_name, path).map(|(_, endpoint)| endpoint);
    let credential = guard::authenticate(
        headers,
        endpoint.is_some(),
        listener.key.expose(),
        &agent.proxy.access,
        listener.cookie_name(),
        |presented| {
            agent
                .delegations
                .verify(presented, crate::delegation::now(agent))
        },
    )
    .map_err(|why| Turned {
        why,
        presented: endpoint.is_some()
            && (headers.contains_key(http::header::PROXY_AUTHORIZATION)
                || headers.contains_key(http::header::AUTHORIZATION)),
        mcp: endpoint.map(|endpoint| (host.clone(), endpoint)),
    })?;
    Ok((host, Some(credential)))
}

/// The route for `host_name` and `path`, and the path to forward: a route host takes every
/// path; on the loopback names the longest path prefix wins, matched at `/` boundaries.
pub(super) fn select<'a, 'p>(
    routes: &'a [Route],
    host_name: &str,
    path: &'p str,
) -> Option<(&'a Route, &'p str)> {
    if let Some(route) = routes
        .iter()
        .find(|route| matches!(&route.local, RouteLocal::Host(host) if host == host_name))
    {
        return Some((route, path));
    }
    if host_name.ends_with(".localhost") {
        return None;
    }
    routes
        .iter()
        .filter_map(|route| match &route.local {
            RouteLocal::Path(prefix) => {
                let rest = path.strip_prefix(prefix.as_str())?;
                (rest.is_empty() || rest.starts_with('/')).then_some((route, prefix.len(), rest))
            }
            RouteLocal::Host(_) => None,
        })
        .max_by_key(|(_, len, _)| *len)
        .map(|(route, _, rest)| (route, if rest.is_empty() { "/" } else { rest }))
}

/// `GET /.stagepass/launch?t=TOKEN[&next=/PATH]`: trades a one-time token for a session
/// cookie on this origin, then sends the browser to the route (at PATH under it).
fn launch(
    agent: &Agent,
    listener: &Listener,
    config: &Config,
    host: &str,
    request: &Request<Incoming>,
) -> Response<Body> {
    let param = |name: &str| {
        request
            .uri()
            .query()
            .into_iter()
            .flat_map(|query| query.split('&'))
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    };
    let token = param("t");
    // Where to land under the route: a plain absolute path, never another origin.
    let next = param("next").filter(|next| {
        next.starts_with('/')
            && !next.starts_with("//")
            && next
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~%:@!$'()*+,;=".contains(&b))
    });
    let route = token
        .and_then(|token| agent.proxy.access.redeem(token))
        .and_then(|name| config.routes.iter().find(|route| route.name == name));
    let Some(route) = route else {
        return text(
            StatusCode::FORBIDDEN,
            "stagepass proxy: this launch link is used up or expired; run `stagepass open` again",
        );
    };
    let host_name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let next = next.unwrap_or("/");
    let (landing, right_origin) = match &route.local {
        RouteLocal::Path(prefix) => (
            format!("{prefix}{next}"),
            !host_name.ends_with(".localhost"),
        ),
        RouteLocal::Host(name) => (next.to_string(), name == host_name),
    };
    if !right_origin {
        return text(
            StatusCode::FORBIDDEN,
            "stagepass proxy: this launch link belongs to another origin",
        );
    }
    let Ok(session) = agent.proxy.access.open_session() else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "stagepass proxy: the system's random source failed, so no session could be opened; \
             try the launch link again with `stagepass open`",
        );
    };
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        listener.cookie_name(),
        session.expose(),
        SESSION_TTL.as_secs()
    );
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    if let (Ok(cookie), Ok(landing)) = (
        HeaderValue::from_str(&cookie),
        HeaderValue::from_str(&landing),
    ) {
        headers.insert(SET_COOKIE, cookie);
        headers.insert(LOCATION, landing);
    }
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    // The launch token must not travel on as a Referer.
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn routes_are_chosen_by_host_then_longest_prefix() {
        let config = Config::parse(
            Path::new("c.toml"),
            r#"
            [profiles.p]
            issuer = "https://idp.example.com"
            client_id = "x"
            [[route]]
            name = "all"
            path = "/"
            upstream = "https://a.example.com"
            profile = "p"
            identity = "bearer"
            [[route]]
            name = "api"
            path = "/api"
            upstream = "https://b.example.com"
            profile = "p"
            identity = "bearer"
            [[route]]
            name = "named"
            host = "named.localhost"
            upstream = "https://c.example.com"
            profile = "p"
            identity = "bearer"
        "#,
        )
        .unwrap();
        let pick = |host: &str, path: &'static str| {
            select(&config.routes, host, path).map(|(route, rest)| (route.name.as_str(), rest))
        };
        assert_eq!(pick("127.0.0.1", "/api/x"), Some(("api", "/x")));
        assert_eq!(pick("127.0.0.1", "/api"), Some(("api", "/")));
        assert_eq!(pick("127.0.0.1", "/apix"), Some(("all", "/apix")));
        assert_eq!(pick("localhost", "/"), Some(("all", "/")));
        assert_eq!(pick("named.localhost", "/api/x"), Some(("named", "/api/x")));
        assert_eq!(pick("other.localhost", "/api/x"), None);
    }
}
