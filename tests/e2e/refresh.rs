//! Refresh against a real IdP that rotates refresh tokens strictly (reuse revokes the grant),
//! and agent restarts.

use crate::support;

use std::time::Duration;

use support::{Idp, Sandbox};

#[test]
fn expired_token_is_refreshed_and_the_rotated_refresh_token_is_kept() {
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "2")]);
    let sandbox = Sandbox::new("e2e-rotate", &idp.issuer);
    sandbox.login_browser();
    let first_refresh_token = sandbox.stored_refresh_token();

    let cached = sandbox.run(&["token", "--min-valid", "0"]);
    cached.assert_ok();
    let again = sandbox.run(&["token", "--min-valid", "0"]);
    assert_eq!(
        cached.stdout(),
        again.stdout(),
        "a valid token is served from memory"
    );

    wait_for_expiry(&sandbox);
    let refreshed = sandbox.run(&["token"]);
    refreshed.assert_ok();
    assert_ne!(
        cached.stdout(),
        refreshed.stdout(),
        "a new access token after the refresh"
    );
    let second_refresh_token = sandbox.stored_refresh_token();
    assert_ne!(
        first_refresh_token, second_refresh_token,
        "the rotated refresh token is in the keychain"
    );

    // The rotated refresh token works: another refresh succeeds and rotates again.
    wait_for_expiry(&sandbox);
    let again = sandbox.run(&["token"]);
    again.assert_ok();
    assert_ne!(again.stdout(), refreshed.stdout());
    let third_refresh_token = sandbox.stored_refresh_token();
    assert_ne!(third_refresh_token, second_refresh_token);

    // The old one is dead at the IdP. Presenting it is reuse, which makes the IdP revoke the
    // whole grant...
    let (status, body) = idp.refresh_directly(&first_refresh_token);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );

    // ...so the next refresh is refused, and the user is told to sign in again.
    wait_for_expiry(&sandbox);
    let refused = sandbox.run(&["token", "--no-interactive"]);
    refused
        .assert_code(4)
        .assert_stderr_contains("stagepass login e2e-rotate");
    let status = sandbox.run(&["status", "--json"]).json();
    assert_eq!(status["profiles"][0]["state"], "needs_sign_in");
    assert!(
        status["profiles"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("invalid_grant")
    );
    // The entry stays: an IdP's rejection is reported, nothing is deleted behind the user's back.
    assert!(sandbox.keychain_entry().is_some());

    // Signing in again recovers.
    sandbox.login_browser();
    sandbox.run(&["token"]).assert_ok();
}

#[test]
fn a_restarted_agent_resumes_from_the_keychain() {
    let idp = Idp::start();
    let sandbox = Sandbox::new("e2e-restart", &idp.issuer);
    sandbox.login_browser();
    let before = sandbox.run(&["token"]);
    before.assert_ok();
    let first_agent = sandbox.run(&["status", "--json"]).json()["agent"]["pid"].clone();

    sandbox.run(&["agent", "stop"]).assert_ok();
    support::wait_until("the agent to exit", Duration::from_secs(5), || {
        !sandbox.runtime_dir().join("agent.sock").exists()
    });

    // The next client starts a new agent, which has no access token in memory and gets one
    // with the refresh token from the keychain.
    let after = sandbox.run(&["token"]);
    after.assert_ok();
    assert_ne!(before.stdout(), after.stdout());
    let status = sandbox.run(&["status", "--json"]).json();
    assert_ne!(status["agent"]["pid"], first_agent, "a new agent serves");
    assert_eq!(status["profiles"][0]["state"], "signed_in");
    assert_eq!(status["profiles"][0]["email"], "alice@example.com");
}

