//! Running a program in stagepass's place (`stagepass exec`, `stagepass agent`): its exit
//! code, and on Unix its signals, become stagepass's own.

use std::process::{Command, ExitStatus};

/// Replaces this process with `command` (exec); returns only the error of a failed exec.
#[cfg(unix)]
pub fn run_in_place(mut command: Command) -> std::io::Error {
    std::os::unix::process::CommandExt::exec(&mut command)
}

/// Windows cannot replace a process: the command runs as a child, and this process exits
/// with its exit code when it ends. Ctrl-C reaches both (one console), as a shell's would.
#[cfg(windows)]
pub fn run_in_place(mut command: Command) -> std::io::Error {
    match command.status() {
        Ok(status) => exit_as(status),
        Err(err) => err,
    }
}

/// Ends this process with a child's exit code; a child ended by a signal as a shell reports
/// it (128 + the signal).
pub fn exit_as(status: ExitStatus) -> ! {
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&status);
    #[cfg(not(unix))]
    let signal: Option<i32> = None;
    let code = status
        .code()
        .or_else(|| signal.map(|signal| 128 + signal))
        .unwrap_or(1);
    std::process::exit(code)
}
