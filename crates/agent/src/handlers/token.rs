use std::time::Duration;

use stagepass_core::config::ProfileKind;
use stagepass_core::paths;
use stagepass_core::tokens::TokenSet;
use stagepass_proto::{AgentError, ErrorKind, EventKind, Response, TokenGrant, TokenKind};

use super::backstage_via;
use super::login::{self, SignInRequest};
use super::resolve_profile;
use crate::audit::{Caller, Entry, fingerprint};
use crate::conn::Connection;
use crate::errors;
use crate::notify;
use crate::refresh_worker::{
    RefreshJob, RefreshOutcome, previous_id, refresh_and_save, run_in_worker, stored_login,
};
use crate::sessions::{Agent, Session};

/// Serves a token from memory when it is valid for `min_valid`, otherwise refreshes first.
/// When the profile needs a sign-in and the caller can take part in one (`sign_in`), it
/// starts one or joins the one under way, then serves the fresh token.
pub(crate) async fn get_token(
    agent: &Agent,
    conn: &mut Connection,
    requested: Option<&str>,
    kind: TokenKind,
    min_valid: Duration,
    sign_in: Option<SignInRequest>,
) -> Result<Response, AgentError> {
    let (name, profile) = resolve_profile(agent, requested)?;
    if kind == TokenKind::Id && profile.backstage_url().is_some() {
        return Err(errors::reply(
            ErrorKind::BadRequest,
            format!(
                "profile `{name}` is a Backstage profile: Backstage issues no OpenID Connect id_token"
            ),
            Some(
                "its access token is the Backstage user token: drop --id-token (kube-credential: \
                 --access-token)"
                    .into(),
            ),
        ));
    }
    let session = agent.session(&name, &profile);
    match (
        serve(agent, &name, &session, kind, min_valid).await,
        sign_in,
    ) {
        (Err(err), Some(request)) if err.kind == ErrorKind::NeedsSignIn => {
            login::sign_in(
                agent,
                conn,
                &backstage_via::sign_in_profile(agent, &name),
                request,
            )
            .await?;
            if session.profile.via().is_some() {
                return serve(agent, &name, &session, kind, min_valid).await;
            }
            fresh_grant(&session, &name, kind, agent.now(), Duration::ZERO)
                .map(Response::Token)
                .ok_or(err)
        }
        (result, _) => result,
    }
}

/// Serves the session's token without ever starting a sign-in.
pub(crate) async fn serve(
    agent: &Agent,
    name: &str,
    session: &Session,
    kind: TokenKind,
    min_valid: Duration,
) -> Result<Response, AgentError> {
    let generation = session.data().generation;
    if let Some(grant) = fresh_grant(session, name, kind, agent.now(), min_valid) {
        return Ok(Response::Token(grant));
    }
    let _exclusive = session.exclusive.lock().await;
    // Single flight: when tokens arrived while this caller queued, it takes them.
    let min_valid = if session.data().generation == generation {
        min_valid
    } else {
        Duration::ZERO
    };
    if let Some(grant) = fresh_grant(session, name, kind, agent.now(), min_valid) {
        return Ok(Response::Token(grant));
    }
    // While the IdP is failing, a token that is still valid beats an error, and the IdP is
    // asked again only when the backoff allows.
    let backing_off = {
        let data = session.data();
        data.retry_at
            .filter(|retry_at| *retry_at > agent.now())
            .and(data.last_failure.clone())
    };
    let outcome = match backing_off {
        Some(failure) => Err(failure),
        None => refresh(agent, name, session).await,
    };
    if let Err(err) = outcome {
        return match fresh_grant(session, name, kind, agent.now(), Duration::ZERO) {
            Some(grant) if err.kind == ErrorKind::IdpUnreachable => Ok(Response::Token(grant)),
            _ => Err(err),
        };
    }
    fresh_grant(session, name, kind, agent.now(), Duration::ZERO)
        .map(Response::Token)
        .ok_or_else(|| {
            errors::reply(
                ErrorKind::Idp,
                format!(
                    "the IdP's refresh gave no valid {} for profile `{name}`",
                    kind_name(kind)
                ),
                Some(
                    "the IdP issues tokens shorter-lived than requested; lower --min-valid".into(),
                ),
            )
        })
}

fn kind_name(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Access => "access token",
        TokenKind::Id => "id_token",
    }
}

