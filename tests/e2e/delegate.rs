//! Delegations: scoped, expiring, revocable keys for scripts and AI agents on this machine,
//! checked by the real proxy of the real agent in front of the test upstream, which counts
//! every request that reaches it. A request outside a delegation's routes, methods or paths
//! gets a 403 whose JSON names what was missing, and never reaches the upstream.

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use support::proxy::{Answer, ProxySetup, curl, key_header};
use support::{Run, wait_until};

/// A signed-in sandbox whose proxy routes `api` and `other` to the counting upstream.
pub(crate) fn setup(profile: &str) -> ProxySetup {
    ProxySetup::start(profile, &[], |_, upstream| {
        let url = &upstream.url;
        format!(
            "[[route]]\nname = \"api\"\npath = \"/api\"\nupstream = \"{url}\"\nprofile = \"{profile}\"\nidentity = \"bearer\"\n\
             [[route]]\nname = \"other\"\npath = \"/other\"\nupstream = \"{url}\"\nprofile = \"{profile}\"\nidentity = \"bearer\"\n"
        )
    })
}

impl ProxySetup {
    /// `delegate create NAME ARGS --json`: the key and the record.
    pub(crate) fn delegate(&self, name: &str, args: &[&str]) -> (String, serde_json::Value) {
        let mut all = vec!["delegate", "create", name];
        all.extend_from_slice(args);
        all.push("--json");
        let run = self.sandbox.run(&all);
        run.assert_ok();
        let created = run.json();
        (created["key"].as_str().unwrap().to_string(), created)
    }

    /// A request through the proxy with `key` as the proxy key.
    pub(crate) fn call(&self, key: &str, method: &str, path: &str) -> Answer {
        curl(
            &format!("http://127.0.0.1:{}{path}", self.port),
            &["--path-as-is", "-X", method, "-H", &key_header(key)],
        )
    }