#[test]
fn parallel_clients_share_one_refresh() {
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "3")]);
    let sandbox = Sandbox::new("e2e-parallel", &idp.issuer);
    sandbox.login_browser();
    wait_for_expiry(&sandbox);
    // Twelve processes at once all need a refresh. With a strictly rotating IdP, two
    // refreshes with the same refresh token would revoke the grant: single flight is what
    // keeps every one of them working.
    let children: Vec<_> = (0..12)
        .map(|_| {
            sandbox
                .command(&["token"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let tokens: Vec<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        })
        .collect();
    assert!(
        tokens.iter().all(|token| token == &tokens[0]),
        "all got the one refreshed token"
    );
    sandbox.run(&["token"]).assert_ok();
}

#[test]
fn the_agent_refreshes_ahead_of_expiry_by_itself() {
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "4")]);
    let sandbox = Sandbox::new("e2e-proactive", &idp.issuer);
    sandbox.login_browser();
    let first = sandbox.run(&["token", "--min-valid", "0"]);
    first.assert_ok();
    assert_eq!(idp.refresh_calls(), 0);
    // Nobody asks for a token; the agent refreshes at about 75-80 % of the 4 s lifetime.
    support::wait_until("a proactive refresh", Duration::from_secs(10), || {
        idp.refresh_calls() >= 1
    });
    let second = sandbox.run(&["token", "--min-valid", "0"]);
    second.assert_ok();
    assert_ne!(first.stdout(), second.stdout());
}

#[test]
fn an_idp_outage_keeps_valid_tokens_flowing_backs_off_and_recovers() {
    // 20 s tokens: the agent's own refresh (at 75-80 %, 4-5 s before expiry) stays well clear
    // of the requests below, even on a loaded machine.
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "20")]);
    let sandbox = Sandbox::new("e2e-outage", &idp.issuer);
    sandbox.login_browser();
    let refresh_token = sandbox.stored_refresh_token();
    let before = sandbox.run(&["token", "--min-valid", "0"]);
    before.assert_ok();

    idp.set_outage(true);
    // With 9 s left, asking for 10 s of validity (capped at half the 20 s lifetime) needs a
    // refresh; it fails, and the still-valid token is handed out rather than an error.
    wait_for_remaining(&sandbox, 9.0);
    let calls_before = idp.refresh_calls();
    let during = sandbox.run(&["token", "--min-valid", "10"]);
    during.assert_ok();
    assert_eq!(during.stdout(), before.stdout());
    assert_eq!(
        idp.refresh_calls(),
        calls_before + 1,
        "the IdP was asked once"
    );

    // Twenty more callers in the same state: the backoff, not the callers, decides when the
    // IdP is asked again (next attempt 4-6 s after the failure).
    for _ in 0..20 {
        let run = sandbox.run(&["token", "--min-valid", "10"]);
        run.assert_ok();
        assert_eq!(run.stdout(), before.stdout());
    }
    assert_eq!(
        idp.refresh_calls(),
        calls_before + 1,
        "callers during the backoff reach the IdP"
    );

    // The token has expired and the IdP is still down: a clear, retryable error...
    wait_for_expiry(&sandbox);
    sandbox
        .run(&["token"])
        .assert_code(6)
        .assert_stderr_contains("HTTP 503");
    // ...and nothing was lost.
    assert_eq!(sandbox.stored_refresh_token(), refresh_token);
    let status = sandbox.run(&["status", "--json"]).json();
    assert_eq!(status["profiles"][0]["state"], "signed_in");

    idp.set_outage(false);
    support::wait_until(
        "recovery without a new sign-in",
        Duration::from_secs(20),
        || sandbox.run(&["token"]).code() == 0,
    );
    assert_ne!(sandbox.stored_refresh_token(), refresh_token);
}

/// Sleeps until the access token the agent holds has at most `secs` of validity left.
fn wait_for_remaining(sandbox: &Sandbox, secs: f64) {
    wait_until_status_shows(sandbox.run(&["status", "--json"]).json(), secs);
}

/// Sleeps until the access token in a `status --json` has at most `secs` of validity left.
fn wait_until_status_shows(status: serde_json::Value, secs: f64) {
    let Some(expires_at) = status["profiles"][0]["access_token_expires_at"].as_str() else {
        return;
    };
    let expires_at =
        time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let left = (expires_at - time::OffsetDateTime::now_utc()).as_seconds_f64();
    if left > secs {
        std::thread::sleep(Duration::from_secs_f64(left - secs));
    }
}

