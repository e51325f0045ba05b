//! Starting an agent in the background when none runs.

use std::fs::OpenOptions;
#[cfg(unix)]
use std::os::unix::fs::OpenOptionsExt;
#[cfg(unix)]
use std::os::unix::process::CommandExt;
#[cfg(windows)]
use std::os::windows::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stagepass_core::paths;

use crate::ClientError;

/// Agent start-up is a few milliseconds; this bounds a machine under heavy load.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run an agent: a program and its arguments (normally `stagepass agent --background`).
#[derive(Debug, Clone)]
pub struct AgentLauncher {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl AgentLauncher {
    pub fn new(program: PathBuf, args: &[&str]) -> Self {
        AgentLauncher {
            program,
            args: args.iter().map(|arg| arg.to_string()).collect(),
        }
    }

    /// Spawns the agent detached from this process and waits until its socket accepts
    /// connections. Two clients racing here start two agents; the instance lock lets one
    /// serve and the other exit quietly.
    pub(crate) fn start(&self, runtime_dir: &Path) -> Result<(), ClientError> {
        paths::ensure_private_dir(runtime_dir)?;
        // The agent keeps its log under a cap itself, also while it runs.
        let log_path = paths::agent_log_path(runtime_dir);
        let spawn = || {
            // Readable too: the agent keeps the log's last part when it reaches its cap.
            let mut options = OpenOptions::new();
            options.create(true).read(true).append(true);
            #[cfg(unix)]
            options.mode(0o600);
            let log = options.open(&log_path)?;
            let mut command = Command::new(&self.program);
            command
                .args(&self.args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            detach(&mut command);
            command.spawn().map_err(|err| {
                ClientError::Start(format!("cannot run {}: {err}", self.program.display()))
            })
        };
        let mut child = spawn()?;
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if crate::transport::connect(runtime_dir).is_ok() {
                return Ok(());
            }
            match child.try_wait() {
                Ok(Some(status)) if !status.success() => {
                    return Err(ClientError::Start(format!(
                        "{status}; {}",
                        log_tail(&log_path).unwrap_or_else(|| "no log".into())
                    )));
                }
                // It found another agent holding the lock: either a live one that is about
                // to accept (keep polling) or one that is still dying after a crash, whose
                // lock is about to be released (start again).
                Ok(Some(_)) => {
                    std::thread::sleep(Duration::from_millis(20));
                    if crate::transport::connect(runtime_dir).is_err() {
                        child = spawn()?;
                    }
                }
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        Err(ClientError::Start(format!(
            "no socket after {START_TIMEOUT:?}; see {}",
            log_path.display()
        )))
    }
}

/// Its own process group: Ctrl-C in the terminal that started it must not stop the agent
/// that every other program relies on.
#[cfg(unix)]
fn detach(command: &mut Command) {
    command.process_group(0);
}

/// No console window, and out of the starting console's Ctrl-C
/// ([`stagepass_core::platform::WINDOWS_BACKGROUND_FLAGS`]).
#[cfg(windows)]
fn detach(command: &mut Command) {
    command.creation_flags(stagepass_core::platform::WINDOWS_BACKGROUND_FLAGS);
}

fn log_tail(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let last = text.lines().rev().find(|line| !line.trim().is_empty())?;
    Some(last.trim().to_string())
}
