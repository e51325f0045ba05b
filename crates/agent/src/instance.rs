//! One agent per runtime directory: an exclusive lock on `agent.lock` decides who serves,
//! and only the lock holder may replace the socket.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use stagepass_core::paths;

use crate::AgentStartError;

#[derive(Debug, thiserror::Error)]
#[error("an agent already runs for {runtime_dir}{}", pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default())]
pub struct AlreadyRunning {
    pub runtime_dir: String,
    pub pid: Option<u32>,
}

/// Held for the agent's whole life; the OS releases the lock when the process dies, even on
/// kill -9, so a crashed agent never blocks the next one.
pub(crate) struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    pub(crate) fn acquire(runtime_dir: &Path) -> Result<InstanceLock, AgentStartError> {
        let io = |context: String| move |source| AgentStartError::Io { context, source };
        paths::ensure_private_dir(runtime_dir)
            .map_err(io(format!("runtime dir {}", runtime_dir.display())))?;
        let path = paths::lock_path(runtime_dir);
        let mut file = paths::private_open_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(format!("cannot open {}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(AlreadyRunning {
                    runtime_dir: runtime_dir.display().to_string(),
                    pid: pid.trim().parse().ok(),
                }
                .into());
            }
            Err(TryLockError::Error(err)) => {
                return Err(io(format!("cannot lock {}", path.display()))(err));
            }
        }
        // The pid is informational (error messages); the lock is what counts.
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()))
            .map_err(io(format!("cannot write {}", path.display())))?;
        Ok(InstanceLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_instance_is_refused_with_the_first_pid() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("rt");
        let _first = InstanceLock::acquire(&dir).unwrap();
        match InstanceLock::acquire(&dir) {
            Err(AgentStartError::AlreadyRunning(running)) => {
                assert_eq!(running.pid, Some(std::process::id()));
            }
            other => panic!("expected AlreadyRunning, got {:?}", other.err()),
        }
    }
}
