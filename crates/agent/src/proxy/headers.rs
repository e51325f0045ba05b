//! Header rules of the forwarding: what a caller may not pass on, what is hop-by-hop, and how
//! an upstream's redirects and cookies are made to work on the local origin.

use http::header::{
    CONNECTION, COOKIE, HOST, HeaderMap, HeaderName, HeaderValue, LOCATION, ORIGIN, SET_COOKIE,
    UPGRADE,
};
use stagepass_core::proxy_config::{HeaderKey, header_key};

/// Headers through which a caller could claim an identity, or that an upstream's identity
/// layer trusts, as [`header_key`]s. Backstage's oauth2Proxy provider reads
/// `X-OAUTH2-PROXY-ID-TOKEN` and `X-Forwarded-Email` without verifying anything, so none of
/// these may come from a caller.
const IDENTITY: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-oauth2-proxy-id-token",
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "x-user",
    "x-username",
    "x-email",
    "x-groups",
    "x-id-token",
    "x-access-token",
    "x-token",
    // oauth2-proxy's old name for its user header.
    "gap-auth",
    // Kong's OpenID Connect plugins.
    "x-userinfo",
    "x-credential-identifier",
    "x-credential-username",
    "x-anonymous-consumer",
    // Teleport's application access.
    "teleport-jwt-assertion",
    // Apache mod_auth_openidc.
    "oidc-access-token",
    "oidc-id-token",
];
/// Header families of the common identity-aware proxies, as [`header_key`] prefixes.
const IDENTITY_PREFIXES: &[&str] = &[
    "x-forwarded-",
    // oauth2-proxy (x-auth-request-*), Keycloak Gatekeeper / Louketo (x-auth-*).
    "x-auth-",
    "x-remote-",
    // Authelia (Remote-User, -Groups, -Email, -Name) and CGI's REMOTE_USER read from a header.
    "remote-",
    "x-authentik-",
    "x-pomerium-",
    // Kong (X-Consumer-ID, -Username, -Custom-ID, -Groups).
    "x-consumer-",
    "x-vouch-",
    "x-authenticated-",
    "x-webauth-",
    "x-user-",
    "x-amzn-oidc-",
    "x-goog-iap-",
    "x-goog-authenticated-",
    "x-ms-client-principal",
    "x-ms-token-",
    "cf-access-",
    "tailscale-user-",
    "oidc-claim-",
    "x-stagepass-",
];

/// Meaningful for one connection only (RFC 9110 §7.6.1), plus the obsolete Proxy-Connection.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Cookie names that carry an identity of the upstream's identity layer (oauth2-proxy's
/// session), never passed on from a caller.
const IDENTITY_COOKIE_PREFIXES: &[&str] = &["_oauth2_proxy"];

/// Whether a header carries an identity: one of the proxy's list, or of the route's
/// `strip_headers`, in any spelling an upstream reads as the same header.
fn is_identity(name: &str, extra: &[HeaderKey]) -> bool {
    let key = header_key(name);
    let key = key.as_ref();
    IDENTITY.contains(&key)
        || IDENTITY_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix))
        || extra.iter().any(|extra| extra.as_str() == key)
}

