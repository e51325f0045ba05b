//! The local proxy in front of a real Backstage backend (tests/backstage), called by curl and
//! by a real headless Chromium (Debian `chromium`, flags of DESIGN §6).

use crate::support;

use std::path::Path;
use std::process::Command;

use support::backstage::Backstage;
use support::proxy::{ProxySetup, curl, free_port, key_header};
use support::{Sandbox, TestServer};

/// A sandbox signed in to Backstage as alice, proxying route `backstage` (path /backstage).
/// Each test's sandbox has its own profile, so its keychain entry is its own.
fn setup(backstage: &Backstage, port: u16) -> Sandbox {
    let profile = support::unique_profile("e2e-proxy-bs");
    let mut sandbox = backstage.sandbox(&profile, "alice");
    sandbox.write_config(&format!(
        "[profiles.{profile}]\nkind = \"backstage\"\nurl = \"{url}\"\n\
         [proxy]\nport = {port}\n\
         [[route]]\nname = \"backstage\"\npath = \"/backstage\"\nupstream = \"{url}\"\n\
         profile = \"{profile}\"\nidentity = \"backstage\"\n",
        url = backstage.url
    ));
    sandbox.set_env("STAGEPASS_TEST_USER", "alice");
    sandbox.login_browser();
    sandbox
}

fn key(sandbox: &Sandbox) -> String {
    std::fs::read_to_string(sandbox.runtime_dir().join("proxy.key"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn backstage_through_the_proxy_is_the_signed_in_user_whatever_the_caller_claims() {
    let backstage = Backstage::start(None);
    let port = free_port();
    let sandbox = setup(&backstage, port);
    let base = format!("http://127.0.0.1:{port}/backstage");
    let key = key_header(&key(&sandbox));

    let answer = curl(&format!("{base}/api/catalog/entities"), &["-H", &key]);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("service-a"), "{}", answer.body);
    // The principal Backstage saw: alice, even when the caller claims to be bob.
    let spoofed = [
        "-H",
        key.as_str(),
        "-H",
        "X-Forwarded-Email: bob@example.com",
        "-H",
        "X-Forwarded-User: bob",
        "-H",
        "Authorization: Bearer forged",
    ];
    let answer = curl(&format!("{base}/api/auth/v1/userinfo"), &spoofed);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["claims"]["sub"], "user:default/alice");

    // Backstage's oauth2Proxy provider believes X-Forwarded-User from anyone who reaches it:
    // directly, bob's header makes a bob token; through the proxy the header never arrives.
    let forged = "X-Forwarded-User: bob";
    let (status, body) = backstage.curl(&[
        "-H",
        forged,
        &format!("{}/api/auth/oauth2Proxy/refresh", backstage.url),
    ]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("user:default/bob"), "{body}");
    let answer = curl(
        &format!("{base}/api/auth/oauth2Proxy/refresh"),
        &["-H", &key, "-H", forged],
    );
    assert_ne!(answer.status, 200, "{}", answer.body);
    assert!(!answer.body.contains("user:default/bob"), "{}", answer.body);

    // Without the key or a session: refused before Backstage sees anything.
    let answer = curl(&format!("{base}/api/catalog/entities"), &[]);
    assert_eq!(answer.status, 403, "{}", answer.body);
    // Directly, the catalog wants a token: the proxy's 200 came from the token it added.
    let (direct, _) = backstage.curl(&[&format!("{}/api/catalog/entities", backstage.url)]);
    assert_eq!(direct, 401);
}

/// Headless Chromium with a fresh profile; `extra` flags, then the URL. Prints the DOM.
fn chromium(profile_dir: &Path, extra: &[&str], url: &str) -> String {
    let output = Command::new("chromium")
        // Off the test's session bus: it would start desktop portals that only print noise.
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile_dir.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium is installed (scripts/setup)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn chromium_gets_in_through_the_launch_url_and_other_origins_get_nothing() {
    let backstage = Backstage::start(None);
    let port = free_port();
    let sandbox = setup(&backstage, port);
    let launch = |path: &str| {
        let run = sandbox.run(&["open", "backstage", "--print", "--path", path]);
        run.assert_ok();
        run.stdout().trim().to_string()
    };

    // The launch URL sets the cookie and lands on the route, as alice.
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("user");
    let dom = chromium(&profile, &[], &launch("/api/auth/v1/userinfo"));
    assert!(dom.contains("user:default/alice"), "{dom}");
    // The browser keeps the session: a later visit of the route needs no launch URL.
    let catalog = format!("http://127.0.0.1:{port}/backstage/api/catalog/entities");
    let dom = chromium(&profile, &[], &catalog);
    assert!(dom.contains("service-a"), "{dom}");
    // A fresh browser without it is refused.
    let dom = chromium(&dir.path().join("fresh"), &[], &catalog);
    assert!(dom.contains("no credentials"), "{dom}");

    // A page of another local origin, in the browser that holds the session, fetches the
    // proxy with credentials: no data, and the proxy refused it (not only the browser).
    let other = TestServer::start("upstream-server.mjs", &[]);
    let page = format!("{}/page?target={}", other.url, encode(&catalog));
    let dom = chromium(&profile, &[], &page);
    assert!(dom.contains("BLOCKED"), "{dom}");
    assert!(!dom.contains("service-a"), "{dom}");
    assert!(
        sandbox
            .agent_log()
            .contains("requests from another origin are refused"),
        "the proxy refused it, not only the browser's CORS check"
    );

    // DNS rebinding: a name that resolves to 127.0.0.1 is still not an allowed Host.
    let rules = "--host-resolver-rules=MAP evil.example 127.0.0.1";
    let dom = chromium(
        &dir.path().join("d"),
        &[rules],
        &format!("http://evil.example:{port}/backstage/api/catalog/entities"),
    );
    assert!(dom.contains("unknown Host"), "{dom}");
    assert!(!dom.contains("service-a"), "{dom}");
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn chromium_opens_a_websocket_through_the_proxy() {
    let setup = ProxySetup::start("e2e-proxy-ws", &[], |_, upstream| {
        format!(
            "[[route]]\nname = \"api\"\npath = \"/api\"\nupstream = \"{}\"\n\
             profile = \"e2e-proxy-ws\"\nidentity = \"bearer\"\n",
            upstream.url
        )
    });
    let run = setup
        .sandbox
        .run(&["open", "api", "--print", "--path", "/ws-page"]);
    run.assert_ok();
    let dir = tempfile::tempdir().unwrap();
    let dom = chromium(&dir.path().join("user"), &[], run.stdout().trim());
    assert!(dom.contains("WS echo: ping"), "{dom}");
}
