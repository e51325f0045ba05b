//! The agent's state: the config (reloaded when the file changes), discovered providers, and
//! one session per profile holding its tokens in memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use stagepass_core::config::{Config, Profile};
use stagepass_core::oidc::Provider;
use stagepass_core::paths;
use stagepass_core::refresh;
use stagepass_core::store::{KeychainError, StoredLogin};
use stagepass_core::tokens::TokenSet;
use tokio::sync::Notify;

use crate::audit::AuditLog;
use crate::refresh_worker;
use crate::{AgentOptions, Dependencies};

pub(crate) struct Agent {
    pub deps: Dependencies,
    pub audit: AuditLog,
    pub options: AgentOptions,
    pub shutdown: Notify,
    /// Wakes the refresh scheduler when tokens or failures change a session's schedule.
    pub schedule_changed: Notify,
    /// State changes, for subscribers (the tray).
    pub events: tokio::sync::broadcast::Sender<stagepass_proto::StatusEvent>,
    config: crate::config_watch::ConfigCache,
    providers: crate::providers::Providers,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Interactive sign-ins under way, one per profile at most; later callers join them.
    pub pending_logins: Mutex<HashMap<String, Arc<crate::handlers::SharedLogin>>>,
    /// The local proxy's sessions, counters and upstream clients.
    pub proxy: crate::proxy::ProxyState,
    /// Remote keys (digests only), loaded from the data dir on first use.
    pub remote: crate::remote::RemoteKeys,
}

/// One profile's sign-in state.
pub(crate) struct Session {
    pub profile: Profile,
    /// Held across every operation that talks to the IdP or the keychain for this profile
    /// (refresh, sign-in, sign-out), which makes refreshes single-flight: callers that
    /// queue here find fresh tokens once the first refresh is done.
    pub exclusive: tokio::sync::Mutex<()>,
    data: Mutex<SessionData>,
}

#[derive(Default)]
pub(crate) struct SessionData {
    /// Whether the keychain has been read since the agent started.
    pub loaded: bool,
    pub stored: Option<StoredLogin>,
    pub tokens: Option<TokenSet>,
    /// Bumped whenever new tokens arrive, so a caller that queued behind a refresh knows
    /// that the tokens it finds are that refresh's result.
    pub generation: u64,
    /// Set when the IdP rejected the stored login; the reason is shown to the user.
    pub needs_sign_in: Option<String>,
    /// A rotated refresh token that the keychain has not accepted yet: nothing is handed out
    /// until it has, so a crash cannot leave only a dead refresh token behind.
    pub unsaved: bool,
    /// When the scheduler refreshes these tokens ahead of expiry.
    pub refresh_at: Option<SystemTime>,
    /// Consecutive outage-type refresh failures, and when the next attempt may go out.
    pub failures: u32,
    pub retry_at: Option<SystemTime>,
    /// The last outage-type failure, answered at once while backing off.
    pub last_failure: Option<stagepass_proto::AgentError>,
    /// Fingerprint of a token a server rejected (git `erase`): not handed out again, the
    /// next request refreshes instead.
    pub rejected: Option<String>,
    /// When a rejection last forced a refresh; bounds how often a server that rejects every
    /// token can make the agent call the IdP.
    pub rejection_forced_at: Option<SystemTime>,
}

impl SessionData {
    pub(crate) fn replace_tokens(&mut self, tokens: TokenSet) {
        self.refresh_at = tokens
            .expires_at
            .filter(|_| tokens.refresh_token.is_some())
            .map(|expires_at| {
                refresh::refresh_due(tokens.received_at, expires_at, refresh::jitter())
            });
        self.tokens = Some(tokens);
        self.generation += 1;
        self.failures = 0;
        self.retry_at = None;
        self.last_failure = None;
        self.rejected = None;
        // Not handed out until the keychain holds the refresh token that goes with them.
        self.unsaved = true;
    }

    /// Notes an outage-type failure and schedules the next attempt with backoff.
    pub(crate) fn record_failure(&mut self, now: SystemTime, error: stagepass_proto::AgentError) {
        self.failures = self.failures.saturating_add(1);
        self.retry_at = Some(now + refresh::backoff(self.failures, refresh::jitter()));
        self.last_failure = Some(error);
    }

    /// When the scheduler should next act on this session, if at all.
    pub(crate) fn next_attempt(&self) -> Option<SystemTime> {
        if self.needs_sign_in.is_some() || self.tokens.is_none() {
            return None;
        }
        match (self.retry_at, self.refresh_at) {
            (Some(retry_at), _) => Some(retry_at),
            (None, refresh_at) => refresh_at,
        }
    }
}