    /// Every request the upstream received, as "METHOD /path".
    pub(crate) fn reached(&self) -> Vec<String> {
        self.upstream.stats()["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|line| line.as_str().unwrap().to_string())
            .collect()
    }

    pub(crate) fn audit_of(&self, name: &str) -> Vec<serde_json::Value> {
        let run = self.sandbox.run(&["audit", "--delegation", name, "--json"]);
        run.assert_ok();
        run.stdout()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// A 403 of the scope check: JSON, naming what was missing.
pub(crate) fn assert_outside(answer: &Answer, missing: &str) -> serde_json::Value {
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert_eq!(answer.header("content-type"), ["application/json"]);
    assert_eq!(answer.header("x-content-type-options"), ["nosniff"]);
    let body = answer.json();
    assert_eq!(body["error"], "outside_delegation_scope", "{body}");
    assert_eq!(body["missing"], missing, "{body}");
    body
}

#[test]
fn a_delegation_reaches_only_its_routes_methods_and_paths_until_revoked() {
    let setup = setup(&support::unique_profile("delegate"));
    let (key, created) = setup.delegate(
        "reader",
        &[
            "--routes",
            "api",
            "--read-only",
            "--paths",
            "/echo",
            "--ttl",
            "1h",
        ],
    );
    assert_eq!(key.len(), 43, "32 random bytes, base64url");
    assert_ne!(key, setup.key(), "not the proxy key");
    assert_eq!(created["kind"], "delegate");
    assert_eq!(created["routes"], serde_json::json!(["api"]));
    assert_eq!(
        created["methods"],
        serde_json::json!(["GET", "HEAD", "OPTIONS"])
    );
    assert_eq!(created["paths"], serde_json::json!(["/echo"]));
    // A second one, about to expire.
    let (brief, _) = setup.delegate("brief", &["--routes", "api", "--ttl", "2s"]);

    let listed = setup.sandbox.run(&["delegate", "list", "--json"]);
    listed.assert_ok();
    let names: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|delegation| delegation["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["reader", "brief"]);
    assert!(!listed.stdout().contains(&key), "never a key in a list");
    // Not a remote key.
    let remote = setup.sandbox.run(&["remote", "list", "--json"]);
    assert_eq!(remote.json(), serde_json::json!([]));

    // In scope: through, as the developer.
    let ok = setup.call(&key, "GET", "/api/echo");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        ok.json()["headers"]["authorization"],
        format!("Bearer {}", setup.token())
    );
    assert_eq!(setup.call(&key, "GET", "/api/echo/deeper").status, 404);
    let before = setup.reached();
    assert_eq!(before, ["GET /echo", "GET /echo/deeper"]);

    // A write with a read-only key.
    let body = assert_outside(&setup.call(&key, "POST", "/api/echo"), "method");
    assert_eq!(body["method"], "POST");
    assert_eq!(body["delegation"], "reader");
    assert_eq!(
        body["allowed"],
        serde_json::json!(["GET", "HEAD", "OPTIONS"])
    );
    // A method nobody named, echoed escaped.
    let body = assert_outside(&setup.call(&key, "BREW", "/api/echo"), "method");
    assert_eq!(body["method"], "BREW");
    // Outside the path prefixes, also by dot segments and encoded ones.
    for path in [
        "/api/admin",
        "/api/echoes",
        "/api/echo/../admin",
        "/api/echo/%2e%2e/admin",
        "/api/echo%2f..%2fadmin",
    ] {
        let body = assert_outside(&setup.call(&key, "GET", path), "path");
        assert_eq!(body["allowed"], serde_json::json!(["/echo"]), "{path}");
    }
    // Another route.
    let body = assert_outside(&setup.call(&key, "GET", "/other/echo"), "route");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not scoped to route `other`"),
        "{body}"
    );
    assert_eq!(
        setup.reached(),
        before,
        "no refused request reached the upstream"
    );

    // No raw token for a delegation: proxy access only.
    let token = curl(
        &format!("http://127.0.0.1:{}/.stagepass/v1/token", setup.port),
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-H",
            &format!("Authorization: Bearer {key}"),
            "-d",
            "{}",
        ],
    );
    assert_eq!(token.status, 403, "{}", token.body);
    assert!(token.body.contains("proxy access only"), "{}", token.body);

    // Expired: refused.
    std::thread::sleep(Duration::from_millis(2100));
    let expired = setup.call(&brief, "GET", "/api/echo");
    assert_eq!(expired.status, 403, "{}", expired.body);
    assert!(expired.body.contains("expired"), "{}", expired.body);

    // Revoked: refused at once, and gone from the list.
    setup
        .sandbox
        .run(&["delegate", "revoke", "reader"])
        .assert_ok()
        .assert_stdout_contains("revoked delegation `reader`");
    let revoked = setup.call(&key, "GET", "/api/echo");
    assert_eq!(revoked.status, 403, "{}", revoked.body);
    assert!(revoked.body.contains("revoked"), "{}", revoked.body);
    setup
        .sandbox
        .run(&["delegate", "revoke", "reader"])
        .assert_code(2)
        .assert_stderr_contains("no delegation `reader`");
    assert_eq!(setup.reached(), before);

    // The audit: what the delegation did, by its name, never its key.
    let lines = setup.audit_of("reader");
    let requests: Vec<(String, String, String, u64)> = lines
        .iter()
        .filter(|line| line["event"] == "proxy_request")
        .map(|line| {
            (
                line["method"].as_str().unwrap().to_string(),
                line["path"].as_str().unwrap().to_string(),
                line["missing"].as_str().unwrap_or("").to_string(),
                line["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let has = |method: &str, path: &str, missing: &str, status: u64| {
        requests.contains(&(method.into(), path.into(), missing.into(), status))
    };
    assert!(has("GET", "/echo", "", 200), "{requests:?}");
    assert!(has("POST", "/echo", "method", 403), "{requests:?}");
    assert!(has("GET", "/admin", "path", 403), "{requests:?}");
    assert!(has("GET", "/echo", "route", 403), "{requests:?}");
    assert!(
        lines.iter().any(|line| line["event"] == "token"
            && line["outcome"]
                .as_str()
                .unwrap_or_default()
                .contains("proxy access only")),
        "the refused raw token is audited"
    );
    assert!(lines.iter().all(|line| line["delegation"] == "reader"));
    assert!(lines.iter().any(|line| line["event"] == "delegate_create"));
    assert!(lines.iter().any(|line| line["event"] == "delegate_revoke"));
    let audit = std::fs::read_to_string(setup.sandbox.data_dir().join("audit.jsonl")).unwrap();
    assert!(!audit.contains(&key) && !audit.contains(&brief));
    let human = setup.sandbox.run(&["audit", "--delegation", "reader"]);
    human
        .assert_ok()
        .assert_stdout_contains("[reader] GET api /echo -> 200");
}

#[test]
fn a_scope_is_parsed_at_creation() {
    let setup = setup(&support::unique_profile("delegate-parse"));
    let refused = |args: &[&str], says: &str| {
        let mut all = vec!["delegate", "create", "bad"];
        all.extend_from_slice(args);
        setup
            .sandbox
            .run(&all)
            .assert_code(2)
            .assert_stderr_contains(says);
    };
    refused(&["--routes", "nope"], "no route `nope`");
    refused(&["--ttl", "1h"], "name the routes");
    refused(
        &["--routes", "api", "--methods", "TRACE"],
        "method `TRACE` is not one of",
    );
    refused(
        &["--routes", "api", "--paths", "/a/../b"],
        "no `.`/`..` segments",
    );
    refused(
        &["--routes", "api", "--paths", "other:/x/"],
        "outside --routes",
    );
    refused(&["--routes", "api", "--ttl", "8d"], "7 days");
    setup
        .sandbox
        .run(&["delegate", "create", "bad name", "--routes", "api"])
        .assert_code(2)
        .assert_stderr_contains("letters, digits");
    let listed = setup.sandbox.run(&["delegate", "list", "--json"]);
    assert_eq!(listed.json(), serde_json::json!([]));
}

/// The child of `exec --agent`: writes its pid, waits for `go` (30 s at most, so a failed
/// test leaves nothing behind), calls the proxy with what its environment holds (GET, then
/// POST), asks the agent's socket for the developer's token with `$SP token`, and exits 7.
const CHILD: &str = r#"echo $$ > pid
i=0
while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
printf 'Proxy-Authorization: Bearer %s\n' "$STAGEPASS_PROXY_KEY" > header
curl -s -o /dev/null -w '%{http_code}' -H @header "$STAGEPASS_PROXY/echo" > get
curl -s -o /dev/null -w '%{http_code}' -X POST -H @header "$STAGEPASS_PROXY/echo" > post
"$SP" token --no-interactive > token 2> token-error
echo $? > token-code
exit 7"#;

#[test]
fn exec_agent_gives_the_child_a_scoped_key_not_a_token_and_revokes_it_on_exit() {
    let setup = setup(&support::unique_profile("delegate-exec"));
    let token = setup.token();
    let refresh = setup.sandbox.stored_refresh_token();
    let proxy_key = setup.key();
    let dir = tempfile::tempdir().unwrap();
    let mut exec = setup.sandbox.command(&[
        "exec",
        "--agent",
        "claude",
        "--read-only",
        "--routes",
        "api",
        "--ttl",
        "10m",
        "--",
        "sh",
        "-c",
        CHILD,
    ]);
    // As if run inside another `stagepass exec`: the developer's token and the proxy key
    // are in the environment it inherits.
    exec.current_dir(dir.path())
        .env("STAGEPASS_TOKEN", &token)
        .env("STAGEPASS_PROXY_KEY", &proxy_key)
        .env("SP", env!("CARGO_BIN_EXE_stagepass"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut running = exec.spawn().unwrap();
    let pid_file = dir.path().join("pid");
    wait_until("the child's pid", Duration::from_secs(20), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|pid| pid.ends_with('\n'))
    });
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ).into_owned();
    let cmdline = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
        .into_owned();
    for (what, secret) in [
        ("access token", &token),
        ("refresh token", &refresh),
        ("proxy key", &proxy_key),
    ] {
        assert!(
            !environ.contains(secret.as_str()),
            "the child's environment holds the {what}"
        );
        assert!(
            !cmdline.contains(secret.as_str()),
            "the child's argv holds the {what}"
        );
    }
    let vars: Vec<(&str, &str)> = environ
        .split('\0')
        .filter_map(|pair| pair.split_once('='))
        .collect();
    let var = |name: &str| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| *value)
    };
    assert_eq!(var("STAGEPASS_TOKEN"), None);
    assert_eq!(var("STAGEPASS_DELEGATION"), Some("claude"));
    assert_eq!(
        var("STAGEPASS_PROXY"),
        Some(format!("http://127.0.0.1:{}/api", setup.port).as_str())
    );
    let key = var("STAGEPASS_PROXY_KEY").unwrap().to_string();
    assert_eq!(key.len(), 43);
    assert!(!cmdline.contains(&key), "the key is in no argv");
    let listed = setup.sandbox.run(&["delegate", "list", "--json"]);
    assert_eq!(listed.json()[0]["kind"], "exec");

    std::fs::write(dir.path().join("go"), "").unwrap();
    let status = running.wait().unwrap();
    assert_eq!(status.code(), Some(7), "the child's exit code is exec's");
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("get"), "200");
    assert_eq!(read("post"), "403");
    // The agent's socket serves the child nothing: it runs under the delegation.
    assert_eq!(read("token-code"), "11\n", "{}", read("token-error"));
    assert!(!read("token").contains(&token));
    assert!(
        read("token-error").contains("runs under `stagepass exec --agent claude`"),
        "{}",
        read("token-error")
    );
    assert_eq!(setup.reached(), ["GET /echo"]);

