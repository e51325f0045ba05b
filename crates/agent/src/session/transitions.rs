//! Every change of a session's state, each a transition that ends in [`settle`]: the
//! scheduler is woken, subscribers hear of it and the audit log records it, whoever caused
//! it.

use std::time::Duration;

use stagepass_core::store::StoredLogin;
use stagepass_core::tokens::TokenSet;
use stagepass_proto::{AgentError, ErrorKind, EventKind, StatusEvent};

use super::{Exclusive, Session, SessionData, keychain, refresh, report};
use crate::audit::{Caller, Entry, fingerprint};
use crate::notify;
use crate::refresh_worker::stored_login;
use crate::sessions::Agent;
use stagepass_core::config::OfflineAccess;

/// At most one refresh per profile this often because a server rejected a token: a server
/// that rejects every token (wrong audience, say) must not make the agent hammer the IdP.
const REJECTION_INTERVAL: Duration = Duration::from_secs(10);

/// What a transition tells the world besides waking the scheduler.
pub(super) enum Change<'a> {
    /// Sign-ins and sign-outs are audited by the request that asked for them, with its
    /// caller (`server.rs`); the agent's own record would only repeat it.
    Announced(EventKind),
    Refreshed {
        fingerprint: String,
        outcome: &'a str,
    },
    RefreshFailed {
        event: EventKind,
        message: &'a str,
    },
    /// Nothing a subscriber shows changed (a rejection, a failed keychain write).
    Quiet,
}

pub(super) fn settle(agent: &Agent, session: &Session, change: Change<'_>) {
    agent.sessions.schedule_changed.notify_one();
    let (event, audit) = match change {
        Change::Announced(event) => (Some(event), None),
        Change::Refreshed {
            fingerprint,
            outcome,
        } => (
            Some(EventKind::Refreshed),
            Some((Some(fingerprint), outcome)),
        ),
        Change::RefreshFailed { event, message } => (Some(event), Some((None, message))),
        Change::Quiet => (None, None),
    };
    if let Some(kind) = event {
        announce(agent, session, kind);
    }
    if let Some((fingerprint, outcome)) = audit {
        agent.record(&Entry {
            event: if fingerprint.is_some() {
                "refresh"
            } else {
                "refresh_failed"
            },
            caller: &Caller::agent(),
            profile: session.name(),
            audience: session.profile.audience(),
            kind: Some("access"),
            fingerprint,
            outcome,
        });
    }
}

/// Tells subscribers that the session changed, with its state after the change.
fn announce(agent: &Agent, session: &Session, kind: EventKind) {
    let events = &agent.sessions.events;
    if events.receiver_count() == 0 {
        return;
    }
    let profile = report::profile_status(agent, session, None);
    let _ = events.send(StatusEvent { kind, profile });
}

/// An interactive sign-in brought `tokens`: kept in memory, then in the keychain.
pub(crate) async fn signed_in(
    agent: &Agent,
    session: &Session,
    mut tokens: TokenSet,
    _held: &Exclusive<'_>,
) -> Result<(), AgentError> {
    {
        let mut data = session.data();
        if session.profile.offline_access() == OfflineAccess::AccessType {
            keep_held_refresh_token(&data, &mut tokens);
        }
        let refresh_ahead = tokens.refresh_token.is_some();
        data.replace_tokens(tokens, refresh_ahead, agent.deps.jitter.as_ref());
        data.stored = None;
        data.needs_sign_in = None;
        data.loaded = true;
    }
    if let Err(err) = refresh::persist(agent, session).await {
        settle(agent, session, Change::Quiet);
        return Err(err);
    }
    keychain::keep_refresh_worker_ready(agent);
    let claims = session
        .data()
        .tokens
        .as_ref()
        .and_then(|tokens| tokens.id_claims.clone());
    notify::signed_in(&agent.deps.notifier, session.name(), claims.as_ref());
    settle(agent, session, Change::Announced(EventKind::SignedIn));
    Ok(())
}

/// Google answers a sign-in of a user who consented before without a refresh token (it
/// issues one on the first consent only): the one already held still works and is kept,
/// when it was issued to the same user.
/// <https://developers.google.com/identity/protocols/oauth2/native-app#step-2:-send-a-request-to-googles-oauth-2.0-server>
fn keep_held_refresh_token(data: &SessionData, tokens: &mut TokenSet) {
    if tokens.refresh_token.is_some() {
        return;
    }
    let Some(held) = data.held_refresh() else {
        return;
    };
    if held.subject.is_some() && held.subject.as_deref() == tokens.subject() {
        tokens.refresh_token = Some(held.token);
        tokens.refresh_lifetime = held.lifetime;
    }
}

