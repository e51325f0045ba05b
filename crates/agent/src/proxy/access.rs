//! Browser access: one-time launch URLs minted over IPC, traded for a session cookie.
//!
//! A browser cannot present the proxy key, and any page it shows could make it send requests,
//! so the cookie is HttpOnly (no script reads it) and SameSite=Strict (no other site's page
//! makes the browser send it). It can be had only by opening a launch URL, which the agent
//! hands to its own user over the private socket; each is good once, for a minute.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;
use stagepass_proto::Secret;

use super::secrets::{digest, random_hex};

/// Long enough for a browser to start; short enough that a URL seen later is dead.
const LAUNCH_TTL: Duration = Duration::from_secs(60);
/// A working day; then `stagepass open` again.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Bounds memory when something mints launch URLs in a loop.
const MAX_ENTRIES: usize = 1024;

/// The path of launch URLs, on every route's origin.
pub(crate) const LAUNCH_PATH: &str = "/.stagepass/launch";

#[derive(Default)]
pub(crate) struct BrowserAccess {
    /// Launch token digest -> (route name, expiry).
    launches: Mutex<HashMap<[u8; 32], (String, Instant)>>,
    /// Session cookie digest -> expiry.
    sessions: Mutex<HashMap<[u8; 32], Instant>>,
}

impl BrowserAccess {
    /// A new launch token for `route`.
    pub(crate) fn mint(&self, route: &str) -> std::io::Result<Secret<String>> {
        let token = random_hex()?;
        let mut launches = lock(&self.launches);
        prune(&mut launches, |(_, expiry)| *expiry);
        launches.insert(
            digest(token.expose()),
            (route.to_string(), Instant::now() + LAUNCH_TTL),
        );
        Ok(token)
    }

    /// Uses up `token`: the route it was minted for, when it is valid.
    pub(crate) fn redeem(&self, token: &str) -> Option<String> {
        let (route, expiry) = lock(&self.launches).remove(&digest(token))?;
        (Instant::now() < expiry).then_some(route)
    }

    /// A new session; its value goes into the cookie.
    pub(crate) fn open_session(&self) -> std::io::Result<Secret<String>> {
        let value = random_hex()?;
        let mut sessions = lock(&self.sessions);
        prune(&mut sessions, |expiry| *expiry);
        sessions.insert(digest(value.expose()), Instant::now() + SESSION_TTL);
        Ok(value)
    }

    pub(crate) fn session_valid(&self, value: &str) -> bool {
        lock(&self.sessions)
            .get(&digest(value))
            .is_some_and(|expiry| Instant::now() < *expiry)
    }
}

/// Drops expired entries, and the oldest ones past [`MAX_ENTRIES`].
fn prune<V>(map: &mut HashMap<[u8; 32], V>, expiry: impl Fn(&V) -> Instant) {
    let now = Instant::now();
    map.retain(|_, value| expiry(value) > now);
    while map.len() >= MAX_ENTRIES {
        let oldest = map
            .iter()
            .min_by_key(|(_, value)| expiry(value))
            .map(|(key, _)| *key);
        match oldest {
            Some(key) => map.remove(&key),
            None => break,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_launch_token_works_once_and_sessions_are_checked() {
        let access = BrowserAccess::default();
        let token = access.mint("backstage").unwrap();
        assert_eq!(access.redeem("not-a-token"), None);
        assert_eq!(access.redeem(token.expose()).as_deref(), Some("backstage"));
        assert_eq!(access.redeem(token.expose()), None, "one time only");
        let session = access.open_session().unwrap();
        assert!(access.session_valid(session.expose()));
        assert!(!access.session_valid(&session.expose()[1..]));
    }

    #[test]
    fn minting_in_a_loop_stays_bounded() {
        let access = BrowserAccess::default();
        for _ in 0..(MAX_ENTRIES + 10) {
            access.mint("r").unwrap();
        }
        assert!(lock(&access.launches).len() <= MAX_ENTRIES);
    }
}
