//! A delegation's request outside its scope: a 403 with a JSON body that names what was
//! missing (route, method or path), and the audit lines of a delegation's requests. Nothing
//! of it reaches the upstream. What the caller sent (method, path) is echoed escaped and
//! bounded, in JSON served as `application/json` with `nosniff`, never as HTML.

use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Response, StatusCode};
use serde::Serialize;
use stagepass_core::text::one_line;

use super::mcp::{Class, Write};
use super::reply::{Body, full};
use super::stats::Outcome;
use crate::audit::{Caller, bounded};
use crate::delegation::Accepted;
use crate::delegation::scope::Missing;
use crate::sessions::Agent;

/// Characters of a request path echoed in a 403 or kept in the audit.
const MAX_PATH_CHARS: usize = 256;

pub(crate) struct Refusal<'a> {
    pub accepted: &'a Accepted,
    pub route: &'a str,
    pub method: &'a Method,
    /// The path after the route's prefix, as the upstream would see it (no query).
    pub path: &'a str,
    pub missing: Missing,
    /// For a delegation made with `--ask`: how the asking ended.
    pub asked: Option<super::ask::Asked>,
    /// At an MCP endpoint: what the messages amounted to.
    pub mcp: Option<&'a Class>,
}

#[derive(Serialize)]
struct RefusalBody<'a> {
    error: &'static str,
    delegation: &'a str,
    missing: &'static str,
    route: &'a str,
    method: String,
    #[serde(serialize_with = "bounded::<MAX_PATH_CHARS, _>")]
    path: &'a str,
    /// What the delegation allows on this route, for the missing part.
    allowed: Vec<String>,
    /// `denied`, `timed_out`, `revoked` or `too_many_pending`, when the developer was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<&'static str>,
    /// At an MCP endpoint: the tool, or the JSON-RPC method, that writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mcp_method: Option<&'a str>,
    message: String,
}

impl Refusal<'_> {
    fn allowed(&self) -> Vec<String> {
        let scope = &self.accepted.scope;
        match self.missing {
            Missing::Route => scope.routes.clone(),
            Missing::Method => scope
                .methods
                .map(|methods| methods.names())
                .unwrap_or_default(),
            Missing::Path => scope.paths_for(self.route),
        }
    }

    fn message(&self, allowed: &[String]) -> String {
        let message = self.scope_message(allowed);
        match self.asked {
            Some(asked) => format!("{message}; asked for approval: {}", asked.describe()),
            None => message,
        }
    }

    fn scope_message(&self, allowed: &[String]) -> String {
        let name = &self.accepted.name;
        let allowed = allowed.join(", ");
        if let (Missing::Method, Some(Class::Write(write))) = (self.missing, self.mcp) {
            let what = match write {
                Write::Tool(tool) => format!(
                    "call the MCP tool `{}`, which the upstream does not mark read-only",
                    one_line(tool)
                        .chars()
                        .take(MAX_PATH_CHARS)
                        .collect::<String>()
                ),
                Write::Method(method) => format!("send the MCP request `{method}`"),
            };
            return format!(
                "stagepass proxy: delegation `{name}` may not {what} on route `{}`: that is a write, and it may send only {allowed}",
                self.route
            );
        }
        match self.missing {
            Missing::Route => format!(
                "stagepass proxy: delegation `{name}` is not scoped to route `{}` (its routes: {allowed})",
                self.route
            ),
            Missing::Method => format!(
                "stagepass proxy: delegation `{name}` may not send {} on route `{}` (allowed: {allowed})",
                one_line(self.method.as_str()),
                self.route
            ),
            Missing::Path => format!(
                "stagepass proxy: delegation `{name}` may not reach this path on route `{}` (allowed prefixes: {allowed}; no `.`/`..` segments or encoded slashes)",
                self.route
            ),
        }
    }
}

pub(crate) fn response(refusal: &Refusal<'_>) -> Response<Body> {
    let allowed = refusal.allowed();
    let path = one_line(refusal.path);
    let (tool, mcp_method) = match refusal.mcp {
        // The caller's text: one line, bounded.
        Some(Class::Write(Write::Tool(tool))) => (
            Some(one_line(tool).chars().take(MAX_PATH_CHARS).collect()),
            None,
        ),
        Some(Class::Write(Write::Method(method))) => (None, Some(method.as_str())),
        _ => (None, None),
    };
    let body = RefusalBody {
        tool,
        mcp_method,
        error: "outside_delegation_scope",
        delegation: &refusal.accepted.name,
        missing: refusal.missing.as_str(),
        route: refusal.route,
        method: one_line(refusal.method.as_str()).into_owned(),
        path: &path,
        message: refusal.message(&allowed),
        allowed,
        approval: refusal.asked.map(super::ask::Asked::as_str),
    };
    let mut response = Response::new(full(serde_json::to_vec(&body).unwrap_or_default()));
    *response.status_mut() = StatusCode::FORBIDDEN;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// One audit line of a delegation's proxied request: never the key, never the query (it
/// may hold secrets), the path bounded.
#[derive(Serialize)]
struct RequestLine<'a> {
    event: &'static str,
    #[serde(flatten)]
    caller: &'a Caller,
    route: &'a str,
    method: &'a str,
    #[serde(serialize_with = "bounded::<MAX_PATH_CHARS, _>")]
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<&'static str>,
    /// At an MCP endpoint: the tool called (the caller's text, bounded).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "bounded_tool"
    )]
    tool: Option<&'a str>,
    outcome: &'a str,
}

fn bounded_tool<S: serde::Serializer>(
    tool: &Option<&str>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match tool {
        Some(tool) => bounded::<MAX_PATH_CHARS, _>(tool, serializer),
        None => serializer.serialize_none(),
    }
}

/// Audits a refusal: one of the delegation's requests, the first of each window in full
/// (the window's `proxy` line counts every refusal).
pub(crate) fn audit(agent: &Agent, refusal: &Refusal<'_>) {
    if !agent.proxy.stats.admit_request(&refusal.accepted.name) {
        return;
    }
    let caller = Caller::delegation(&refusal.accepted.name, refusal.accepted.kind);
    agent.record(&RequestLine {
        event: "proxy_request",
        caller: &caller,
        route: refusal.route,
        method: refusal.method.as_str(),
        path: refusal.path,
        status: Some(403),
        missing: Some(refusal.missing.as_str()),
        tool: refusal.mcp.and_then(Class::tool),
        outcome: &match refusal.asked {
            Some(asked) => format!(
                "refused: outside the delegation's {}; {}",
                refusal.missing.as_str(),
                asked.describe()
            ),
            None => format!(
                "refused: outside the delegation's {}",
                refusal.missing.as_str()
            ),
        },
    });
}

/// Audits a forwarded request of a delegation (the first of each window in full; the
/// window's counts have them all).
pub(crate) fn audit_request(
    agent: &Agent,
    accepted: &Accepted,
    route: &str,
    method: &Method,
    path: &str,
    outcome: Outcome,
    tool: Option<&str>,
) {
    if !agent.proxy.stats.admit_request(&accepted.name) {
        return;
    }
    let (status, outcome) = match outcome {
        Outcome::Answered(status) => (Some(status), "ok"),
        Outcome::Refused => (Some(403), "refused"),
        Outcome::UpstreamFailed => (None, "the upstream failed"),
    };
    agent.record(&RequestLine {
        event: "proxy_request",
        caller: &Caller::delegation(&accepted.name, accepted.kind),
        route,
        method: method.as_str(),
        path,
        status,
        missing: None,
        tool,
        outcome,
    });
}
