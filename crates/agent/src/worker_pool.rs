//! One refresh worker kept ready ahead of need.
//!
//! Starting a worker costs an exec and a Secret Service session (a D-Bus connection plus a
//! Diffie-Hellman exchange): measured here, about 15 ms of a 33 ms refresh, and every caller
//! waiting for that refresh waits for it too. So once a profile holds a refresh token, and
//! again after each refresh, the agent starts the next worker at once. The spare opens its
//! keychain session, then blocks reading its job from stdin. When the agent exits or drops
//! it, the spare reads end-of-input and exits having done nothing.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio::process::{Child, Command};

use crate::refresh_worker::WORKER_FLAG;
use crate::sync::lock;

pub(crate) struct WorkerPool {
    program: PathBuf,
    spare: Mutex<Option<Child>>,
}

impl WorkerPool {
    /// Workers run `program` (the agent's own binary) with [`WORKER_FLAG`].
    pub(crate) fn new(program: PathBuf) -> WorkerPool {
        WorkerPool {
            program,
            spare: Mutex::new(None),
        }
    }

    pub(crate) fn program(&self) -> &Path {
        &self.program
    }

    /// A worker for the next refresh: the spare when it is still alive, else a fresh one.
    pub(crate) fn take(&self) -> std::io::Result<Child> {
        if let Some(mut spare) = self.lock().take()
            && matches!(spare.try_wait(), Ok(None))
        {
            return Ok(spare);
        }
        spawn(&self.program)
    }

    /// Starts a spare unless a live one waits already. Must run inside the tokio runtime.
    pub(crate) fn keep_spare(&self) {
        let mut spare = self.lock();
        if let Some(child) = spare.as_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            return;
        }
        match spawn(&self.program) {
            Ok(child) => *spare = Some(child),
            // Not fatal: the next refresh starts its own worker.
            Err(err) => tracing::warn!("cannot start a spare refresh worker: {err}"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Child>> {
        lock(&self.spare)
    }
}

fn spawn(program: &Path) -> std::io::Result<Child> {
    let mut command = Command::new(program);
    command
        .arg(WORKER_FLAG)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(false);
    // Its own process group: whatever stops the agent must not stop a refresh halfway.
    #[cfg(unix)]
    command.process_group(0);
    #[cfg(windows)]
    command.creation_flags(stagepass_core::platform::WINDOWS_BACKGROUND_FLAGS);
    command.spawn()
}