fn fresh_grant(
    session: &Session,
    name: &str,
    kind: TokenKind,
    now: std::time::SystemTime,
    min_valid: Duration,
) -> Option<TokenGrant> {
    let data = session.data();
    if data.unsaved {
        return None;
    }
    let tokens = data.tokens.as_ref()?;
    let (token, expires_at) = match kind {
        TokenKind::Access => (
            tokens
                .access_valid_for(now, min_valid)
                .then(|| tokens.access_token.clone())?,
            tokens.expires_at_unix(),
        ),
        TokenKind::Id => (
            tokens.id_token_valid_for(now, min_valid)?.clone(),
            tokens.id_token_expires_at(),
        ),
    };
    if data
        .rejected
        .as_ref()
        .is_some_and(|rejected| *rejected == fingerprint(token.expose()))
    {
        return None;
    }
    Some(TokenGrant {
        profile: name.to_string(),
        token,
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

/// Refreshes the session's tokens. Call with [`Session::exclusive`] held.
///
/// Write order: the IdP has already rotated the refresh token when its answer arrives, so the
/// new one goes to the keychain before anything else sees the new tokens. Until the keychain
/// accepts it, the tokens stay in memory marked unsaved and nothing is handed out, so a
/// keychain hiccup never loses the only working refresh token.
pub(crate) async fn refresh(
    agent: &Agent,
    name: &str,
    session: &Session,
) -> Result<(), AgentError> {
    if let ProfileKind::Backstage {
        url,
        via: Some(via),
        ..
    } = &session.profile.kind
    {
        return backstage_via::refresh(agent, name, session, url, via).await;
    }
    agent
        .load_session(name, session)
        .await
        .map_err(|err| errors::keychain(&err))?;
    if session.data().unsaved {
        return persist(agent, name, session).await;
    }
    let (refresh_token, previous_id) = {
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
            (_, Some(stored)) => stored.refresh_token.clone(),
            _ => return Err(errors::not_signed_in(name)),
        };
        let previous_id = data
            .tokens
            .as_ref()
            .and_then(|tokens| Some((tokens.id_token.clone()?, tokens.id_claims.clone()?)))
            .or_else(|| previous_id(data.stored.as_ref()?));
        (refresh_token, previous_id)
    };
    let provider = match agent.provider(name, &session.profile).await {
        Ok(provider) => provider,
        Err(err) => {
            return refresh_failed(agent, name, session, RefreshOutcome::failed(&err, name)).await;
        }
    };
    let job = RefreshJob {
        profile: name.to_string(),
        settings: session.profile.clone(),
        refresh_token,
        previous_id,
        lock_dir: paths::refresh_lock_dir(&agent.options.data_dir),
    };
    let outcome = match &agent.deps.refresh_worker {
        Some(workers) => run_in_worker(workers, job, &provider).await,
        None => {
            refresh_and_save(
                &job,
                &provider,
                &agent.deps.http,
                &agent.deps.logins,
                agent.now(),
            )
            .await
        }
    };
    let RefreshOutcome::Refreshed { tokens, saved } = outcome else {
        return refresh_failed(agent, name, session, outcome).await;
    };
    let new_token = fingerprint(tokens.access_token.expose());
    let login = stored_login(&session.profile, &tokens, agent.now());
    {
        let mut data = session.data();
        data.replace_tokens(tokens);
        if saved.is_ok() {
            data.stored = login;
            data.unsaved = false;
        }
    }
    agent.schedule_changed.notify_one();
    agent.announce(EventKind::Refreshed, name, session);
    let outcome = match &saved {
        Ok(()) => "ok",
        Err(err) => err.message.as_str(),
    };
    record_refresh(agent, name, session, Some(new_token), outcome);
    saved
}

/// Applies a failed refresh to the session: needs sign-in, backoff, notifications, audit.
async fn refresh_failed(
    agent: &Agent,
    name: &str,
    session: &Session,
    outcome: RefreshOutcome,
) -> Result<(), AgentError> {
    let notifier = &agent.deps.notifier;
    let mut event = EventKind::RefreshFailing;
    let error = match outcome {
        RefreshOutcome::Refreshed { .. } => unreachable!("a success is not a failure"),
        RefreshOutcome::Failed {
            error,
            reason,
            login_dead,
            bad_id_token,
        } => {
            if bad_id_token {
                agent.forget_provider(name).await;
            }
            let mut data = session.data();
            if login_dead {
                event = EventKind::NeedsSignIn;
                notify::sign_in_needed(notifier, name, &reason);
                data.needs_sign_in = Some(reason);
            } else if error.kind == ErrorKind::IdpUnreachable {
                data.record_failure(agent.now(), error.clone());
                // Once per episode, and only while the tokens still work: with nothing
                // valid left, the caller sees the error anyway.
                let still_valid = data
                    .tokens
                    .as_ref()
                    .is_some_and(|tokens| tokens.access_valid_for(agent.now(), Duration::ZERO));
                if data.failures == 1 && still_valid {
                    notify::refresh_failing(notifier, name, &error.message);
                }
            }
            error
        }
        RefreshOutcome::Unknown { error } => {
            // The worker may have rotated the refresh token and saved it: drop this copy and
            // read the keychain again (under the worker's lock) before the next attempt.
            let mut data = session.data();
            if let Some(tokens) = data.tokens.as_mut() {
                tokens.refresh_token = None;
            }
            data.stored = None;
            data.loaded = false;
            data.record_failure(agent.now(), error.clone());
            error
        }
    };
    agent.schedule_changed.notify_one();
    agent.announce(event, name, session);
    tracing::warn!(profile = name, "refresh failed: {}", error.message);
    record_refresh(agent, name, session, None, &error.message);
    Err(error)
}

pub(crate) fn record_refresh(
    agent: &Agent,
    name: &str,
    session: &Session,
    fingerprint: Option<String>,
    outcome: &str,
) {
    agent.record(&Entry {
        event: if fingerprint.is_some() {
            "refresh"
        } else {
            "refresh_failed"
        },
        caller: &Caller::agent(),
        profile: name,
        audience: session.profile.audience(),
        kind: Some("access"),
        fingerprint,
        outcome,
    });
}

/// Writes the session's current refresh token (and id_token) to the keychain.
pub(crate) async fn persist(
    agent: &Agent,
    name: &str,
    session: &Session,
) -> Result<(), AgentError> {
    let login = {
        let mut data = session.data();
        let login = data
            .tokens
            .as_ref()
            .and_then(|tokens| stored_login(&session.profile, tokens, agent.now()));
        match login {
            Some(login) => login,
            None => {
                // Nothing to keep: the IdP issued no refresh token, so the login ends with
                // the access token.
                data.unsaved = false;
                return Ok(());
            }
        }
    };
    match agent.save_login(name, login.clone()).await {
        Ok(()) => {
            let mut data = session.data();
            data.stored = Some(login);
            data.unsaved = false;
            Ok(())
        }
        Err(err) => {
            tracing::error!(
                profile = name,
                "the rotated refresh token is only in memory: {err}"
            );
            Err(errors::keychain(&err))
        }
    }
}
