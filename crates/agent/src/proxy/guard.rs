//! Who may use the loopback listener. Every request passes three doors, in order:
//!
//! 1. Host: exactly one allowed loopback name with the listener's port, so a DNS-rebound
//!    name (`evil.example` resolving to 127.0.0.1) never gets through.
//! 2. Browser context: no foreign or `null` Origin, no cross-site or same-site fetch (another
//!    port of 127.0.0.1 is the same *site*, so `same-site` is refused as well).
//! 3. Credentials: the proxy key (`Proxy-Authorization: Bearer KEY`) for programs, the session
//!    cookie for browsers. At a route's MCP endpoints a key may come as
//!    `Authorization: Bearer KEY` as well, where MCP clients put their access token.
//!
//! The remote endpoint shares this listener and the first two doors; a remote key is also
//! accepted at the third, for the routes in its scope.

use http::HeaderMap;
use http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN, PROXY_AUTHORIZATION};

use super::access::BrowserAccess;
use super::secrets::same_key;
use crate::delegation::{Accepted, Verdict};

/// Why a request was turned away; the text is the whole 403 body, and names no input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused(pub &'static str);

/// Who got through the third door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    /// The proxy key or a browser session: this user, on this machine.
    Local,
    /// A delegation (a remote key is one): only what its scope allows.
    Delegation(Accepted),
}

/// The one Host header, lowercase, when it is allowed. `port`: the listener's; `forwarded`:
/// the ports remote keys were granted for (`ssh -R RPORT:127.0.0.1:PORT` keeps the remote
/// side's Host), asked only for another port; `named` are the route host names
/// (`backstage.localhost`).
pub(crate) fn check_host<'a>(
    headers: &HeaderMap,
    port: u16,
    forwarded: impl FnOnce() -> Vec<u16>,
    named: impl IntoIterator<Item = &'a str>,
) -> Result<String, Refused> {
    let mut hosts = headers.get_all(HOST).iter();
    let (Some(host), None) = (hosts.next(), hosts.next()) else {
        return Err(Refused(
            "stagepass proxy: exactly one Host header is required",
        ));
    };
    let host = host
        .to_str()
        .map_err(|_| Refused("stagepass proxy: the Host header is not text"))?
        .to_ascii_lowercase();
    let name = host.rsplit_once(':').and_then(|(name, named_port)| {
        let named_port: u16 = named_port.parse().ok()?;
        (named_port == port || forwarded().contains(&named_port)).then_some(name)
    });
    let Some(name) = name else {
        return Err(Refused(
            "stagepass proxy: the Host header must name this port (DNS rebinding defence)",
        ));
    };
    let allowed = matches!(name, "127.0.0.1" | "localhost" | "[::1]")
        || named.into_iter().any(|route_host| route_host == name);
    if allowed {
        Ok(host)
    } else {
        Err(Refused(
            "stagepass proxy: unknown Host; use 127.0.0.1, localhost, [::1] or a route's \
             NAME.localhost with this port (DNS rebinding defence)",
        ))
    }
}

/// Refuses what a page of another origin makes a browser send.
pub(crate) fn check_browser(headers: &HeaderMap, host: &str) -> Result<(), Refused> {
    if let Some(origin) = headers.get(ORIGIN) {
        let same = origin
            .to_str()
            .ok()
            .and_then(|origin| origin.strip_prefix("http://"))
            .is_some_and(|origin| origin.eq_ignore_ascii_case(host));
        if !same {
            return Err(Refused(
                "stagepass proxy: requests from another origin are refused (no CORS)",
            ));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        // `none`: the user typed or opened the URL; `same-origin`: the route's own pages.
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err(Refused(
                "stagepass proxy: requests started by another site are refused",
            ));
        }
    }
    Ok(())
}

/// Checks the caller's credentials: the proxy key, a remote key (`remote` checks it), or a
/// browser session cookie. A wrong key is refused even when a valid cookie comes along: a
/// caller that sends one means it. `bearer`: an MCP endpoint, where the key may come in
/// `Authorization` when there is no `Proxy-Authorization`.
pub(crate) fn authenticate(
    headers: &HeaderMap,
    bearer: bool,
    key: &str,
    access: &BrowserAccess,
    cookie_name: &str,
    remote: impl FnOnce(&str) -> Verdict,
) -> Result<Credential, Refused> {
    let presented = headers
        .get(PROXY_AUTHORIZATION)
        .or_else(|| bearer.then(|| headers.get(AUTHORIZATION)).flatten());
    if let Some(value) = presented {
        let presented = value
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        let presented = presented.trim();
        if same_key(presented, key) {
            return Ok(Credential::Local);
        }
        return match remote(presented) {
            Verdict::Valid(accepted) => Ok(Credential::Delegation(accepted)),
            Verdict::Expired { .. } => Err(Refused(
                "stagepass proxy: this remote key or delegation has expired; grant a new one \
                 (`stagepass remote grant` or `stagepass delegate create` on the desktop)",
            )),
            Verdict::Unknown => Err(Refused(
                "stagepass proxy: wrong proxy key, or an unknown or revoked remote key or \
                 delegation (the proxy key is in the runtime dir's proxy.key; `stagepass exec` \
                 passes it as $STAGEPASS_PROXY_KEY)",
            )),
        };
    }
    if cookie_values(headers, cookie_name).any(|value| access.session_valid(value)) {
        return Ok(Credential::Local);
    }
    Err(Refused(
        "stagepass proxy: no credentials. Programs send `Proxy-Authorization: Bearer \
         $STAGEPASS_PROXY_KEY` (see `stagepass exec`); browsers start at `stagepass open`",
    ))
}

