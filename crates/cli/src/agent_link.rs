//! Reaching the agent from the CLI, starting it when none runs.

use stagepass_client::{AgentLauncher, Client};
use stagepass_core::paths;

use crate::exit::CliError;

pub const CLIENT_NAME: &str = concat!("stagepass-cli ", env!("CARGO_PKG_VERSION"));

/// Connects to the agent, starting one (this same binary, `agent --background`) when none
/// runs. Returns whether an agent was started.
pub fn connect() -> Result<(Client, bool), CliError> {
    let launcher = AgentLauncher::new(std::env::current_exe()?, &["agent", "--background"]);
    Ok(Client::connect_or_start(
        &paths::runtime_dir(),
        CLIENT_NAME,
        &launcher,
    )?)
}
