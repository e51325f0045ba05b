//! `stagepass-agent`: the agent process, the only one that holds tokens.
//!
//! A binary of its own so that the CLI and the credential helpers, which git may run several
//! times per command, stay small and start fast, while the network and keychain stacks live
//! only here. Clients start it by themselves; `stagepass agent` runs it in the foreground.
//!
//! On Windows it is a GUI-subsystem program: no console window ever opens for it or for the
//! refresh workers it runs (its own binary), at logon, from the tray or from a client. Its
//! log still goes to the stderr handle it is given (the launcher's `agent.log`, or the
//! console of `stagepass agent`).
#![cfg_attr(windows, windows_subsystem = "windows")]

use std::process::ExitCode;

// Under a burst of connections glibc's malloc took a sixth of the agent's CPU (consolidating
// and unlinking the 1-4 KB chunks of frames and connection tasks); mimalloc takes a fifth
// less CPU per request in `scripts/bench`. Without transparent huge pages (`no_thp`): with
// them each new segment faulted in a zeroed 2 MB page and the first burst cost 3x more.
// Linux with glibc only, where it was measured; the CLI keeps the system allocator, as
// its start-up is what it is measured on.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    if let Err(err) = stagepass_agent::harden() {
        eprintln!("stagepass-agent: cannot keep its memory off the disk: {err}");
        return ExitCode::from(8);
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("STAGEPASS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!args.background);
    match stagepass_agent::BoundedLog::stderr() {
        Ok(log) => logger.with_writer(log).init(),
        Err(_) => logger.with_writer(std::io::stderr).init(),
    }
    // Relative paths from the environment mean the directory the agent was started in.
    let absolute = |path: std::path::PathBuf| std::path::absolute(&path).unwrap_or(path);
    let options = AgentOptions {
        runtime_dir: absolute(paths::runtime_dir()),
        config_path: absolute(paths::config_file()),
        data_dir: absolute(paths::data_dir()),
        // STAGEPASS_NOTIFY=0 silences the desktop (CI, scripts, screen sharing).
        notifications: std::env::var("STAGEPASS_NOTIFY").map_or(true, |value| value != "0"),
    };
    if args.background
        && let Err(err) = stagepass_agent::leave_working_directory()
    {
        eprintln!("stagepass-agent: cannot change to /: {err}");
        return ExitCode::from(8);
    }
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
