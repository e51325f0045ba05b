//! Approval on the desktop: a delegation created with `--ask` does not refuse a request
//! outside its scope at once; the request waits (bounded) for the developer's answer, given
//! in a desktop notification or with `stagepass delegate approve|deny` from a terminal.

use serde::{Deserialize, Serialize};

/// How long a request outside the scope of an asking delegation waits for an answer, unless
/// `--ask-timeout` says otherwise.
pub const DEFAULT_ASK_TIMEOUT_SECS: u64 = 60;
/// The longest wait `--ask-timeout` may set: a waiting request holds its caller's connection.
pub const MAX_ASK_TIMEOUT_SECS: u64 = 600;

/// The developer's answer to a waiting request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// This request goes through; the next one like it asks again.
    AllowOnce,
    /// This request goes through, and the delegation's scope grows by its route, method and
    /// path (as a prefix), so the next one like it does not ask.
    AllowAlways,
    /// Refused with 403; it never reaches the upstream.
    Deny,
}

/// A request waiting for an answer, as `delegate pending` shows it. `method` and `path` are
/// what a caller sent: untrusted text, escaped before a terminal shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// What `delegate approve ID` / `delegate deny ID` name.
    pub id: String,
    pub delegation: String,
    pub route: String,
    pub method: String,
    /// The path after the route's prefix, as the upstream would see it (no query), bounded.
    pub path: String,
    /// What the scope lacked: `route`, `method` or `path`.
    pub missing: String,
    /// Unix seconds.
    pub since: u64,
    /// Unix seconds: refused unless answered by then.
    pub deadline: u64,
}
