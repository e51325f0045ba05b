//! The remote endpoint's HTTP API, on the proxy's loopback listener, for a `stagepass` in
//! remote mode on the far side of an SSH or Codespaces port forward.
//!
//! Every request is a `POST` of JSON under [`PATH_PREFIX`] with
//! `Authorization: Bearer REMOTE_KEY`. A success is `200` with the documented body; a failure
//! is a non-2xx status with an [`crate::AgentError`] as JSON (`kind` `remote_key` for a key
//! that is unknown, revoked, expired or out of scope). The path carries the API version:
//! an incompatible change gets a new prefix, so old and new binaries fail clearly.

use serde::{Deserialize, Serialize};

use crate::{Secret, TokenKind};

pub const PATH_PREFIX: &str = "/.stagepass/v1/";
/// `POST` [`TokenRequest`] -> [`TokenAnswer`].
pub const TOKEN_PATH: &str = "/.stagepass/v1/token";
/// `POST` [`CredentialRequest`] -> [`CredentialAnswer`].
pub const CREDENTIAL_PATH: &str = "/.stagepass/v1/credential";
/// Bounds what a caller can make the agent (or the client) read.
pub const MAX_BODY: usize = 16 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRequest {
    /// `None`: the key's only profile, else the config's default when the key covers it.
    #[serde(default)]
    pub profile: Option<String>,
    /// Only `access`: remote keys never get an id_token.
    #[serde(default)]
    pub kind: TokenKind,
    #[serde(default)]
    pub min_valid_secs: u64,
}

/// An access token; never a refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenAnswer {
    pub profile: String,
    pub token: Secret<String>,
    pub token_type: String,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    pub audience: Option<String>,
}

/// git's question, mapped by the agent's `[[git]]` tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRequest {
    pub url: String,
    #[serde(default)]
    pub bearer_ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialAnswer {
    /// `None`: the URL is not mapped; git goes on to its next helper.
    pub credential: Option<RemoteCredential>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteCredential {
    pub username: String,
    pub bearer: bool,
    pub token: TokenAnswer,
}
