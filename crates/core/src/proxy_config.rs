//! The local proxy's part of the config: the `[proxy]` table and the `[[route]]` tables.
//!
//! ```toml
//! [proxy]
//! port = 7466                       # 127.0.0.1 only; the default clashes with neither 3000 nor 7007
//!
//! [[route]]
//! name = "backstage"
//! path = "/backstage"               # a local path prefix, or: host = "backstage.localhost"
//! upstream = "https://backstage.example.com"
//! profile = "backstage"
//! identity = "backstage"            # a Backstage user token as Authorization: Bearer
//!
//! [[route]]
//! name = "jenkins"
//! host = "jenkins.localhost"
//! upstream = "https://jenkins.example.com"
//! profile = "corp"
//! identity = "header"               # or "bearer"
//! header = "X-Forwarded-Access-Token"
//! token = "id"                      # "access" (default) or "id"
//! ca_file = "/etc/ssl/corp-ca.pem"  # trusted besides the platform roots
//! timeout_secs = 30                 # until the upstream's response headers
//! strip_headers = ["X-Custom-User"] # more headers the upstream trusts as identity
//! mcp = ["/api/mcp-actions/v1"]     # MCP endpoints (Streamable HTTP) under the upstream
//! ```
//!
//! The proxy serves when there is at least one route. A route's token goes only to its
//! upstream, so upstreams need https except on loopback, as issuers do.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::credential_map::MappedToken;
use crate::profile::{Profile, ProfileKind};
use crate::url_policy::{is_bare_base, is_secure_or_loopback};

/// The proxy's port when `[proxy] port` is not set: clear of Backstage's 3000 and 7007.
pub const DEFAULT_PROXY_PORT: u16 = 7466;

/// Seconds until the upstream's response headers, when a route sets none.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySettings {
    #[serde(default = "default_port")]
    pub port: u16,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            port: DEFAULT_PROXY_PORT,
        }
    }
}

fn default_port() -> u16 {
    DEFAULT_PROXY_PORT
}

/// A `[[route]]` table, parsed: where it is served, where it goes, and how it adds the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub name: String,
    pub local: Local,
    pub upstream: Upstream,
    pub profile: String,
    pub identity: Identity,
    pub token: MappedToken,
    pub ca_file: Option<PathBuf>,
    /// Until the upstream's response headers.
    pub timeout: Duration,
    /// Headers this upstream trusts as an identity beyond the ones the proxy always strips,
    /// never passed on from a caller.
    pub strip_headers: Vec<HeaderKey>,
    /// The upstream paths (after the route's prefix, exact) of MCP Streamable HTTP endpoints
    /// (<https://modelcontextprotocol.io/specification/2025-06-18/basic/transports>), such
    /// as Backstage's `/api/mcp-actions/v1`: there the proxy reads the JSON-RPC messages to
    /// apply a delegation's scope per tool, and serves OAuth protected resource metadata.
    pub mcp: Vec<String>,
}

/// A route table as written; [`parse_routes`] turns it into a [`Route`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    name: String,
    /// Local path prefix, stripped before forwarding (`/backstage/api/x` goes to `/api/x`).
    path: Option<String>,
    /// Or a local host name under `.localhost`, on the proxy's port.
    host: Option<String>,
    upstream: String,
    profile: String,
    identity: IdentityTag,
    /// `identity = "header"` only: the header that carries the token.
    header: Option<String>,
    #[serde(default)]
    token: MappedToken,
    ca_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
    #[serde(default)]
    strip_headers: Vec<HeaderKey>,
    #[serde(default)]
    mcp: Vec<String>,
}

/// An upstream base URL, parsed once at load: the proxy joins every request path onto it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `https://backstage.example.com`, lowercase.
    origin: String,
    /// The URL's path without a trailing `/`: `""` or `/base`.
    path: String,
}

impl Upstream {
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.origin, self.path)
    }
}

