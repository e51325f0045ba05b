//! One profile's session state. Its fields are private to the session service: everything
//! outside reads them through the accessors and changes them only through the transitions.

use std::time::{Duration, SystemTime};

use stagepass_core::RefreshToken;
use stagepass_core::refresh::{self, Jitter};
use stagepass_core::store::StoredLogin;
use stagepass_core::tokens::{RefreshLifetime, TokenSet};
use stagepass_proto::AgentError;

/// What [`SessionData::held_refresh`] finds.
pub(super) struct HeldRefresh {
    pub token: RefreshToken,
    pub lifetime: Option<RefreshLifetime>,
    pub subject: Option<String>,
}

#[derive(Default)]
pub(crate) struct SessionData {
    /// Whether the keychain has been read since the agent started.
    pub(super) loaded: bool,
    pub(super) stored: Option<StoredLogin>,
    pub(super) tokens: Option<TokenSet>,
    /// Bumped whenever new tokens arrive, so a caller that queued behind a refresh knows
    /// that the tokens it finds are that refresh's result.
    pub(super) generation: u64,
    /// Set when the IdP rejected the stored login; the reason is shown to the user.
    pub(super) needs_sign_in: Option<String>,
    /// A rotated refresh token that the keychain has not accepted yet: nothing is handed out
    /// until it has, so a crash cannot leave only a dead refresh token behind.
    pub(super) unsaved: bool,
    /// When the scheduler refreshes these tokens ahead of expiry.
    pub(super) refresh_at: Option<SystemTime>,
    /// Consecutive outage-type refresh failures, and when the next attempt may go out.
    pub(super) failures: u32,
    pub(super) retry_at: Option<SystemTime>,
    /// The last outage-type failure, answered at once while backing off.
    pub(super) last_failure: Option<AgentError>,
    /// Fingerprint of a token a server rejected (git `erase`): not handed out again, the
    /// next request refreshes instead.
    pub(super) rejected: Option<String>,
    /// When a rejection last forced a refresh; bounds how often a server that rejects every
    /// token can make the agent call the IdP.
    pub(super) rejection_forced_at: Option<SystemTime>,
}

impl SessionData {
    /// A session known to hold nothing (after a sign-out): no keychain read needed.
    pub(super) fn signed_out() -> SessionData {
        SessionData {
            loaded: true,
            ..SessionData::default()
        }
    }

    pub(crate) fn tokens(&self) -> Option<&TokenSet> {
        self.tokens.as_ref()
    }

    pub(crate) fn stored(&self) -> Option<&StoredLogin> {
        self.stored.as_ref()
    }

    /// The refresh token held (in memory, else in the keychain), with its stated life and
    /// the `sub` it was issued to.
    pub(super) fn held_refresh(&self) -> Option<HeldRefresh> {
        if let Some(tokens) = &self.tokens
            && let Some(token) = &tokens.refresh_token
        {
            return Some(HeldRefresh {
                token: token.clone(),
                lifetime: tokens.refresh_lifetime,
                subject: tokens.subject().map(String::from),
            });
        }
        let stored = self.stored.as_ref()?;
        let claims = stored
            .id_token
            .as_ref()
            .and_then(|id| stagepass_core::jwt::unverified_claims(id.expose()));
        Some(HeldRefresh {
            token: stored.refresh_token.clone()?,
            lifetime: stored.refresh_lifetime,
            subject: claims
                .as_ref()
                .and_then(|claims| claims.get("sub")?.as_str().map(String::from)),
        })
    }

    /// The held refresh token's life as the IdP stated it.
    pub(crate) fn refresh_lifetime(&self) -> Option<RefreshLifetime> {
        self.held_refresh().and_then(|held| held.lifetime)
    }

    /// Takes new tokens; they are handed out once the keychain holds their refresh token
    /// (`unsaved` until then). `refresh_ahead`: whether the scheduler renews them before
    /// expiry (needs a refresh token, or another profile's, see `via`).
    pub(super) fn replace_tokens(
        &mut self,
        tokens: TokenSet,
        refresh_ahead: bool,
        jitter: &dyn Jitter,
    ) {
        self.refresh_at = tokens
            .expires_at
            .filter(|_| refresh_ahead)
            .map(|expires_at| {
                refresh::refresh_due(tokens.received_at, expires_at, jitter.sample())
            });
        self.tokens = Some(tokens);
        self.generation += 1;
        self.failures = 0;
        self.retry_at = None;
        self.last_failure = None;
        self.rejected = None;
        self.unsaved = true;
    }

    /// Notes an outage-type failure and schedules the next attempt with backoff.
    pub(super) fn record_failure(
        &mut self,
        now: SystemTime,
        error: AgentError,
        jitter: &dyn Jitter,
    ) {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + refresh::backoff(self.failures, jitter.sample()));
        self.last_failure = Some(error);
    }

    /// The failure to answer at once while the backoff runs, if it does.
    pub(super) fn backing_off(&self, now: SystemTime) -> Option<AgentError> {
        self.retry_at
            .filter(|retry_at| *retry_at > now)
            .and(self.last_failure.clone())
    }

    /// When the scheduler should next act on this session, if at all.
    pub(super) fn next_attempt(&self) -> Option<SystemTime> {
        if self.needs_sign_in.is_some() || self.tokens.is_none() {
            return None;
        }
        match (self.retry_at, self.refresh_at) {
            (Some(retry_at), _) => Some(retry_at),
            (None, refresh_at) => refresh_at,
        }
    }

    pub(super) fn access_valid(&self, now: SystemTime) -> bool {
        self.tokens
            .as_ref()
            .is_some_and(|tokens| tokens.access_valid_for(now, Duration::ZERO))
    }
}
