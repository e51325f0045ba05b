//! Typing a secret at a Unix terminal: echo off through termios.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};

use rustix::termios::{
    LocalModes, OptionalActions, SpecialCodeIndex, Termios, tcgetattr, tcsetattr,
};

use super::{MAX_INPUT, failed, not_cancelled};
use crate::error::CommandError;

/// What Ctrl-C types once signals are off.
const CTRL_C: u8 = 3;

/// Echo off so the secret never shows, and signals off so Ctrl-C arrives as a character (an
/// extra end of line, so the read returns) and the terminal is restored before this process
/// ends.
pub(super) fn typed(prompt: &str) -> Result<String, CommandError> {
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
    not_cancelled(line, &['\u{3}', '\u{4}'])
}

/// Puts the terminal back as it was, also when reading failed.
struct Restore<'t> {
    tty: &'t File,
    saved: Termios,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.tty, OptionalActions::Now, &self.saved);
    }
}
