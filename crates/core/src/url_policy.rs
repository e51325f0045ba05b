//! The one rule for where a token or a sign-in may travel: TLS everywhere except loopback.
//! Issuers, discovered endpoints, git servers, proxy upstreams and every HTTP call to an IdP
//! are checked against it, so it sits below the config types that use it.

use url::{Host, Url};

/// TLS everywhere except the loopback interface, where a local IdP (tests, a dev Keycloak)
/// cannot be reached by anyone else anyway.
pub fn is_secure_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            Some(Host::Domain(domain)) => domain == "localhost",
            None => false,
        },
        _ => false,
    }
}

/// A base URL a token is sent to: no user, query or fragment, which would be dropped or
/// misread when paths are appended.
pub fn is_bare_base(url: &Url) -> bool {
    url.query().is_none() && url.fragment().is_none() && url.username().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        for (url, ok) in [
            ("https://idp.example.com", true),
            ("http://127.0.0.1:8080", true),
            ("http://[::1]:8080", true),
            ("http://localhost", true),
            ("http://idp.example.com", false),
            ("ftp://idp.example.com", false),
        ] {
            let parsed = Url::parse(url).unwrap();
            assert_eq!(is_secure_or_loopback(&parsed), ok, "{url}");
        }
    }
}
