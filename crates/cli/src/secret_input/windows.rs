//! Typing a secret at a Windows console: echo off through the console input mode.
//!
//! <https://learn.microsoft.com/en-us/windows/console/setconsolemode>,
//! <https://learn.microsoft.com/en-us/windows/console/setconsolectrlhandler>

use std::io::{BufRead, Read, Write};
use std::os::windows::io::AsRawHandle;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use windows_sys::Win32::Foundation::{FALSE, HANDLE, TRUE};
use windows_sys::Win32::System::Console::{
    CONSOLE_MODE, GetConsoleMode, SetConsoleCtrlHandler, SetConsoleMode,
};

use super::console_mode;
use super::{MAX_INPUT, failed, not_cancelled};
use crate::error::CommandError;

// The mode bits are spelled out in `console_mode` so that their logic is tested on Linux too;
// here the compiler checks them against the Windows headers.
const _: () = {
    use windows_sys::Win32::System::Console as api;
    assert!(console_mode::ENABLE_PROCESSED_INPUT == api::ENABLE_PROCESSED_INPUT);
    assert!(console_mode::ENABLE_LINE_INPUT == api::ENABLE_LINE_INPUT);
    assert!(console_mode::ENABLE_ECHO_INPUT == api::ENABLE_ECHO_INPUT);
};

/// The console and the mode to put back when Ctrl-C or Ctrl-Break ends the process while echo
/// is off: the input mode belongs to the console, which the shell shares, so it would
/// otherwise stay silent after this process is gone.
static SAVED_CONSOLE: AtomicUsize = AtomicUsize::new(0);
static SAVED_MODE: AtomicU32 = AtomicU32::new(0);

/// Echo off so the secret never shows; line input so Enter ends it; Ctrl-C still ends the
/// process, after the handler has restored the console. The console's own reader (std's
/// stdin, `ReadConsoleW`) decodes what is typed from UTF-16, and takes Ctrl-Z as the end of
/// input.
pub(super) fn typed(prompt: &str) -> Result<String, CommandError> {
    let stdin = std::io::stdin();
    let console: HANDLE = stdin.as_raw_handle();
    let found = mode_of(console).map_err(failed)?;
    let mut stderr = std::io::stderr();
    stderr.write_all(prompt.as_bytes()).map_err(failed)?;
    stderr.flush().map_err(failed)?;
    let restore = Restore::quiet(console, found)?;
    let mut line = String::new();
    let read = stdin.lock().take(MAX_INPUT).read_line(&mut line);
    drop(restore);
    // Enter was not echoed either.
    let _ = stderr.write_all(b"\n");
    read.map_err(failed)?;
    // Ctrl-Z typed after other characters stays in the line as U+001A.
    not_cancelled(line, &['\u{1a}'])
}

#[allow(unsafe_code)]
fn mode_of(console: HANDLE) -> std::io::Result<CONSOLE_MODE> {
    let mut found: CONSOLE_MODE = 0;
    // SAFETY: `console` is this process's standard input, open for its lifetime; `found` is a
    // valid place for the mode.
    if unsafe { GetConsoleMode(console, &mut found) } == FALSE {
        return Err(std::io::Error::last_os_error());
    }
    Ok(found)
}

/// Echo is off while this lives; dropping it puts the found mode back.
struct Restore {
    console: HANDLE,
    found: CONSOLE_MODE,
}

impl Restore {
    #[allow(unsafe_code)]
    fn quiet(console: HANDLE, found: CONSOLE_MODE) -> Result<Restore, CommandError> {
        SAVED_CONSOLE.store(console as usize, Ordering::SeqCst);
        SAVED_MODE.store(found, Ordering::SeqCst);
        // SAFETY: `restore_on_ctrl` is a plain function that lives as long as the process.
        if unsafe { SetConsoleCtrlHandler(Some(restore_on_ctrl), TRUE) } == FALSE {
            return Err(failed(std::io::Error::last_os_error()));
        }
        let restore = Restore { console, found };
        // SAFETY: as in `typed`; the mode is a plain bit set.
        if unsafe { SetConsoleMode(console, console_mode::quiet(found)) } == FALSE {
            return Err(failed(std::io::Error::last_os_error()));
        }
        Ok(restore)
    }
}

impl Drop for Restore {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: as in `Restore::quiet`.
        unsafe {
            SetConsoleMode(self.console, self.found);
            SetConsoleCtrlHandler(Some(restore_on_ctrl), FALSE);
        }
        SAVED_CONSOLE.store(0, Ordering::SeqCst);
    }
}

/// Runs on the system's thread for Ctrl-C, Ctrl-Break or a closed console: puts the mode back
/// and answers "not handled", so the default handler then ends the process as usual.
#[allow(unsafe_code)]
unsafe extern "system" fn restore_on_ctrl(_event: u32) -> windows_sys::core::BOOL {
    let console = SAVED_CONSOLE.load(Ordering::SeqCst);
    if console != 0 {
        // SAFETY: the handle saved by `Restore::quiet`, standard input, still open.
        unsafe { SetConsoleMode(console as HANDLE, SAVED_MODE.load(Ordering::SeqCst)) };
    }
    FALSE
}