/// A refresh brought `tokens`; `saved` says whether the keychain holds their refresh token
/// (when not, they stay unsaved and the next refresh retries the write first).
pub(super) fn refreshed(
    agent: &Agent,
    session: &Session,
    tokens: TokenSet,
    saved: Result<(), AgentError>,
) -> Result<(), AgentError> {
    let new_token = fingerprint(tokens.access_token.expose());
    let login = stored_login(&session.profile, &tokens, agent.now());
    {
        let mut data = session.data();
        let refresh_ahead = tokens.refresh_token.is_some();
        data.replace_tokens(tokens, refresh_ahead, agent.deps.jitter.as_ref());
        if saved.is_ok() {
            data.stored = login;
            data.unsaved = false;
        }
    }
    let outcome = match &saved {
        Ok(()) => "ok",
        Err(err) => err.message.as_str(),
    };
    let change = Change::Refreshed {
        fingerprint: new_token,
        outcome,
    };
    settle(agent, session, change);
    saved
}

/// A Backstage token fetched through another profile's sign-in: nothing to keep in the
/// keychain, that profile's refresh token is what lasts.
pub(super) fn refreshed_via(agent: &Agent, session: &Session, tokens: TokenSet) {
    let new_token = fingerprint(tokens.access_token.expose());
    {
        let mut data = session.data();
        data.replace_tokens(tokens, true, agent.deps.jitter.as_ref());
        data.unsaved = false;
        data.loaded = true;
        data.needs_sign_in = None;
    }
    let change = Change::Refreshed {
        fingerprint: new_token,
        outcome: "ok",
    };
    settle(agent, session, change);
}

/// The IdP refused the refresh or could not be reached. `dead_login`: why only a new
/// sign-in helps, when it is so. Returns the error for the caller.
pub(super) fn refresh_refused(
    agent: &Agent,
    session: &Session,
    error: AgentError,
    dead_login: Option<String>,
) -> Result<(), AgentError> {
    let name = session.name();
    let notifier = &agent.deps.notifier;
    let mut event = EventKind::RefreshFailing;
    {
        let mut data = session.data();
        if let Some(reason) = dead_login {
            event = EventKind::NeedsSignIn;
            notify::sign_in_needed(notifier, name, &reason);
            data.needs_sign_in = Some(reason);
        } else {
            // Any other refusal (an outage, a rotated client secret, a broken IdP) is asked
            // again on the backoff: without it the scheduler would find the refresh still
            // due and call the IdP in a loop.
            data.record_failure(agent.now(), error.clone(), agent.deps.jitter.as_ref());
            // Once per episode, and only while the tokens still work: with nothing valid
            // left, the caller sees the error anyway.
            if error.kind == ErrorKind::IdpUnreachable
                && data.failures == 1
                && data.access_valid(agent.now())
            {
                notify::refresh_failing(notifier, name, &error.message);
            }
        }
    }
    failed(agent, session, event, error)
}

/// The refresh worker gave no answer: it may have rotated the refresh token and saved it, so
/// this copy is dropped and the keychain read again (under the worker's lock) before the
/// next attempt.
pub(super) fn refresh_lost(
    agent: &Agent,
    session: &Session,
    error: AgentError,
) -> Result<(), AgentError> {
    {
        let mut data = session.data();
        if let Some(tokens) = data.tokens.as_mut() {
            tokens.refresh_token = None;
        }
        data.stored = None;
        data.loaded = false;
        data.record_failure(agent.now(), error.clone(), agent.deps.jitter.as_ref());
    }
    failed(agent, session, EventKind::RefreshFailing, error)
}

/// Fetching a Backstage token through another profile failed.
pub(super) fn refresh_via_failed(
    agent: &Agent,
    session: &Session,
    error: AgentError,
) -> Result<(), AgentError> {
    let event = match error.kind {
        ErrorKind::NeedsSignIn => EventKind::NeedsSignIn,
        _ => EventKind::RefreshFailing,
    };
    if error.kind == ErrorKind::IdpUnreachable {
        session
            .data()
            .record_failure(agent.now(), error.clone(), agent.deps.jitter.as_ref());
    }
    failed(agent, session, event, error)
}

