//! What a delegation may do: proxy routes by name, HTTP methods, path prefixes (per route or
//! for all), and the profiles whose access tokens it may get (remote keys only). Parsed into
//! types and resolved against the config when the delegation is created, and stored
//! explicitly, so `delegate list` shows exactly what a key can do and a later config edit
//! never widens it.

mod grant;

use std::fmt;

pub(crate) use grant::{Grant, MAX_GRANTS};
use serde::{Deserialize, Serialize};
use stagepass_core::config::Config;

/// The HTTP methods a delegation may send, as a set (RFC 9110 §9). `None` in a [`Scope`]
/// means every method (remote keys, which act as the developer on the far side).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub(crate) struct Methods(u16);

/// The methods a delegation can name; anything else (CONNECT, TRACE, extensions) is refused
/// at creation, so no scope grants a method nobody thought about.
const KNOWN: [&str; 7] = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"];

impl Methods {
    pub(crate) fn parse<S: AsRef<str>>(names: &[S]) -> Result<Methods, String> {
        let mut set = 0u16;
        for name in names {
            let name = name.as_ref().trim();
            let upper = name.to_ascii_uppercase();
            let Some(bit) = KNOWN.iter().position(|known| *known == upper) else {
                return Err(format!(
                    "method `{}` is not one of {}",
                    stagepass_core::text::one_line(name),
                    KNOWN.join(", ")
                ));
            };
            set |= 1 << bit;
        }
        if set == 0 {
            return Err(format!("name at least one method of {}", KNOWN.join(", ")));
        }
        Ok(Methods(set))
    }

    pub(crate) fn allows(self, method: &http::Method) -> bool {
        KNOWN
            .iter()
            .position(|known| *known == method.as_str())
            .is_some_and(|bit| self.0 & (1 << bit) != 0)
    }

    pub(crate) fn names(self) -> Vec<String> {
        KNOWN
            .iter()
            .enumerate()
            .filter(|(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, name)| name.to_string())
            .collect()
    }
}

impl TryFrom<Vec<String>> for Methods {
    type Error = String;
    fn try_from(names: Vec<String>) -> Result<Self, String> {
        Methods::parse(&names)
    }
}

impl From<Methods> for Vec<String> {
    fn from(methods: Methods) -> Vec<String> {
        methods.names()
    }
}

/// A path prefix under a route (the path the upstream sees, after the route's own local
/// prefix), for one route or, with `route: None`, for every route of the delegation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct PathRule {
    route: Option<String>,
    prefix: String,
}

/// Longer prefixes are typos or attempts to smuggle something.
const MAX_PREFIX: usize = 256;

impl PathRule {
    /// `/prefix/` or `ROUTE:/prefix/`. The prefix is plain: absolute, no dot segments, no
    /// percent-escapes, no query, no backslash, so that what is checked is what the
    /// upstream routes on.
    pub(crate) fn parse(text: &str) -> Result<PathRule, String> {
        let shown = || stagepass_core::text::one_line(text).into_owned();
        let (route, prefix) = match text.split_once(":/") {
            Some((route, rest)) if !route.is_empty() => {
                (Some(route.to_string()), format!("/{rest}"))
            }
            _ => (None, text.to_string()),
        };
        if !prefix.starts_with('/') || prefix.len() > MAX_PREFIX {
            return Err(format!(
                "path prefix `{}`: start it with `/` (ROUTE:/prefix for one route), at most {MAX_PREFIX} characters",
                shown()
            ));
        }
        let plain = prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._~:@!$&'()*+,;=".contains(&b));
        if !plain || has_dot_segment(&prefix) || prefix.contains("//") {
            return Err(format!(
                "path prefix `{}`: use plain path characters, no `.`/`..` segments, `//`, `%`, `?` or `#`",
                shown()
            ));
        }
        Ok(PathRule { route, prefix })
    }

    fn applies_to(&self, route: &str) -> bool {
        self.route.as_deref().is_none_or(|name| name == route)
    }

    /// A prefix ending in `/` covers what is under it; any other covers itself and what is
    /// under it at a `/` boundary (`/job/app` covers `/job/app/x`, not `/job/application`).
    fn covers(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix(self.prefix.as_str()) else {
            return false;
        };
        self.prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/')
    }
}

impl TryFrom<String> for PathRule {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        PathRule::parse(&text)
    }
}

impl From<PathRule> for String {
    fn from(rule: PathRule) -> String {
        rule.to_string()
    }
}

