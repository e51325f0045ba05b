//! The session service: the one owner of every profile's sign-in state (tokens in memory,
//! what the keychain holds, backoff, rejections).
//!
//! Callers (the IPC handlers, the proxy, the remote endpoint, the scheduler) ask it for
//! tokens and tell it what happened; they never change a session themselves. Every change
//! goes through a transition (`transitions.rs`), which wakes the scheduler, tells subscribers
//! and writes the audit line itself, so no caller can forget one of them.

mod keychain;
mod refresh;
mod report;
mod sign_out;
mod state;
mod token_service;
mod transitions;
mod via;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use stagepass_core::config::Profile;
use stagepass_proto::{AgentError, StatusEvent};
use tokio::sync::{Notify, broadcast};

use crate::errors;
use crate::sessions::Agent;
use crate::sync::lock;

pub(crate) use keychain::{
    check_reachable as check_keychain, holds_refresh_token, load_unless_busy,
};
pub(crate) use refresh::{narrowed as narrowed_refresh, next_wake, refresh_if_due};
pub(crate) use report::profile_status;
pub(crate) use sign_out::{SignedOut, forget_tokens, sign_out};
pub(crate) use state::SessionData;
pub(crate) use token_service::{cached_token, peek_token, token};
pub(crate) use transitions::{signed_in, token_rejected};
pub(crate) use via::sign_in_profile;

/// Every profile's session, and the signals its changes send.
pub(crate) struct Sessions {
    by_name: Mutex<HashMap<String, Arc<Session>>>,
    /// Wakes the refresh scheduler when a session's schedule changed.
    schedule_changed: Notify,
    /// State changes, for subscribers (the tray).
    events: broadcast::Sender<StatusEvent>,
}

/// One profile's sign-in state.
pub(crate) struct Session {
    name: String,
    pub profile: Profile,
    /// Held across every operation that talks to the IdP or the keychain for this profile
    /// (refresh, sign-in, sign-out), which makes refreshes single-flight.
    exclusive: tokio::sync::Mutex<()>,
    /// Wakes every token caller waiting for the holder of `exclusive` at once, when it lets
    /// go: they find the fresh tokens without queueing for the lock one by one.
    released: Notify,
    /// The token path's refreshes: how many, and how the last one failed. A caller that
    /// waited for another's refresh takes its failure as its own.
    refreshes: Mutex<Refreshes>,
    data: Mutex<SessionData>,
}

#[derive(Default)]
struct Refreshes {
    count: u64,
    last_failure: Option<AgentError>,
}

/// Proof that the holder has the session to itself (see [`Session::exclusive`]). Letting go
/// wakes the token callers waiting for it (`token_service.rs`).
pub(crate) struct Exclusive<'a> {
    guard: Option<tokio::sync::MutexGuard<'a, ()>>,
    released: &'a Notify,
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        // Unlocked first: a woken caller may take the lock next.
        self.guard.take();
        self.released.notify_waiters();
    }
}

impl Default for Sessions {
    fn default() -> Sessions {
        Sessions {
            by_name: Mutex::new(HashMap::new()),
            schedule_changed: Notify::new(),
            // Subscribers that fall this far behind miss events and get a fresh snapshot.
            events: broadcast::channel(64).0,
        }
    }
}

impl Sessions {
    /// The session of `name`. A profile whose settings changed starts a fresh session, so
    /// tokens of the old issuer or client are never served under the new settings.
    pub(crate) fn get(&self, name: &str, profile: &Profile) -> Arc<Session> {
        let mut sessions = lock(&self.by_name);
        match sessions.get(name) {
            Some(session) if session.profile == *profile => session.clone(),
            _ => {
                let session = Arc::new(Session {
                    name: name.to_string(),
                    profile: profile.clone(),
                    exclusive: tokio::sync::Mutex::new(()),
                    released: Notify::new(),
                    refreshes: Mutex::default(),
                    data: Mutex::new(SessionData::default()),
                });
                sessions.insert(name.to_string(), session.clone());
                session
            }
        }
    }

    /// Every session, for the scheduler.
    pub(crate) fn all(&self) -> Vec<Arc<Session>> {
        lock(&self.by_name).values().cloned().collect()
    }

    /// Resolves when a transition changed some session's schedule.
    pub(crate) async fn schedule_changed(&self) {
        self.schedule_changed.notified().await;
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.events.subscribe()
    }
}

impl Session {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Waits until this caller has the session to itself.
    pub(crate) async fn exclusive(&self) -> Exclusive<'_> {
        let guard = self.exclusive.lock().await;
        self.held(guard)
    }

    /// The session to this caller, when nobody holds it.
    pub(super) fn try_exclusive(&self) -> Option<Exclusive<'_>> {
        let guard = self.exclusive.try_lock().ok()?;
        Some(self.held(guard))
    }

    fn held<'a>(&'a self, guard: tokio::sync::MutexGuard<'a, ()>) -> Exclusive<'a> {
        Exclusive {
            guard: Some(guard),
            released: &self.released,
        }
    }

    /// A look at the state, for reports. Changes go through the transitions.
    pub(crate) fn read<T>(&self, look: impl FnOnce(&SessionData) -> T) -> T {
        look(&self.data())
    }

    fn data(&self) -> MutexGuard<'_, SessionData> {
        lock(&self.data)
    }
}

/// Resolves the requested profile against the current config.
pub(crate) fn resolve_profile(
    agent: &Agent,
    requested: Option<&str>,
) -> Result<(String, Profile), AgentError> {
    let config = agent
        .config()
        .map_err(|err| errors::from_core(&err, requested))?;
    let (name, profile) = config
        .profile(requested)
        .map_err(|err| errors::from_core(&err, requested))?;
    Ok((name.to_string(), profile.clone()))
}