fn failed(
    agent: &Agent,
    session: &Session,
    event: EventKind,
    error: AgentError,
) -> Result<(), AgentError> {
    tracing::warn!(
        profile = session.name(),
        "refresh failed: {}",
        error.message
    );
    let change = Change::RefreshFailed {
        event,
        message: &error.message,
    };
    settle(agent, session, change);
    Err(error)
}

/// What the keychain should keep of the session's tokens. With no refresh token there is
/// nothing to keep (the login ends with the access token), and the tokens may go out.
pub(super) fn login_to_keep(agent: &Agent, session: &Session) -> Option<StoredLogin> {
    let mut data = session.data();
    let login = data
        .tokens
        .as_ref()
        .and_then(|tokens| stored_login(&session.profile, tokens, agent.now()));
    if login.is_none() {
        data.unsaved = false;
    }
    login
}

/// The keychain holds the session's refresh token: its tokens may go out.
pub(super) fn rotation_saved(session: &Session, login: StoredLogin) {
    let mut data = session.data();
    data.stored = Some(login);
    data.unsaved = false;
}

/// Marks the token with fingerprint `rejected` bad when `session` holds it, so the next
/// hand-out refreshes first; at most once per [`REJECTION_INTERVAL`], so a server that
/// rejects every token cannot make the agent hammer the IdP. Whether it was marked.
pub(crate) fn token_rejected(agent: &Agent, session: &Session, rejected: &str) -> bool {
    let now = agent.now();
    let marked = {
        let mut data = session.data();
        let holds_it = data.tokens.as_ref().is_some_and(|tokens| {
            fingerprint(tokens.access_token.expose()) == rejected
                || tokens
                    .id_token
                    .as_ref()
                    .is_some_and(|id| fingerprint(id.expose()) == rejected)
        });
        let too_soon = data
            .rejection_forced_at
            .is_some_and(|at| now < at + REJECTION_INTERVAL && at <= now);
        let marked = holds_it && !too_soon;
        if marked {
            data.rejected = Some(rejected.to_string());
            data.rejection_forced_at = Some(now);
        }
        marked
    };
    if marked {
        tracing::info!(profile = %session.name(), "a server rejected the current token; refreshing before the next hand-out");
        settle(agent, session, Change::Quiet);
    }
    marked
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use stagepass_core::clock::from_unix_secs;
    use stagepass_core::tokens::RefreshLifetime;
    use stagepass_core::{AccessToken, IdToken, RefreshToken};

    fn id_token(sub: &str) -> IdToken {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::json!({ "sub": sub }).to_string());
        IdToken::new(format!("e30.{payload}.sig"))
    }

    /// A sign-in's answer without a refresh token, for `sub`.
    fn answer(sub: &str) -> TokenSet {
        TokenSet {
            access_token: AccessToken::new("ya29.new".into()),
            token_type: "Bearer".into(),
            expires_at: None,
            refresh_token: None,
            refresh_lifetime: None,
            id_token: Some(id_token(sub)),
            id_claims: Some(serde_json::json!({ "sub": sub })),
            received_at: from_unix_secs(2_000),
        }
    }

    #[test]
    fn a_sign_in_without_a_refresh_token_keeps_the_held_one_only_for_the_same_user() {
        let life = RefreshLifetime {
            issued_at: 1_000,
            expires_at: 1_000 + 604_799,
        };
        let mut stored = StoredLogin::new(
            "https://accounts.google.com".into(),
            "c".into(),
            RefreshToken::new("1//alice".into()),
            Some(id_token("alice")),
            1_000,
        );
        stored.refresh_lifetime = Some(life);
        let data = SessionData {
            stored: Some(stored),
            loaded: true,
            ..SessionData::default()
        };
        let mut same = answer("alice");
        keep_held_refresh_token(&data, &mut same);
        assert_eq!(
            same.refresh_token.as_ref().map(RefreshToken::expose),
            Some("1//alice")
        );
        assert_eq!(same.refresh_lifetime, Some(life));
        // Another user must not get alice's refresh token.
        let mut other = answer("bob");
        keep_held_refresh_token(&data, &mut other);
        assert!(other.refresh_token.is_none());
    }
}
