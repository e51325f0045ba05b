//! The local proxy against a real IdP and a test upstream (tests/servers/upstream-server.mjs):
//! each security rule shown to let the right request through and to refuse the wrong one,
//! identity injection and stripping, streams, upgrades, the retry after a refresh, failures
//! and the audit. The Backstage and browser tests are in tests/proxy_browser.rs.

use crate::support;

use std::io::Write;
use std::time::{Duration, Instant};

use support::proxy::{ProxySetup, curl, free_port, key_header, raw, read_until, ws_text_frame};
use support::{CLIENT_ID, Idp, Sandbox, wait_until};

/// A signed-in sandbox whose agent proxies route `api` (path `/api`) and `named`
/// (`named.localhost`) to the test upstream, and `down` to a closed port.
fn setup(profile: &str) -> ProxySetup {
    // A long pause between the two events, so "streamed" is told from "buffered" on a busy
    // machine too.
    let pause = std::ffi::OsStr::new("2000");
    let closed = free_port();
    ProxySetup::start(profile, &[("SSE_PAUSE_MS", pause)], |_, upstream| {
        let url = &upstream.url;
        format!(
            "[[route]]\nname = \"api\"\npath = \"/api\"\nupstream = \"{url}\"\nprofile = \"{profile}\"\nidentity = \"bearer\"\n\
             strip_headers = [\"X-Custom-User\"]\n\
             [[route]]\nname = \"named\"\nhost = \"named.localhost\"\nupstream = \"{url}\"\nprofile = \"{profile}\"\nidentity = \"header\"\nheader = \"X-Upstream-Token\"\n\
             [[route]]\nname = \"down\"\npath = \"/down\"\nupstream = \"http://127.0.0.1:{closed}\"\nprofile = \"{profile}\"\nidentity = \"bearer\"\ntimeout_secs = 5\n\
             [[route]]\nname = \"slow\"\npath = \"/slow\"\nupstream = \"{url}\"\nprofile = \"{profile}\"\nidentity = \"bearer\"\ntimeout_secs = 1\n"
        )
    })
}

impl ProxySetup {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// GET `path` with the key and the extra curl arguments.
    fn get(&self, path: &str, extra: &[&str]) -> support::proxy::Answer {
        let key = key_header(&self.key());
        let mut args = vec!["-H", key.as_str()];
        args.extend_from_slice(extra);
        curl(&self.url(path), &args)
    }
}

#[test]
fn exec_gives_programs_the_proxy_and_the_upstream_sees_only_the_real_identity() {
    let setup = setup("e2e-proxy-exec");
    // The README's example, word for word: the key travels through a builtin and a pipe.
    let script = format!(
        "printf 'Proxy-Authorization: Bearer %s\\n' \"$STAGEPASS_PROXY_KEY\" | \
         curl -s -H @- -H 'X-Forwarded-Email: mallory@example.com' \
         -H 'X-OAUTH2-PROXY-ID-TOKEN: forged' -H 'Authorization: Bearer forged' \
         -H 'X-Forwarded-User: mallory' -H 'Cookie: stagepass_{}=x; theme=dark' \
         \"$STAGEPASS_PROXY/echo\"",
        setup.port
    );
    let run = setup.sandbox.run(&["exec", "--", "sh", "-c", &script]);
    run.assert_ok();
    let echo: serde_json::Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|err| panic!("{err}: {} {}", run.stdout(), run.stderr()));
    let headers = &echo["headers"];
    assert_eq!(
        headers["authorization"],
        format!("Bearer {}", setup.token()),
        "{echo}"
    );
    for stripped in [
        "x-forwarded-email",
        "x-forwarded-user",
        "x-oauth2-proxy-id-token",
        "proxy-authorization",
    ] {
        assert!(
            headers.get(stripped).is_none(),
            "{stripped} reached the upstream: {echo}"
        );
    }
    assert_eq!(headers["cookie"], "theme=dark");
    assert_eq!(echo["url"], "/echo");

    // The header identity mode puts the bare token in the named header, on a host route.
    let host = format!("Host: named.localhost:{}", setup.port);
    let answer = setup.get("/echo", &["-H", &host]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let echo = answer.json();
    assert_eq!(echo["headers"]["x-upstream-token"], setup.token().as_str());
    assert!(echo["headers"].get("authorization").is_none(), "{echo}");
}

