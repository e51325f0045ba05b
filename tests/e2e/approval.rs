//! Approval on the desktop: a delegation made with `--ask` does not refuse a request outside
//! its scope at once; the request waits for the developer's answer (`delegate approve|deny`
//! from another process, or a desktop notification's action) and is refused on deny, on
//! timeout, when its delegation is revoked, or at once when too many already wait. A refused
//! request never reaches the upstream (the test upstream lists every request it received).

use crate::delegate::{assert_outside, setup};
use crate::support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::proxy::{Answer, ProxySetup};
use support::{Sandbox, wait_until};

/// A request through the proxy on a thread of its own: it may wait for an answer.
fn call_later(setup: &ProxySetup, key: &str, method: &str, path: &str) -> JoinHandle<Answer> {
    let (port, key, method, path) = (
        setup.port,
        key.to_string(),
        method.to_string(),
        path.to_string(),
    );
    std::thread::spawn(move || {
        support::proxy::curl(
            &format!("http://127.0.0.1:{port}{path}"),
            &["-X", &method, "-H", &support::proxy::key_header(&key)],
        )
    })
}

/// An `--ask` delegation, read-only on route `api`, waiting `timeout`: its key and record.
fn asking(setup: &ProxySetup, name: &str, timeout: &str) -> (String, serde_json::Value) {
    setup.delegate(
        name,
        &[
            "--routes",
            "api",
            "--read-only",
            "--ask",
            "--ask-timeout",
            timeout,
        ],
    )
}

