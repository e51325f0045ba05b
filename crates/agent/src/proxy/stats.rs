//! The proxy's audit: counts per route, written as one line per route per window (a minute),
//! never one per request, so a busy page cannot flood the log. No token ever: a line says
//! how often the route's identity was used and with what outcome.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use stagepass_proto::DelegationKind;

use crate::audit::{Caller, Entry};
use crate::sessions::Agent;
use crate::sync::lock;

/// How long counts gather before they are written.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// Where refusals before any route was chosen (Host, Origin, credentials) are counted.
const NO_ROUTE: &str = "*";

/// Refusals of the remote endpoint audited one by one per remote key (unknown keys share
/// one count) and window; the rest are counted and written as one line when the window
/// ends, so that a flood of refused requests cannot fill the audit.
pub(crate) const REFUSALS_IN_FULL: u64 = 10;

/// Requests of one delegation audited one by one per window (method, path, status: what an
/// agent did); the window's counts have the rest.
pub(crate) const REQUESTS_IN_FULL: u64 = 100;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Counts {
    pub requests: u64,
    /// Upstream answers by class: `2xx` -> 12.
    pub status: BTreeMap<&'static str, u64>,
    /// Turned away by the proxy's own checks (403).
    pub refused: u64,
    /// 502/504: the upstream could not be reached or did not answer in time.
    pub upstream_failed: u64,
    /// Retried once after a 401 and a forced refresh.
    pub retried: u64,
}

#[derive(Default)]
pub(crate) struct ProxyStats {
    window: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    since: Option<SystemTime>,
    /// Route -> (profile, counts).
    routes: BTreeMap<String, (String, Counts)>,
    /// (Route, delegation name) -> (profile, kind, counts): uses of delegations (remote keys
    /// among them), audited with the delegation's name.
    remote: BTreeMap<(String, String), (String, DelegationKind, Counts)>,
    /// Delegation name -> requests audited one by one in this window.
    requests: BTreeMap<String, u64>,
    /// Remote key name (`""`: unknown keys) -> refusals of the remote endpoint.
    refusals: BTreeMap<String, u64>,
}

/// What happened to one request, for [`ProxyStats::count`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Answered(u16),
    Refused,
    UpstreamFailed,
}

impl Counts {
    fn add(&mut self, outcome: Outcome, retried: bool) {
        self.requests += 1;
        self.retried += u64::from(retried);
        match outcome {
            Outcome::Answered(status) => {
                let class = match status / 100 {
                    1 => "1xx",
                    2 => "2xx",
                    3 => "3xx",
                    4 => "4xx",
                    _ => "5xx",
                };
                *self.status.entry(class).or_default() += 1;
            }
            Outcome::Refused => self.refused += 1,
            Outcome::UpstreamFailed => self.upstream_failed += 1,
        }
    }
}

impl ProxyStats {
    /// Counts one request; `route` is `None` when it was refused before one was chosen,
    /// `remote` the delegation's name and kind when one was presented.
    pub(crate) fn count(
        &self,
        route: Option<(&str, &str)>,
        outcome: Outcome,
        retried: bool,
        remote: Option<(&str, DelegationKind)>,
    ) {
        let mut window = lock(&self.window);
        window.since.get_or_insert_with(SystemTime::now);
        let (route, profile) = route.unwrap_or((NO_ROUTE, ""));
        match remote {
            // Remote uses are rarer than a local page's requests: one allocation is fine.
            Some((key, kind)) => window
                .remote
                .entry((route.to_string(), key.to_string()))
                .or_insert_with(|| (profile.to_string(), kind, Counts::default()))
                .2
                .add(outcome, retried),
            // A lookup first: the route's name is allocated once per window, not per request.
            None => match window.routes.get_mut(route) {
                Some((_, counts)) => counts.add(outcome, retried),
                None => {
                    let mut counts = Counts::default();
                    counts.add(outcome, retried);
                    window
                        .routes
                        .insert(route.to_string(), (profile.to_string(), counts));
                }
            },
        }
    }

    /// Counts a refusal of the remote endpoint for `key` (`""`: an unknown key); whether it
    /// is still among the first [`REFUSALS_IN_FULL`] of the window, to be audited in full.
    pub(crate) fn admit_refusal(&self, key: &str) -> bool {
        self.admit(key, |window| &mut window.refusals) <= REFUSALS_IN_FULL
    }

