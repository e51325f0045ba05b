//! One file per command.

mod agent;
mod audit;
mod backstage;
mod claims;
mod config;
mod delegate;
mod delegate_approval;
mod docker_credential;
mod doctor;
mod exec;
mod git_credential;
mod kube_credential;
mod login;
mod logout;
mod mcp_config;
mod open;
mod remote;
mod setup;
mod status;
mod token;

use crate::cli::{Cli, Command};
use crate::error::CommandError;

pub fn run(cli: Cli) -> Result<(), CommandError> {
    match cli.command {
        Command::Login(args) => login::run(args),
        Command::Logout(args) => logout::run(args),
        Command::Status(args) => status::run(args),
        Command::Token(args) => token::run(args),
        Command::Claims(args) => claims::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Agent(args) => agent::run(args),
        Command::Exec(args) => exec::run(args),
        Command::KubeCredential(args) => kube_credential::run(args),
        Command::Setup(args) => setup::run(args),
        Command::GitCredential(args) => git_credential::run(&args.action),
        Command::DockerCredential(args) => docker_credential::run(&args.action),
        Command::Doctor(args) => doctor::run(args),
        Command::Config(action) => config::run(action),
        Command::Backstage(action) => backstage::run(action),
        Command::Open(args) => open::run(args),
        Command::Remote(action) => remote::run(action),
        Command::Delegate(action) => delegate::run(action),
    }
}
