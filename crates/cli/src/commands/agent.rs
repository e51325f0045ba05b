use std::os::unix::process::CommandExt;

use stagepass_client::{Client, ClientError};
use stagepass_core::paths;
use stagepass_proto::{Request, Response};

use crate::agent_link::{CLIENT_NAME, agent_program};
use crate::cli::AgentArgs;
use crate::exit::CliError;

pub fn run(args: AgentArgs) -> Result<(), CliError> {
    if args.stop {
        return stop(&paths::runtime_dir());
    }
    // Replaces this process: the agent runs in the foreground, logging to the terminal.
    let program = agent_program()?;
    let err = std::process::Command::new(&program).exec();
    Err(CliError::Agent(format!(
        "cannot run {}: {err}",
        program.display()
    )))
}

fn stop(runtime_dir: &std::path::Path) -> Result<(), CliError> {
    match Client::connect(runtime_dir, CLIENT_NAME) {
        Err(ClientError::NotRunning(_)) => {
            eprintln!("no agent runs for {}", runtime_dir.display());
            Ok(())
        }
        Err(err) => Err(err.into()),
        Ok(mut client) => match client.call(&Request::Shutdown)? {
            Response::ShuttingDown => {
                eprintln!("agent stopped");
                Ok(())
            }
            _ => Err(ClientError::Unexpected.into()),
        },
    }
}