/// The id of the one request that waits, once it does.
fn the_waiting_id(sandbox: &Sandbox) -> String {
    wait_pending(sandbox, 1)[0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn pending(sandbox: &Sandbox) -> Vec<serde_json::Value> {
    let run = sandbox.run(&["delegate", "pending", "--json"]);
    run.assert_ok();
    run.json().as_array().unwrap().clone()
}

/// Waits until `count` requests wait; their ids.
fn wait_pending(sandbox: &Sandbox, count: usize) -> Vec<serde_json::Value> {
    wait_until(
        &format!("{count} waiting requests"),
        Duration::from_secs(15),
        || pending(sandbox).len() == count,
    );
    pending(sandbox)
}

/// A 403 of an asking delegation: the scope check's JSON, saying how the asking ended.
fn assert_refused(answer: &Answer, approval: &str) -> serde_json::Value {
    let body = assert_outside(answer, "method");
    assert_eq!(body["approval"], approval, "{body}");
    body
}

fn decisions(setup: &ProxySetup, name: &str) -> Vec<(String, String)> {
    setup
        .audit_of(name)
        .iter()
        .filter(|line| line["event"] == "approval")
        .map(|line| {
            (
                line["decision"].as_str().unwrap().to_string(),
                line["answered_by"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_request_outside_the_scope_waits_and_is_allowed_denied_or_timed_out() {
    let setup = setup(&support::unique_profile("approval"));
    let (key, created) = asking(&setup, "asker", "2s");
    assert_eq!(created["ask_timeout_secs"], 2);
    setup
        .sandbox
        .run(&["delegate", "list"])
        .assert_ok()
        .assert_stdout_contains("wait 2 s for your answer");
    // In scope: through at once, no question.
    assert_eq!(setup.call(&key, "GET", "/api/echo").status, 200);
    assert!(pending(&setup.sandbox).is_empty());

    // Timed out: nobody answers, 403 after the ask timeout, upstream untouched.
    let started = Instant::now();
    let timed_out = setup.call(&key, "POST", "/api/echo");
    assert!(started.elapsed() >= Duration::from_millis(1900));
    let body = assert_refused(&timed_out, "timed_out");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("nobody answered in time"),
        "{body}"
    );
    assert_eq!(setup.reached(), ["GET /echo"]);
    assert!(pending(&setup.sandbox).is_empty(), "forgotten on timeout");

    // A longer wait for the rest: made again with 30 s.
    setup
        .sandbox
        .run(&["delegate", "revoke", "asker"])
        .assert_ok();
    let (key, _) = asking(&setup, "asker", "30");

    // Allowed once, from another process.
    let waiting = call_later(&setup, &key, "POST", "/api/echo");
    let listed = wait_pending(&setup.sandbox, 1);
    let request = &listed[0];
    assert_eq!(request["delegation"], "asker");
    assert_eq!(request["route"], "api");
    assert_eq!(request["method"], "POST");
    assert_eq!(request["path"], "/echo");
    assert_eq!(request["missing"], "method");
    let id = request["id"].as_str().unwrap().to_string();
    setup
        .sandbox
        .run(&["delegate", "pending"])
        .assert_ok()
        .assert_stdout_contains(&format!("{id}  asker: POST /echo on route api"));
    assert_eq!(
        setup.reached(),
        ["GET /echo"],
        "nothing reaches it while it waits"
    );
    setup
        .sandbox
        .run(&["delegate", "approve", &id])
        .assert_ok()
        .assert_stdout_contains("allowed once: POST /echo on route api for `asker`");
    let allowed = waiting.join().unwrap();
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_eq!(allowed.json()["method"], "POST");
    assert_eq!(setup.reached(), ["GET /echo", "POST /echo"]);
    // Once: the next one asks again, and this time is denied.
    let waiting = call_later(&setup, &key, "POST", "/api/echo");
    let id = the_waiting_id(&setup.sandbox);
    setup
        .sandbox
        .run(&["delegate", "deny", &id])
        .assert_ok()
        .assert_stdout_contains("denied: POST /echo");
    let body = assert_refused(&waiting.join().unwrap(), "denied");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("denied it (cli)"),
        "{body}"
    );
    assert_eq!(
        setup.reached(),
        ["GET /echo", "POST /echo"],
        "a denied request never reaches the upstream"
    );
    // An answer to nothing.
    setup
        .sandbox
        .run(&["delegate", "approve", &id])
        .assert_code(2)
        .assert_stderr_contains(&format!("no request `{id}` waits"));

    // The audit: each decision with the delegation and who answered; never the key.
    assert_eq!(
        decisions(&setup, "asker"),
        [
            ("timed_out".to_string(), "timeout".to_string()),
            ("allow_once".into(), "cli".into()),
            ("deny".into(), "cli".into()),
        ]
    );
    let audit = std::fs::read_to_string(setup.sandbox.data_dir().join("audit.jsonl")).unwrap();
    assert!(!audit.contains(&key));
    setup
        .sandbox
        .run(&["audit", "--delegation", "asker"])
        .assert_ok()
        .assert_stdout_contains("[asker] POST api /echo -> -: allowed once (answered by cli)");
}

#[test]
fn always_widens_the_scope_by_that_request_only_and_revocation_refuses_what_waits() {
    let setup = setup(&support::unique_profile("approval-always"));
    let (key, _) = asking(&setup, "widening", "30s");
    let waiting = call_later(&setup, &key, "POST", "/api/echo/a");
    let id = the_waiting_id(&setup.sandbox);
    setup
        .sandbox
        .run(&["delegate", "approve", &id, "--always"])
        .assert_ok();
    assert_eq!(waiting.join().unwrap().status, 404, "reached the upstream");
    let listed = setup.sandbox.run(&["delegate", "list", "--json"]);
    assert_eq!(
        listed.json()[0]["approved"],
        serde_json::json!(["POST api:/echo/a"])
    );
    // The next such request (and one under that path) goes through without asking.
    assert_eq!(setup.call(&key, "POST", "/api/echo/a").status, 404);
    assert_eq!(setup.call(&key, "POST", "/api/echo/a/b").status, 404);
    assert!(pending(&setup.sandbox).is_empty());
    assert_eq!(
        setup.reached(),
        ["POST /echo/a", "POST /echo/a", "POST /echo/a/b"]
    );

    // Nothing else was widened: another path, or another method on it, asks again. Four
    // may wait at once; a fifth is refused without asking.
    let waiting: Vec<JoinHandle<Answer>> = [
        ("POST", "/api/echo/b"),
        ("DELETE", "/api/echo/a"),
        ("POST", "/api/echo/ab"),
        ("PUT", "/api/echo/a"),
    ]
    .iter()
    .map(|(method, path)| call_later(&setup, &key, method, path))
    .collect();
    wait_pending(&setup.sandbox, 4);
    let started = Instant::now();
    let flood = setup.call(&key, "POST", "/api/echo/c");
    assert!(started.elapsed() < Duration::from_secs(5));
    let body = assert_refused(&flood, "too_many_pending");
    assert!(
        body["message"].as_str().unwrap().contains("already wait"),
        "{body}"
    );

    // Revoked while they wait: all refused now, not at the timeout.
    let started = Instant::now();
    setup
        .sandbox
        .run(&["delegate", "revoke", "widening"])
        .assert_ok();
    for waited in waiting {
        assert_refused(&waited.join().unwrap(), "revoked");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(pending(&setup.sandbox).is_empty());
    assert_eq!(
        setup.reached(),
        ["POST /echo/a", "POST /echo/a", "POST /echo/a/b"],
        "no refused request reached the upstream"
    );
    let decided = decisions(&setup, "widening");
    assert_eq!(decided[0], ("allow_always".into(), "cli".into()));
    assert_eq!(
        decided[1..],
        vec![("revoked".to_string(), "revoked".to_string()); 4]
    );
}

/// The child of `exec --agent --ask`: its POST waits; it tries to approve it itself through
/// the agent's socket (refused: it runs under the delegation), then waits for its answer.
const CHILD: &str = r#"printf 'Proxy-Authorization: Bearer %s\n' "$STAGEPASS_PROXY_KEY" > header
curl -s -o /dev/null -w '%{http_code}' -X POST -H @header "$STAGEPASS_PROXY/echo" > post &
i=0
while [ $i -lt 300 ]; do
  id=$("$SP" delegate pending --json 2> pending-error | sed -n 's/.*"id": *"\([0-9a-f]*\)".*/\1/p')
  [ -s pending-error ] && break
  sleep 0.05; i=$((i+1))
done
"$SP" delegate approve "${id:-x}" > self-approve 2>&1
echo $? > self-approve-code
wait
exit 0"#;

#[test]
fn exec_agent_asks_and_its_child_cannot_answer_for_itself() {
    let setup = setup(&support::unique_profile("approval-exec"));
    let dir = tempfile::tempdir().unwrap();
    let mut exec = setup.sandbox.command(&[
        "exec",
        "--agent",
        "asking-agent",
        "--read-only",
        "--routes",
        "api",
        "--ask",
        "--",
        "sh",
        "-c",
        CHILD,
    ]);
    exec.current_dir(dir.path())
        .env("SP", env!("CARGO_BIN_EXE_stagepass"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut running = exec.spawn().unwrap();
    let listed = wait_pending(&setup.sandbox, 1);
    assert_eq!(listed[0]["delegation"], "asking-agent");
    let code = dir.path().join("self-approve-code");
    wait_until("the child's own approve", Duration::from_secs(20), || {
        code.exists()
    });
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(
        read("self-approve-code"),
        "11\n",
        "{}",
        read("self-approve")
    );
    assert!(
        read("self-approve").contains("runs under `stagepass exec --agent asking-agent`"),
        "{}",
        read("self-approve")
    );
    assert_eq!(pending(&setup.sandbox).len(), 1, "still waiting");
    assert_eq!(setup.reached(), Vec::<String>::new());
    let id = listed[0]["id"].as_str().unwrap().to_string();
    setup.sandbox.run(&["delegate", "approve", &id]).assert_ok();
    assert!(running.wait().unwrap().success());
    assert_eq!(read("post"), "200");
    assert_eq!(setup.reached(), ["POST /echo"]);
}

/// The notification daemon of tests/e2e/desktop on the test session's bus.
struct Daemon {
    child: std::process::Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Clicks `action` on each notification whose body holds `marker`; `None` when no
    /// python3 with GObject introspection (python3-gi, scripts/setup) is installed.
    fn start(marker: &str, action: &str) -> Option<Daemon> {
        let python = ["python3", "/usr/bin/python3"].into_iter().find(|python| {
            Command::new(python)
                .args(["-c", "from gi.repository import Gio"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        })?;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("notifications.jsonl");
        let mut child = Command::new(python)
            .arg(support::repo_root().join("tests/e2e/desktop/notification-daemon.py"))
            .arg(&log)
            .args([marker, action])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(
            ready.trim(),
            "ready",
            "the daemon owns the notification name"
        );
        Some(Daemon {
            child,
            log,
            _dir: dir,
        })
    }

    fn lines(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_notifications_allow_action_lets_the_request_through() {
    let Some(daemon) = Daemon::start("notified-agent", "allow") else {
        support::missing_part(
            "python3 with GObject introspection (python3-gi)",
            "scripts/setup installs it",
        );
        return;
    };
    let setup = setup(&support::unique_profile("approval-notify"));
    let (key, _) = asking(&setup, "notified-agent", "30s");
    // `&` in the path: the body is freedesktop markup, so it arrives as an entity.
    let started = Instant::now();
    let answer = setup.call(&key, "POST", "/api/echo&x");
    assert_eq!(answer.status, 404, "{} {:?}", answer.body, daemon.lines());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "answered by the click"
    );
    assert_eq!(setup.reached(), ["POST /echo&x"]);
    let lines = daemon.lines();
    let shown = lines
        .iter()
        .find(|line| {
            line["summary"]
                .as_str()
                .is_some_and(|summary| summary.contains("notified-agent"))
        })
        .unwrap_or_else(|| panic!("no notification: {lines:?}"));
    assert_eq!(shown["summary"], "stagepass: allow `notified-agent`?");
    let body = shown["body"].as_str().unwrap();
    assert!(body.contains("POST /echo&amp;x on route api"), "{body}");
    assert!(!body.contains("&x"), "{body}");
    assert_eq!(
        shown["actions"],
        serde_json::json!([
            "allow",
            "Allow once",
            "always",
            "Allow for this delegation",
            "deny",
            "Deny"
        ])
    );
    assert_eq!(
        decisions(&setup, "notified-agent"),
        [("allow_once".to_string(), "notification".to_string())]
    );

    // Answered in a terminal instead: the notification nobody clicked is closed.
    let (quiet, _) = asking(&setup, "quiet-agent", "30s");
    let waiting = call_later(&setup, &quiet, "POST", "/api/echo");
    let id = the_waiting_id(&setup.sandbox);
    let shown_id = || {
        daemon.lines().iter().find_map(|line| {
            (line["summary"] == "stagepass: allow `quiet-agent`?").then(|| line["id"].clone())
        })
    };
    wait_until("the notification", Duration::from_secs(10), || {
        shown_id().is_some()
    });
    setup.sandbox.run(&["delegate", "deny", &id]).assert_ok();
    assert_refused(&waiting.join().unwrap(), "denied");
    let notification = shown_id().unwrap();
    wait_until("the notification closed", Duration::from_secs(10), || {
        daemon
            .lines()
            .iter()
            .any(|line| line["closed"] == notification)
    });
}
