//! The one token path: memory first, then a single-flight refresh. Never a sign-in (the
//! handlers that may start one do so on `NeedsSignIn`).

use std::time::{Duration, SystemTime};

use stagepass_proto::{AgentError, ErrorKind, Secret, TokenGrant, TokenKind};

use super::{Exclusive, Session, SessionData, refresh};
use crate::audit::fingerprint;
use crate::errors;
use crate::sessions::Agent;
use crate::sync::lock;

/// The session's token of `kind`, valid for `min_valid`, refreshing first when needed.
///
/// Single flight: one caller refreshes while the others wait for it to let go of the
/// session, then all of them look at once (a queue on the lock would hand it from one
/// waiter to the next, each a turn of the event loop behind the one before). They answer
/// with the refresh's tokens, or its failure; only after a holder that was no refresh (a
/// sign-in, a sign-out) do they queue for the lock, in turn, as before.
pub(crate) async fn token(
    agent: &Agent,
    session: &Session,
    kind: TokenKind,
    min_valid: Duration,
) -> Result<TokenGrant, AgentError> {
    let generation = session.data().generation;
    if let Some(grant) = fresh_grant(session, kind, agent.now(), min_valid) {
        return Ok(grant);
    }
    let refreshes = lock(&session.refreshes).count;
    let released = session.released.notified();
    tokio::pin!(released);
    // Registered before the attempt, so a release in between is not missed.
    released.as_mut().enable();
    if let Some(held) = session.try_exclusive() {
        return refresh_unless_done(agent, session, kind, min_valid, generation, &held).await;
    }
    released.await;
    if let Some(outcome) = done(agent, session, kind, min_valid, generation) {
        return outcome;
    }
    if let Some(failure) = failed_since(session, refreshes) {
        return stale_or(agent, session, kind, failure);
    }
    let held = session.exclusive().await;
    refresh_unless_done(agent, session, kind, min_valid, generation, &held).await
}

/// Refreshes, unless a refresh since the caller's first look (`generation`) left a token or
/// a failure to answer with.
async fn refresh_unless_done(
    agent: &Agent,
    session: &Session,
    kind: TokenKind,
    min_valid: Duration,
    generation: u64,
    held: &Exclusive<'_>,
) -> Result<TokenGrant, AgentError> {
    if let Some(outcome) = done(agent, session, kind, min_valid, generation) {
        return outcome;
    }
    // Boxed: a refresh's state (the worker or the IdP call, the keychain write) is ~13 KB
    // that every token request's future would otherwise carry into its connection's task,
    // for the one caller in many that refreshes.
    let refreshed = Box::pin(refresh::refresh(agent, session, held)).await;
    {
        let mut refreshes = lock(&session.refreshes);
        refreshes.count += 1;
        refreshes.last_failure = refreshed.as_ref().err().cloned();
    }
    if let Err(err) = refreshed {
        return stale_or(agent, session, kind, err);
    }
    fresh_grant(session, kind, agent.now(), Duration::ZERO).ok_or_else(|| {
        errors::reply(
            ErrorKind::Idp,
            format!(
                "the IdP's refresh gave no valid {} for profile `{}`",
                kind_name(kind),
                session.name()
            ),
            Some("the IdP issues tokens shorter-lived than requested; lower --min-valid".into()),
        )
    })
}

/// How the last of the refreshes after the caller's first look (`seen` of them) failed.
fn failed_since(session: &Session, seen: u64) -> Option<AgentError> {
    let refreshes = lock(&session.refreshes);
    if refreshes.count == seen {
        return None;
    }
    refreshes.last_failure.clone()
}

/// What the state answers without a refresh: a fresh token (any valid one, when tokens
/// arrived since the caller's first look at `generation`), or the failure the IdP is
/// backing off from.
fn done(
    agent: &Agent,
    session: &Session,
    kind: TokenKind,
    min_valid: Duration,
    generation: u64,
) -> Option<Result<TokenGrant, AgentError>> {
    let min_valid = if session.data().generation == generation {
        min_valid
    } else {
        Duration::ZERO
    };
    if let Some(grant) = fresh_grant(session, kind, agent.now(), min_valid) {
        return Some(Ok(grant));
    }
    // While the IdP is failing, a token that is still valid beats an error, and the IdP is
    // asked again only when the backoff allows.
    let failure = session.data().backing_off(agent.now())?;
    Some(stale_or(agent, session, kind, failure))
}

/// `err`, or the token still valid when the IdP could not be reached.
fn stale_or(
    agent: &Agent,
    session: &Session,
    kind: TokenKind,
    err: AgentError,
) -> Result<TokenGrant, AgentError> {
    match fresh_grant(session, kind, agent.now(), Duration::ZERO) {
        Some(grant) if err.kind == ErrorKind::IdpUnreachable => Ok(grant),
        _ => Err(err),
    }
}

/// The token memory holds, when it is valid for `min_valid` and may be handed out.
pub(crate) fn cached_token(
    agent: &Agent,
    session: &Session,
    kind: TokenKind,
    min_valid: Duration,
) -> Option<TokenGrant> {
    fresh_grant(session, kind, agent.now(), min_valid)
}

fn kind_name(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Access => "access token",
        TokenKind::Id => "id_token",
    }
}

/// What [`token`] would hand out from memory, looked at in place: `look` gets the token when
/// it is valid for `min_valid` and may be handed out, without a copy of it or a grant built
/// around it (the proxy asks for every request it forwards).
pub(crate) fn peek_token<T>(
    agent: &Agent,
    session: &Session,
    kind: TokenKind,
    min_valid: Duration,
    look: impl FnOnce(&str) -> T,
) -> Option<T> {
    let data = session.data();
    fresh(&data, kind, agent.now(), min_valid).map(look)
}

/// The token of `kind` in `data`, when it is valid for `min_valid` and may be handed out.
fn fresh(
    data: &SessionData,
    kind: TokenKind,
    now: SystemTime,
    min_valid: Duration,
) -> Option<&str> {
    // Not handed out until the keychain holds the refresh token that goes with them.
    if data.unsaved {
        return None;
    }
    let tokens = data.tokens.as_ref()?;
    let token = match kind {
        TokenKind::Access => tokens
            .access_valid_for(now, min_valid)
            .then(|| tokens.access_token.expose())?,
        TokenKind::Id => tokens.id_token_valid_for(now, min_valid)?.expose(),
    };
    if data
        .rejected
        .as_ref()
        .is_some_and(|rejected| *rejected == fingerprint(token))
    {
        return None;
    }
    Some(token)
}

fn fresh_grant(
    session: &Session,
    kind: TokenKind,
    now: SystemTime,
    min_valid: Duration,
) -> Option<TokenGrant> {
    let data = session.data();
    let token = fresh(&data, kind, now, min_valid)?;
    let tokens = data.tokens.as_ref()?;
    let expires_at = match kind {
        TokenKind::Access => tokens.expires_at_unix(),
        TokenKind::Id => tokens.id_token_expires_at(),
    };
    Some(TokenGrant {
        profile: session.name().to_string(),
        token: Secret::new(token.to_string()),
        token_type: match kind {
            TokenKind::Access => tokens.token_type.clone(),
            TokenKind::Id => "N_A".into(),
        },
        expires_at,
        kind,
        audience: match kind {
            TokenKind::Access => session.profile.audience().map(String::from),
            TokenKind::Id => Some(session.profile.client_id().to_string()),
        },
    })
}
