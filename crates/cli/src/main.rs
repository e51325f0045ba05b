//! `stagepass`: sign in once; git, curl, kubectl, docker and scripts get short-lived
//! credentials from the agent.

mod agent_link;
mod browser;
mod cli;
mod commands;
mod exit;
mod output;
mod progress;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => exit::report(&err),
    }
}