/// The headers to send upstream: the caller's, less hop-by-hop, identity (the proxy's list
/// and the route's `strip_headers`), Host and the proxy's own session cookie. The caller
/// adds the identity and Host afterwards.
/// `upgrade`: the protocol the caller asked to switch to (WebSocket), kept with its
/// `Connection: upgrade`.
pub(crate) fn upstream_request(
    incoming: &HeaderMap,
    upgrade: Option<&HeaderValue>,
    strip: &[HeaderKey],
    session_cookie: &str,
    upstream_origin: &str,
) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(incoming.len());
    // Looked for once: most callers send no Connection header.
    let listed = incoming.contains_key(CONNECTION);
    for (name, value) in incoming {
        let lower = name.as_str();
        if HOP_BY_HOP.contains(&lower)
            || is_identity(lower, strip)
            || (listed
                && connection_tokens(incoming).any(|listed| listed.eq_ignore_ascii_case(lower)))
            || name == HOST
            || name == COOKIE
        {
            continue;
        }
        if name == ORIGIN {
            // The guard made sure it is this proxy's own origin; the upstream knows itself.
            if let Ok(origin) = HeaderValue::from_str(upstream_origin) {
                out.append(ORIGIN, origin);
            }
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    let cookies = kept_cookies(incoming, session_cookie);
    if !cookies.is_empty()
        && let Ok(value) = HeaderValue::from_str(&cookies)
    {
        out.insert(COOKIE, value);
    }
    if let Some(protocol) = upgrade {
        out.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        out.insert(UPGRADE, protocol.clone());
    }
    out
}

/// The caller's cookies that are the upstream's own: every one but the proxy's session
/// cookie and identity-layer cookies. Identity goes in the header the proxy sets, so an
/// upstream's session cookie (set through this proxy) may come back to it.
fn kept_cookies(incoming: &HeaderMap, session_cookie: &str) -> String {
    let mut kept = Vec::new();
    for value in incoming.get_all(COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value
            .split(';')
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
        {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            let ours = name == session_cookie;
            let identity = IDENTITY_COOKIE_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix));
            if !ours && !identity {
                kept.push(pair);
            }
        }
    }
    kept.join("; ")
}

/// What the Connection headers list: header names, hop-by-hop by declaration, and options
/// (`close`, `keep-alive`). Read in place, as the checks run per request.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|hop| hop.eq_ignore_ascii_case(name))
}

/// How the upstream's URLs map onto the local origin.
pub(crate) struct Rewrite<'a> {
    /// `https://backstage.example.com`, lowercase.
    pub upstream_origin: &'a str,
    /// The upstream URL's path without a trailing `/`: `""` or `/base`.
    pub upstream_path: &'a str,
    /// The local origin's host and port: `127.0.0.1:7466` or `backstage.localhost:7466`.
    pub local_host: &'a str,
    /// The route's local path prefix without a trailing `/`: `""` for host routes.
    pub local_path: &'a str,
}

impl Rewrite<'_> {
    /// An upstream absolute path as the browser must ask for it here.
    fn path(&self, path: &str) -> String {
        let rest = match path.strip_prefix(self.upstream_path) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => path,
        };
        let rest = if rest.is_empty() { "/" } else { rest };
        format!("{}{rest}", self.local_path)
    }

    fn location(&self, location: &str) -> Option<String> {
        if location.starts_with('/') && !location.starts_with("//") {
            return Some(self.path(location));
        }
        let origin_len = self.upstream_origin.len();
        let same_origin = location.len() >= origin_len
            && location.is_char_boundary(origin_len)
            && location[..origin_len].eq_ignore_ascii_case(self.upstream_origin)
            && matches!(
                location.as_bytes().get(origin_len),
                None | Some(b'/' | b'?')
            );
        same_origin.then(|| {
            let rest = &location[origin_len..];
            let rest = if rest.starts_with('/') {
                self.path(rest)
            } else {
                format!("{}/{rest}", self.local_path)
            };
            format!("http://{}{rest}", self.local_host)
        })
    }

    /// A Set-Cookie for the local origin: host-only (no Domain), not Secure (the local
    /// origin is plain http on loopback), and its Path under the route's prefix.
    fn set_cookie(&self, cookie: &str) -> String {
        let mut parts = cookie.split(';').map(str::trim);
        let mut out = vec![parts.next().unwrap_or_default().to_string()];
        for attribute in parts {
            let (name, value) = attribute.split_once('=').unwrap_or((attribute, ""));
            match name.to_ascii_lowercase().as_str() {
                "domain" | "secure" | "partitioned" => {}
                // SameSite=None is only accepted with Secure.
                "samesite" if value.eq_ignore_ascii_case("none") => {
                    out.push("SameSite=Lax".into());
                }
                "path" => out.push(format!("Path={}", self.path(value))),
                _ => out.push(attribute.to_string()),
            }
        }
        out.join("; ")
    }
}

