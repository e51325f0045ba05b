//! `stagepass exec [PROFILE] -- CMD…`: runs CMD with a token in its environment, never in argv
//! (argv is readable by every local user through /proc).

use std::os::unix::process::CommandExt;

use stagepass_proto::{Response, TokenKind};

use super::expect_response;
use crate::agent_link;
use crate::cli::ExecArgs;
use crate::exit::CliError;

pub fn run(args: ExecArgs) -> Result<(), CliError> {
    if args.env_var.is_empty() || args.env_var.contains(['=', '\0']) {
        return Err(CliError::Usage(format!(
            "--env-var `{}` is not a valid environment variable name",
            args.env_var
        )));
    }
    let interactive = agent_link::can_interact();
    let kind = if args.id_token {
        TokenKind::Id
    } else {
        TokenKind::Access
    };
    let request =
        agent_link::token_request(args.profile.profile, kind, args.min_valid, interactive);
    let response = agent_link::ask(&request, interactive)?;
    let grant = expect_response!(response, Response::Token)?;
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    // exec replaces this process: the command's exit code and signals are stagepass's own.
    let err = std::process::Command::new(program)
        .args(rest)
        .env(&args.env_var, grant.token.expose())
        .exec();
    Err(CliError::Io(std::io::Error::new(
        err.kind(),
        format!("cannot run `{}`: {err}", program.to_string_lossy()),
    )))
}