    // Gone once exec returned.
    let after = setup.call(&key, "GET", "/api/echo");
    assert_eq!(after.status, 403, "{}", after.body);
    assert!(after.body.contains("revoked"), "{}", after.body);
    let listed = setup.sandbox.run(&["delegate", "list", "--json"]);
    assert_eq!(listed.json(), serde_json::json!([]));
    let lines = setup.audit_of("claude");
    assert!(lines.iter().any(|line| line["event"] == "proxy_request"
        && line["method"] == "GET"
        && line["status"] == 200));
    assert!(
        lines
            .iter()
            .any(|line| line["event"] == "proxy_request" && line["missing"] == "method")
    );
    assert!(lines.iter().any(|line| line["event"] == "delegate_revoke"));
}

#[test]
fn an_exec_delegation_dies_with_a_killed_cli() {
    let setup = setup(&support::unique_profile("delegate-kill"));
    let dir = tempfile::tempdir().unwrap();
    let mut exec = setup.sandbox.command(&[
        "exec",
        "--agent",
        "doomed",
        "--routes",
        "api",
        "--",
        "sh",
        "-c",
        "echo $$ > pid; printf '%s' \"$STAGEPASS_PROXY_KEY\" > key; exec sleep 30",
    ]);
    // No pipe of the test harness held by a child that outlives a failed test.
    exec.current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut running = exec.spawn().unwrap();
    let key_file = dir.path().join("key");
    wait_until("the child's key", Duration::from_secs(20), || {
        std::fs::read_to_string(&key_file).is_ok_and(|key| key.len() == 43)
    });
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(setup.call(&key, "GET", "/api/echo").status, 200);
    // SIGKILL: no chance to revoke; the agent sees its connection close.
    running.kill().unwrap();
    running.wait().unwrap();
    wait_until("the key refused", Duration::from_secs(10), || {
        setup.call(&key, "GET", "/api/echo").status == 403
    });
    let listed: Run = setup.sandbox.run(&["delegate", "list", "--json"]);
    assert_eq!(listed.json(), serde_json::json!([]));
    // The orphaned child (now `sleep`): its parent is gone, end it by its pid.
    let pid = std::fs::read_to_string(dir.path().join("pid")).unwrap();
    let _ = std::process::Command::new("kill").arg(pid.trim()).status();
}