#[test]
fn no_identity_header_of_the_common_identity_proxies_arrives_in_any_spelling() {
    let setup = setup("e2e-proxy-idheaders");
    let forged = [
        "X_Forwarded_User",
        "X_Forwarded_Email",
        "remote_user",
        "Remote-User",
        "Remote-Groups",
        "Remote-Email",
        "Remote-Name",
        "X-Authentik-Username",
        "X-Authentik-Groups",
        "X-Authentik-Email",
        "X-Pomerium-Jwt-Assertion",
        "X-Pomerium-Claim-Email",
        "X-Consumer-Username",
        "X-Consumer-ID",
        "X-Userinfo",
        "X-Vouch-User",
        "X-Authenticated-User",
        "X_Auth_Request_Email",
        "X-Auth-Request-Groups",
        "X-WEBAUTH-USER",
        // The route's own `strip_headers`, spelt another way.
        "X_CUSTOM_USER",
    ];
    let lines: Vec<String> = forged
        .iter()
        .map(|name| format!("{name}: mallory"))
        .collect();
    let mut args = Vec::new();
    for line in &lines {
        args.extend(["-H", line.as_str()]);
    }
    args.extend(["-H", "X-Kept: yes"]);
    let answer = setup.get("/api/echo", &args);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let echo = answer.json();
    let headers = echo["headers"].as_object().unwrap();
    assert_eq!(headers["x-kept"], "yes", "{echo}");
    for (name, value) in headers {
        assert_ne!(value, "mallory", "{name} reached the upstream: {echo}");
    }
}

