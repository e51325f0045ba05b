//! Forwarding one admitted request to its route's upstream with the user's identity:
//! bodies streamed both ways (chunked, SSE), WebSocket and other upgrades spliced, a 401 on
//! an idempotent request without a body retried once after a forced refresh, and failures
//! answered with a 502/504 that names the upstream and why.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONNECTION, HeaderValue, UPGRADE};
use http::uri::InvalidUri;
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, SizeHint};
use hyper_util::rt::TokioIo;
use stagepass_core::config::Config;
use stagepass_core::proxy_config::Route;
use tokio::sync::Notify;

use super::headers::{Rewrite, downstream_response, upstream_request};
use super::identity::{force_refresh, identity};
use super::reply::{Body, empty, text};
use super::stats::Outcome;
use crate::sessions::Agent;

/// Where the request came in, for rewriting the upstream's URLs.
pub(crate) struct Local<'a> {
    /// `127.0.0.1:7466`, the admitted Host.
    pub host: &'a str,
    /// The route's path prefix, `""` for host routes.
    pub prefix: &'a str,
    /// The proxy's session cookie name, never passed on.
    pub cookie: &'a str,
}

pub(crate) struct Forwarded {
    pub response: Response<Body>,
    pub outcome: Outcome,
    pub retried: bool,
}

/// `rest`: the path after the route's prefix (starting with `/`), and the query.
pub(crate) async fn forward(
    agent: &Agent,
    config: &Config,
    route: &Route,
    local: &Local<'_>,
    mut request: Request<Body>,
    rest: (&str, Option<&str>),
) -> Forwarded {
    let upstream_origin = route.upstream.origin();
    let upstream_path = route.upstream.path();
    let pool = match agent
        .proxy
        .upstreams
        .pool(route.ca_file.as_deref(), upstream_origin)
    {
        Ok(pool) => pool,
        Err(why) => return failed(StatusCode::BAD_GATEWAY, route, &why),
    };
    let upgrade = upgrade_protocol(&request);
    let downstream_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let headers = || {
        upstream_request(
            &parts.headers,
            upgrade.as_ref(),
            &route.strip_headers,
            local.cookie,
            upstream_origin,
        )
    };
    // Only a request that can be sent again is retried: idempotent, no body, no upgrade.
    let retryable = is_idempotent(&parts.method) && body.is_end_stream() && upgrade.is_none();
    let mut body = Some(body);
    let mut retried = false;
    let timeout = route.timeout;
    let mut response = loop {
        let injected = match identity(agent, config, route).await {
            Ok(injected) => injected,
            Err(err) => {
                let mut message = format!(
                    "stagepass proxy: no token for route {} (profile {}): {}",
                    route.name, route.profile, err.message
                );
                if let Some(hint) = err.hint {
                    message.push_str(&format!("\n{hint}"));
                }
                return Forwarded {
                    response: text(StatusCode::UNAUTHORIZED, message),
                    outcome: Outcome::Answered(401),
                    retried,
                };
            }
        };
        // Only the caller's body tells of its progress; a retryable request has none, and
        // waits for the answer alone.
        let (outgoing_body, sending) = match (retryable, body.take()) {
            (false, Some(body)) => {
                let sending = Arc::new(Notify::new());
                let upload = Upload {
                    body,
                    sending: sending.clone(),
                };
                (upload.boxed(), Some(sending))
            }
            _ => (empty(), None),
        };
        let mut outgoing = Request::new(outgoing_body);
        *outgoing.method_mut() = parts.method.clone();
        *outgoing.version_mut() = Version::HTTP_11;
        // Built again for a retry rather than cloned for every request.
        *outgoing.headers_mut() = headers();
        outgoing
            .headers_mut()
            .insert(injected.name.clone(), injected.value.clone());
        match upstream_uri(route, rest) {
            Ok(parsed) => *outgoing.uri_mut() = parsed,
            Err(_) => {
                return failed(
                    StatusCode::BAD_GATEWAY,
                    route,
                    "the request path does not make a URL",
                );
            }
        }
        let answer = match answer_within(timeout, sending.as_deref(), pool.send(outgoing)).await {
            None => {
                let why = format!(
                    "no answer within {} s (route timeout_secs)",
                    timeout.as_secs()
                );
                return Forwarded {
                    retried,
                    ..failed(StatusCode::GATEWAY_TIMEOUT, route, &why)
                };
            }
            Some(Err(err)) => {
                let why = super::upstream::describe(&*err);
                tracing::warn!(route = %route.name, "upstream failed: {why}");
                return Forwarded {
                    retried,
                    ..failed(StatusCode::BAD_GATEWAY, route, &why)
                };
            }
            Some(Ok(answer)) => answer,
        };
        let refused = answer.status() == StatusCode::UNAUTHORIZED;
        if refused && retryable && !retried && force_refresh(agent, config, route, &injected) {
            tracing::info!(route = %route.name, "the upstream refused the token; retrying once after a refresh");
            retried = true;
            continue;
        }
        break answer;
    };
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let rewrite = Rewrite {
        upstream_origin,
        upstream_path,
        local_host: local.host,
        local_path: local.prefix,
    };
    downstream_response(response.headers_mut(), switching, &rewrite);
    if switching && let Some(downstream) = downstream_upgrade {
        let upstream = hyper::upgrade::on(&mut response);
        tokio::spawn(splice(downstream, upstream, route.name.clone()));
    }
    let status = response.status().as_u16();
    Forwarded {
        response: response.map(|body| body.boxed()),
        outcome: Outcome::Answered(status),
        retried,
    }
}

