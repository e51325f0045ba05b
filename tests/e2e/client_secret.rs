//! Confidential clients: `stagepass config set-secret` keeps the client secret in the real
//! keychain, and every exchange, refresh and revocation against the real test IdP carries it.
//! The IdP's client `stagepass-confidential` accepts only `client_secret_basic`.

use crate::support;

use std::process::Command;

use support::doctor::{CHECKS_FAILED, doctor};
use support::{Idp, Run, Sandbox, run_with_input};

const CLIENT: &str = "stagepass-confidential";
const SECRET: &str = "confidential-test-secret";
const SCOPES: &str = r#""openid", "email", "profile", "groups", "offline_access""#;

fn confidential_sandbox(profile: &str, idp: &Idp) -> Sandbox {
    let config = format!(
        "{}client_auth = \"secret\"\n",
        support::oidc_profile(profile, &idp.issuer, CLIENT, SCOPES)
    );
    let sandbox = Sandbox::with_config(profile, &config);
    clear_secret(profile);
    sandbox
}

pub(crate) fn set_secret(sandbox: &Sandbox, secret: &str) -> Run {
    run_with_input(
        sandbox.command(&["config", "set-secret", &sandbox.profile]),
        &format!("{secret}\n"),
    )
}

/// What the real keychain holds as the profile's client secret.
pub(crate) fn stored_secret(profile: &str) -> Option<String> {
    let output = Command::new("secret-tool")
        .args([
            "lookup",
            "service",
            "stagepass",
            "username",
            &format!("{profile} (client secret)"),
        ])
        .output()
        .expect("secret-tool (libsecret-tools) is installed");
    (output.status.success() && !output.stdout.is_empty())
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

pub(crate) fn clear_secret(profile: &str) {
    let _ = Command::new("secret-tool")
        .args([
            "clear",
            "service",
            "stagepass",
            "username",
            &format!("{profile} (client secret)"),
        ])
        .status();
}

/// Every file of the sandbox (config, agent log, audit, runtime dir), as text.
pub(crate) fn sandbox_files(sandbox: &Sandbox) -> String {
    fn walk(dir: &std::path::Path, into: &mut String) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, into);
            } else if let Ok(bytes) = std::fs::read(&path) {
                into.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    let mut text = String::new();
    walk(sandbox.path(), &mut text);
    text
}

#[test]
fn a_confidential_client_signs_in_refreshes_and_revokes_with_its_stored_secret() {
    // 4 s tokens: the agent refreshes by itself at about 3 s.
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "4")]);
    let sandbox = confidential_sandbox("conf-flow", &idp);

    // No secret yet: the sign-in stops before the browser, naming the command that fixes it.
    let early = sandbox.run(&["login", "conf-flow", "--browser"]);
    early.assert_code(3);
    early.assert_stderr_contains("stagepass config set-secret conf-flow");

    let stored = set_secret(&sandbox, SECRET);
    stored.assert_ok();
    stored.assert_stderr_contains("stored the client secret of `conf-flow`");
    assert_eq!(stored_secret("conf-flow").as_deref(), Some(SECRET));

    let login = sandbox.login_browser();
    assert!(
        login
            .stdout()
            .contains("Signed in to conf-flow as alice@example.com"),
        "{}",
        login.stdout()
    );
    let first = sandbox.run(&["token", "conf-flow", "--min-valid", "0"]);
    first.assert_ok();
    let rotated_from = sandbox.stored_refresh_token();
    // The agent refreshes by itself, through its refresh worker, which sends the secret too.
    support::wait_until(
        "a proactive refresh",
        std::time::Duration::from_secs(15),
        || idp.refresh_calls() >= 1,
    );
    let refreshed = sandbox.run(&["token", "conf-flow", "--min-valid", "0"]);
    refreshed.assert_ok();
    assert_ne!(refreshed.stdout(), first.stdout(), "a new access token");
    assert_ne!(
        sandbox.stored_refresh_token(),
        rotated_from,
        "rotated and saved"
    );

    let logout = sandbox.run(&["logout", "conf-flow"]);
    logout
        .assert_ok()
        .assert_stdout_contains("the IdP revoked the refresh token");
    // A sign-out keeps the client secret; --delete removes it.
    assert_eq!(stored_secret("conf-flow").as_deref(), Some(SECRET));
    let deleted = sandbox.run(&["config", "set-secret", "conf-flow", "--delete"]);
    deleted.assert_ok();
    assert_eq!(stored_secret("conf-flow"), None);

    // Never outside the keychain: not in the config, the agent's log, the audit, anywhere.
    let files = sandbox_files(&sandbox);
    assert!(
        !files.contains(SECRET),
        "the secret leaked into the sandbox"
    );
    let audit = sandbox.run(&["audit", "--json"]);
    assert!(
        audit.stdout().contains("client_secret_set")
            && audit.stdout().contains("client_secret_deleted"),
        "{}",
        audit.stdout()
    );
}

