//! Signing out: the one transition that also talks to the IdP (revocation) and deletes the
//! keychain entry.

use stagepass_proto::{AgentError, EventKind};

use super::state::SessionData;
use super::transitions::{Change, settle};
use super::{Exclusive, Session, keychain, refresh};
use crate::errors;
use crate::sessions::Agent;
use stagepass_core::oidc::github_revoke_page;
use stagepass_core::profile::ClientAuth;
use std::time::Duration;

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
    let (revoked, note) = match session.profile.github_url() {
        Some(url) => revoke_github(agent, session, url, &held).await,
        None => revoke_refresh_token(agent, session).await,
    };
    keychain::delete(agent, name)
        .await
        .map_err(|err| errors::keychain(&err))?;
    *session.data() = SessionData::signed_out();
    settle(agent, session, Change::Announced(EventKind::SignedOut));
    Ok(SignedOut { revoked, note })
}

/// RFC 7009: the refresh token, at the IdP's revocation endpoint.
async fn revoke_refresh_token(agent: &Agent, session: &Session) -> (bool, Option<String>) {
    let name = session.name();
    let refresh_token = {
        let data = session.data();
        data.tokens
            .as_ref()
            .and_then(|tokens| tokens.refresh_token.clone())
            .or_else(|| {
                data.stored
                    .as_ref()
                    .and_then(|stored| stored.refresh_token.clone())
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
    (revoked, note)
}

/// GitHub revokes access tokens, and only with the app's client secret
/// (`DELETE /applications/{client_id}/token`); without it, the user revokes in their
/// settings. A GitHub App's access token may have to be refreshed first: after a restart
/// the agent holds only the refresh token.
async fn revoke_github(
    agent: &Agent,
    session: &Session,
    url: &str,
    held: &Exclusive<'_>,
) -> (bool, Option<String>) {
    let client_id = session.profile.client_id();
    let page = github_revoke_page(url, client_id);
    let by_hand = |why: String| {
        (
            false,
            Some(format!(
                "{why}; the app keeps its access until you revoke it at {page}"
            )),
        )
    };
    if session.profile.client_auth() != ClientAuth::Secret {
        return by_hand("not revoked: stagepass needs the app's client secret to revoke".into());
    }
    if !session.data().access_valid(agent.now()) {
        // Best effort: a refresh that fails leaves nothing to revoke, said below.
        let _ = refresh::refresh(agent, session, held).await;
    }
    let token = session
        .data()
        .tokens
        .as_ref()
        .filter(|tokens| tokens.access_valid_for(agent.now(), Duration::ZERO))
        .map(|tokens| tokens.access_token.clone());
    let Some(token) = token else {
        return by_hand("not revoked: there was no valid access token to revoke".into());
    };
    match agent.provider(session.name(), &session.profile).await {
        Err(err) => by_hand(format!("not revoked at GitHub: {err}")),
        Ok(provider) => match provider.revoke_access_token(&token, &agent.deps.http).await {
            Ok(true) => (true, None),
            Ok(false) => by_hand("not revoked: the keychain holds no client secret".into()),
            Err(err) => by_hand(format!("not revoked at GitHub: {err}")),
        },
    }
}

/// Forgets the session's tokens without touching the IdP or the keychain (a Backstage
/// profile signed in through another profile, which keeps its sign-in).
pub(crate) async fn forget_tokens(agent: &Agent, session: &Session) {
    let _held = session.exclusive().await;
    *session.data() = SessionData::signed_out();
    settle(agent, session, Change::Announced(EventKind::SignedOut));
}
