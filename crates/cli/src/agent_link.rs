//! Reaching the agent from the CLI, starting it when none runs.

use std::path::PathBuf;

use stagepass_client::{AgentLauncher, Client};
use stagepass_core::paths;

use crate::exit::CliError;

pub const CLIENT_NAME: &str = concat!("stagepass-cli ", env!("CARGO_PKG_VERSION"));
const AGENT_BINARY: &str = "stagepass-agent";

/// Connects to the agent, starting one in the background when none runs. Returns whether an
/// agent was started.
pub fn connect() -> Result<(Client, bool), CliError> {
    let runtime_dir = paths::runtime_dir();
    match Client::connect(&runtime_dir, CLIENT_NAME) {
        Err(stagepass_client::ClientError::NotRunning(_)) => {
            // Only now: finding the agent binary costs a readlink the fast path can skip.
            let launcher = AgentLauncher::new(agent_program()?, &["--background"]);
            Ok(Client::connect_or_start(
                &runtime_dir,
                CLIENT_NAME,
                &launcher,
            )?)
        }
        other => Ok(other.map(|client| (client, false))?),
    }
}

/// Sends one request, starting an agent when none runs. When the agent dies before its first
/// answer (a crash, or one exiting just as this client connected), the request goes once more
/// to a fresh agent: the requests sent this way (token, status, claims, logout) are safe to
/// repeat.
pub fn call(
    request: &stagepass_proto::Request,
) -> Result<(stagepass_proto::Response, bool), CliError> {
    let (mut client, started) = connect()?;
    match client.call(request) {
        Err(stagepass_client::ClientError::Gone) => {
            let (mut client, started) = connect()?;
            Ok((client.call(request)?, started))
        }
        result => Ok((result?, started)),
    }
}

/// `stagepass-agent` next to this binary (how both are installed and built), else from PATH.
pub fn agent_program() -> Result<PathBuf, CliError> {
    let sibling = std::env::current_exe()?.with_file_name(AGENT_BINARY);
    Ok(if sibling.is_file() {
        sibling
    } else {
        PathBuf::from(AGENT_BINARY)
    })
}