impl fmt::Display for PathRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.route {
            Some(route) => write!(f, "{route}:{}", self.prefix),
            None => f.write_str(&self.prefix),
        }
    }
}

/// Whether a path has a `.` or `..` segment, plainly or percent-encoded, or an encoded `/`
/// or `\`: upstreams may resolve those after the check, so a request carrying one is refused
/// when a path rule applies (RFC 3986 §5.2.4).
fn has_dot_segment(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains('\\') {
        return true;
    }
    lower
        .replace("%2e", ".")
        .split('/')
        .any(|segment| segment == "." || segment == "..")
}

/// What a request lacked, for the 403's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    Route,
    Method,
    Path,
}

impl Missing {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Missing::Route => "route",
            Missing::Method => "method",
            Missing::Path => "path",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Scope {
    pub routes: Vec<String>,
    pub profiles: Vec<String>,
    /// `None`: every method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Methods>,
    /// Empty: every path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<PathRule>,
    /// `Some(secs)`: a request outside the scope waits this long for the developer's answer
    /// (`--ask`, [`crate::delegation::approval`]) instead of a 403 at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask: Option<u64>,
    /// What "allow for this delegation" answers added, each a route, method and prefix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approved: Vec<Grant>,
    /// The raw tokens a local delegation may get, and how they are narrowed
    /// ([`super::minted`]); `None`: proxy access only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// (Boxed: most keys have none, and every proxied request carries a scope.)
    pub tokens: Option<Box<stagepass_proto::DelegatedTokens>>,
}

impl Scope {
    /// The scope of a new key. Routes bring their profile along (the route injects that
    /// profile's token anyway); with neither routes nor profiles, the default profile and
    /// the routes that use it.
    pub(crate) fn resolve(
        config: &Config,
        routes: &[String],
        profiles: &[String],
    ) -> Result<Scope, String> {
        let mut scope = Scope::default();
        if routes.is_empty() && profiles.is_empty() {
            let (default, _) = config.profile(None).map_err(|err| {
                format!("{err}; name the key's scope with --profiles or --routes")
            })?;
            scope.profiles.push(default.to_string());
            scope.routes = config
                .routes
                .iter()
                .filter(|route| route.profile == default)
                .map(|route| route.name.clone())
                .collect();
            return Ok(scope);
        }
        for name in routes {
            let route = config
                .routes
                .iter()
                .find(|route| &route.name == name)
                .ok_or_else(|| {
                    let known: Vec<&str> = config
                        .routes
                        .iter()
                        .map(|route| route.name.as_str())
                        .collect();
                    format!("no route `{name}`; routes: {}", or_none(&known))
                })?;
            scope.routes.push(route.name.clone());
            scope.profiles.push(route.profile.clone());
        }
        for name in profiles {
            if !config.profiles.contains_key(name) {
                let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
                return Err(format!(
                    "no profile `{name}`; profiles: {}",
                    or_none(&known)
                ));
            }
            scope.profiles.push(name.clone());
        }
        scope.routes.sort();
        scope.routes.dedup();
        scope.profiles.sort();
        scope.profiles.dedup();
        Ok(scope)
    }

    /// Narrows a resolved scope to `methods` and `paths`; a path rule for a route must name
    /// one of the scope's routes.
    pub(crate) fn limited(
        mut self,
        methods: Option<Methods>,
        paths: Vec<PathRule>,
    ) -> Result<Scope, String> {
        if let Some(rule) = paths.iter().find(|rule| {
            rule.route
                .as_ref()
                .is_some_and(|route| !self.allows_route(route))
        }) {
            return Err(format!(
                "path prefix `{rule}` names a route outside --routes ({})",
                or_none(&self.routes)
            ));
        }
        self.methods = methods;
        self.paths = paths;
        Ok(self)
    }

    pub(crate) fn allows_route(&self, route: &str) -> bool {
        self.routes.iter().any(|allowed| allowed == route)
    }

    /// The one check of a proxied request: route, then method, then path (the path the
    /// upstream sees, after the route's local prefix); else a grant the developer approved.
    pub(crate) fn check(
        &self,
        route: &str,
        method: &http::Method,
        path: &str,
    ) -> Result<(), Missing> {
        match self.check_declared(route, method, path) {
            Err(_)
                if self
                    .approved
                    .iter()
                    .any(|grant| grant.covers(route, method, path)) =>
            {
                Ok(())
            }
            checked => checked,
        }
    }