#[test]
fn doctor_tells_a_stale_secret_from_a_missing_one() {
    let idp = Idp::start();
    let sandbox = confidential_sandbox("conf-doctor", &idp);

    let missing = doctor(&sandbox);
    missing.run.assert_code(CHECKS_FAILED);
    missing.assert("idp.client", "fail", "holds no client secret");
    missing.assert_fix("idp.client", &["stagepass config set-secret conf-doctor"]);

    set_secret(&sandbox, SECRET).assert_ok();
    let good = doctor(&sandbox);
    good.assert(
        "idp.client",
        "ok",
        "accepts `stagepass-confidential` with its client secret (client_secret_basic)",
    );

    // The IdP's secret was rotated; the keychain still holds the old one.
    set_secret(&sandbox, "the-secret-before-rotation").assert_ok();
    let stale = doctor(&sandbox);
    stale.run.assert_code(CHECKS_FAILED);
    stale.assert("idp.client", "fail", "refuses the stored client secret");
    stale.assert_evidence("idp.client", "invalid_client");
    assert!(!stale.run.stdout().contains("the-secret-before-rotation"));
    // And the sign-in, refused at the code exchange, says what to do.
    let login = sandbox.run(&["login", "conf-doctor", "--browser"]);
    assert_ne!(login.code(), 0);
    login.assert_stderr_contains("stagepass config set-secret conf-doctor");
}

#[test]
fn set_secret_refuses_empty_input_and_backstage_profiles_and_stores_nothing() {
    let idp = Idp::start();
    let sandbox = confidential_sandbox("conf-input", &idp);
    let empty = run_with_input(
        sandbox.command(&["config", "set-secret", "conf-input"]),
        "\n",
    );
    empty.assert_code(2);
    empty.assert_stderr_contains("the client secret is empty");
    let two_lines = set_secret(&sandbox, "one\ntwo");
    two_lines.assert_code(2);
    assert_eq!(stored_secret("conf-input"), None);

    let backstage = Sandbox::with_config(
        "conf-bs",
        "[profiles.conf-bs]\nkind = \"backstage\"\nurl = \"http://127.0.0.1:9\"\n",
    );
    let refused = set_secret(&backstage, SECRET);
    refused.assert_code(2);
    refused.assert_stderr_contains("public clients only");
    assert_eq!(stored_secret("conf-bs"), None);
}

/// `set-secret` at a terminal: the prompt shows, the secret typed after it never does, and
/// Ctrl-C (signals are off while it reads) cancels with the terminal restored, storing nothing.
#[test]
fn a_secret_typed_at_a_terminal_is_not_echoed_and_ctrl_c_stores_nothing() {
    let idp = Idp::start();
    let sandbox = confidential_sandbox("conf-tty", &idp);
    let driver = support::repo_root().join("tests/e2e/tty/type-at-terminal.py");
    let at_terminal = |typed: &str| -> serde_json::Value {
        let output = sandbox
            .tool("python3")
            .arg(&driver)
            .arg(typed)
            .args([
                env!("CARGO_BIN_EXE_stagepass"),
                "config",
                "set-secret",
                "conf-tty",
            ])
            .output()
            .expect("python3 runs the terminal driver");
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&output.stderr)))
    };

    let cancelled = at_terminal("half-typed\u{3}");
    assert_eq!(cancelled["code"], 2, "{cancelled}");
    assert!(
        cancelled["shown"]
            .as_str()
            .unwrap()
            .contains("cancelled; nothing was stored")
    );
    assert!(!cancelled["shown"].as_str().unwrap().contains("half-typed"));
    assert_eq!(stored_secret("conf-tty"), None);

    let typed = at_terminal(&format!("{SECRET}\n"));
    assert_eq!(typed["code"], 0, "{typed}");
    let shown = typed["shown"].as_str().unwrap();
    assert!(
        shown.contains("Client secret for profile `conf-tty` (not shown)"),
        "{shown}"
    );
    assert!(
        shown.contains("stored the client secret of `conf-tty`"),
        "{shown}"
    );
    assert!(!shown.contains(SECRET), "the secret was echoed: {shown}");
    assert_eq!(stored_secret("conf-tty").as_deref(), Some(SECRET));
    clear_secret("conf-tty");
}
