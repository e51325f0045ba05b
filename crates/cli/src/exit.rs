//! The one place that turns errors into messages and exit codes.

use std::process::ExitCode;

use stagepass_client::ClientError;
use stagepass_proto::{AgentError, ErrorKind};

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  unexpected failure
  2  bad usage (unknown flag, missing argument)
  3  config error: the file, key and allowed values are named
  4  not signed in, or the IdP rejected the login: run `stagepass login PROFILE`
  5  the IdP refused the request (client_id, redirect URI, scopes, id_token)
  6  the IdP is unreachable or failing: retry later; valid tokens keep working
  7  the keychain is unavailable or locked
  8  the agent could not be started or reached, or speaks another protocol version
  9  the sign-in was denied, cancelled or expired
  10 `stagepass doctor` found at least one failing check (its output names each)
  11 remote mode: the remote key is unknown, revoked, expired or not scoped for the request

Files and environment:
  STAGEPASS_CONFIG       config file (default: stagepass/config.toml in the platform config dir)
  STAGEPASS_RUNTIME_DIR  agent socket and log (default: $XDG_RUNTIME_DIR/stagepass)
  STAGEPASS_DATA_DIR     data files (default: the platform data dir)
  STAGEPASS_LOG          agent log filter, e.g. `debug` (default: info)
  STAGEPASS_NOTIFY       0 turns the agent's desktop notifications off
  BROWSER                command that opens the sign-in URL
  STAGEPASS_REMOTE       remote mode: the forwarded agent, http://127.0.0.1:PORT
  STAGEPASS_REMOTE_KEY   remote mode: the remote key (or STAGEPASS_REMOTE_KEY_FILE, a file holding it)";

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{0}")]
    Agent(String),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Config(String),
    #[error("doctor: {0} failing check(s)")]
    ChecksFailed(usize),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Client(ClientError::Agent(err)) => kind_code(err.kind),
            CliError::Client(_) | CliError::Agent(_) => 8,
            CliError::Usage(_) => 2,
            CliError::Config(_) => 3,
            CliError::ChecksFailed(_) => 10,
            CliError::Io(_) => 1,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            CliError::Client(ClientError::Agent(AgentError { hint, .. })) => hint.clone(),
            CliError::Client(ClientError::Start(_)) => {
                Some("run `stagepass agent` in a terminal to see why".into())
            }
            CliError::Client(ClientError::Remote(_)) => Some(format!(
                "check {} and the port forward (`stagepass remote ssh` on the desktop shows it)",
                stagepass_client::remote::REMOTE_ENV
            )),
            CliError::Client(ClientError::Timeout(_)) => {
                Some("the agent may be stuck: `stagepass agent stop`, then retry".into())
            }
            _ => None,
        }
    }
}

fn kind_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Internal => 1,
        ErrorKind::BadRequest => 2,
        ErrorKind::Config => 3,
        ErrorKind::NeedsSignIn => 4,
        ErrorKind::Idp => 5,
        ErrorKind::IdpUnreachable => 6,
        ErrorKind::Keychain => 7,
        ErrorKind::ProtocolMismatch => 8,
        ErrorKind::SignInAborted => 9,
        ErrorKind::RemoteKey => 11,
    }
}

pub fn report(err: &CliError) -> ExitCode {
    // The reader went away (`stagepass token | head -c 20`): nothing to tell anyone.
    if let CliError::Io(io) = err
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        return ExitCode::SUCCESS;
    }
    errln!("stagepass: {err}");
    if let Some(hint) = err.hint() {
        errln!("  hint: {hint}");
    }
    ExitCode::from(err.exit_code())
}