impl Session {
    pub(crate) fn data(&self) -> std::sync::MutexGuard<'_, SessionData> {
        self.data
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Agent {
    pub(crate) fn new(options: AgentOptions, deps: Dependencies) -> Agent {
        let config = crate::config_watch::ConfigCache::new(options.config_path.clone());
        Agent {
            audit: AuditLog::new(&options.data_dir),
            remote: crate::remote::RemoteKeys::new(&options.data_dir),
            deps,
            options,
            shutdown: Notify::new(),
            schedule_changed: Notify::new(),
            // Subscribers that fall this far behind miss events and get a fresh snapshot.
            events: tokio::sync::broadcast::channel(64).0,
            config,
            providers: crate::providers::Providers::default(),
            sessions: Mutex::new(HashMap::new()),
            pending_logins: Mutex::new(HashMap::new()),
            proxy: crate::proxy::ProxyState::default(),
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.deps.clock.now()
    }

    /// Tells subscribers that `name` changed; `session` gives the state after the change.
    pub(crate) fn announce(&self, kind: stagepass_proto::EventKind, name: &str, session: &Session) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let profile = crate::handlers::profile_status(self, name, session, None);
        let _ = self
            .events
            .send(stagepass_proto::StatusEvent { kind, profile });
    }

    /// Appends an audit line stamped with the agent's clock.
    pub(crate) fn record(&self, entry: &impl serde::Serialize) {
        self.audit.record(entry, self.now());
    }

    /// The current config, re-read only after the file changed ([`crate::config_watch`]).
    pub(crate) fn config(&self) -> stagepass_core::Result<Arc<Config>> {
        self.config.get()
    }

    pub(crate) fn config_path(&self) -> &PathBuf {
        &self.options.config_path
    }

    /// The session of `name`. A profile whose settings changed starts a fresh session, so
    /// tokens of the old issuer or client are never served under the new settings.
    pub(crate) fn session(&self, name: &str, profile: &Profile) -> Arc<Session> {
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match sessions.get(name) {
            Some(session) if session.profile == *profile => session.clone(),
            _ => {
                let session = Arc::new(Session {
                    profile: profile.clone(),
                    exclusive: tokio::sync::Mutex::new(()),
                    data: Mutex::new(SessionData::default()),
                });
                sessions.insert(name.to_string(), session.clone());
                session
            }
        }
    }

    /// Every session, for the scheduler.
    pub(crate) fn sessions(&self) -> Vec<(String, Arc<Session>)> {
        self.sessions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
            .map(|(name, session)| (name.clone(), session.clone()))
            .collect()
    }

    /// The discovered provider of a profile ([`crate::providers`]).
    pub(crate) async fn provider(
        &self,
        name: &str,
        profile: &Profile,
    ) -> stagepass_core::Result<Arc<Provider>> {
        self.providers
            .get(name, profile, &self.deps.http, || self.now())
            .await
    }

    /// Drops a cached provider, e.g. after an id_token failed verification with its keys.
    pub(crate) async fn forget_provider(&self, name: &str) {
        self.providers.forget(name);
    }

    /// Reads the profile's keychain entry once per agent life. Call with
    /// [`Session::exclusive`] held.
    pub(crate) async fn load_session(
        &self,
        name: &str,
        session: &Session,
    ) -> Result<(), KeychainError> {
        if session.data().loaded {
            return Ok(());
        }
        let logins = self.deps.logins.clone();
        let account = name.to_string();
        let lock_dir = paths::refresh_lock_dir(&self.options.data_dir);
        let stored = blocking(move || {
            refresh_worker::wait_for_workers(&lock_dir, &account);
            logins.load(&account)
        })
        .await?;
        let mut data = session.data();
        data.stored = stored.filter(|login| {
            login.belongs_to(&session.profile.issuer(), session.profile.client_id())
        });
        data.loaded = true;
        let signed_in = data.stored.is_some();
        drop(data);
        if signed_in {
            self.keep_refresh_worker_ready();
        }
        Ok(())
    }

    /// Reads the keychain entry for reports (status, claims), unless a sign-in or refresh holds
    /// the session: then the report shows what memory holds. An interactive sign-in can wait
    /// minutes for the user, and nothing else may wait behind it.
    pub(crate) async fn load_session_unless_busy(
        &self,
        name: &str,
        session: &Session,
    ) -> Result<(), KeychainError> {
        match session.exclusive.try_lock() {
            Ok(_exclusive) => self.load_session(name, session).await,
            Err(_) => Ok(()),
        }
    }

    /// Has a refresh worker ready for the profiles that hold refresh tokens.
    pub(crate) fn keep_refresh_worker_ready(&self) {
        if let Some(workers) = &self.deps.refresh_worker {
            workers.keep_spare();
        }
    }

    pub(crate) async fn save_login(
        &self,
        name: &str,
        login: StoredLogin,
    ) -> Result<(), KeychainError> {
        let logins = self.deps.logins.clone();
        let account = name.to_string();
        blocking(move || logins.save(&account, &login)).await
    }

    pub(crate) async fn delete_login(&self, name: &str) -> Result<bool, KeychainError> {
        let logins = self.deps.logins.clone();
        let account = name.to_string();
        blocking(move || logins.delete(&account)).await
    }

    pub(crate) async fn check_keychain(&self, name: &str) -> Result<(), KeychainError> {
        let logins = self.deps.logins.clone();
        let account = name.to_string();
        blocking(move || logins.check_reachable(&account)).await
    }
}

/// Keychain calls block on D-Bus; keep them off the async workers.
async fn blocking<T: Send + 'static>(
    op: impl FnOnce() -> Result<T, KeychainError> + Send + 'static,
) -> Result<T, KeychainError> {
    tokio::task::spawn_blocking(op)
        .await
        .unwrap_or_else(|err| Err(KeychainError::Other(format!("keychain task failed: {err}"))))
}
