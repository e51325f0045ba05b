//! The one seam between the agent and its clients' transport: listen, accept, and who is on
//! the other end. A Unix socket on Linux and macOS ([`unix`]), a named pipe on Windows
//! ([`windows`]). Framing, the version handshake and the timeouts are the same over both
//! (`stagepass-proto` and [`crate::conn`]): a connection is only a byte stream.

#[cfg(unix)]
mod unix;
#[cfg(windows)]
mod windows;

#[cfg(unix)]
pub(crate) use unix::{Listener, Stream, peer};
#[cfg(windows)]
pub(crate) use windows::{Listener, Stream, peer};

/// Who connected, as the operating system tells it (never as the client claims).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerIdentity {
    pub pid: Option<i32>,
    /// The Unix uid; Windows has none (the pipe's DACL admits the user's SID alone).
    pub uid: Option<u32>,
}

/// Why a connection was not served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PeerError {
    #[error("cannot read the peer's credentials: {0}")]
    Unreadable(#[from] std::io::Error),
    #[cfg(unix)]
    #[error("refused a connection from uid {uid} (pid {pid:?}): another user")]
    OtherUser { uid: u32, pid: Option<i32> },
}
