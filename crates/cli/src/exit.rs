//! The one place that turns a command's error into a message and an exit code.

use std::process::ExitCode;

use crate::error::{CommandError, Kind};

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
  12 a program stagepass runs for you (ssh, gh) failed: its own message says why

Files and environment:
  STAGEPASS_CONFIG       config file (default: stagepass/config.toml in the platform config dir)
  STAGEPASS_RUNTIME_DIR  agent socket and log (default: $XDG_RUNTIME_DIR/stagepass)
  STAGEPASS_DATA_DIR     data files (default: the platform data dir)
  STAGEPASS_LOG          agent log filter, e.g. `debug` (default: info)
  STAGEPASS_NOTIFY       0 turns the agent's desktop notifications off
  BROWSER                command that opens the sign-in URL
  STAGEPASS_REMOTE       remote mode: the forwarded agent, http://127.0.0.1:PORT
  STAGEPASS_REMOTE_KEY   remote mode: the remote key (or STAGEPASS_REMOTE_KEY_FILE, a file holding it)";

/// The exit code of each kind of failure: the table above, and the only place codes are chosen.
fn exit_code(kind: Kind) -> u8 {
    match kind {
        Kind::ReaderGone => 0,
        // Docker's helper protocol says "no credentials" with exit code 1.
        Kind::Unexpected | Kind::NoCredential => 1,
        Kind::Usage => 2,
        Kind::Config => 3,
        Kind::NeedsSignIn => 4,
        Kind::IdpRefused => 5,
        Kind::IdpUnreachable => 6,
        Kind::Keychain => 7,
        Kind::Agent => 8,
        Kind::SignInAborted => 9,
        Kind::ChecksFailed => 10,
        Kind::RemoteKey => 11,
        Kind::ToolFailed => 12,
    }
}

/// Prints `err` (escaped, as all output is) and gives the process its exit code.
pub fn report(err: &CommandError) -> ExitCode {
    // Nothing to print: no one reads stdout any more, or the answer is already on stdout.
    if !matches!(err.kind(), Kind::ReaderGone | Kind::NoCredential) {
        errln!("stagepass: {err}");
        for hint in err.hints() {
            errln!("  hint: {hint}");
        }
    }
    ExitCode::from(exit_code(err.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_code_is_documented_in_the_help() {
        let kinds = [
            Kind::Unexpected,
            Kind::Usage,
            Kind::Config,
            Kind::NeedsSignIn,
            Kind::IdpRefused,
            Kind::IdpUnreachable,
            Kind::Keychain,
            Kind::Agent,
            Kind::SignInAborted,
            Kind::ChecksFailed,
            Kind::RemoteKey,
            Kind::ToolFailed,
            Kind::NoCredential,
        ];
        for kind in kinds {
            let code = exit_code(kind);
            let row = format!("\n  {code:<2} ");
            assert!(
                EXIT_CODES_HELP.contains(&row),
                "{kind:?}: code {code} is not in the table"
            );
        }
    }
}
