//! Reading a secret the user types or pipes: never from argv, where every local user can
//! read it in /proc. Typed at a terminal, it is never echoed: termios on Unix, the console
//! input mode on Windows.

#[cfg(any(windows, test))]
mod console_mode;
#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

use std::io::{IsTerminal, Read};

use stagepass_proto::ClientSecret;

#[cfg(unix)]
use self::unix::typed;
#[cfg(windows)]
use self::windows::typed;
use crate::error::CommandError;

/// Longer input is not a client secret (and is not read to the end).
const MAX_INPUT: u64 = 8 * 1024;

/// The secret from standard input, or, at a terminal, typed after `prompt` without echo.
pub fn read(prompt: &str) -> Result<ClientSecret, CommandError> {
    let text = if std::io::stdin().is_terminal() {
        typed(prompt)?
    } else {
        piped()?
    };
    ClientSecret::parse(&text).map_err(|why| {
        CommandError::usage(format!("{why}; nothing was stored")).with_hint(
            "pipe the secret in, e.g. `pass show idp/client | stagepass config set-secret PROFILE`",
        )
    })
}

fn piped() -> Result<String, CommandError> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_INPUT + 1)
        .read_to_string(&mut text)
        .map_err(|err| {
            CommandError::usage(format!("cannot read the secret from standard input: {err}"))
        })?;
    if text.len() as u64 > MAX_INPUT {
        return Err(CommandError::usage(format!(
            "standard input holds more than {MAX_INPUT} bytes: not a client secret; nothing was stored"
        )));
    }
    Ok(text)
}

/// The terminal or console could not be set up or read.
fn failed(err: std::io::Error) -> CommandError {
    CommandError::usage(format!("cannot ask for the secret at the terminal: {err}"))
        .with_hint("pipe it in instead: `... | stagepass config set-secret PROFILE`")
}

/// The typed line, unless it is empty (end of input at once) or holds one of `cancel`, the
/// characters that cancel as the platform's terminal reads them.
fn not_cancelled(line: String, cancel: &[char]) -> Result<String, CommandError> {
    if line.contains(cancel) || line.is_empty() {
        return Err(CommandError::usage("cancelled; nothing was stored"));
    }
    Ok(line)
}
