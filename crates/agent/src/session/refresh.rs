//! Refreshing a session's tokens: on demand (the token path) and ahead of expiry (the
//! scheduler).
//!
//! Write order: the IdP has already rotated the refresh token when its answer arrives, so the
//! new one goes to the keychain before anything else sees the new tokens. Until the keychain
//! accepts it, the tokens stay in memory marked unsaved and nothing is handed out, so a
//! keychain hiccup never loses the only working refresh token.

use std::time::Duration;

use stagepass_core::config::ProfileKind;
use stagepass_core::paths;
use stagepass_core::store::StoredLogin;
use stagepass_core::tokens::TokenSet;
use stagepass_proto::{AgentError, ErrorKind};

use super::{Exclusive, Session, keychain, transitions, via};
use crate::errors;
use crate::refresh_worker::{
    RefreshJob, RefreshOutcome, RefreshTimings, previous_id, refresh_and_save, run_in_worker,
};
use crate::sessions::Agent;

/// With nothing scheduled, look again this often anyway (cheap, and robust to a missed wake).
const IDLE_CHECK: Duration = Duration::from_secs(300);

/// How long the scheduler may sleep before some session needs it.
pub(crate) fn next_wake(agent: &Agent) -> Duration {
    let now = agent.now();
    agent
        .sessions
        .all()
        .iter()
        .filter_map(|session| session.data().next_attempt())
        .min()
        .map_or(IDLE_CHECK, |at| at.duration_since(now).unwrap_or_default())
        .min(IDLE_CHECK)
}

/// Refreshes `session` when its schedule (ahead of expiry, or the backoff) says so.
pub(crate) async fn refresh_if_due(agent: &Agent, session: &Session) {
    let due = || {
        session
            .data()
            .next_attempt()
            .is_some_and(|at| at <= agent.now())
    };
    if !due() {
        return;
    }
    let held = session.exclusive().await;
    // A client may have refreshed while this task waited for the lock.
    if due()
        && let Err(err) = refresh(agent, session, &held).await
    {
        tracing::warn!(profile = %session.name(), "proactive refresh failed: {}", err.message);
    }
}

/// Refreshes the session's tokens (see the module's write order).
pub(super) async fn refresh(
    agent: &Agent,
    session: &Session,
    held: &Exclusive<'_>,
) -> Result<(), AgentError> {
    if let ProfileKind::Backstage {
        url,
        via: Some(through),
        ..
    } = &session.profile.kind
    {
        return via::refresh(agent, session, url, through).await;
    }
    keychain::load(agent, session, held)
        .await
        .map_err(|err| errors::keychain(&err))?;
    if session.data().unsaved {
        return persist(agent, session).await;
    }
    if let Some(outcome) = non_expiring(session) {
        return outcome;
    }
    let job = job(agent, session)?;
    let provider = match agent.provider(session.name(), &session.profile).await {
        Ok(provider) => provider,
        Err(err) => {
            return settle(agent, session, RefreshOutcome::failed(&err, session.name())).await;
        }
    };
    let outcome = run(agent, job, &provider).await;
    settle(agent, session, outcome).await
}

/// The refresh transaction, in a worker process when the agent has them.
async fn run(
    agent: &Agent,
    job: RefreshJob,
    provider: &stagepass_core::oidc::Provider,
) -> RefreshOutcome {
    let profile = job.profile.clone();
    // A measurement, not the agent's notion of time: the injected clock stays out of it.
    let started = std::time::Instant::now();
    let outcome = match &agent.deps.refresh_worker {
        Some(workers) => run_in_worker(workers, job, provider).await,
        None => {
            refresh_and_save(
                &job,
                provider,
                &agent.deps.http,
                &agent.deps.logins,
                agent.now(),
            )
            .await
        }
    };
    if let RefreshOutcome::Refreshed { took, .. } = &outcome {
        log_timings(&profile, started.elapsed(), took);
    }
    outcome
}

/// One line per refresh: how long callers waited for it, and where that went. The rest of
/// `total` (a worker's start, the pipe, the agent's own work) is the agent's share.
fn log_timings(profile: &str, total: std::time::Duration, took: &RefreshTimings) {
    let ms = |micros: u64| micros as f64 / 1000.0;
    tracing::info!(
        profile = %profile,
        total_ms = total.as_secs_f64() * 1000.0,
        keychain_read_ms = ms(took.keychain_read_us),
        idp_ms = ms(took.idp_us),
        keychain_write_ms = ms(took.keychain_write_us),
        "refreshed"
    );
}

/// A token that never expires (read from the keychain just now) needs no refresh, and has
/// none: once a server rejected it, only a new sign-in helps.
fn non_expiring(session: &Session) -> Option<Result<(), AgentError>> {
    let data = session.data();
    let tokens = data.tokens.as_ref()?;
    if tokens.expires_at.is_some() || tokens.refresh_token.is_some() {
        return None;
    }
    if data.rejected.is_none() {
        return Some(Ok(()));
    }
    let name = session.name();
    Some(Err(errors::reply(
        ErrorKind::NeedsSignIn,
        format!(
            "a server rejected the access token of profile `{name}`, which has no refresh token"
        ),
        Some(errors::login_hint(name)),
    )))
}

