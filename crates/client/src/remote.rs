//! Remote mode: a `stagepass` on the far side of an SSH or Codespaces port forward asks the
//! desktop agent's remote endpoint (`stagepass_proto::remote`) instead of a local socket.
//!
//! A tiny blocking HTTP/1.1 client, on purpose: one JSON POST to a loopback port does not
//! justify linking an HTTP stack into a binary whose start-up time is a product target. Plain
//! `http://` to loopback only (the forward's end), timeouts on connect, read and write, and
//! a bound on what the answer may hold.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use stagepass_proto::remote::MAX_BODY;
use stagepass_proto::{AgentError, RemoteKey};

use crate::ClientError;

pub const REMOTE_ENV: &str = "STAGEPASS_REMOTE";
pub const REMOTE_KEY_ENV: &str = "STAGEPASS_REMOTE_KEY";
pub const REMOTE_KEY_FILE_ENV: &str = "STAGEPASS_REMOTE_KEY_FILE";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The agent may refresh against a slow IdP before it answers.
const IO_TIMEOUT: Duration = Duration::from_secs(45);
/// The answer's head, besides the body.
const MAX_HEAD: usize = 8 * 1024;

/// The remote endpoint and its key, from the environment.
pub struct Remote {
    /// `http://127.0.0.1:PORT`, as given (for `$STAGEPASS_PROXY`).
    pub url: String,
    address: SocketAddr,
    /// The Host header: exactly what the URL names, as the listener's allow-list expects.
    host: String,
    pub key: RemoteKey,
}

impl Remote {
    /// `None` when remote mode is off (`STAGEPASS_REMOTE` unset or empty).
    pub fn from_env() -> Option<Result<Remote, ClientError>> {
        let url = std::env::var(REMOTE_ENV)
            .ok()
            .filter(|url| !url.is_empty())?;
        Some(Remote::configure(&url))
    }

    fn configure(url: &str) -> Result<Remote, ClientError> {
        let (address, host) = parse_url(url)
            .map_err(|why| ClientError::Remote(format!("{REMOTE_ENV}={url}: {why}")))?;
        let key = match std::env::var(REMOTE_KEY_ENV)
            .ok()
            .filter(|key| !key.is_empty())
        {
            Some(key) => key,
            None => {
                let path = std::env::var_os(REMOTE_KEY_FILE_ENV)
                    .filter(|path| !path.is_empty())
                    .map(PathBuf::from)
                    .ok_or_else(|| {
                        ClientError::Remote(format!(
                            "{REMOTE_ENV} is set but neither {REMOTE_KEY_ENV} nor {REMOTE_KEY_FILE_ENV}"
                        ))
                    })?;
                std::fs::read_to_string(&path)
                    .map_err(|err| {
                        ClientError::Remote(format!("cannot read {}: {err}", path.display()))
                    })?
                    .trim()
                    .to_string()
            }
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ClientError::Remote(
                "the remote key is empty or not one word".into(),
            ));
        }
        Ok(Remote {
            url: url.trim_end_matches('/').to_string(),
            address,
            host,
            key: RemoteKey::new(key),
        })
    }

    /// POSTs `body` as JSON to `path`; the answer's JSON, or the agent's error.
    pub fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(std::io::Error::from)?;
        let unreachable = |err: std::io::Error| {
            ClientError::Remote(format!(
                "cannot reach the remote endpoint {}: {err} (is the port forward up?)",
                self.url
            ))
        };
        let mut stream =
            TcpStream::connect_timeout(&self.address, CONNECT_TIMEOUT).map_err(unreachable)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nAccept: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.host,
            self.key.expose(),
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        let sent = stream.write_all(&request);
        request.fill(0);
        sent.map_err(unreachable)?;
        let mut answer = Vec::new();
        stream
            .take((MAX_HEAD + MAX_BODY + 1) as u64)
            .read_to_end(&mut answer)
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    ClientError::Timeout(IO_TIMEOUT)
                }
                _ => ClientError::Io(err),
            })?;
        let (status, body) = parse_response(&answer).map_err(ClientError::Remote)?;
        if status == 200 {
            return serde_json::from_slice(body).map_err(|err| {
                ClientError::Remote(format!("the remote endpoint sent unexpected JSON: {err}"))
            });
        }
        match serde_json::from_slice::<AgentError>(body) {
            Ok(err) => Err(ClientError::Agent(err)),
            Err(_) => Err(ClientError::Remote(format!(
                "the remote endpoint answered HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
            ))),
        }
    }
}

