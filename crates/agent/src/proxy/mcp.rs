//! MCP endpoints behind the proxy (a route's `mcp = [PATHS]`, such as Backstage's
//! `/api/mcp-actions/v1` of `@backstage/plugin-mcp-actions-backend`).
//!
//! Over MCP's Streamable HTTP transport every message is a `POST` of JSON-RPC
//! (<https://modelcontextprotocol.io/specification/2025-06-18/basic/transports>), so a
//! delegation's HTTP methods alone would allow all tools or none. At these endpoints the proxy
//! reads the messages of a delegation that may not `POST` there and checks each as the HTTP
//! method it amounts to: listing, reading, pinging and notifications are reads (`GET`), a
//! `tools/call` is a read only when the upstream's own `tools/list` marks the tool
//! `readOnlyHint: true`, and everything else is a write (`POST`). The verdict goes through the
//! one scope check, so a read-only delegation lists the tools and calls the read-only ones;
//! a write is refused with a 403 before anything reaches the upstream.
//!
//! The proxy is the MCP server its clients see, and a delegation key is its access token:
//! MCP clients send it as `Authorization: Bearer KEY`
//! (<https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization>), which
//! the proxy accepts here besides `Proxy-Authorization`, and never passes on (the upstream
//! gets the developer's token instead). Without a valid key it answers 401 with a
//! `WWW-Authenticate` that points to its OAuth 2.0 Protected Resource Metadata (RFC 9728
//! §5.1), served at `/.well-known/oauth-protected-resource` + the endpoint's local path
//! (RFC 9728 §3.1). The document lists no `authorization_servers`: keys come from
//! `stagepass delegate`, not from an OAuth authorization server a client could go to.

use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;
use stagepass_core::config::Config;
use stagepass_core::proxy_config::{Local as RouteLocal, Route};

use super::forward::{Local, forward};
use super::reply::{Body, full, text};
use crate::sessions::Agent;

/// Where RFC 9728 puts the metadata of a resource: this, then the resource's path.
pub(crate) const METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource";
/// A JSON-RPC message of a client: large tool arguments fit, a flood does not.
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// The upstream's tool list, all pages.
const MAX_LIST_BYTES: usize = 4 << 20;
const MAX_LIST_PAGES: usize = 20;

/// Client messages that read: the lists, reads, completions, pings and every notification
/// and response (they answer the server or tell it of progress). `tools/call` depends on
/// the tool; anything else counts as a write.
const READ_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// Whether `rest`, the path after the route's prefix, is one of the route's MCP endpoints.
pub(crate) fn is_endpoint(route: &Route, rest: &str) -> bool {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    route.mcp.iter().any(|path| path == rest)
}

/// The local path of `route`'s MCP endpoint `path`, as clients reach it.
fn local_path(route: &Route, path: &str) -> String {
    match &route.local {
        RouteLocal::Path(prefix) => format!("{prefix}{path}"),
        RouteLocal::Host(_) => path.to_string(),
    }
}

/// What a delegation's MCP request amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Class {
    /// Names the (read-only) tools called, for the audit.
    Read { tools: Vec<String> },
    /// Names what writes: a tool, or a JSON-RPC method.
    Write(Write),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Write {
    Tool(String),
    Method(String),
}

impl Class {
    /// The HTTP method the scope check sees for it.
    pub(crate) fn method(&self) -> Method {
        match self {
            Class::Read { .. } => Method::GET,
            Class::Write(_) => Method::POST,
        }
    }

    /// The tool called, for the audit (the first of a batch).
    pub(crate) fn tool(&self) -> Option<&str> {
        match self {
            Class::Read { tools } => tools.first().map(String::as_str),
            Class::Write(Write::Tool(tool)) => Some(tool),
            Class::Write(Write::Method(_)) => None,
        }
    }
}

