//! The keychain side of a session: read once per agent life, written after every rotation.

use stagepass_core::paths;
use stagepass_core::store::{KeychainError, StoredLogin};
use stagepass_core::tokens::TokenSet;

use stagepass_proto::AgentError;

use super::{Exclusive, Session};
use crate::errors;
use crate::refresh_worker;
use crate::sessions::Agent;

/// Reads the profile's keychain entry once per agent life.
pub(super) async fn load(
    agent: &Agent,
    session: &Session,
    _held: &Exclusive<'_>,
) -> Result<(), KeychainError> {
    if session.data().loaded {
        return Ok(());
    }
    let logins = agent.deps.logins.clone();
    let account = session.name().to_string();
    let lock_dir = paths::refresh_lock_dir(&agent.options.data_dir);
    let stored = blocking(move || {
        refresh_worker::wait_for_workers(&lock_dir, &account);
        logins.load(&account)
    })
    .await?;
    let mut data = session.data();
    data.stored = stored
        .filter(|login| login.belongs_to(&session.profile.issuer(), session.profile.client_id()));
    data.loaded = true;
    if data.tokens.is_none() {
        data.tokens = data.stored.as_ref().and_then(non_expiring_tokens);
    }
    let signed_in = data.stored.is_some();
    drop(data);
    if signed_in {
        keep_refresh_worker_ready(agent);
    }
    Ok(())
}

/// Whether a refresh token is held for the session (in memory or in the keychain), for a
/// sign-in deciding whether to ask the IdP for a new one. An unreadable keychain counts as
/// none: asking again costs only a consent screen.
pub(crate) async fn holds_refresh_token(
    agent: &Agent,
    session: &Session,
    held: &Exclusive<'_>,
) -> bool {
    if load(agent, session, held).await.is_err() {
        return false;
    }
    session.data().held_refresh().is_some()
}

/// A login that is an access token which never expires (GitHub OAuth Apps) is served from
/// the keychain as it is: there is nothing to refresh.
fn non_expiring_tokens(stored: &StoredLogin) -> Option<TokenSet> {
    Some(TokenSet {
        access_token: stored.access_token.clone()?,
        token_type: "Bearer".into(),
        expires_at: None,
        refresh_token: None,
        id_token: None,
        id_claims: stored.identity.clone(),
        refresh_lifetime: None,
        received_at: stagepass_core::clock::from_unix_secs(stored.saved_at),
    })
}

/// Reads the keychain entry for reports (status, claims), unless a sign-in or refresh holds
/// the session: then the report shows what memory holds. An interactive sign-in can wait
/// minutes for the user, and nothing else may wait behind it.
pub(crate) async fn load_unless_busy(
    agent: &Agent,
    session: &Session,
) -> Result<(), KeychainError> {
    match session.try_exclusive() {
        Some(held) => load(agent, session, &held).await,
        None => Ok(()),
    }
}

/// Has a refresh worker ready for the profiles that hold refresh tokens.
pub(super) fn keep_refresh_worker_ready(agent: &Agent) {
    if let Some(workers) = &agent.deps.refresh_worker {
        workers.keep_spare();
    }
}

pub(super) async fn save(
    agent: &Agent,
    name: &str,
    login: StoredLogin,
) -> Result<(), KeychainError> {
    let logins = agent.deps.logins.clone();
    let account = name.to_string();
    blocking(move || logins.save(&account, &login)).await
}

pub(super) async fn delete(agent: &Agent, name: &str) -> Result<bool, KeychainError> {
    let logins = agent.deps.logins.clone();
    let account = name.to_string();
    blocking(move || logins.delete(&account)).await
}

/// Fails before the user spends effort on a sign-in the keychain could not keep.
pub(crate) async fn check_reachable(agent: &Agent, session: &Session) -> Result<(), AgentError> {
    let logins = agent.deps.logins.clone();
    let account = session.name().to_string();
    blocking(move || logins.check_reachable(&account))
        .await
        .map_err(|err| errors::keychain(&err))
}

/// Keychain calls block on D-Bus; keep them off the async workers.
async fn blocking<T: Send + 'static>(
    op: impl FnOnce() -> Result<T, KeychainError> + Send + 'static,
) -> Result<T, KeychainError> {
    tokio::task::spawn_blocking(op)
        .await
        .unwrap_or_else(|err| Err(KeychainError::Other(format!("keychain task failed: {err}"))))
}
