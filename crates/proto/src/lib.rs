//! Wire types between the stagepass agent and its clients (CLI, helpers, tray).
//!
//! Every connection starts with the client sending a [`Hello`] followed by one [`Request`]
//! (pipelined, so the handshake costs no extra round trip). The agent answers with a
//! [`Welcome`] and then one or more [`Response`] frames: exactly one for every request except
//! [`Request::Login`], which streams [`Response::LoginProgress`] frames before its final answer.
//! The agent refuses any other protocol version with [`ErrorKind::ProtocolMismatch`]. A
//! connection carries requests until the client hangs up, or, when its hello says
//! [`Hello::single_request`], until the agent has given the first request's final answer.

pub mod approval;
mod frame;
mod messages;
pub mod remote;
mod secret;

pub use frame::{
    FrameError, MAX_REQUEST_LEN, MAX_RESPONSE_LEN, decode, encode, encode_into, frame_len,
};
pub use messages::*;
pub use secret::{AccessToken, ClientSecret, IdToken, RefreshToken, RemoteKey, Secret};

/// Bumped on every incompatible change of the types in this crate.
pub const PROTOCOL_VERSION: u32 = 7;