#[test]
fn a_slow_upload_outlasts_the_route_timeout_and_a_stalled_one_does_not() {
    let setup = setup("e2e-proxy-upload");
    let (port, key) = (setup.port, setup.key());
    let head = |len: usize| {
        format!(
            "POST /slow/echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nProxy-Authorization: Bearer {key}\r\n\
             Content-Type: text/plain\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };
    // Route `slow` waits 1 s for an answer; this upload takes 3 s, never pausing 1 s.
    let parts = ["one ", "two ", "three ", "four ", "five ", "six"];
    let started = Instant::now();
    let mut upload = raw(port, &head(parts.concat().len()));
    for part in parts {
        std::thread::sleep(Duration::from_millis(500));
        upload.write_all(part.as_bytes()).unwrap();
    }
    let mut seen = Vec::new();
    let answer = read_until(&mut upload, &mut seen, "\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    read_until(&mut upload, &mut seen, "one two three four five six");
    assert!(started.elapsed() >= Duration::from_secs(3));

    // An upload that stops is bounded by the same timeout.
    let mut stalled = raw(port, &head(100));
    stalled.write_all(b"only this").unwrap();
    let mut seen = Vec::new();
    let answer = read_until(&mut stalled, &mut seen, "\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 504"), "{answer}");
}

#[test]
fn credentials_host_origin_and_fetch_site_each_let_the_right_request_through_only() {
    let setup = setup("e2e-proxy-rules");
    let key = setup.key();
    let token = setup.token();
    let ok = |answer: &support::proxy::Answer, what: &str| {
        assert_eq!(answer.status, 200, "{what}: {}", answer.body);
    };
    let refused = |answer: &support::proxy::Answer, what: &str| {
        assert_eq!(
            answer.status, 403,
            "{what}: {} {}",
            answer.head, answer.body
        );
        assert!(
            !answer.body.contains(&key) && !answer.body.contains(&token),
            "{what}"
        );
    };
    // Credentials: the key, exactly.
    ok(&setup.get("/api/echo", &[]), "the key");
    refused(&curl(&setup.url("/api/echo"), &[]), "no credentials");
    let wrong = key_header(&format!("{}0", &key[1..]));
    refused(
        &curl(&setup.url("/api/echo"), &["-H", &wrong]),
        "a wrong key",
    );
    let short = key_header(&key[..32]);
    refused(
        &curl(&setup.url("/api/echo"), &["-H", &short]),
        "half the key",
    );

    // Host: the allow-list with the port.
    let port = setup.port;
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        ok(
            &setup.get("/api/echo", &["-H", &format!("Host: {host}")]),
            &host,
        );
    }
    for host in [
        format!("evil.example:{port}"),
        format!("127.0.0.1:{}", port + 1),
        "127.0.0.1".to_string(),
        format!("unknown.localhost:{port}"),
    ] {
        refused(
            &setup.get("/api/echo", &["-H", &format!("Host: {host}")]),
            &host,
        );
    }
    refused(&setup.get("/api/echo", &["-H", "Host:"]), "no Host");

    // Browser context: same origin passes, anything else is refused.
    let same = format!("Origin: http://127.0.0.1:{port}");
    ok(&setup.get("/api/echo", &["-H", &same]), "same origin");
    for origin in [
        "Origin: null",
        "Origin: http://127.0.0.1:8000",
        "Origin: http://evil.example",
    ] {
        refused(&setup.get("/api/echo", &["-H", origin]), origin);
    }
    for site in ["same-origin", "none"] {
        ok(
            &setup.get("/api/echo", &["-H", &format!("Sec-Fetch-Site: {site}")]),
            site,
        );
    }
    for site in ["cross-site", "same-site"] {
        refused(
            &setup.get("/api/echo", &["-H", &format!("Sec-Fetch-Site: {site}")]),
            site,
        );
    }

    // No CORS, even when the upstream grants it.
    let answer = setup.get("/api/redirect", &["-H", &same]);
    assert_eq!(answer.status, 302);
    assert!(
        answer.header("access-control-allow-origin").is_empty(),
        "{}",
        answer.head
    );
}

#[test]
fn a_launch_url_gives_one_strict_http_only_session() {
    let setup = setup("e2e-proxy-launch");
    let run = setup.sandbox.run(&["open", "api", "--print"]);
    run.assert_ok();
    let launch = run.stdout().trim().to_string();
    assert!(
        launch.starts_with(&setup.url("/.stagepass/launch?t=")),
        "{launch}"
    );
    let answer = curl(&launch, &[]);
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.header("location"), ["/api/"]);
    let cookie = answer.header("set-cookie").join("");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let pair = cookie.split(';').next().unwrap().to_string();
    assert!(
        pair.starts_with(&format!("stagepass_{}=", setup.port)),
        "{pair}"
    );
    let with_cookie = curl(&setup.url("/api/echo"), &["-H", &format!("Cookie: {pair}")]);
    assert_eq!(with_cookie.status, 200, "{}", with_cookie.body);
    // The session cookie is the proxy's: it never reaches the upstream.
    assert!(with_cookie.json()["headers"].get("cookie").is_none());

    assert_eq!(curl(&launch, &[]).status, 403, "a launch URL works once");
    let forged = format!("Cookie: stagepass_{}=00000000", setup.port);
    assert_eq!(curl(&setup.url("/api/echo"), &["-H", &forged]).status, 403);
    // A host route's launch URL is on the route's own origin.
    let named = setup.sandbox.run(&["open", "named", "--print"]);
    named.assert_ok();
    assert!(
        named
            .stdout()
            .starts_with(&format!("http://named.localhost:{}/", setup.port)),
        "{}",
        named.stdout()
    );
    let several = setup.sandbox.run(&["open", "--print"]);
    assert_ne!(several.code(), 0);
    assert!(
        several.stderr().contains("api, named, down"),
        "{}",
        several.stderr()
    );
}

