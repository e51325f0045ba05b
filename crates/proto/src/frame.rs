//! Length-prefixed JSON frames: a 4-byte big-endian length, then that many bytes of JSON.
//!
//! Only the pure parts live here so that the blocking client and the async agent share them.

use serde::{Serialize, de::DeserializeOwned};

/// Upper bound of one frame. Tokens and claims are a few KiB; anything near this is an attack
/// or a bug, and refusing it keeps a hostile peer from making us allocate without bound.
pub const MAX_FRAME_LEN: usize = 1 << 20;

#[derive(Debug)]
pub enum FrameError {
    TooLarge(usize),
    Json(serde_json::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge(len) => {
                write!(
                    f,
                    "frame of {len} bytes exceeds the {MAX_FRAME_LEN}-byte limit"
                )
            }
            FrameError::Json(err) => write!(f, "malformed message: {err}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Serializes `message` into one frame, header included.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; 4];
    serde_json::to_writer(&mut buf, message).map_err(FrameError::Json)?;
    let len = buf.len() - 4;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Reads the payload length from a frame header, refusing oversized frames before any
/// allocation happens.
pub fn frame_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
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
        let frame = encode(&request).unwrap();
        let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, frame.len() - 4);
        let back: Request = decode(&frame[4..]).unwrap();
        assert_eq!(back, request);
    }

    #[test]
    fn refuses_oversized_header_before_reading_the_body() {
        let header = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
        assert!(matches!(frame_len(header), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn garbage_payload_is_an_error_not_a_panic() {
        assert!(decode::<Request>(b"\x00\xffnot json").is_err());
        assert!(decode::<Request>(br#"{"type":"no_such_request"}"#).is_err());
    }
}
