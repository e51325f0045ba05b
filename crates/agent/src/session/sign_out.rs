//! Signing out: the one transition that also talks to the IdP (revocation) and deletes the
//! keychain entry.

use stagepass_proto::{AgentError, EventKind};

use super::state::SessionData;
use super::transitions::{Change, settle};
use super::{Session, keychain};
use crate::errors;
use crate::sessions::Agent;

/// What a sign-out did at the IdP.
pub(crate) struct SignedOut {
    /// Whether the IdP confirmed the revocation of the refresh token.
    pub revoked: bool,
    pub note: Option<String>,
}

/// Revokes the refresh token at the IdP (when it offers revocation), deletes the keychain
/// entry and forgets the tokens. A failed revocation does not keep the user signed in
/// locally; the answer says what happened at the IdP.
pub(crate) async fn sign_out(agent: &Agent, session: &Session) -> Result<SignedOut, AgentError> {
    let name = session.name();
    let held = session.exclusive().await;
    keychain::load(agent, session, &held)
        .await
        .map_err(|err| errors::keychain(&err))?;
    let refresh_token = {
        let data = session.data();
        data.tokens
            .as_ref()
            .and_then(|tokens| tokens.refresh_token.clone())
            .or_else(|| {
                data.stored
                    .as_ref()
                    .map(|stored| stored.refresh_token.clone())
            })
    };
    let (revoked, note) = match refresh_token {
        None => (false, Some("there was no refresh token to revoke".to_string())),
        Some(refresh_token) => match agent.provider(name, &session.profile).await {
            Err(err) => (false, Some(format!("not revoked at the IdP: {err}"))),
            Ok(provider) => match provider.revoke(&refresh_token, &agent.deps.http).await {
                Ok(true) => (true, None),
                Ok(false) => (
                    false,
                    Some("the IdP offers no revocation endpoint; the refresh token stays valid there until it expires".into()),
                ),
                Err(err) => (false, Some(format!("not revoked at the IdP: {err}"))),
            },
        },
    };
    keychain::delete(agent, name)
        .await
        .map_err(|err| errors::keychain(&err))?;
    *session.data() = SessionData::signed_out();
    settle(agent, session, Change::Announced(EventKind::SignedOut));
    Ok(SignedOut { revoked, note })
}

/// Forgets the session's tokens without touching the IdP or the keychain (a Backstage
/// profile signed in through another profile, which keeps its sign-in).
pub(crate) async fn forget_tokens(agent: &Agent, session: &Session) {
    let _held = session.exclusive().await;
    *session.data() = SessionData::signed_out();
    settle(agent, session, Change::Announced(EventKind::SignedOut));
}