#[test]
fn server_sent_events_stream_and_websockets_are_spliced() {
    let setup = setup("e2e-proxy-streams");
    let key = setup.key();
    let host = format!("127.0.0.1:{}", setup.port);
    let started = Instant::now();
    let mut sse = raw(
        setup.port,
        &format!(
            "GET /api/sse HTTP/1.1\r\nHost: {host}\r\nProxy-Authorization: Bearer {key}\r\n\r\n"
        ),
    );
    let mut seen = Vec::new();
    let head = read_until(&mut sse, &mut seen, "data: one");
    let first = started.elapsed();
    assert!(head.contains("text/event-stream"), "{head}");
    read_until(&mut sse, &mut seen, "data: two");
    // The first event came before the upstream paused: streamed, not buffered.
    assert!(
        first < Duration::from_millis(700),
        "first event after {first:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(800));

    let mut ws = raw(
        setup.port,
        &format!(
            "GET /api/ws HTTP/1.1\r\nHost: {host}\r\nProxy-Authorization: Bearer {key}\r\n\
             Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ),
    );
    let mut seen = Vec::new();
    let head = read_until(&mut ws, &mut seen, "\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    for text in ["hello", "again"] {
        ws.write_all(&ws_text_frame(text)).unwrap();
        read_until(&mut ws, &mut seen, &format!("echo: {text}"));
    }
}

#[test]
fn a_refused_token_is_refreshed_and_an_idempotent_request_retried_once() {
    let setup = setup("e2e-proxy-retry");
    let before = setup.token();
    let refreshes = setup.idp.refresh_calls();
    setup.upstream.post("/test/reject-next?n=1");
    let answer = setup.get("/api/echo", &[]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(setup.idp.refresh_calls(), refreshes + 1);
    let after = answer.json()["headers"]["authorization"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(
        after,
        format!("Bearer {before}"),
        "the retry used a refreshed token"
    );
    assert_eq!(setup.upstream.stats()["rejected"], 1);

    // A request with a body cannot be sent again: the 401 goes to the caller.
    setup.upstream.post("/test/reject-next?n=1");
    let answer = setup.get("/api/echo", &["-X", "POST", "-d", "x=1"]);
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(setup.idp.refresh_calls(), refreshes + 1);
}

#[test]
fn redirects_and_cookies_are_rewritten_and_failures_name_the_upstream() {
    let setup = setup("e2e-proxy-rewrite");
    let answer = setup.get("/api/redirect", &[]);
    assert_eq!(answer.status, 302);
    assert_eq!(
        answer.header("location"),
        [setup.url("/api/echo?from=redirect")]
    );
    assert_eq!(
        answer.header("set-cookie"),
        ["upstream_session=1; Path=/api/; HttpOnly"]
    );

    let answer = setup.get("/down/x", &[]);
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("route down"), "{}", answer.body);
    assert!(
        answer.body.to_lowercase().contains("refused"),
        "{}",
        answer.body
    );
    let answer = setup.get("/slow/slow?ms=3000", &[]);
    assert_eq!(answer.status, 504, "{}", answer.body);
    assert!(
        answer.body.contains("route slow") && answer.body.contains("within 1 s"),
        "{}",
        answer.body
    );
    assert_eq!(setup.get("/slow/slow?ms=10", &[]).status, 200);
    assert_eq!(setup.get("/nowhere", &[]).status, 404);
}

#[test]
fn https_upstreams_are_verified_and_a_route_can_trust_an_extra_ca() {
    let certs = tempfile::tempdir().unwrap();
    let profile = "e2e-proxy-tls";
    let setup = ProxySetup::start(
        profile,
        &[("UPSTREAM_TLS_DIR", certs.path().as_os_str())],
        |_, upstream| {
            let ca_file = upstream.ready["ca_file"].as_str().unwrap();
            let route = |name: &str, extra: &str| {
                format!(
                    "[[route]]\nname = \"{name}\"\npath = \"/{name}\"\nupstream = \"{}\"\n\
                     profile = \"{profile}\"\nidentity = \"bearer\"\n{extra}",
                    upstream.url
                )
            };
            route("trusted", &format!("ca_file = \"{ca_file}\"\n")) + &route("untrusted", "")
        },
    );
    let (port, key) = (setup.port, key_header(&setup.key()));
    let answer = curl(
        &format!("http://127.0.0.1:{port}/trusted/echo"),
        &["-H", &key],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.json()["headers"]["authorization"].is_string());
    // Without the extra CA the certificate is refused, and the 502 says so.
    let answer = curl(
        &format!("http://127.0.0.1:{port}/untrusted/echo"),
        &["-H", &key],
    );
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(answer.body.contains("route untrusted"), "{}", answer.body);
    assert!(
        answer.body.to_lowercase().contains("certificate"),
        "{}",
        answer.body
    );
}

#[test]
fn a_taken_port_leaves_the_agent_working_and_status_says_why() {
    let idp = Idp::start();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let profile = "e2e-proxy-taken";
    let sandbox = Sandbox::with_config(
        profile,
        &format!(
            "[profiles.{profile}]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n\
             [proxy]\nport = {port}\n\
             [[route]]\nname = \"api\"\npath = \"/api\"\nupstream = \"http://127.0.0.1:1\"\n\
             profile = \"{profile}\"\nidentity = \"bearer\"\n",
            idp.issuer
        ),
    );
    sandbox.login_browser();
    sandbox
        .run(&["token", profile, "--no-interactive"])
        .assert_ok();
    let status = sandbox.run(&["status"]);
    status.assert_ok();
    assert!(
        status.stdout().contains("proxy: NOT serving"),
        "{}",
        status.stdout()
    );
    assert!(status.stdout().contains("in use"), "{}", status.stdout());
    let json = sandbox.run(&["status", "--json"]).json();
    assert_eq!(json["proxy"]["serving"], false);
    let open = sandbox.run(&["open", "--print"]);
    assert_ne!(open.code(), 0);
    assert!(open.stderr().contains("not serving"), "{}", open.stderr());
    assert!(sandbox.agent_log().contains("proxy not serving"));
    drop(taken);
}

#[test]
fn the_audit_has_one_line_per_route_and_window_and_no_secret() {
    let setup = setup("e2e-proxy-audit");
    for _ in 0..20 {
        assert_eq!(setup.get("/api/echo", &[]).status, 200);
    }
    assert_eq!(curl(&setup.url("/api/echo"), &[]).status, 403);
    let token = setup.token();
    let key = setup.key();
    setup.sandbox.run(&["agent", "stop"]).assert_ok();
    // The agent writes the window's counts on its way out, before it removes its socket.
    let socket = setup.sandbox.runtime_dir().join("agent.sock");
    wait_until("the agent to stop", Duration::from_secs(10), || {
        !socket.exists()
    });
    let audit = std::fs::read_to_string(setup.sandbox.data_dir().join("audit.jsonl")).unwrap();
    assert!(!audit.contains(&token) && !audit.contains(&key));
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|line: &serde_json::Value| line["event"] == "proxy")
        .collect();
    let api: Vec<_> = lines.iter().filter(|line| line["route"] == "api").collect();
    assert_eq!(api.len(), 1, "{lines:?}");
    assert_eq!(api[0]["consumer"], "proxy");
    assert_eq!(api[0]["requests"], 20);
    assert_eq!(api[0]["status"]["2xx"], 20);
    let refused: Vec<_> = lines.iter().filter(|line| line["route"] == "*").collect();
    assert_eq!(refused[0]["refused"], 1, "{lines:?}");
}
