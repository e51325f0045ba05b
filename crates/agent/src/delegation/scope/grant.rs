//! What "allow for this delegation" adds to a delegation's scope: one route, one method and
//! one path prefix together, so an approved `POST /job/app/build` widens nothing else (not
//! POST elsewhere, not other methods on that path).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Methods, PathRule, has_dot_segment};

/// A delegation keeps at most this many approved grants; more is a sign the scope should
/// be made again with the right routes, methods and paths.
pub(crate) const MAX_GRANTS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct Grant {
    method: String,
    /// Always names its route.
    rule: PathRule,
}

impl Grant {
    /// The grant for a request, when it can be one: a method a scope can name, and a path
    /// that is a plain prefix (no dot segments, escapes or query). Anything else can only
    /// be allowed once.
    pub(crate) fn of(route: &str, method: &http::Method, path: &str) -> Option<Grant> {
        let methods = Methods::parse(&[method.as_str()]).ok()?;
        let rule = PathRule::parse(&format!("{route}:{path}")).ok()?;
        let method = methods.names().into_iter().next()?;
        Some(Grant { method, rule })
    }

    pub(crate) fn covers(&self, route: &str, method: &http::Method, path: &str) -> bool {
        self.method == method.as_str()
            && self.rule.route.as_deref() == Some(route)
            && !has_dot_segment(path)
            && self.rule.covers(path)
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.rule)
    }
}

impl TryFrom<String> for Grant {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let (method, rule) = text
            .split_once(' ')
            .ok_or_else(|| format!("approved `{text}`: not `METHOD ROUTE:/prefix`"))?;
        let rule = PathRule::parse(rule)?;
        if rule.route.is_none() {
            return Err(format!("approved `{text}`: name the route"));
        }
        let method = Methods::parse(&[method])?
            .names()
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok(Grant { method, rule })
    }
}

impl From<Grant> for String {
    fn from(grant: Grant) -> String {
        grant.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_covers_its_route_method_and_prefix_only() {
        let grant = Grant::of("api", &http::Method::POST, "/job/app").unwrap();
        assert_eq!(grant.to_string(), "POST api:/job/app");
        let post = http::Method::POST;
        assert!(grant.covers("api", &post, "/job/app"));
        assert!(grant.covers("api", &post, "/job/app/build"));
        assert!(!grant.covers("api", &post, "/job/application"));
        assert!(!grant.covers("api", &post, "/job/app/../../admin"));
        assert!(!grant.covers("api", &post, "/job/app/%2e%2e/admin"));
        assert!(!grant.covers("other", &post, "/job/app"));
        assert!(!grant.covers("api", &http::Method::DELETE, "/job/app"));
        let json = serde_json::to_string(&grant).unwrap();
        assert_eq!(serde_json::from_str::<Grant>(&json).unwrap(), grant);
        // What cannot be a prefix, or a method no scope names, is allowed once only.
        assert!(Grant::of("api", &post, "/a/../b").is_none());
        assert!(Grant::of("api", &post, "/a%2fb").is_none());
        let brew = http::Method::from_bytes(b"BREW").unwrap();
        assert!(Grant::of("api", &brew, "/x").is_none());
        for bad in ["POST /x", "BREW api:/x", "POST", "POST api:x"] {
            assert!(Grant::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }
}
