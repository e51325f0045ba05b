//! Remote mode (`STAGEPASS_REMOTE` set): tokens and git credentials come from the desktop
//! agent's remote endpoint through a port forward; nothing here signs in, reads a config or
//! starts an agent. The answers become the same types the local socket gives, so each
//! command has one code path after the fetch.

use stagepass_client::remote::Remote;
use stagepass_proto::remote::{
    CREDENTIAL_PATH, CredentialAnswer, CredentialRequest, TOKEN_PATH, TokenAnswer, TokenRequest,
};
use stagepass_proto::{CredentialGrant, TokenGrant, TokenKind};

use crate::error::CommandError;

/// The remote endpoint, when remote mode is on.
pub fn remote() -> Result<Option<Remote>, CommandError> {
    Ok(Remote::from_env().transpose()?)
}

pub fn token(
    remote: &Remote,
    profile: Option<String>,
    kind: TokenKind,
    min_valid_secs: u64,
) -> Result<TokenGrant, CommandError> {
    let answer: TokenAnswer = remote.post(
        TOKEN_PATH,
        &TokenRequest {
            profile,
            kind,
            min_valid_secs,
        },
    )?;
    Ok(grant(answer))
}

pub fn credential(
    remote: &Remote,
    url: String,
    bearer_ok: bool,
) -> Result<Option<CredentialGrant>, CommandError> {
    let answer: CredentialAnswer =
        remote.post(CREDENTIAL_PATH, &CredentialRequest { url, bearer_ok })?;
    Ok(answer.credential.map(|credential| CredentialGrant {
        grant: grant(credential.token),
        username: credential.username,
        bearer: credential.bearer,
    }))
}

fn grant(answer: TokenAnswer) -> TokenGrant {
    TokenGrant {
        profile: answer.profile,
        token: answer.token,
        token_type: answer.token_type,
        expires_at: answer.expires_at,
        audience: answer.audience,
        kind: TokenKind::Access,
    }
}
