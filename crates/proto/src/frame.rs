//! Length-prefixed JSON frames: a 4-byte big-endian length, then that many bytes of JSON.
//!
//! Only the pure parts live here so that the blocking client and the async agent share them.

use serde::{Serialize, de::DeserializeOwned};

/// Upper bound of a frame a client sends the agent. Requests name a profile or carry a git
/// credential: a few KiB; anything near this is an attack or a bug, and refusing it keeps a
/// client from making the agent allocate without bound.
pub const MAX_REQUEST_LEN: usize = 1 << 20;

/// Upper bound of a frame the agent sends a client. Answers grow with the config: the status
/// of ten thousand profiles is a few MiB. Bounded still, so that a confused peer cannot make
/// a client allocate without end.
pub const MAX_RESPONSE_LEN: usize = 64 << 20;

#[derive(Debug)]
pub enum FrameError {
    TooLarge { len: usize, limit: usize },
    Json(serde_json::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { len, limit } => {
                write!(f, "a message of {len} bytes exceeds the {limit}-byte limit")
            }
            FrameError::Json(err) => write!(f, "malformed message: {err}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Serializes `message` into one frame of at most `limit` bytes, header included.
pub fn encode<T: Serialize>(message: &T, limit: usize) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; 4];
    serde_json::to_writer(&mut buf, message).map_err(FrameError::Json)?;
    let len = buf.len() - 4;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Reads the payload length from a frame header, refusing frames over `limit` before any
/// allocation happens.
pub fn frame_len(header: [u8; 4], limit: usize) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    Ok(len)
}

/// Parses one frame payload (without its header).
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, FrameError> {
    serde_json::from_slice(payload).map_err(FrameError::Json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, TokenKind};

    #[test]
    fn round_trips_a_request() {
        let request = Request::GetToken {
            profile: Some("corp".into()),
            kind: TokenKind::Id,
            min_valid_secs: 30,
            interactive: false,
            browser_available: false,
        };
        let frame = encode(&request, MAX_REQUEST_LEN).unwrap();
        let len = frame_len(frame[..4].try_into().unwrap(), MAX_REQUEST_LEN).unwrap();
        assert_eq!(len, frame.len() - 4);
        let back: Request = decode(&frame[4..]).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn refuses_oversized_header_before_reading_the_body() {
        let header = ((MAX_REQUEST_LEN + 1) as u32).to_be_bytes();
        assert!(matches!(
            frame_len(header, MAX_REQUEST_LEN),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(frame_len(header, MAX_RESPONSE_LEN).is_ok());
        let big = "x".repeat(MAX_REQUEST_LEN);
        assert!(matches!(
            encode(&big, MAX_REQUEST_LEN),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_payload_is_an_error_not_a_panic() {
        assert!(decode::<Request>(b"\x00\xffnot json").is_err());
        assert!(decode::<Request>(br#"{"type":"no_such_request"}"#).is_err());
    }
}