/// A header name as upstreams match it: lowercase, and `_` read as `-`. CGI, WSGI and Rack
/// turn both `X-Forwarded-User` and `X_Forwarded_User` into `HTTP_X_FORWARDED_USER`, so a
/// denylist that compares spellings would let the second through.
pub fn header_key(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b == b'_' || b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase().replace('_', "-"))
    } else {
        Cow::Borrowed(name)
    }
}

/// A header name from the config, checked and kept as its [`header_key`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HeaderKey(String);

impl HeaderKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for HeaderKey {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(HeaderKey(header_key(&name).into_owned()))
        } else {
            Err(format!(
                "`{name}` is not a header name (letters, digits, `-` and `_`)"
            ))
        }
    }
}

impl From<HeaderKey> for String {
    fn from(key: HeaderKey) -> String {
        key.0
    }
}

/// How a route adds the user's identity to what it forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A Backstage user token (a `kind = "backstage"` profile) as `Authorization: Bearer`.
    Backstage,
    /// The profile's token as `Authorization: Bearer` (oauth2-proxy with JWT bearer tokens,
    /// Jenkins with OIDC, an API).
    Bearer,
    /// The bare token in this header.
    Header(String),
}

/// The `identity` key; `header` names the header of [`Identity::Header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum IdentityTag {
    Backstage,
    Bearer,
    Header,
}

/// Where a route is served locally.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Local {
    /// Without a trailing `/`; `""` for the whole origin.
    Path(String),
    /// Lowercase, without the port.
    Host(String),
}

impl Route {
    /// The route's local base URL on `port`, e.g. `http://127.0.0.1:7466/backstage`.
    pub fn local_url(&self, port: u16) -> String {
        match &self.local {
            Local::Path(path) => format!("http://127.0.0.1:{port}{path}"),
            Local::Host(host) => format!("http://{host}:{port}"),
        }
    }
}

/// Parses the routes, checked against each other and the profiles; the error names the key.
pub(crate) fn parse_routes(
    routes: Vec<RawRoute>,
    profiles: &BTreeMap<String, Profile>,
) -> Result<Vec<Route>, String> {
    let mut names = HashSet::new();
    let mut locals = HashSet::new();
    let mut parsed = Vec::with_capacity(routes.len());
    for (index, route) in routes.into_iter().enumerate() {
        let key = |field: &str| format!("route[{index}].{field}");
        if route.name.is_empty()
            || !route
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(format!(
                "{}: `{}` may only use letters, digits and `-` (it names the route in \
                 `stagepass open NAME`)",
                key("name"),
                route.name
            ));
        }
        if !names.insert(route.name.clone()) {
            return Err(format!(
                "{}: another route is already called `{}`",
                key("name"),
                route.name
            ));
        }
        let local = parse_local(&key, &route)?;
        if !locals.insert(local.clone()) {
            return Err(format!(
                "{}: another route is served at the same local path or host",
                key(match local {
                    Local::Path(_) => "path",
                    Local::Host(_) => "host",
                })
            ));
        }
        let upstream = parse_upstream(&key, &route)?;
        let Some(profile) = profiles.get(&route.profile) else {
            return Err(format!(
                "{}: no profile `{}` in [profiles]",
                key("profile"),
                route.profile
            ));
        };
        let identity = parse_identity(&key, &route, profile)?;
        let timeout_secs = match route.timeout_secs {
            Some(0) => return Err(format!("{}: must be at least 1", key("timeout_secs"))),
            Some(secs) => secs,
            None => DEFAULT_TIMEOUT_SECS,
        };
        let mcp = parse_mcp(&key, route.mcp)?;
        parsed.push(Route {
            name: route.name,
            local,
            upstream,
            profile: route.profile,
            identity,
            token: route.token,
            ca_file: route.ca_file,
            timeout: Duration::from_secs(timeout_secs),
            strip_headers: route.strip_headers,
            mcp,
        });
    }
    Ok(parsed)
}