/// `request`'s outcome, unless `timeout` passes without an answer and without a frame of the
/// upload (`sending`): a route's timeout bounds the wait for the upstream's response headers
/// and a stalled upload, never an upload that is still moving.
async fn answer_within<T>(
    timeout: Duration,
    sending: Option<&Notify>,
    request: impl Future<Output = T>,
) -> Option<T> {
    let Some(sending) = sending else {
        return tokio::time::timeout(timeout, request).await.ok();
    };
    let mut request = std::pin::pin!(request);
    loop {
        tokio::select! {
            answer = &mut request => return Some(answer),
            () = sending.notified() => {}
            () = tokio::time::sleep(timeout) => return None,
        }
    }
}

/// The caller's request body on its way upstream, telling [`answer_within`] of each frame.
struct Upload {
    body: Body,
    sending: Arc<Notify>,
}

impl hyper::body::Body for Upload {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if polled.is_ready() {
            self.sending.notify_one();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The upstream target in origin-form (the connection is to the upstream's origin) for the
/// path after the route's prefix and the query: written once into one buffer that the
/// parsed URI then owns (no copy).
fn upstream_uri(route: &Route, (path, query): (&str, Option<&str>)) -> Result<Uri, InvalidUri> {
    let base = route.upstream.path();
    let query_len = query.map_or(0, |query| query.len() + 1);
    let mut uri = String::with_capacity(base.len() + path.len() + query_len);
    uri.push_str(base);
    uri.push_str(path);
    if let Some(query) = query {
        uri.push('?');
        uri.push_str(query);
    }
    Uri::try_from(uri)
}

/// The protocol a caller asks to switch to (`Connection: upgrade` + `Upgrade: websocket`).
fn upgrade_protocol<B>(request: &Request<B>) -> Option<HeaderValue> {
    let asks = request
        .headers()
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    asks.then(|| request.headers().get(UPGRADE).cloned())
        .flatten()
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// Copies bytes both ways between the caller's and the upstream's upgraded connections.
async fn splice(
    downstream: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    route: String,
) {
    let (downstream, upstream) = match tokio::try_join!(downstream, upstream) {
        Ok(pair) => pair,
        Err(err) => {
            tracing::debug!(route = %route, "upgrade failed: {err}");
            return;
        }
    };
    let mut downstream = TokioIo::new(downstream);
    let mut upstream = TokioIo::new(upstream);
    if let Err(err) = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await {
        tracing::debug!(route = %route, "upgraded connection ended: {err}");
    }
}

fn failed(status: StatusCode, route: &Route, why: &str) -> Forwarded {
    Forwarded {
        response: text(
            status,
            format!(
                "stagepass proxy: upstream {} of route {} failed: {why}",
                route.upstream, route.name
            ),
        ),
        outcome: Outcome::UpstreamFailed,
        retried: false,
    }
}
