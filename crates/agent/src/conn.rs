//! Async framing over a connection of the transport (socket or pipe), with a timeout on every read and write.

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};
use stagepass_proto::{
    FrameError, MAX_REQUEST_LEN, MAX_RESPONSE_LEN, decode, encode_into, frame_len,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};

pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Room for a client's hello and first request together (the client writes them at once):
/// one read for both instead of two per frame. Larger frames are read past the buffer.
const READ_BUFFER: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnError {
    #[error("the client went away")]
    Closed,
    #[error("timed out")]
    Timeout,
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Frame(#[from] FrameError),
}

pub(crate) struct Connection {
    /// Writes pass straight through the buffer to the socket.
    stream: BufReader<crate::transport::Stream>,
    /// Frames waiting to go out with the next write: one write per answer means one
    /// wake-up of the client, which matters on the token fast path.
    queued: Vec<u8>,
}

impl Connection {
    pub(crate) fn new(stream: crate::transport::Stream) -> Self {
        Connection {
            stream: BufReader::with_capacity(READ_BUFFER, stream),
            queued: Vec::new(),
        }
    }

    /// Sends `message` together with the next [`Connection::write`].
    pub(crate) fn queue<T: Serialize>(&mut self, message: &T) -> Result<(), ConnError> {
        Ok(encode_into(message, MAX_RESPONSE_LEN, &mut self.queued)?)
    }

    pub(crate) async fn read<T: DeserializeOwned>(&mut self) -> Result<T, ConnError> {
        tokio::time::timeout(READ_TIMEOUT, async {
            let mut header = [0u8; 4];
            match self.stream.read_exact(&mut header).await {
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(ConnError::Closed);
                }
                Err(err) => return Err(err.into()),
            }
            let mut payload = vec![0u8; frame_len(header, MAX_REQUEST_LEN)?];
            self.stream.read_exact(&mut payload).await?;
            Ok(decode(&payload)?)
        })
        .await
        .map_err(|_| ConnError::Timeout)?
    }

    /// Sends the queued frames and `message`. A message too large for one frame is an error
    /// before anything is sent, so the caller can still answer with an error instead.
    pub(crate) async fn write<T: Serialize>(&mut self, message: &T) -> Result<(), ConnError> {
        let frame = self.frame(message)?;
        self.send(&frame).await
    }

    /// The queued frames and `message`, as the bytes to send; the queue is then empty. On an
    /// error (too large) the queue stays.
    pub(crate) fn frame<T: Serialize>(&mut self, message: &T) -> Result<Vec<u8>, ConnError> {
        encode_into(message, MAX_RESPONSE_LEN, &mut self.queued)?;
        Ok(std::mem::take(&mut self.queued))
    }

    pub(crate) async fn send(&mut self, frame: &[u8]) -> Result<(), ConnError> {
        tokio::time::timeout(WRITE_TIMEOUT, self.stream.write_all(frame))
            .await
            .map_err(|_| ConnError::Timeout)?
            .map_err(|err| match err.kind() {
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                    ConnError::Closed
                }
                _ => ConnError::Io(err),
            })
    }

    /// A second descriptor of the socket, for the audit writer to send an answer on.
    #[cfg(unix)]
    pub(crate) fn duplicate(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        std::os::fd::AsFd::as_fd(self.stream.get_ref()).try_clone_to_owned()
    }
}
