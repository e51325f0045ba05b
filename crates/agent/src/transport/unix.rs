//! The Unix socket transport (Linux, macOS): `agent.sock`, 0600 in the 0700 runtime dir, and
//! the peer's uid checked on every connection as a second lock on the door. tokio reads the
//! peer with `SO_PEERCRED` on Linux and with `getpeereid` plus `LOCAL_PEEREPID` on macOS.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use stagepass_core::paths;
use tokio::net::UnixListener;

use super::{PeerError, PeerIdentity};

pub(crate) type Stream = tokio::net::UnixStream;

pub(crate) struct Listener {
    listener: UnixListener,
    path: PathBuf,
    /// The socket's inode when bound: a socket removed or replaced by hand is not ours.
    inode: Option<u64>,
}

impl Listener {
    /// Binds the socket. Only the instance lock's holder calls this, so a socket left in
    /// place is a dead agent's and is replaced.
    pub(crate) fn bind(runtime_dir: &std::path::Path) -> Result<Listener, (String, io::Error)> {
        let path = paths::socket_path(runtime_dir);
        match std::fs::remove_file(&path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => {
                return Err((format!("cannot remove the stale {}", path.display()), err));
            }
            _ => {}
        }
        let listener = UnixListener::bind(&path)
            .map_err(|err| (format!("cannot listen on {}", path.display()), err))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|err| (format!("cannot restrict {}", path.display()), err))?;
        let inode = std::fs::metadata(&path).map(|meta| meta.ino()).ok();
        Ok(Listener {
            listener,
            path,
            inode,
        })
    }

    /// Where clients reach this listener, for the log.
    pub(crate) fn address(&self) -> String {
        self.path.display().to_string()
    }

    /// Cancel-safe, as the accept loop's `select!` needs.
    pub(crate) async fn accept(&self) -> io::Result<(Stream, ())> {
        let (stream, _) = self.listener.accept().await?;
        Ok((stream, ()))
    }

    /// Whether the socket is still the one bound: a removed runtime dir (a finished test, a
    /// user cleaning up) or a socket replaced by hand ends the agent instead of leaving it
    /// unreachable forever.
    pub(crate) fn still_ours(&self) -> bool {
        std::fs::metadata(&self.path).map(|meta| meta.ino()).ok() == self.inode
    }

    /// Removes the socket if it is still ours: `agent stop` returns when the socket is gone.
    pub(crate) fn close(self) {
        if self.still_ours() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The peer of `stream`, refused unless it runs as this user.
pub(crate) fn peer(stream: &Stream) -> Result<PeerIdentity, PeerError> {
    let cred = stream.peer_cred()?;
    if cred.uid() != paths::current_uid() {
        return Err(PeerError::OtherUser {
            uid: cred.uid(),
            pid: cred.pid(),
        });
    }
    Ok(PeerIdentity {
        pid: cred.pid(),
        uid: Some(cred.uid()),
    })
}
