//! `stagepass-agent`: the agent process, the only one that holds tokens.
//!
//! A binary of its own so that the CLI and the credential helpers, which git may run several
//! times per command, stay small and start fast, while the network and keychain stacks live
//! only here. Clients start it by themselves; `stagepass agent` runs it in the foreground.

use std::process::ExitCode;

use clap::Parser;
use stagepass_agent::{AgentOptions, AgentStartError};
use stagepass_core::paths;

/// The stagepass agent: serves tokens to the stagepass CLI and helpers over a private socket.
#[derive(Debug, Parser)]
#[command(name = "stagepass-agent", version)]
struct Args {
    /// Started by a client: exit quietly when another agent already runs.
    #[arg(long)]
    background: bool,
}

fn main() -> ExitCode {
    // A refresh worker started by the agent (see stagepass_agent::worker_main): no logging
    // setup, no argument parsing beyond this flag.
    let first_arg = std::env::args_os().nth(1);
    if first_arg.as_deref() == Some(stagepass_agent::WORKER_FLAG.as_ref()) {
        return stagepass_agent::worker_main();
    }
    // `stagepass doctor`'s network and keychain checks (see stagepass_agent::doctor_probe_main).
    if first_arg.as_deref() == Some(stagepass_agent::DOCTOR_PROBE_FLAG.as_ref()) {
        return stagepass_agent::doctor_probe_main();
    }
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("STAGEPASS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!args.background)
        .init();
    let options = AgentOptions {
        runtime_dir: paths::runtime_dir(),
        config_path: paths::config_file(),
        data_dir: paths::data_dir(),
        // STAGEPASS_NOTIFY=0 silences the desktop (CI, scripts, screen sharing).
        notifications: std::env::var("STAGEPASS_NOTIFY").map_or(true, |value| value != "0"),
    };
    match stagepass_agent::run(options) {
        Ok(()) => ExitCode::SUCCESS,
        // A client started this agent while another one won the race: that one serves.
        Err(AgentStartError::AlreadyRunning(_)) if args.background => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stagepass-agent: {err}");
            if matches!(err, AgentStartError::AlreadyRunning(_)) {
                eprintln!(
                    "  hint: stop it with `stagepass agent stop`, or set STAGEPASS_RUNTIME_DIR for a second instance"
                );
            }
            ExitCode::from(8)
        }
    }
}