    /// The scope as it was created: routes, methods, paths.
    fn check_declared(
        &self,
        route: &str,
        method: &http::Method,
        path: &str,
    ) -> Result<(), Missing> {
        if !self.allows_route(route) {
            return Err(Missing::Route);
        }
        if self.methods.is_some_and(|methods| !methods.allows(method)) {
            return Err(Missing::Method);
        }
        let mut rules = self
            .paths
            .iter()
            .filter(|rule| rule.applies_to(route))
            .peekable();
        if rules.peek().is_none() {
            return Ok(());
        }
        if has_dot_segment(path) {
            return Err(Missing::Path);
        }
        if rules.any(|rule| rule.covers(path)) {
            Ok(())
        } else {
            Err(Missing::Path)
        }
    }

    /// The path rules that apply to `route`, as the 403 lists them.
    pub(crate) fn paths_for(&self, route: &str) -> Vec<String> {
        self.paths
            .iter()
            .filter(|rule| rule.applies_to(route))
            .map(|rule| rule.prefix.clone())
            .collect()
    }

    /// The profile a token request gets: the one asked for when the key covers it; else the
    /// key's only profile; else the config's default when the key covers it.
    pub(crate) fn profile_for(
        &self,
        requested: Option<&str>,
        default: Option<&str>,
    ) -> Result<String, String> {
        let covered = |name: &str| self.profiles.iter().any(|allowed| allowed == name);
        match requested {
            Some(name) if covered(name) => Ok(name.to_string()),
            Some(name) => Err(format!(
                "this remote key does not cover profile `{name}` (it covers: {})",
                or_none(&self.profiles)
            )),
            None => match self.profiles.as_slice() {
                [only] => Ok(only.clone()),
                _ => default
                    .filter(|name| covered(name))
                    .map(str::to_string)
                    .ok_or_else(|| {
                        format!(
                            "name a profile: this remote key covers {}",
                            or_none(&self.profiles)
                        )
                    }),
            },
        }
    }
}

fn or_none<T: AsRef<str>>(names: &[T]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config() -> Config {
        Config::parse(
            Path::new("c.toml"),
            r#"
            [profiles.corp]
            issuer = "https://idp.example.com"
            client_id = "x"
            [profiles.bs]
            issuer = "https://idp.example.com"
            client_id = "y"
            [[route]]
            name = "api"
            path = "/api"
            upstream = "https://a.example.com"
            profile = "corp"
            identity = "bearer"
            [[route]]
            name = "backstage"
            path = "/backstage"
            upstream = "https://b.example.com"
            profile = "bs"
            identity = "bearer"
        "#,
        )
        .unwrap()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn routes_bring_their_profile_and_unknown_names_are_refused() {
        let config = config();
        let scope = Scope::resolve(&config, &names(&["backstage"]), &[]).unwrap();
        assert_eq!(scope.routes, names(&["backstage"]));
        assert_eq!(scope.profiles, names(&["bs"]));
        assert!(scope.allows_route("backstage"));
        assert!(!scope.allows_route("api"));
        let err = Scope::resolve(&config, &names(&["nope"]), &[]).unwrap_err();
        assert!(
            err.contains("no route `nope`") && err.contains("api"),
            "{err}"
        );
        let err = Scope::resolve(&config, &[], &names(&["nope"])).unwrap_err();
        assert!(err.contains("no profile `nope`"), "{err}");
        // A profile alone gives no route.
        let scope = Scope::resolve(&config, &[], &names(&["corp"])).unwrap();
        assert!(scope.routes.is_empty() && !scope.allows_route("api"));
        // Two profiles and no default: the grant must say which.
        assert!(Scope::resolve(&config, &[], &[]).is_err());
    }

    #[test]
    fn token_requests_stay_inside_the_profiles() {
        let scope = Scope {
            profiles: names(&["bs"]),
            ..Scope::default()
        };
        assert_eq!(scope.profile_for(None, None).unwrap(), "bs");
        assert_eq!(scope.profile_for(Some("bs"), None).unwrap(), "bs");
        let err = scope.profile_for(Some("corp"), Some("corp")).unwrap_err();
        assert!(err.contains("does not cover profile `corp`"), "{err}");
        let two = Scope {
            profiles: names(&["bs", "corp"]),
            ..Scope::default()
        };
        assert_eq!(two.profile_for(None, Some("corp")).unwrap(), "corp");
        assert!(two.profile_for(None, Some("other")).is_err());
        assert!(two.profile_for(None, None).is_err());
        assert!(Scope::default().profile_for(None, None).is_err());
    }

    #[test]
    fn methods_parse_into_a_set_and_refuse_unknown_names() {
        let methods = Methods::parse(&["get", "POST"]).unwrap();
        assert!(methods.allows(&http::Method::GET) && methods.allows(&http::Method::POST));
        assert!(!methods.allows(&http::Method::DELETE));
        assert_eq!(methods.names(), names(&["GET", "POST"]));
        let read = Methods::parse(&stagepass_proto::READ_ONLY_METHODS).unwrap();
        assert_eq!(read.names(), names(&["GET", "HEAD", "OPTIONS"]));
        assert!(!read.allows(&http::Method::POST) && !read.allows(&http::Method::TRACE));
        for bad in [&["TRACE"][..], &["CONNECT"], &["GET\nX"], &[]] {
            assert!(Methods::parse(bad).is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&methods).unwrap();
        assert_eq!(json, r#"["GET","POST"]"#);
        assert_eq!(serde_json::from_str::<Methods>(&json).unwrap(), methods);
        assert!(serde_json::from_str::<Methods>(r#"["BREW"]"#).is_err());
    }

    #[test]
    fn path_prefixes_are_plain_absolute_paths() {
        let rule = PathRule::parse("/job/app/").unwrap();
        assert_eq!(rule.to_string(), "/job/app/");
        let rule = PathRule::parse("jenkins:/job/app").unwrap();
        assert_eq!(
            (rule.route.as_deref(), rule.prefix.as_str()),
            (Some("jenkins"), "/job/app")
        );
        for bad in [
            "job/",
            "/a/../b",
            "/a/%2e%2e/b",
            "/a?x",
            "/a#x",
            "/a//b",
            "/a\\b",
            "/a/./b",
            "/é",
            "",
        ] {
            assert!(PathRule::parse(bad).is_err(), "{bad}");
        }
        assert!(PathRule::parse(&format!("/{}", "a".repeat(300))).is_err());
    }

    #[test]
    fn the_check_names_the_route_the_method_or_the_path() {
        let scope = Scope {
            routes: names(&["api", "backstage"]),
            ..Scope::default()
        }
        .limited(
            Some(Methods::parse(&stagepass_proto::READ_ONLY_METHODS).unwrap()),
            vec![
                PathRule::parse("api:/job/app/").unwrap(),
                PathRule::parse("api:/v1").unwrap(),
            ],
        )
        .unwrap();
        let get = http::Method::GET;
        assert_eq!(scope.check("api", &get, "/job/app/build"), Ok(()));
        assert_eq!(scope.check("api", &get, "/v1"), Ok(()));
        assert_eq!(scope.check("api", &get, "/v1/x"), Ok(()));
        assert_eq!(scope.check("api", &get, "/v10"), Err(Missing::Path));
        assert_eq!(scope.check("api", &get, "/job/other"), Err(Missing::Path));
        assert_eq!(
            scope.check("api", &get, "/job/app/../../admin"),
            Err(Missing::Path)
        );
        assert_eq!(
            scope.check("api", &get, "/job/app/%2E%2e/x"),
            Err(Missing::Path)
        );
        assert_eq!(
            scope.check("api", &get, "/job/app/a%2fb"),
            Err(Missing::Path)
        );
        assert_eq!(
            scope.check("api", &http::Method::POST, "/job/app/"),
            Err(Missing::Method)
        );
        assert_eq!(scope.check("other", &get, "/job/app/"), Err(Missing::Route));
        // No rule for backstage: every path; still read-only.
        assert_eq!(scope.check("backstage", &get, "/anything"), Ok(()));
        assert_eq!(
            scope.check("backstage", &http::Method::DELETE, "/x"),
            Err(Missing::Method)
        );
        // A remote key's scope: every method and path of its routes.
        let remote = Scope {
            routes: names(&["api"]),
            ..Scope::default()
        };
        assert_eq!(
            remote.check("api", &http::Method::DELETE, "/x/../y"),
            Ok(())
        );
        // A rule for a route outside the scope is refused at creation.
        let err = Scope {
            routes: names(&["api"]),
            ..Scope::default()
        }
        .limited(None, vec![PathRule::parse("other:/x").unwrap()])
        .unwrap_err();
        assert!(err.contains("outside --routes"), "{err}");
    }
}