/// `http://HOST:PORT` with a loopback HOST (127.0.0.0/8, [::1], localhost): the address to
/// connect to and the Host header to send.
fn parse_url(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// to a loopback port forward is supported")?;
    let authority = rest.trim_end_matches('/');
    if authority.contains(['/', '?', '#', '@']) {
        return Err("give only http://127.0.0.1:PORT, no path".into());
    }
    let (name, port) = authority
        .rsplit_once(':')
        .ok_or("the port is missing: http://127.0.0.1:PORT")?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}` is not a port"))?;
    let ip = match name.to_ascii_lowercase().as_str() {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        _ => name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map_err(|_| format!("`{name}` is not a loopback address"))?,
    };
    if !ip.is_loopback() {
        return Err(format!(
            "`{name}` is not a loopback address: the key must only travel through the port forward"
        ));
    }
    let address = (ip, port)
        .to_socket_addrs()
        .map_err(|err| err.to_string())?
        .next()
        .ok_or("no address")?;
    Ok((address, authority.to_ascii_lowercase()))
}

/// The status and the body of a whole `Connection: close` answer (Content-Length, or up to
/// the end).
fn parse_response(answer: &[u8]) -> Result<(u16, &[u8]), String> {
    let end = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .filter(|end| *end <= MAX_HEAD)
        .ok_or("the remote endpoint sent no complete HTTP answer")?;
    let head = std::str::from_utf8(&answer[..end]).map_err(|_| "the answer's head is not text")?;
    let body = &answer[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| {
            let mut parts = line.split(' ');
            parts.next()?.starts_with("HTTP/1.").then_some(())?;
            parts.next()?.parse::<u16>().ok()
        })
        .ok_or("the remote endpoint's status line is not HTTP/1.x")?;
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(
                "the remote endpoint sent a chunked answer, which this client does not read".into(),
            );
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse::<usize>().ok();
        }
    }
    if body.len() > MAX_BODY {
        return Err(format!("the answer is larger than {MAX_BODY} bytes"));
    }
    match length {
        Some(length) if length <= body.len() => Ok((status, &body[..length])),
        Some(_) => Err("the answer ended early".into()),
        None => Ok((status, body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_loopback_urls_are_accepted() {
        for ok in [
            "http://127.0.0.1:7466",
            "http://localhost:7466/",
            "http://[::1]:7466",
            "http://127.0.0.2:1",
        ] {
            assert!(parse_url(ok).is_ok(), "{ok}");
        }
        assert_eq!(parse_url("http://LocalHost:9").unwrap().1, "localhost:9");
        for bad in [
            "https://127.0.0.1:7466",
            "http://10.0.0.1:7466",
            "http://example.com:7466",
            "http://127.0.0.1",
            "http://127.0.0.1:7466/path",
            "http://user@127.0.0.1:7466",
            "http://127.0.0.1:99999",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_are_parsed_within_bounds() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}extra";
        assert_eq!(parse_response(ok).unwrap(), (200, &b"{}"[..]));
        let short = b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n{}";
        assert!(parse_response(short).is_err());
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        assert!(parse_response(chunked).is_err());
        assert!(parse_response(b"garbage").is_err());
        let mut big = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        big.resize(big.len() + MAX_BODY + 1, b' ');
        assert!(parse_response(&big).is_err());
    }
}
