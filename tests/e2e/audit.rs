//! Every hand-out is recorded with the caller's pid and executable, never with the token.

use crate::support;

use std::process::Stdio;

use sha2::{Digest, Sha256};
use support::{Idp, Sandbox};

fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.trim().as_bytes());
    let hex: String = digest[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256:{hex}")
}

#[test]
fn hand_outs_are_audited_with_the_caller_and_without_the_token() {
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "3")]);
    let sandbox = Sandbox::new("e2e-audit", &idp.issuer);
    sandbox.login_browser();
    let mut issued = Vec::new();

    let child = sandbox
        .command(&["token", "--min-valid", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
    issued.push(token.clone());

    let id_token = sandbox.run(&["token", "--id-token"]);
    id_token.assert_ok();
    issued.push(id_token.stdout().trim().to_string());
    issued.push(sandbox.stored_refresh_token());

    // Wait for a refresh (proactive or on demand), which is audited too.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let refreshed = sandbox.run(&["token"]);
    refreshed.assert_ok();
    issued.push(refreshed.stdout().trim().to_string());
    issued.push(sandbox.stored_refresh_token());
    sandbox.run(&["logout"]).assert_ok();

    let audit = sandbox.run(&["audit", "--json"]);
    audit.assert_ok();
    let entries: Vec<serde_json::Value> = audit
        .stdout()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let events: Vec<&str> = entries
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events.first(), Some(&"sign_in"), "{events:?}");
    assert_eq!(events.last(), Some(&"sign_out"), "{events:?}");
    assert!(events.contains(&"refresh"), "{events:?}");

    let hand_out = entries
        .iter()
        .find(|entry| entry["event"] == "token" && entry["pid"] == pid)
        .unwrap_or_else(|| panic!("no entry for pid {pid}: {entries:#?}"));
    assert_eq!(hand_out["consumer"], "cli");
    assert_eq!(hand_out["exe"], env!("CARGO_BIN_EXE_stagepass"));
    assert_eq!(hand_out["uid"], support::current_uid());
    assert_eq!(hand_out["profile"], "e2e-audit");
    assert_eq!(hand_out["audience"], support::AUDIENCE);
    assert_eq!(hand_out["kind"], "access");
    assert_eq!(hand_out["fingerprint"], fingerprint(&token));
    assert_eq!(hand_out["outcome"], "ok");
    assert!(hand_out["time"].as_str().unwrap().ends_with('Z'));

    let raw = std::fs::read_to_string(sandbox.data_dir().join("audit.jsonl")).unwrap();
    for secret in &issued {
        assert!(
            !raw.contains(secret.as_str()),
            "a token reached the audit log"
        );
    }
    use std::os::unix::fs::MetadataExt;
    let mode = std::fs::metadata(sandbox.data_dir().join("audit.jsonl"))
        .unwrap()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let human = sandbox.run(&["audit", "--since", "1h"]);
    human.assert_ok();
    assert!(
        human.stdout().contains(&format!("pid {pid}")),
        "{}",
        human.stdout()
    );
    sandbox
        .run(&["audit", "--since", "yesterday"])
        .assert_code(2)
        .assert_stderr_contains("30m");
}

#[test]
fn a_refused_hand_out_is_audited_with_its_reason() {
    let idp = Idp::start();
    let sandbox = Sandbox::new("e2e-audit-refused", &idp.issuer);
    sandbox.run(&["token", "--no-interactive"]).assert_code(4);
    let audit = sandbox.run(&["audit", "--json"]);
    let entry: serde_json::Value =
        serde_json::from_str(audit.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(entry["event"], "token");
    assert!(
        entry["outcome"].as_str().unwrap().contains("not signed in"),
        "{entry}"
    );
    assert!(entry.get("fingerprint").is_none());
}