/// The values of cookie `name` in every Cookie header.
pub(crate) fn cookie_values<'a>(
    headers: &'a HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn host_must_be_an_allowed_name_with_the_port() {
        let routes = ["backstage.localhost"];
        for ok in [
            "127.0.0.1:7466",
            "localhost:7466",
            "[::1]:7466",
            "Backstage.LOCALHOST:7466",
        ] {
            let map = headers(&[("host", ok)]);
            assert!(check_host(&map, 7466, Vec::new, routes).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example:7466",
            "127.0.0.1",
            "127.0.0.1:7467",
            "localhost.:7466",
            "other.localhost:7466",
            "127.0.0.1:7466.evil.example",
        ] {
            let map = headers(&[("host", bad)]);
            assert!(check_host(&map, 7466, Vec::new, routes).is_err(), "{bad}");
        }
        assert!(check_host(&HeaderMap::new(), 7466, Vec::new, routes).is_err());
        let two = headers(&[("host", "127.0.0.1:7466"), ("host", "evil.example:7466")]);
        assert!(check_host(&two, 7466, Vec::new, routes).is_err());
        // A remote key's forwarded port, with the same names only.
        let forwarded = headers(&[("host", "127.0.0.1:9000")]);
        assert!(check_host(&forwarded, 7466, || vec![9000], routes).is_ok());
        assert!(check_host(&forwarded, 7466, Vec::new, routes).is_err());
        let rebound = headers(&[("host", "evil.example:9000")]);
        assert!(check_host(&rebound, 7466, || vec![9000], routes).is_err());
    }

    #[test]
    fn only_same_origin_browser_requests_pass() {
        let host = "127.0.0.1:7466";
        assert!(check_browser(&headers(&[]), host).is_ok());
        assert!(check_browser(&headers(&[("origin", "http://127.0.0.1:7466")]), host).is_ok());
        assert!(check_browser(&headers(&[("sec-fetch-site", "same-origin")]), host).is_ok());
        assert!(check_browser(&headers(&[("sec-fetch-site", "none")]), host).is_ok());
        for bad in [
            ("origin", "null"),
            ("origin", "http://127.0.0.1:8000"),
            ("origin", "https://127.0.0.1:7466"),
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            assert!(check_browser(&headers(&[bad]), host).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_are_the_key_or_a_live_session() {
        let access = BrowserAccess::default();
        let key = "k".repeat(64);
        let bearer = HeaderValue::from_str(&format!("Bearer {key}")).unwrap();
        let mut map = HeaderMap::new();
        map.insert(PROXY_AUTHORIZATION, bearer);
        let unknown = |_: &str| Verdict::Unknown;
        assert_eq!(
            authenticate(&map, false, &key, &access, "sp", unknown),
            Ok(Credential::Local)
        );
        let wrong = headers(&[("proxy-authorization", "Bearer kkk")]);
        assert!(authenticate(&wrong, false, &key, &access, "sp", unknown).is_err());
        assert!(authenticate(&HeaderMap::new(), false, &key, &access, "sp", unknown).is_err());
        // `Authorization` carries the key only at an MCP endpoint.
        let bearer = headers(&[("authorization", "Bearer kkk")]);
        let key_is_kkk = |presented: &str| {
            if presented == "kkk" {
                Verdict::Expired { name: "x".into() }
            } else {
                Verdict::Unknown
            }
        };
        assert_eq!(
            authenticate(&bearer, true, "kkk", &access, "sp", unknown),
            Ok(Credential::Local)
        );
        assert!(authenticate(&bearer, false, "kkk", &access, "sp", key_is_kkk).is_err());
        // A remote key is its own credential, and an expired one is refused.
        let accepted = Accepted {
            name: "cs".into(),
            kind: stagepass_proto::DelegationKind::Remote,
            scope: Default::default(),
            expires_at: u64::MAX,
        };
        let remote = |presented: &str| {
            if presented == "kkk" {
                Verdict::Valid(accepted.clone())
            } else {
                Verdict::Expired { name: "old".into() }
            }
        };
        assert_eq!(
            authenticate(&wrong, false, &key, &access, "sp", remote),
            Ok(Credential::Delegation(accepted.clone()))
        );
        let expired = headers(&[("proxy-authorization", "Bearer old")]);
        assert!(authenticate(&expired, false, &key, &access, "sp", remote).is_err());
        let session = access.open_session().unwrap();
        let cookie = HeaderValue::from_str(&format!("a=b; sp={}", session.expose())).unwrap();
        let mut map = HeaderMap::new();
        map.insert(COOKIE, cookie);
        assert!(authenticate(&map, false, &key, &access, "sp", unknown).is_ok());
        assert!(authenticate(&map, false, &key, &access, "other", unknown).is_err());
        let forged = headers(&[("cookie", "sp=0000")]);
        assert!(authenticate(&forged, false, &key, &access, "sp", unknown).is_err());
    }
}
