//! Calling the local proxy from tests: curl for plain requests, raw sockets where the timing
//! of a stream or an upgrade matters.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use super::{AUDIENCE, CLIENT_ID, Idp, Sandbox, TestServer};

/// A signed-in sandbox whose agent runs the local proxy on a free port, with the IdP and the
/// test upstream (tests/servers/upstream-server.mjs) it forwards to.
pub struct ProxySetup {
    pub sandbox: Sandbox,
    pub upstream: TestServer,
    pub idp: Idp,
    pub port: u16,
}

impl ProxySetup {
    /// `tables(issuer, upstream)` gives the config after `[profiles.PROFILE]` and `[proxy]`:
    /// the routes, and whatever else the test needs.
    pub fn start(
        profile: &str,
        upstream_env: &[(&str, &OsStr)],
        tables: impl FnOnce(&str, &TestServer) -> String,
    ) -> ProxySetup {
        let idp = Idp::start();
        let upstream = TestServer::start("upstream-server.mjs", upstream_env);
        let port = free_port();
        let issuer = &idp.issuer;
        let config = format!(
            "[profiles.{profile}]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\n\
             scopes = [\"openid\", \"email\", \"profile\", \"offline_access\"]\naudience = \"{AUDIENCE}\"\n\
             [proxy]\nport = {port}\n{}",
            tables(issuer, &upstream)
        );
        let sandbox = Sandbox::with_config(profile, &config);
        sandbox.login_browser();
        ProxySetup {
            sandbox,
            upstream,
            idp,
            port,
        }
    }

    pub fn key(&self) -> String {
        std::fs::read_to_string(self.sandbox.runtime_dir().join("proxy.key"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// The desktop's own token, through its socket.
    pub fn token(&self) -> String {
        let run = self
            .sandbox
            .run(&["token", &self.sandbox.profile, "--no-interactive"]);
        run.assert_ok();
        run.stdout().trim().to_string()
    }
}

/// A free loopback port (bound, then released for the agent to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A finished curl request: status, response head (lowercase names) and body.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Vec<String> {
        self.head
            .lines()
            .filter_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_string())
            })
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {} {}", self.status, self.body))
    }
}

/// `curl -i` with `args` (headers, method...) against `url`.
pub fn curl(url: &str, args: &[&str]) -> Answer {
    let output = Command::new("curl")
        .args(["-s", "-i", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (rest, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    // A 303 and other answers without a body still end their head with an empty line.
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    Answer {
        status: status.trim().parse().unwrap_or(0),
        head: head.to_string(),
        body: body.to_string(),
    }
}

/// The `Proxy-Authorization` argument pair for curl.
pub fn key_header(key: &str) -> String {
    format!("Proxy-Authorization: Bearer {key}")
}

/// Sends a raw HTTP/1.1 request head on a fresh connection to 127.0.0.1:`port`.
pub fn raw(port: u16, head: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream
}

/// Reads from `stream` until `needle` has arrived; everything read so far.
pub fn read_until(stream: &mut TcpStream, seen: &mut Vec<u8>, needle: &str) -> String {
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(needle) {
        let read = stream.read(&mut buffer).unwrap_or(0);
        assert!(
            read > 0,
            "the stream ended before {needle:?}: {}",
            String::from_utf8_lossy(seen)
        );
        seen.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(seen).into_owned()
}

/// A masked WebSocket text frame, as a client must send it (payload < 126 bytes).
pub fn ws_text_frame(text: &str) -> Vec<u8> {
    let mask = [0x11u8, 0x22, 0x33, 0x44];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}
