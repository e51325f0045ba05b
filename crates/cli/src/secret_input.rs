//! Reading a secret the user types or pipes: never from argv, where every local user can
//! read it in /proc.

#[cfg(unix)]
use std::fs::{File, OpenOptions};
#[cfg(unix)]
use std::io::Write;
use std::io::{IsTerminal, Read};

#[cfg(unix)]
use rustix::termios::{
    LocalModes, OptionalActions, SpecialCodeIndex, Termios, tcgetattr, tcsetattr,
};
use stagepass_proto::ClientSecret;

use crate::error::CommandError;

/// What Ctrl-C types once signals are off.
#[cfg(unix)]
const CTRL_C: u8 = 3;

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

/// Windows consoles have no termios: rather than echo the secret, ask for it to be piped.
#[cfg(windows)]
fn typed(_prompt: &str) -> Result<String, CommandError> {
    Err(
        CommandError::usage("typing a secret at a Windows console is not supported yet").with_hint(
            "pipe it in: `Get-Content secret.txt | stagepass config set-secret PROFILE`",
        ),
    )
}

/// Echo off so the secret never shows, and signals off so Ctrl-C arrives as a character (an
/// extra end of line, so the read returns) and the terminal is restored before this process
/// ends.
#[cfg(unix)]
fn typed(prompt: &str) -> Result<String, CommandError> {
    let failed = |err: std::io::Error| {
        CommandError::usage(format!("cannot ask for the secret at the terminal: {err}"))
            .with_hint("pipe it in instead: `... | stagepass config set-secret PROFILE`")
    };
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(failed)?;
    let saved = tcgetattr(&tty).map_err(|err| failed(err.into()))?;
    let mut quiet = saved.clone();
    quiet
        .local_modes
        .remove(LocalModes::ECHO | LocalModes::ISIG);
    quiet.local_modes.insert(LocalModes::ECHONL);
    quiet.special_codes[SpecialCodeIndex::VEOL] = CTRL_C;
    (&tty).write_all(prompt.as_bytes()).map_err(failed)?;
    tcsetattr(&tty, OptionalActions::Flush, &quiet).map_err(|err| failed(err.into()))?;
    let restore = Restore { tty: &tty, saved };
    // One read: in canonical mode it returns one line, ended by Enter, Ctrl-C (VEOL) or
    // Ctrl-D; a line reader would wait on past Ctrl-C for a newline.
    let mut buffer = vec![0; MAX_INPUT as usize];
    let read = (&tty).read(&mut buffer);
    drop(restore);
    let line = String::from_utf8_lossy(&buffer[..read.map_err(failed)?]).into_owned();
    // ^C and ^D, as typed with signals off.
    if line.contains(['\u{3}', '\u{4}']) || line.is_empty() {
        return Err(CommandError::usage("cancelled; nothing was stored"));
    }
    Ok(line)
}

/// Puts the terminal back as it was, also when reading failed.
#[cfg(unix)]
struct Restore<'t> {
    tty: &'t File,
    saved: Termios,
}

#[cfg(unix)]
impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.tty, OptionalActions::Now, &self.saved);
    }
}
