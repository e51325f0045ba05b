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

/// Room for the frames most writes send together (the welcome and a token answer with a JWT
/// of 1-3 KB): serializing into a buffer that starts small grows it by copying, a dozen times
/// for one answer.
const TYPICAL_WRITE: usize = 4096;

/// Serializes `message` into one frame of at most `limit` bytes, header included.
pub fn encode<T: Serialize>(message: &T, limit: usize) -> Result<Vec<u8>, FrameError> {
    let mut buf = Vec::new();
    encode_into(message, limit, &mut buf)?;
    Ok(buf)
}

/// Appends `message` to `buf` as one frame of at most `limit` bytes, header included, so
/// frames sent together are written into one buffer. On an error `buf` is as it was.
pub fn encode_into<T: Serialize>(
    message: &T,
    limit: usize,
    buf: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let start = buf.len();
    // Sized once, by its first frame: reserving again for the next one would copy the buffer
    // for room it mostly does not need.
    if buf.capacity() == 0 {
        buf.reserve(TYPICAL_WRITE);
    }
    buf.extend_from_slice(&[0u8; 4]);
    let len = match serde_json::to_writer(&mut *buf, message) {
        Ok(()) => buf.len() - start - 4,
        Err(err) => {
            buf.truncate(start);
            return Err(FrameError::Json(err));
        }
    };
    if len > limit {
        buf.truncate(start);
        return Err(FrameError::TooLarge { len, limit });
    }
    buf[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
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
    fn frames_appended_to_one_buffer_read_back_in_order_and_a_refused_one_leaves_it_as_it_was() {
        let mut buf = Vec::new();
        encode_into(&"first", MAX_REQUEST_LEN, &mut buf).unwrap();
        encode_into(&"second", MAX_REQUEST_LEN, &mut buf).unwrap();
        let before = buf.clone();
        let big = "x".repeat(MAX_REQUEST_LEN);
        assert!(matches!(
            encode_into(&big, MAX_REQUEST_LEN, &mut buf),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(buf, before);
        let mut rest = buf.as_slice();
        for expected in ["first", "second"] {
            let len = frame_len(rest[..4].try_into().unwrap(), MAX_REQUEST_LEN).unwrap();
            assert_eq!(decode::<String>(&rest[4..4 + len]).unwrap(), expected);
            rest = &rest[4 + len..];
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn garbage_payload_is_an_error_not_a_panic() {
        assert!(decode::<Request>(b"\x00\xffnot json").is_err());
        assert!(decode::<Request>(br#"{"type":"no_such_request"}"#).is_err());
    }
}
