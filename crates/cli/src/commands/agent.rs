use stagepass_agent::{AgentOptions, AgentStartError};
use stagepass_client::{Client, ClientError};
use stagepass_core::paths;
use stagepass_proto::{Request, Response};

use crate::agent_link::CLIENT_NAME;
use crate::cli::AgentArgs;
use crate::exit::CliError;

pub fn run(args: AgentArgs) -> Result<(), CliError> {
    let runtime_dir = paths::runtime_dir();
    if args.stop {
        return stop(&runtime_dir);
    }
    init_logging(args.background);
    let options = AgentOptions {
        runtime_dir,
        config_path: paths::config_file(),
    };
    match stagepass_agent::run(options) {
        Ok(()) => Ok(()),
        // A client started this agent while another one won the race: that one serves.
        Err(AgentStartError::AlreadyRunning(_)) if args.background => Ok(()),
        Err(err) => Err(CliError::Agent(err.to_string())),
    }
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

fn init_logging(background: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("STAGEPASS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(!background)
        .init();
}
