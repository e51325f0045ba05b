//! kill -9 of the agent at any point of a refresh never signs the user out, even against an
//! IdP that revokes the whole grant when a rotated refresh token is presented again.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Idp, Sandbox};

const KILLS: usize = 100;

/// The pid in the agent's lock file: the running agent's, or the last one's.
fn lock_pid(sandbox: &Sandbox) -> Option<u32> {
    std::fs::read_to_string(sandbox.runtime_dir().join("agent.lock"))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
}

/// The pid of the agent serving `sandbox`, once a new one (not `previous`) holds the lock.
fn new_agent_pid(sandbox: &Sandbox, previous: Option<u32>) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let pid = lock_pid(sandbox);
        if pid.is_some() && pid != previous {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

#[test]
fn killing_the_agent_during_refreshes_never_loses_the_login() {
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "2")]);
    let sandbox = Sandbox::new("e2e-crash", &idp.issuer);
    sandbox.login_browser();
    sandbox.run(&["agent", "stop"]).assert_ok();

    // How long a new agent takes from start to a refreshed token, uninterrupted: the kills
    // are spread over that span and a bit beyond.
    let started = Instant::now();
    sandbox.run(&["token"]).assert_ok();
    let span = started.elapsed().mul_f64(1.2);
    sandbox.run(&["agent", "stop"]).assert_ok();
    let mut seed = u64::from(std::process::id());
    let mut next_delay = || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        span.mul_f64((seed >> 11) as f64 / (1u64 << 53) as f64)
    };
    for round in 0..KILLS {
        let previous = lock_pid(&sandbox);
        // A new agent has no access token in memory: this request makes it read the keychain
        // and refresh, and the kill lands somewhere in that.
        let mut client = sandbox
            .command(&["token"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = new_agent_pid(&sandbox, previous).unwrap_or_else(|| {
            panic!(
                "round {round}: no agent started\n{}",
                tail(&sandbox.agent_log())
            )
        });
        std::thread::sleep(next_delay());
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
        let _ = client.wait();
    }

    let refreshes = idp.refresh_calls();
    eprintln!("{KILLS} kills over {span:?} each, {refreshes} refreshes reached the IdP");
    assert!(
        refreshes >= KILLS as u64 / 4,
        "the kills should hit refreshes: {refreshes}"
    );

    let after = sandbox.run(&["token"]);
    after.assert_ok();
    let status = sandbox.run(&["status", "--json"]).json();
    assert_eq!(status["profiles"][0]["state"], "signed_in", "{status}");
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(25)..].join("\n")
}