/// MCP endpoint paths: plain absolute paths, kept without a trailing `/` (the proxy compares
/// them with the request's path exactly).
fn parse_mcp(key: &dyn Fn(&str) -> String, paths: Vec<String>) -> Result<Vec<String>, String> {
    paths
        .into_iter()
        .map(|path| {
            let valid = path.len() > 1
                && path.starts_with('/')
                && !path.contains(['?', '#', '%', ' '])
                && !path.split('/').any(|segment| segment == "." || segment == "..");
            if valid {
                Ok(path.trim_end_matches('/').to_string())
            } else {
                Err(format!(
                    "{}: `{path}` must be a path under the upstream such as                      \"/api/mcp-actions/v1\" (no `?`, `#`, `%`, space or dot segments)",
                    key("mcp")
                ))
            }
        })
        .collect()
}

fn parse_local(key: &dyn Fn(&str) -> String, route: &RawRoute) -> Result<Local, String> {
    match (&route.path, &route.host) {
        (Some(_), Some(_)) | (None, None) => Err(format!(
            "{}: set exactly one of `path` (a local prefix such as \"/backstage\") or `host` \
             (a name such as \"backstage.localhost\")",
            key("path")
        )),
        (Some(path), None) => {
            // `/.stagepass/` is the proxy's own (launch URLs).
            let valid = path.starts_with('/')
                && !path.contains(['?', '#', '%', ' '])
                && !path.starts_with("/.stagepass");
            if valid {
                Ok(Local::Path(path.trim_end_matches('/').to_string()))
            } else {
                Err(format!(
                    "{}: `{path}` must start with `/`, hold no `?`, `#`, `%` or space, and not \
                     be under /.stagepass",
                    key("path")
                ))
            }
        }
        (None, Some(host)) => {
            let host = host.to_ascii_lowercase();
            let label = host.strip_suffix(".localhost").unwrap_or_default();
            let valid = !label.is_empty()
                && label.split('.').all(|part| {
                    !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if valid {
                Ok(Local::Host(host))
            } else {
                Err(format!(
                    "{}: `{host}` must be a name under .localhost, such as \"backstage.localhost\" \
                     (browsers resolve those to loopback)",
                    key("host")
                ))
            }
        }
    }
}

fn parse_upstream(key: &dyn Fn(&str) -> String, route: &RawRoute) -> Result<Upstream, String> {
    let url = Url::parse(&route.upstream).map_err(|err| {
        format!(
            "{}: `{}` is not a URL: {err}",
            key("upstream"),
            route.upstream
        )
    })?;
    if !is_secure_or_loopback(&url) {
        return Err(format!(
            "{}: `{}` must use https (the route adds a token; plain http only on 127.0.0.1, \
             [::1] or localhost)",
            key("upstream"),
            route.upstream
        ));
    }
    if !is_bare_base(&url) {
        return Err(format!(
            "{}: `{}` must be a base URL without user, query or fragment",
            key("upstream"),
            route.upstream
        ));
    }
    if let Some(ca_file) = &route.ca_file
        && !ca_file.is_file()
    {
        return Err(format!(
            "{}: `{}` is not a readable file (PEM certificates to trust for this upstream)",
            key("ca_file"),
            ca_file.display()
        ));
    }
    Ok(Upstream {
        origin: url.origin().ascii_serialization(),
        path: url.path().trim_end_matches('/').to_string(),
    })
}

fn parse_identity(
    key: &dyn Fn(&str) -> String,
    route: &RawRoute,
    profile: &Profile,
) -> Result<Identity, String> {
    let identity = match (route.identity, &route.header) {
        (IdentityTag::Header, None) => {
            return Err(format!(
                "{}: required with identity = \"header\": the header that carries the token",
                key("header")
            ));
        }
        (IdentityTag::Header, Some(header)) => {
            let valid = !header.is_empty()
                && header
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(format!(
                    "{}: `{header}` is not a header name",
                    key("header")
                ));
            }
            Identity::Header(header.clone())
        }
        (_, Some(_)) => {
            return Err(format!(
                "{}: only with identity = \"header\"",
                key("header")
            ));
        }
        (IdentityTag::Backstage, None) => Identity::Backstage,
        (IdentityTag::Bearer, None) => Identity::Bearer,
    };
    let backstage = matches!(profile.kind, ProfileKind::Backstage { .. });
    if identity == Identity::Backstage {
        if !backstage {
            return Err(format!(
                "{}: identity = \"backstage\" needs a kind = \"backstage\" profile; `{}` is an \
                 OIDC profile (use identity = \"bearer\" to send its token)",
                key("identity"),
                route.profile
            ));
        }
        if route.token == MappedToken::Id {
            return Err(format!(
                "{}: Backstage has no id_token; remove the key",
                key("token")
            ));
        }
    }
    let github = profile.github_url().is_some();
    if route.token == MappedToken::Id && (backstage || github) {
        return Err(format!(
            "{}: profile `{}` is a {} profile, which has no id_token",
            key("token"),
            route.profile,
            if github { "GitHub" } else { "Backstage" }
        ));
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    const PROFILES: &str = r#"
        [profiles.corp]
        issuer = "https://idp.example.com"
        client_id = "stagepass"
        [profiles.bs]
        kind = "backstage"
        url = "https://backstage.example.com"
    "#;

    fn parse(routes: &str) -> crate::Result<Config> {
        Config::parse(
            Path::new("/etc/stagepass.toml"),
            &format!("{PROFILES}\n{routes}"),
        )
    }

    fn error(routes: &str) -> String {
        parse(routes).unwrap_err().to_string()
    }

    #[test]
    fn routes_parse_with_defaults() {
        let config = parse(
            r#"
            [[route]]
            name = "backstage"
            path = "/backstage/"
            upstream = "https://backstage.example.com"
            profile = "bs"
            identity = "backstage"
            [[route]]
            name = "api"
            host = "API.localhost"
            upstream = "http://127.0.0.1:8080/base"
            profile = "corp"
            identity = "header"
            header = "X-Token"
            token = "id"
        "#,
        )
        .unwrap();
        assert_eq!(config.proxy.port, super::DEFAULT_PROXY_PORT);
        assert_eq!(
            config.routes[0].local,
            super::Local::Path("/backstage".into())
        );
        assert_eq!(
            config.routes[1].local,
            super::Local::Host("api.localhost".into())
        );
        assert_eq!(config.routes[1].upstream.origin(), "http://127.0.0.1:8080");
        assert_eq!(config.routes[1].upstream.path(), "/base");
        assert_eq!(
            config.routes[1].identity,
            super::Identity::Header("X-Token".into())
        );
        assert_eq!(
            config.routes[0].local_url(7466),
            "http://127.0.0.1:7466/backstage"
        );
        assert_eq!(config.routes[1].local_url(9), "http://api.localhost:9");
        assert_eq!(config.routes[0].timeout.as_secs(), 30);
        assert!(config.routes[0].strip_headers.is_empty());
        let extra = parse(
            "[[route]]\nname = \"x\"\npath = \"/x\"\nupstream = \"https://x.example\"\n\
             profile = \"corp\"\nidentity = \"bearer\"\nstrip_headers = [\"X_Custom_User\"]\n",
        )
        .unwrap();
        assert_eq!(extra.routes[0].strip_headers[0].as_str(), "x-custom-user");
        assert!(extra.routes[0].mcp.is_empty());
        let mcp = parse(
            "[[route]]\nname = \"x\"\npath = \"/x\"\nupstream = \"https://x.example\"\n\
             profile = \"corp\"\nidentity = \"bearer\"\nmcp = [\"/api/mcp-actions/v1/\"]\n",
        )
        .unwrap();
        assert_eq!(mcp.routes[0].mcp, ["/api/mcp-actions/v1"]);
        let port = parse("[proxy]\nport = 9000\n").unwrap();
        assert_eq!(port.proxy.port, 9000);
        assert!(port.routes.is_empty());
    }

    #[test]
    fn route_errors_name_the_key() {
        let base = r#"
            [[route]]
            name = "b"
            upstream = "https://backstage.example.com"
            profile = "bs"
            identity = "backstage"
        "#;
        let err = error(base);
        assert!(
            err.contains("route[0].path") && err.contains("exactly one"),
            "{err}"
        );
        let err = error(&format!("{base}path = \"/x\"\nhost = \"b.localhost\"\n"));
        assert!(err.contains("exactly one"), "{err}");
        let err = error(&format!("{base}host = \"b.example.com\"\n"));
        assert!(
            err.contains("route[0].host") && err.contains(".localhost"),
            "{err}"
        );
        let err = error(&format!("{base}path = \"x\"\n"));
        assert!(err.contains("route[0].path"), "{err}");
        let err = error(&format!("{base}path = \"/.stagepass/x\"\n"));
        assert!(err.contains("route[0].path"), "{err}");
        for bad in ["mcp", "/", "/a/../b", "/a?b"] {
            let err = error(&format!("{base}path = \"/x\"\nmcp = [\"{bad}\"]\n"));
            assert!(err.contains("route[0].mcp"), "{bad}: {err}");
        }
        let err = error(&format!("{base}path = \"/x\"\nheader = \"X\"\n"));
        assert!(err.contains("route[0].header"), "{err}");
        let err = error(&format!("{base}path = \"/x\"\nsecret = \"x\"\n"));
        assert!(err.contains("secret") && err.contains("upstream"), "{err}");
        let err = error(&format!("{base}path = \"/x\"\n{base}path = \"/x\"\n"));
        assert!(
            err.contains("route[1].name") && err.contains("already"),
            "{err}"
        );
        let err = error(&format!(
            "{base}path = \"/x\"\n{}path = \"/x/\"\n",
            base.replace("\"b\"", "\"c\"")
        ));
        assert!(
            err.contains("route[1].path") && err.contains("same local"),
            "{err}"
        );
        let plain = base.replace("https://backstage", "http://backstage");
        let err = error(&format!("{plain}path = \"/x\"\n"));
        assert!(
            err.contains("route[0].upstream") && err.contains("https"),
            "{err}"
        );
        let err = error(&format!(
            "{}path = \"/x\"\n",
            base.replace("\"bs\"", "\"corp\"")
        ));
        assert!(
            err.contains("route[0].identity") && err.contains("backstage"),
            "{err}"
        );
        let err = error(&format!(
            "{}path = \"/x\"\n",
            base.replace("\"bs\"", "\"none\"")
        ));
        assert!(
            err.contains("route[0].profile") && err.contains("none"),
            "{err}"
        );
        let header = base.replace("\"backstage\"\n", "\"header\"\n");
        let err = error(&format!("{header}path = \"/x\"\n"));
        assert!(
            err.contains("route[0].header") && err.contains("required"),
            "{err}"
        );
        let err = error(&format!(
            "{base}path = \"/x\"\nca_file = \"/nonexistent.pem\"\n"
        ));
        assert!(err.contains("route[0].ca_file"), "{err}");
        let err = error(&format!("{base}path = \"/x\"\ntimeout_secs = 0\n"));
        assert!(err.contains("route[0].timeout_secs"), "{err}");
        let err = error(&format!(
            "{base}path = \"/x\"\nstrip_headers = [\"X User\"]\n"
        ));
        assert!(
            err.contains("strip_headers") && err.contains("not a header name"),
            "{err}"
        );
        let err = error("[proxy]\nport = \"x\"\n");
        assert!(err.contains("port"), "{err}");
    }
}