/// Applies a refresh's outcome to the session, through the transition that fits it.
async fn settle(
    agent: &Agent,
    session: &Session,
    outcome: RefreshOutcome,
) -> Result<(), AgentError> {
    match outcome {
        RefreshOutcome::Refreshed { tokens, saved, .. } => {
            transitions::refreshed(agent, session, tokens, saved)
        }
        RefreshOutcome::Failed {
            error,
            reason,
            login_dead,
            bad_id_token,
        } => {
            if bad_id_token {
                agent.forget_provider(session.name()).await;
            }
            transitions::refresh_refused(agent, session, error, login_dead.then_some(reason))
        }
        RefreshOutcome::Unknown { error } => transitions::refresh_lost(agent, session, error),
    }
}

/// What the refresh needs: the newest refresh token this agent knows of, and the id_token
/// the next one is checked against.
fn job(agent: &Agent, session: &Session) -> Result<RefreshJob, AgentError> {
    let name = session.name();
    let data = session.data();
    if let Some(reason) = &data.needs_sign_in {
        return Err(errors::reply(
            ErrorKind::NeedsSignIn,
            format!("profile `{name}` needs a new sign-in: {reason}"),
            Some(errors::login_hint(name)),
        ));
    }
    let refresh_token = match (&data.tokens, &data.stored) {
        (
            Some(TokenSet {
                refresh_token: Some(token),
                ..
            }),
            _,
        ) => token.clone(),
        (
            _,
            Some(StoredLogin {
                refresh_token: Some(token),
                ..
            }),
        ) => token.clone(),
        _ => return Err(errors::not_signed_in(name)),
    };
    // Who signed in, where no id_token says it (GitHub).
    let identity = data
        .tokens
        .as_ref()
        .filter(|tokens| tokens.id_token.is_none())
        .and_then(|tokens| tokens.id_claims.clone())
        .or_else(|| data.stored.as_ref()?.identity.clone());
    let previous_id = data
        .tokens
        .as_ref()
        .and_then(|tokens| Some((tokens.id_token.clone()?, tokens.id_claims.clone()?)))
        .or_else(|| previous_id(data.stored.as_ref()?));
    Ok(RefreshJob {
        profile: name.to_string(),
        settings: session.profile.clone(),
        refresh_token,
        previous_id,
        refresh_lifetime: data.refresh_lifetime(),
        identity,
        lock_dir: paths::refresh_lock_dir(&agent.options.data_dir),
        narrow_scope: None,
    })
}

/// A refresh asking for `scope` only (RFC 6749 §6), for a delegation
/// ([`crate::delegation::minted`]): the same transaction as any refresh (the worker writes a
/// rotated refresh token to the keychain before it answers), but the session keeps the
/// developer's access token and takes only the new refresh token. The narrowed tokens and
/// the `scope` the IdP answered go back to the caller, never into the session.
pub(crate) async fn narrowed(
    agent: &Agent,
    session: &Session,
    scope: &str,
) -> Result<(TokenSet, Option<String>), AgentError> {
    let held = session.exclusive().await;
    keychain::load(agent, session, &held)
        .await
        .map_err(|err| errors::keychain(&err))?;
    if session.data().unsaved {
        persist(agent, session).await?;
    }
    let mut job = job(agent, session)?;
    job.narrow_scope = Some(scope.to_string());
    let provider = agent
        .provider(session.name(), &session.profile)
        .await
        .map_err(|err| errors::from_core(&err, Some(session.name())))?;
    let outcome = run(agent, job, &provider).await;
    let RefreshOutcome::Refreshed {
        tokens,
        saved,
        granted_scope,
        ..
    } = outcome
    else {
        settle(agent, session, outcome).await?;
        return Err(errors::reply(
            ErrorKind::Internal,
            "the narrowed refresh gave no tokens",
            None,
        ));
    };
    // The developer's tokens, with the refresh token the IdP answered (rotated or kept).
    let Some(mut kept) = session.data().tokens.clone() else {
        return Err(errors::not_signed_in(session.name()));
    };
    kept.refresh_token = tokens.refresh_token.clone();
    kept.refresh_lifetime = tokens.refresh_lifetime;
    transitions::refreshed(agent, session, kept, saved)?;
    Ok((tokens, granted_scope))
}

/// Writes the session's current refresh token (and id_token) to the keychain; the tokens
/// are handed out once it has.
pub(super) async fn persist(agent: &Agent, session: &Session) -> Result<(), AgentError> {
    let Some(login) = transitions::login_to_keep(agent, session) else {
        return Ok(());
    };
    match keychain::save(agent, session.name(), login.clone()).await {
        Ok(()) => {
            transitions::rotation_saved(session, login);
            Ok(())
        }
        Err(err) => {
            tracing::error!(
                profile = session.name(),
                "the rotated refresh token is only in memory: {err}"
            );
            Err(errors::keychain(&err))
        }
    }
}
