use std::time::Duration;

use stagepass_core::clock::unix_secs;
use stagepass_core::store::StoredLogin;
use stagepass_core::tokens::TokenSet;
use stagepass_proto::{AgentError, ErrorKind, Response, TokenGrant, TokenKind};

use super::resolve_profile;
use crate::audit::{Caller, Entry, fingerprint};
use crate::errors;
use crate::notify;
use crate::sessions::{Agent, Session};

/// Serves a token from memory when it is valid for `min_valid`, otherwise refreshes first.
pub(crate) async fn get_token(
    agent: &Agent,
    requested: Option<&str>,
    kind: TokenKind,
    min_valid: Duration,
) -> Result<Response, AgentError> {
    let (name, profile) = resolve_profile(agent, requested)?;
    let session = agent.session(&name, &profile);
    let generation = session.data().generation;
    if let Some(grant) = fresh_grant(&session, &name, kind, agent.now(), min_valid) {
        return Ok(Response::Token(grant));
    }
    let _exclusive = session.exclusive.lock().await;
    // Single flight: when tokens arrived while this caller queued, it takes them.
    let min_valid = if session.data().generation == generation {
        min_valid
    } else {
        Duration::ZERO
    };
    if let Some(grant) = fresh_grant(&session, &name, kind, agent.now(), min_valid) {
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
        None => refresh(agent, &name, &session).await,
    };
    if let Err(err) = outcome {
        return match fresh_grant(&session, &name, kind, agent.now(), Duration::ZERO) {
            Some(grant) if err.kind == ErrorKind::IdpUnreachable => Ok(Response::Token(grant)),
            _ => Err(err),
        };
    }
    fresh_grant(&session, &name, kind, agent.now(), Duration::ZERO)
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
    Some(TokenGrant {
        profile: name.to_string(),
        token,
        token_type: match kind {
            TokenKind::Access => tokens.token_type.clone(),
            TokenKind::Id => "N_A".into(),
        },
        expires_at,
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
            .or_else(|| {
                let stored = data.stored.as_ref()?;
                let id_token = stored.id_token.clone()?;
                let claims = stagepass_core::jwt::unverified_claims(id_token.expose())?;
                Some((id_token, claims))
            });
        (refresh_token, previous_id)
    };
    let refreshed = match agent.provider(name, &session.profile).await {
        Ok(provider) => {
            provider
                .refresh(
                    &refresh_token,
                    previous_id.as_ref().map(|(token, claims)| (token, claims)),
                    &agent.deps.http,
                    agent.now(),
                )
                .await
        }
        Err(err) => Err(err),
    };
    let tokens = match refreshed {
        Ok(tokens) => tokens,
        Err(err) => {
            let reply = errors::from_core(&err, Some(name));
            let notifier = &agent.deps.notifier;
            {
                let mut data = session.data();
                if err.login_is_dead() {
                    data.needs_sign_in = Some(err.to_string());
                    notify::sign_in_needed(notifier, name, &err.to_string());
                } else if reply.kind == ErrorKind::IdpUnreachable {
                    data.record_failure(agent.now(), reply.clone());
                    // Once per episode, and only while the tokens still work: with nothing
                    // valid left, the caller sees the error anyway.
                    let still_valid = data
                        .tokens
                        .as_ref()
                        .is_some_and(|tokens| tokens.access_valid_for(agent.now(), Duration::ZERO));
                    if data.failures == 1 && still_valid {
                        notify::refresh_failing(notifier, name, &reply.message);
                    }
                }
            }
            if matches!(err, stagepass_core::Error::IdToken(_)) {
                agent.forget_provider(name).await;
            }
            agent.schedule_changed.notify_one();
            tracing::warn!(profile = name, "refresh failed: {err}");
            record_refresh(agent, name, session, None, &reply.message);
            return Err(reply);
        }
    };
    let new_token = fingerprint(tokens.access_token.expose());
    session.data().replace_tokens(tokens);
    agent.schedule_changed.notify_one();
    let persisted = persist(agent, name, session).await;
    let outcome = match &persisted {
        Ok(()) => "ok",
        Err(err) => err.message.as_str(),
    };
    record_refresh(agent, name, session, Some(new_token), outcome);
    persisted
}

fn record_refresh(
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
        audience: session.profile.audience.as_deref(),
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
        match &data.tokens {
            Some(TokenSet {
                refresh_token: Some(refresh_token),
                id_token,
                ..
            }) => StoredLogin::new(
                session.profile.issuer.clone(),
                session.profile.client_id.clone(),
                refresh_token.clone(),
                id_token.clone(),
                unix_secs(agent.now()),
            ),
            _ => {
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