/// Reads the body of `request` (a delegation's `POST` to an MCP endpoint) and classifies its
/// messages; gives the request back with the same body for forwarding. An answer instead
/// when the body is too large, not JSON-RPC, or the upstream's tool list cannot be had.
pub(crate) async fn classify(
    agent: &Agent,
    config: &Config,
    route: &Route,
    local: &Local<'_>,
    request: Request<Body>,
    rest: &str,
) -> Result<(Request<Body>, Class), Response<Body>> {
    let (parts, body) = request.into_parts();
    let bytes = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "stagepass proxy: an MCP message of a delegation is read before it is sent on, \
                 and this one is over 1 MiB or did not arrive whole",
            ));
        }
    };
    let messages = parse_messages(&bytes).ok_or_else(|| {
        text(
            StatusCode::BAD_REQUEST,
            "stagepass proxy: not a JSON-RPC message for this MCP endpoint",
        )
    })?;
    let mut tools = Vec::new();
    for message in &messages {
        match message_class(message) {
            Kind::Read => {}
            Kind::Call(name) => tools.push(name),
            Kind::Write(method) => {
                return Ok((rebuild(parts, bytes), Class::Write(Write::Method(method))));
            }
        }
    }
    if tools.is_empty() {
        return Ok((rebuild(parts, bytes), Class::Read { tools }));
    }
    let read_only = list_tools(agent, config, route, local, rest, &parts.headers).await?;
    let class = match tools.iter().find(|tool| !read_only.contains(tool)) {
        Some(tool) => Class::Write(Write::Tool(tool.clone())),
        None => Class::Read { tools },
    };
    Ok((rebuild(parts, bytes), class))
}

fn rebuild(parts: http::request::Parts, bytes: Bytes) -> Request<Body> {
    Request::from_parts(parts, full(bytes))
}

/// One message or a batch (MCP 2025-03-26 allowed batches); `None` when it is neither.
fn parse_messages(bytes: &[u8]) -> Option<Vec<Value>> {
    match serde_json::from_slice(bytes).ok()? {
        Value::Array(batch) if !batch.is_empty() => Some(batch),
        message @ Value::Object(_) => Some(vec![message]),
        _ => None,
    }
}

enum Kind {
    Read,
    Call(String),
    Write(String),
}

fn message_class(message: &Value) -> Kind {
    let Some(method) = message.get("method") else {
        // A response to the server (no method): a result or an error.
        return Kind::Read;
    };
    let Some(method) = method.as_str() else {
        return Kind::Write(String::new());
    };
    if method == "tools/call" {
        let name = message
            .pointer("/params/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Kind::Call(name.to_string());
    }
    if READ_METHODS.contains(&method) || method.starts_with("notifications/") {
        Kind::Read
    } else {
        Kind::Write(
            stagepass_core::text::one_line(method)
                .chars()
                .take(64)
                .collect(),
        )
    }
}

/// The names of the upstream's read-only tools (`annotations.readOnlyHint: true`), asked
/// with the developer's identity at the same endpoint, every page. Asked for each call, so
/// a tool that stops being read-only upstream is refused from then on.
async fn list_tools(
    agent: &Agent,
    config: &Config,
    route: &Route,
    local: &Local<'_>,
    rest: &str,
    caller: &HeaderMap,
) -> Result<Vec<String>, Response<Body>> {
    let mut read_only = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0..MAX_LIST_PAGES {
        let id = format!("stagepass-tools-{page}");
        let mut message = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"});
        if let Some(cursor) = &cursor {
            message["params"] = serde_json::json!({ "cursor": cursor });
        }
        let mut request = Request::new(full(message.to_string()));
        *request.method_mut() = Method::POST;
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        if let Some(version) = caller.get("mcp-protocol-version") {
            headers.insert("mcp-protocol-version", version.clone());
        }
        let forwarded = forward(agent, config, route, local, request, (rest, None)).await;
        let result = list_result(forwarded.response, &id)
            .await
            .map_err(|why| list_failed(route, &why))?;
        let tools = result
            .get("tools")
            .and_then(Value::as_array)
            .ok_or_else(|| list_failed(route, "its tools/list answer has no `tools`"))?;
        read_only.extend(tools.iter().filter_map(|tool| {
            let hint = tool.pointer("/annotations/readOnlyHint")?.as_bool()?;
            hint.then(|| tool.get("name")?.as_str().map(String::from))?
        }));
        cursor = result
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(String::from);
        if cursor.is_none() {
            return Ok(read_only);
        }
    }
    Err(list_failed(route, "its tool list has too many pages"))
}

fn list_failed(route: &Route, why: &str) -> Response<Body> {
    text(
        StatusCode::BAD_GATEWAY,
        format!(
            "stagepass proxy: cannot tell whether this MCP tool call of route {} only reads: the \
             upstream's tool list failed ({why}); the call was not sent",
            route.name
        ),
    )
}

/// The `result` of the JSON-RPC answer `id` in a JSON or an SSE (`text/event-stream`) body.
async fn list_result(response: Response<Body>, id: &str) -> Result<Value, String> {
    let status = response.status();
    if status != StatusCode::OK {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    let stream = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    let bytes = Limited::new(response.into_body(), MAX_LIST_BYTES)
        .collect()
        .await
        .map_err(|_| "its answer is over 4 MiB or broke off".to_string())?
        .to_bytes();
    let text = std::str::from_utf8(&bytes).map_err(|_| "its answer is not UTF-8".to_string())?;
    let answers: Vec<Value> = if stream {
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect()
    } else {
        serde_json::from_str(text).into_iter().collect()
    };
    let answer = answers
        .into_iter()
        .find(|answer| answer.get("id").and_then(Value::as_str) == Some(id))
        .ok_or("no answer to its tools/list")?;
    answer
        .get("result")
        .cloned()
        .ok_or_else(|| "its tools/list answered an error".to_string())
}

/// The route and endpoint whose metadata `path` asks for (`/.well-known/...` + the
/// endpoint's local path), if any.
pub(crate) fn metadata_target<'a>(
    config: &'a Config,
    host_name: &str,
    path: &str,
) -> Option<(&'a Route, String)> {
    let endpoint = path.strip_prefix(METADATA_PREFIX)?;
    let (route, rest) = super::listener::select(&config.routes, host_name, endpoint)?;
    is_endpoint(route, rest).then(|| (route, endpoint.trim_end_matches('/').to_string()))
}

/// Whether the request targets an MCP endpoint of a route (where the key may come as
/// `Authorization: Bearer`, and a missing one is answered with a 401).
pub(crate) fn endpoint_of<'a>(
    config: &'a Config,
    host_name: &str,
    path: &str,
) -> Option<(&'a Route, String)> {
    if config.routes.iter().all(|route| route.mcp.is_empty()) {
        return None;
    }
    let (route, rest) = super::listener::select(&config.routes, host_name, path)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let endpoint = route.mcp.iter().find(|mcp| mcp.as_str() == rest)?;
    Some((route, local_path(route, endpoint)))
}

