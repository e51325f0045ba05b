//! Connections to the upstreams: kept-alive HTTP/1 connections per upstream origin, TLS
//! verified against the platform roots plus a route's extra CA file, and failures put in
//! words for 502/504 bodies.
//!
//! The pool is this module's rather than hyper-util's pooling client: that one races a pool
//! checkout against a lazy connect for every request, rewrites each request's URL and Host,
//! and spawns a task per request to put its connection back when the response is read:
//! work that showed in the proxy's CPU time per request. Here a connection is taken from its
//! origin's list, and put back by the response body once it has been read to the end.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use crate::sync::lock;
use bytes::Bytes;
use http::header::{HOST, HeaderValue};
use http::{Request, Response, StatusCode, Uri};
use hyper::body::{Body as _, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tower_service::Service;

use super::reply::Body;

type Connector = HttpsConnector<HttpConnector>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Per CA file (`None`: the platform roots only), its connector and its origins' pools.
/// A connector is made on first use: reading the platform roots costs milliseconds, a
/// request should not.
#[derive(Default)]
pub(crate) struct Upstreams {
    trusts: Mutex<HashMap<Option<PathBuf>, Trust>>,
}

struct Trust {
    connector: Connector,
    /// Origin (`https://backstage.example.com`) -> its pool.
    pools: HashMap<String, Arc<Pool>>,
}

impl Upstreams {
    /// The pool of `origin` (a route's upstream origin, as the config keeps it).
    pub(crate) fn pool(&self, ca_file: Option<&Path>, origin: &str) -> Result<Arc<Pool>, String> {
        let mut trusts = lock(&self.trusts);
        // A lookup first: only a route with a CA file of its own allocates its key.
        let key = ca_file.map(Path::to_path_buf);
        let trust = match trusts.get_mut(&key) {
            Some(trust) => trust,
            None => trusts.entry(key).or_insert(Trust {
                connector: connector(ca_file)?,
                pools: HashMap::new(),
            }),
        };
        if let Some(pool) = trust.pools.get(origin) {
            return Ok(pool.clone());
        }
        let pool = Arc::new(Pool::new(trust.connector.clone(), origin)?);
        trust.pools.insert(origin.to_string(), pool.clone());
        Ok(pool)
    }

    /// Closes the connections that have been idle since the last call (see
    /// [`Idle::prune`]); called once a minute.
    pub(crate) fn prune(&self) {
        for trust in lock(&self.trusts).values() {
            for pool in trust.pools.values() {
                lock(&pool.idle).prune();
            }
        }
    }
}

/// One upstream origin's connections.
pub(crate) struct Pool {
    connector: Connector,
    /// What the connector connects to: the origin.
    origin: Uri,
    /// The Host every request to it carries (the port only when it is not the scheme's).
    host: HeaderValue,
    idle: Mutex<Idle>,
}

/// Connections waiting for a request. Two generations instead of a timestamp each: what
/// was not used between two prunes (a minute) is closed, and no request reads the clock.
#[derive(Default)]
struct Idle {
    recent: Vec<SendRequest<Body>>,
    older: Vec<SendRequest<Body>>,
}

impl Idle {
    fn prune(&mut self) {
        self.older = std::mem::take(&mut self.recent);
    }
}

impl Pool {
    fn new(connector: Connector, origin: &str) -> Result<Pool, String> {
        let bad = || format!("the upstream origin {origin} is not a URL");
        let origin: Uri = origin.parse().map_err(|_| bad())?;
        let host = origin.host().ok_or_else(bad)?;
        let secure = origin.scheme_str() == Some("https");
        let host = match origin.port_u16() {
            Some(443) if secure => host.to_string(),
            Some(80) if !secure => host.to_string(),
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let host = HeaderValue::try_from(host).map_err(|_| bad())?;
        Ok(Pool {
            connector,
            origin,
            host,
            idle: Mutex::new(Idle::default()),
        })
    }

    /// Sends `request` (its URL in origin-form, `/path?query`) on an idle connection, or a
    /// new one. A request that a reused connection closed before sending any of it goes out
    /// again on the next (the upstream may close an idle connection at any moment).
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut request: Request<Body>,
    ) -> Result<Response<Returning>, BoxError> {
        request.headers_mut().insert(HOST, self.host.clone());
        loop {
            let (mut sender, reused) = match self.take() {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            if let Err(err) = sender.ready().await {
                if reused {
                    continue;
                }
                return Err(err.into());
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let pool = self.clone();
                    return Ok(Returning::new(response, sender, pool));
                }
                Err(mut err) => match err.take_message() {
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(err.into_error().into()),
                },
            }
        }
    }

    /// The connection that was idle the shortest time and is still open.
    fn take(&self) -> Option<SendRequest<Body>> {
        let mut idle = lock(&self.idle);
        let Idle { recent, older } = &mut *idle;
        std::iter::from_fn(|| recent.pop().or_else(|| older.pop()))
            .find(|sender| !sender.is_closed())
    }

    fn put(&self, sender: SendRequest<Body>) {
        lock(&self.idle).recent.push(sender);
    }

    async fn connect(&self) -> Result<SendRequest<Body>, BoxError> {
        let mut connector = self.connector.clone();
        std::future::poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(Connect)?;
        let io = connector.call(self.origin.clone()).await.map_err(Connect)?;
        let (sender, connection) = http1::Builder::new()
            // One write per request: small heads and bodies are cheaper copied than vectored.
            .writev(false)
            .handshake(io)
            .await?;
        tokio::spawn(async move {
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!("upstream connection ended: {err}");
            }
        });
        Ok(sender)
    }
}