    /// Counts a proxied request of delegation `name`; whether it is still among the first
    /// [`REQUESTS_IN_FULL`] of the window, to be audited in full (the window's counts have
    /// every one).
    pub(crate) fn admit_request(&self, name: &str) -> bool {
        self.admit(name, |window| &mut window.requests) <= REQUESTS_IN_FULL
    }

    fn admit(
        &self,
        key: &str,
        counter: impl FnOnce(&mut Window) -> &mut BTreeMap<String, u64>,
    ) -> u64 {
        let mut window = lock(&self.window);
        window.since.get_or_insert_with(SystemTime::now);
        let counts = counter(&mut window);
        // A lookup first: a flood allocates the key's name once per window, not per request.
        match counts.get_mut(key) {
            Some(count) => {
                *count += 1;
                *count
            }
            None => {
                counts.insert(key.to_string(), 1);
                1
            }
        }
    }

    /// Writes the window's lines, if anything happened, and starts a new window.
    pub(crate) fn flush(&self, agent: &Agent) {
        let window = std::mem::take(&mut *lock(&self.window));
        let Some(since) = window.since else { return };
        let since = time::OffsetDateTime::from(since)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let caller = Caller {
            consumer: "proxy".into(),
            ..Caller::agent()
        };
        let remote = window
            .remote
            .iter()
            .map(|((route, key), (profile, kind, counts))| {
                (route, profile, counts, Caller::delegation(key, *kind))
            });
        let local = window
            .routes
            .iter()
            .map(|(route, (profile, counts))| (route, profile, counts, caller.clone()));
        for (route, profile, counts, caller) in local.chain(remote) {
            agent.record(&Line {
                event: "proxy",
                caller: &caller,
                route,
                profile,
                since: &since,
                outcome: summary(route, counts),
                counts,
            });
        }
        for (key, refused) in &window.refusals {
            let unrecorded = refused.saturating_sub(REFUSALS_IN_FULL);
            if unrecorded > 0 {
                agent.record(&Entry {
                    event: "token",
                    caller: &Caller::remote(key),
                    profile: "",
                    audience: None,
                    kind: Some("access"),
                    fingerprint: None,
                    outcome: &format!(
                        "{unrecorded} more refusals since {since}, not recorded one by one \
                         ({refused} in all)"
                    ),
                });
            }
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    event: &'static str,
    #[serde(flatten)]
    caller: &'a Caller,
    route: &'a str,
    profile: &'a str,
    /// Start of the window the counts cover; the line's `time` is its end.
    since: &'a str,
    #[serde(flatten)]
    counts: &'a Counts,
    /// The counts in words, for `stagepass audit`.
    outcome: String,
}

fn summary(route: &str, counts: &Counts) -> String {
    let statuses: Vec<String> = counts
        .status
        .iter()
        .map(|(class, count)| format!("{class} {count}"))
        .collect();
    format!(
        "route {route}: {} requests ({}), {} refused, {} upstream failures, {} retried after refresh",
        counts.requests,
        if statuses.is_empty() {
            "none answered".to_string()
        } else {
            statuses.join(", ")
        },
        counts.refused,
        counts.upstream_failed,
        counts.retried
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_per_route_and_class() {
        let stats = ProxyStats::default();
        stats.count(
            Some(("backstage", "bs")),
            Outcome::Answered(200),
            false,
            None,
        );
        stats.count(
            Some(("backstage", "bs")),
            Outcome::Answered(204),
            true,
            None,
        );
        stats.count(
            Some(("backstage", "bs")),
            Outcome::UpstreamFailed,
            false,
            None,
        );
        stats.count(None, Outcome::Refused, false, None);
        stats.count(
            Some(("backstage", "bs")),
            Outcome::Answered(200),
            false,
            Some(("cs", DelegationKind::Remote)),
        );
        let window = stats.window.lock().unwrap();
        let (profile, counts) = &window.routes["backstage"];
        assert_eq!(profile, "bs");
        assert_eq!(counts.requests, 3);
        assert_eq!(counts.status["2xx"], 2);
        assert_eq!((counts.upstream_failed, counts.retried), (1, 1));
        assert_eq!(window.routes[NO_ROUTE].1.refused, 1);
        let remote = &window.remote[&("backstage".to_string(), "cs".to_string())].2;
        assert_eq!((remote.requests, remote.status["2xx"]), (1, 1));
        assert_eq!(
            summary("backstage", counts),
            "route backstage: 3 requests (2xx 2), 0 refused, 1 upstream failures, 1 retried after refresh"
        );
    }
}