/// RFC 9728 §2: the resource (the endpoint's local URL) and how to present its token.
pub(crate) fn metadata(route: &Route, host: &str, endpoint: &str) -> Response<Body> {
    let document = serde_json::json!({
        "resource": format!("http://{host}{endpoint}"),
        "bearer_methods_supported": ["header"],
        "resource_name": format!("stagepass local proxy, route {}", route.name),
        "resource_documentation": "https://modelcontextprotocol.io/specification/2025-06-18/basic/authorization",
    });
    let mut response = Response::new(full(document.to_string()));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// RFC 6750 §3 / RFC 9728 §5.1: a 401 whose `WWW-Authenticate` points to the metadata.
/// `invalid`: a key came and was wrong, expired or revoked.
pub(crate) fn unauthorized(host: &str, endpoint: &str, why: &str, invalid: bool) -> Response<Body> {
    let mut response = text(StatusCode::UNAUTHORIZED, why);
    let error = if invalid {
        ", error=\"invalid_token\""
    } else {
        ""
    };
    // `host` passed the Host allow-list and `endpoint` is from the config: no quotes.
    let challenge =
        format!("Bearer resource_metadata=\"http://{host}{METADATA_PREFIX}{endpoint}\"{error}");
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(body: &str) -> Vec<&'static str> {
        parse_messages(body.as_bytes())
            .unwrap()
            .iter()
            .map(|message| match message_class(message) {
                Kind::Read => "read",
                Kind::Call(_) => "call",
                Kind::Write(_) => "write",
            })
            .collect()
    }

    #[test]
    fn messages_are_reads_calls_or_writes() {
        assert_eq!(
            class_of(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#),
            ["read"]
        );
        assert_eq!(
            class_of(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            ["read"]
        );
        assert_eq!(
            class_of(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
            ["read"]
        );
        assert_eq!(
            class_of(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#),
            ["call"]
        );
        assert_eq!(
            class_of(
                r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"logging/setLevel"}]"#
            ),
            ["read", "write"]
        );
        assert_eq!(
            class_of(r#"{"jsonrpc":"2.0","id":1,"method":7}"#),
            ["write"]
        );
        for bad in ["", "[]", "3", "\"x\"", "{"] {
            assert!(parse_messages(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_challenge_points_to_the_metadata() {
        let response = unauthorized("127.0.0.1:7466", "/bs/api/mcp-actions/v1", "no key", false);
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[WWW_AUTHENTICATE],
            "Bearer resource_metadata=\"http://127.0.0.1:7466/.well-known/oauth-protected-resource/bs/api/mcp-actions/v1\""
        );
        let invalid = unauthorized("127.0.0.1:7466", "/m", "wrong key", true);
        assert!(
            invalid.headers()[WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .ends_with(", error=\"invalid_token\"")
        );
    }
}
