//! What a remote key may reach: proxy routes by name, and access tokens of profiles. Resolved
//! against the config when the key is granted and stored explicitly, so `remote list` shows
//! exactly what a key can do and a later config edit never widens it.

use serde::{Deserialize, Serialize};
use stagepass_core::config::Config;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Scope {
    pub routes: Vec<String>,
    pub profiles: Vec<String>,
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

    pub(crate) fn allows_route(&self, route: &str) -> bool {
        self.routes.iter().any(|allowed| allowed == route)
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
            routes: vec![],
            profiles: names(&["bs"]),
        };
        assert_eq!(scope.profile_for(None, None).unwrap(), "bs");
        assert_eq!(scope.profile_for(Some("bs"), None).unwrap(), "bs");
        let err = scope.profile_for(Some("corp"), Some("corp")).unwrap_err();
        assert!(err.contains("does not cover profile `corp`"), "{err}");
        let two = Scope {
            routes: vec![],
            profiles: names(&["bs", "corp"]),
        };
        assert_eq!(two.profile_for(None, Some("corp")).unwrap(), "corp");
        assert!(two.profile_for(None, Some("other")).is_err());
        assert!(two.profile_for(None, None).is_err());
        assert!(Scope::default().profile_for(None, None).is_err());
    }
}