/// Waits until the access token the agent holds has expired (tokens live a few seconds).
fn wait_for_expiry(sandbox: &Sandbox) {
    wait_for_remaining(sandbox, -0.1);
}

/// Runs the CLI against a second agent of the same user: same config, data dir and keychain,
/// another runtime dir (the tray's and a headless one, say).
fn run_with_other_agent(sandbox: &Sandbox, args: &[&str]) -> support::Run {
    support::Run(
        sandbox
            .command(args)
            .env(
                "STAGEPASS_RUNTIME_DIR",
                sandbox.runtime_dir().with_file_name("run-other"),
            )
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    )
}

fn assert_both_agents_signed_in(sandbox: &Sandbox) {
    for (who, status) in [
        ("first", sandbox.run(&["status", "--json"])),
        (
            "second",
            run_with_other_agent(sandbox, &["status", "--json"]),
        ),
    ] {
        assert_eq!(
            status.json()["profiles"][0]["state"],
            "signed_in",
            "{who} agent"
        );
    }
}

/// Two agents of one user share one keychain entry. When one rotates the refresh token, the
/// other must take the new one from the keychain instead of presenting the consumed one from
/// its memory, which a strict IdP answers by revoking the whole grant.
#[test]
fn a_refresh_token_rotated_by_another_agent_is_taken_from_the_keychain() {
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "10")]);
    let sandbox = Sandbox::new("e2e-two-agents", &idp.issuer);
    sandbox.login_browser();
    let other = |args: &[&str]| run_with_other_agent(&sandbox, args);
    let signed_in_with = sandbox.stored_refresh_token();
    // The second agent has no access token: it refreshes with the keychain's refresh token,
    // which rotates it under the first agent's feet.
    other(&["token", "--no-interactive"]).assert_ok();
    assert_eq!(idp.refresh_calls(), 1);
    assert_ne!(sandbox.stored_refresh_token(), signed_in_with);

    // Each agent's own proactive refresh (at about 80 % of 10 s) now starts from a refresh
    // token the other one has already rotated.
    support::wait_until("both agents to refresh", Duration::from_secs(20), || {
        idp.refresh_calls() >= 3
    });
    assert_both_agents_signed_in(&sandbox);
    sandbox.run(&["token", "--no-interactive"]).assert_ok();
    other(&["token", "--no-interactive"]).assert_ok();
    other(&["agent", "stop"]).assert_ok();
}

/// Two agents refreshing at the same moment: their workers must take turns on one lock, or
/// both present the same refresh token and the IdP revokes the grant. (The lock once lived in
/// each agent's runtime dir, which made this a race that CI lost now and then.)
#[test]
fn two_agents_refreshing_at_once_take_turns() {
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "20")]);
    let sandbox = Sandbox::new("e2e-two-at-once", &idp.issuer);
    sandbox.login_browser();
    let other = |args: &[&str]| run_with_other_agent(&sandbox, args);
    other(&["token", "--no-interactive"]).assert_ok();
    assert_eq!(idp.refresh_calls(), 1);

    // `--min-valid` is capped at half the lifetime: once both tokens have less than 10 s left
    // (and more than the 4 s or so when the agents would refresh by themselves), a large
    // min-valid forces a refresh in both. The second agent's token is the younger one.
    wait_until_status_shows(other(&["status", "--json"]).json(), 8.5);
    let forced = ["token", "--no-interactive", "--min-valid", "600"];
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| sandbox.run(&forced));
        let second = scope.spawn(|| other(&forced));
        (first.join().unwrap(), second.join().unwrap())
    });
    first.assert_ok();
    second.assert_ok();
    assert_eq!(idp.refresh_calls(), 3, "one forced refresh in each agent");
    assert_both_agents_signed_in(&sandbox);
    other(&["agent", "stop"]).assert_ok();
}
