use serde_json::json;
use stagepass_client::{Client, ClientError};
use stagepass_core::paths;

use crate::agent_link::{agent_program, client_name};
use crate::cli::{AgentAction, AgentArgs, JsonArg};
use crate::error::{CommandError, Kind};
use crate::output::print_json;

pub fn run(args: AgentArgs) -> Result<(), CommandError> {
    match args.action.unwrap_or(AgentAction::Run) {
        AgentAction::Run => {
            // Replaces this process: the agent runs in the foreground, logging here.
            let program = agent_program()?;
            let err = crate::replace::run_in_place(std::process::Command::new(&program));
            Err(CommandError::new(
                Kind::Agent,
                format!("cannot run {}: {err}", program.display()),
            ))
        }
        AgentAction::Status(args) => status(args),
        AgentAction::Stop => stop(),
    }
}

fn connect_running() -> Result<Option<Client>, CommandError> {
    match Client::connect(&paths::runtime_dir(), &client_name()) {
        Err(ClientError::NotRunning(_)) => Ok(None),
        other => Ok(Some(other?)),
    }
}

fn status(args: JsonArg) -> Result<(), CommandError> {
    let runtime_dir = paths::runtime_dir();
    let Some(mut client) = connect_running()? else {
        if args.json {
            print_json(&json!({ "running": false, "runtime_dir": runtime_dir }))?;
        } else {
            outln!(
                "no agent runs for {} (any stagepass command starts one)",
                runtime_dir.display()
            );
        }
        return Ok(());
    };
    let report = client.status()?;
    if args.json {
        print_json(&json!({
            "running": true,
            "pid": report.agent_pid,
            "version": report.agent_version,
            "runtime_dir": runtime_dir,
            "config_path": report.config_path,
        }))?;
    } else {
        outln!(
            "agent running: pid {}, version {}, socket in {}",
            report.agent_pid,
            report.agent_version,
            runtime_dir.display()
        );
    }
    Ok(())
}

fn stop() -> Result<(), CommandError> {
    let Some(mut client) = connect_running()? else {
        errln!("no agent runs for {}", paths::runtime_dir().display());
        return Ok(());
    };
    client.shutdown()?;
    // Returns once the agent is gone, as `systemctl stop` does: it writes its last audit
    // lines (the proxy's counts) and removes its socket on the way out.
    let socket = paths::socket_path(&paths::runtime_dir());
    let deadline = std::time::Instant::now() + STOP_WAIT;
    while socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if socket.exists() {
        errln!(
            "asked the agent to stop; it is still finishing (its socket is {})",
            socket.display()
        );
    } else {
        errln!("agent stopped");
    }
    Ok(())
}

/// How long `agent stop` waits for the agent to finish its shutdown.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