/// A failed connect (TCP or TLS), in the words of the error chain that [`describe`] reads.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect")]
struct Connect(#[source] BoxError);

/// An upstream's response body that puts its connection back into the pool once it has
/// been read to the end. A body dropped before its end takes the connection with it (hyper
/// closes it), and so does a switch of protocols, whose connection the upgrade owns.
pub(crate) struct Returning {
    body: Incoming,
    back: Option<(SendRequest<Body>, Arc<Pool>)>,
}

impl Returning {
    fn new(
        response: Response<Incoming>,
        sender: SendRequest<Body>,
        pool: Arc<Pool>,
    ) -> Response<Returning> {
        let reusable = response.status() != StatusCode::SWITCHING_PROTOCOLS;
        response.map(|body| {
            let mut body = Returning {
                body,
                back: reusable.then_some((sender, pool)),
            };
            // An empty body may never be polled.
            if body.body.is_end_stream() {
                body.release();
            }
            body
        })
    }

    fn release(&mut self) {
        if let Some((sender, pool)) = self.back.take() {
            pool.put(sender);
        }
    }
}

impl hyper::body::Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.release(),
            // The caller may stop polling once the body says it has ended.
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => this.back = None,
            _ => {}
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

fn connector(ca_file: Option<&Path>) -> Result<Connector, String> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable platform certificates are skipped: the extra CA may be all a route needs.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|err| format!("cannot read the CA file {}: {err}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("no PEM certificate in {}", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|err| format!("bad certificate in {}: {err}", path.display()))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| format!("TLS setup: {err}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}

/// Why a request to the upstream failed, from the whole error chain ("connection refused",
/// "invalid peer certificate: UnknownIssuer").
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut words = vec![err.to_string()];
    let mut source = err.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !words.iter().any(|word| word.contains(&text)) {
            words.push(text);
        }
        source = err.source();
    }
    words.join(": ")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    use super::super::reply::{empty, full};
    use super::*;

    /// An upstream that answers with the target and Host it got, and counts its connections.
    async fn upstream(keep_alive: bool) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn(|request: Request<Incoming>| async move {
                    let host = request.headers()[HOST].to_str().unwrap().to_string();
                    let said = format!("{} {host}", request.uri());
                    Ok::<_, std::convert::Infallible>(Response::new(full(said)))
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .keep_alive(keep_alive)
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        (origin, accepted)
    }

    async fn get(pool: &Arc<Pool>, path: &str) -> String {
        let mut request = Request::new(empty());
        *request.uri_mut() = path.parse().unwrap();
        let response = pool.send(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_response_is_read_and_closed_when_idle() {
        let (origin, accepted) = upstream(true).await;
        let host = origin.strip_prefix("http://").unwrap();
        let upstreams = Upstreams::default();
        let pool = upstreams.pool(None, &origin).unwrap();
        assert_eq!(get(&pool, "/a").await, format!("/a {host}"));
        assert_eq!(get(&pool, "/b?c=d").await, format!("/b?c=d {host}"));
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // Unused through two prunes: dropped, and the next request connects again.
        upstreams.prune();
        upstreams.prune();
        assert_eq!(get(&pool, "/c").await, format!("/c {host}"));
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closes_is_not_used_again() {
        let (origin, accepted) = upstream(false).await;
        let pool = Upstreams::default().pool(None, &origin).unwrap();
        for path in ["/a", "/b", "/c"] {
            assert!(get(&pool, path).await.starts_with(path));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_host_names_the_port_only_when_it_is_not_the_schemes() {
        let connector = connector(None).unwrap();
        let host = |origin: &str| Pool::new(connector.clone(), origin).unwrap().host;
        assert_eq!(host("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(host("http://example.com:80"), "example.com");
        assert_eq!(host("https://example.com:443"), "example.com");
        assert_eq!(host("https://example.com"), "example.com");
        assert_eq!(host("http://[::1]:9000"), "[::1]:9000");
    }
}
