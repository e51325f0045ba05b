//! kill -9 of the agent at random points of a refresh, many times over: what the crash tests
//! of both IdPs (tests/e2e/crash.rs, tests/e2e/keycloak.rs) share.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::Sandbox;

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

/// Kills a cold agent `kills` times somewhere between its start and its refreshed token; the
/// sandbox must be signed in. Returns the span the kills were spread over.
pub fn kill_the_agent_during_refreshes(sandbox: &Sandbox, kills: usize) -> Duration {
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
    for round in 0..kills {
        // A client whose agent died before answering retries with a new agent; stop that one
        // so every round starts from a cold agent.
        sandbox.run(&["agent", "stop"]);
        let previous = lock_pid(sandbox);
        // A new agent has no access token in memory: this request makes it read the keychain
        // and refresh, and the kill lands somewhere in that.
        let mut client = sandbox
            .command(&["token", "--no-interactive"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = new_agent_pid(sandbox, previous).unwrap_or_else(|| {
            let mut err = String::new();
            use std::io::Read;
            let _ = client.stderr.take().unwrap().read_to_string(&mut err);
            eprintln!("client stderr: {err}");
            let ps = std::process::Command::new("ps")
                .args(["-eo", "pid,ppid,stat,args"])
                .output()
                .unwrap();
            panic!(
                "round {round}: no agent started (lock pid {:?})\n{}\n{}",
                lock_pid(sandbox),
                tail(&sandbox.agent_log()),
                String::from_utf8_lossy(&ps.stdout)
                    .lines()
                    .filter(|l| l.contains("stagepass"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        std::thread::sleep(next_delay());
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
        let _ = client.wait();
        // The next round starts once this agent is really gone (kill only sends a signal).
        super::wait_until("the killed agent to exit", Duration::from_secs(5), || {
            is_gone(pid)
        });
    }

    span
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

/// Gone or a zombie: a killed process whose parent has not reaped it yet holds nothing.
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name: "1234 (name) Z ...".
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}
