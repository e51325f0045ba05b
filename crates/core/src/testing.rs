//! A fake IdP for tests of this crate and of the agent: a real TCP listener on loopback that
//! answers canned HTTP/1.1 responses per path, so the whole stack (reqwest, `HttpClient`'s
//! limits, `oauth2`/`openidconnect` parsing, the error mapping) runs as in production.
//!
//! Behind the `testing` feature (and `cfg(test)`): it is test code, and it pulls in tokio's
//! networking, which the library itself does not need.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::{Config, Profile};

/// Where the discovery document is served.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// What the fake IdP answers on one path.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A complete response with a `Content-Length`.
    Full {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
    /// Reads the request, then keeps the connection open without a byte of answer.
    Hang,
    /// Reads the request, then closes the connection without a byte of answer: what a
    /// client sees when a server's keep-alive timer closes a connection as a request arrives.
    Drop,
    /// A 200 announcing a `Content-Length` of `length`, then not a byte of the body.
    Announced { length: usize },
    /// A 200 streamed with `Transfer-Encoding: chunked`, no `Content-Length`, `total` bytes
    /// of JSON whitespace long.
    Chunked { total: usize },
}

impl Reply {
    pub fn with_type(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: impl ToString) -> Reply {
        Reply::with_type(status, "application/json", body.to_string())
    }

    pub fn html(status: u16, body: &str) -> Reply {
        Reply::with_type(status, "text/html; charset=utf-8", body)
    }

    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::Full {
            status,
            headers: vec![("Location", location.to_string())],
            body: Vec::new(),
        }
    }

    async fn write_to(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        match self {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let mut head =
                    format!("{}Content-Length: {}\r\n", status_line(*status), body.len());
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(body).await?;
            }
            Reply::Hang => std::future::pending().await,
            Reply::Drop => return stream.shutdown().await,
            Reply::Announced { length } => {
                let head = format!(
                    "{}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n",
                    status_line(200)
                );
                stream.write_all(head.as_bytes()).await?;
                stream.flush().await?;
                std::future::pending().await
            }
            Reply::Chunked { total } => {
                let head = format!(
                    "{}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                    status_line(200)
                );
                stream.write_all(head.as_bytes()).await?;
                let chunk = [b' '; 1024];
                for _ in 0..total.div_ceil(chunk.len()) {
                    stream
                        .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                        .await?;
                    stream.write_all(&chunk).await?;
                    stream.write_all(b"\r\n").await?;
                    stream.flush().await?;
                }
                stream.write_all(b"0\r\n\r\n").await?;
            }
        }
        stream.flush().await
    }
}

fn status_line(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|code| code.canonical_reason())
        .unwrap_or("Whatever");
    format!("HTTP/1.1 {status} {reason}\r\nConnection: close\r\n")
}

/// A loopback HTTP/1.1 server with one canned [`Reply`] per path (404 for the rest), counting
/// the requests per path. One request per connection. Stops with the test's runtime.
pub struct FakeIdp {
    pub base: String,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl FakeIdp {
    /// A server that knows no path yet.
    pub async fn start() -> FakeIdp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let idp = FakeIdp {
            base,
            routes: Arc::default(),
            hits: Arc::default(),
        };
        let (routes, hits) = (idp.routes.clone(), idp.hits.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, routes.clone(), hits.clone()));
            }
        });
        idp
    }

    /// A well-behaved IdP: a valid discovery document and an empty JWKS.
    pub async fn standard() -> FakeIdp {
        FakeIdp::with_discovery(|_| {}).await
    }

    /// Like [`FakeIdp::standard`], with `edit` applied to the discovery document.
    pub async fn with_discovery(edit: impl FnOnce(&mut Value)) -> FakeIdp {
        let idp = FakeIdp::start().await;
        let mut document = idp.discovery_document();
        edit(&mut document);
        idp.route(DISCOVERY_PATH, Reply::json(200, document));
        idp.route("/jwks", Reply::json(200, json!({ "keys": [] })));
        idp
    }

    pub fn discovery_document(&self) -> Value {
        let base = &self.base;
        json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("{base}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })
    }

    pub fn route(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A profile whose issuer is this server, parsed as a user's config would be.
    pub fn profile(&self) -> Profile {
        let text = format!(
            "[profiles.fake]\nissuer = \"{}\"\nclient_id = \"stagepass-test\"\n",
            self.base
        );
        let mut config = Config::parse(Path::new("/test/stagepass.toml"), &text).unwrap();
        config.profiles.remove("fake").unwrap()
    }
}

async fn serve(
    mut stream: TcpStream,
    routes: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
) {
    let Some(path) = read_request(&mut stream).await else {
        return;
    };
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let reply = routes.lock().unwrap().get(&path).cloned();
    let reply = reply.unwrap_or_else(|| Reply::html(404, "not here"));
    // A write error means the client gave up, which some tests are about.
    let _ = reply.write_to(&mut stream).await;
}

/// Reads one request, body included, and returns its path without the query.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).await.ok().filter(|&n| n > 0)?;
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let content_length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while data.len() < head_end + content_length {
        let n = stream.read(&mut buf).await.ok().filter(|&n| n > 0)?;
        data.extend_from_slice(&buf[..n]);
    }
    let target = head.split_whitespace().nth(1)?;
    Some(target.split('?').next().unwrap_or(target).to_string())
}