/// Makes the upstream's response headers fit the local origin: hop-by-hop headers go (but a
/// 101 keeps its Connection and Upgrade), CORS headers go (the proxy never grants other
/// origins anything), redirects and cookies are rewritten.
pub(crate) fn downstream_response(headers: &mut HeaderMap, switching: bool, rewrite: &Rewrite) {
    // A 101's `Connection: Upgrade` names Upgrade itself, and the client needs both to
    // accept the switch: the exception applies to what Connection lists too.
    let kept = |name: &str| switching && matches!(name, "connection" | "upgrade");
    // What Connection lists besides the hop-by-hop headers (which go below, or stay for a
    // switch). Most responses list only `keep-alive` or `close`: then nothing is copied.
    if connection_tokens(headers).any(|listed| !is_hop_by_hop(listed)) {
        let connection: Vec<HeaderValue> = headers.get_all(CONNECTION).iter().cloned().collect();
        let listed = connection
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim);
        for name in listed {
            if !is_hop_by_hop(name) {
                headers.remove(name);
            }
        }
    }
    for name in HOP_BY_HOP {
        if !kept(name) {
            headers.remove(*name);
        }
    }
    let cors: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in cors {
        headers.remove(name);
    }
    if let Some(location) = headers.get(LOCATION).and_then(|value| value.to_str().ok())
        && let Some(local) = rewrite.location(location)
        && let Ok(value) = HeaderValue::from_str(&local)
    {
        headers.insert(LOCATION, value);
    }
    let cookies: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|cookie| HeaderValue::from_str(&rewrite.set_cookie(cookie)).ok())
        .collect();
    if !cookies.is_empty() {
        headers.remove(SET_COOKIE);
        for cookie in cookies {
            headers.append(SET_COOKIE, cookie);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn identity_and_hop_by_hop_headers_never_reach_the_upstream() {
        let incoming = map(&[
            ("host", "127.0.0.1:7466"),
            ("authorization", "Bearer forged"),
            ("proxy-authorization", "Bearer key"),
            ("x-oauth2-proxy-id-token", "forged"),
            ("x-forwarded-email", "mallory@example.com"),
            ("x-forwarded-user", "mallory"),
            ("X-Forwarded-Preferred-Username", "mallory"),
            ("x-auth-request-email", "mallory@example.com"),
            ("x-remote-user", "mallory"),
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("te", "trailers"),
            ("cookie", "sp_7466=session; theme=dark"),
            ("cookie", "_oauth2_proxy=forged"),
            ("origin", "http://127.0.0.1:7466"),
            ("accept", "application/json"),
        ]);
        let out = upstream_request(
            &incoming,
            None,
            &[],
            "sp_7466",
            "https://backstage.example.com",
        );
        let names: Vec<&str> = out.keys().map(|name| name.as_str()).collect();
        assert_eq!(names, ["origin", "accept", "cookie"], "{out:?}");
        assert_eq!(out["cookie"], "theme=dark");
        assert_eq!(out["origin"], "https://backstage.example.com");
        let upgrade = HeaderValue::from_static("websocket");
        let out = upstream_request(&incoming, Some(&upgrade), &[], "sp_7466", "http://u");
        assert_eq!(out["connection"], "upgrade");
        assert_eq!(out["upgrade"], "websocket");
    }

    #[test]
    fn every_spelling_of_the_identity_proxies_headers_is_stripped() {
        let incoming = map(&[
            ("x_forwarded_user", "mallory"),
            ("remote_user", "mallory"),
            ("remote-groups", "admins"),
            ("remote-email", "m@example.com"),
            ("remote-name", "Mallory"),
            ("x-authentik-username", "mallory"),
            ("x-pomerium-claim-email", "m@example.com"),
            ("x-consumer-username", "mallory"),
            ("x-userinfo", "e30"),
            ("x-vouch-user", "mallory"),
            ("x-authenticated-user", "mallory"),
            ("x_auth_request_email", "m@example.com"),
            ("x-custom-user", "mallory"),
            ("x-kept", "1"),
        ]);
        let extra = [HeaderKey::try_from("X_Custom_User".to_string()).unwrap()];
        let out = upstream_request(&incoming, None, &extra, "sp", "http://u");
        let names: Vec<&str> = out.keys().map(|name| name.as_str()).collect();
        assert_eq!(names, ["x-kept"], "{out:?}");
    }

    #[test]
    fn a_switch_keeps_the_upgrade_its_connection_header_names() {
        let mut headers = map(&[
            ("upgrade", "websocket"),
            ("connection", "Upgrade"),
            ("sec-websocket-accept", "x"),
        ]);
        downstream_response(&mut headers, true, &PATH_ROUTE);
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["connection"], "Upgrade");
        downstream_response(&mut headers, false, &PATH_ROUTE);
        assert!(headers.get("upgrade").is_none(), "{headers:?}");
    }

    #[test]
    fn what_a_response_lists_in_connection_goes_with_the_hop_by_hop_headers() {
        let mut headers = map(&[
            ("connection", "Keep-Alive, X-Hop"),
            ("keep-alive", "timeout=5"),
            ("x-hop", "1"),
            ("access-control-allow-origin", "*"),
            ("content-type", "text/plain"),
        ]);
        downstream_response(&mut headers, false, &PATH_ROUTE);
        let names: Vec<&str> = headers.keys().map(|name| name.as_str()).collect();
        assert_eq!(names, ["content-type"], "{headers:?}");
    }

    const PATH_ROUTE: Rewrite<'static> = Rewrite {
        upstream_origin: "https://backstage.example.com",
        upstream_path: "/base",
        local_host: "127.0.0.1:7466",
        local_path: "/backstage",
    };

    #[test]
    fn redirects_to_the_upstream_stay_on_the_local_origin() {
        let cases = [
            ("/base/catalog", Some("/backstage/catalog")),
            ("/other", Some("/backstage/other")),
            (
                "https://BACKSTAGE.example.com/base/x?y=1",
                Some("http://127.0.0.1:7466/backstage/x?y=1"),
            ),
            (
                "https://backstage.example.com",
                Some("http://127.0.0.1:7466/backstage/"),
            ),
            ("https://idp.example.com/authorize", None),
            ("https://backstage.example.com.evil.example/x", None),
            ("//evil.example/x", None),
            ("relative/x", None),
        ];
        for (upstream, local) in cases {
            assert_eq!(
                PATH_ROUTE.location(upstream).as_deref(),
                local,
                "{upstream}"
            );
        }
    }

    #[test]
    fn cookies_become_host_only_cookies_of_the_route() {
        assert_eq!(
            PATH_ROUTE.set_cookie(
                "sid=1; Domain=.example.com; Path=/base/api; Secure; HttpOnly; SameSite=None"
            ),
            "sid=1; Path=/backstage/api; HttpOnly; SameSite=Lax"
        );
        let mut headers = map(&[
            ("set-cookie", "a=1; Path=/"),
            ("set-cookie", "b=2; Domain=example.com"),
            ("access-control-allow-origin", "*"),
            ("access-control-allow-credentials", "true"),
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("location", "/base/next"),
        ]);
        downstream_response(&mut headers, false, &PATH_ROUTE);
        let cookies: Vec<_> = headers.get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["a=1; Path=/backstage/", "b=2"]);
        assert_eq!(headers[LOCATION], "/backstage/next");
        assert_eq!(headers.len(), 3, "{headers:?}");
    }
}
