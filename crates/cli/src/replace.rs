//! Running a program in stagepass's place (`stagepass exec`, `stagepass agent`): its exit
//! code, and on Unix its signals, become stagepass's own.

use std::process::Command;

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
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(err) => err,
    }
}
