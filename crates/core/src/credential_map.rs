//! Which profile's token goes to which server: the `[[git]]` and `[[docker]]` tables.
//!
//! ```toml
//! [[git]]
//! url = "https://git.example.com/"     # scheme, host[:port], optional path prefix
//! profile = "corp"
//! username = "oauth2"                  # or username_from = "preferred_username"
//! auth = "basic"                       # or "bearer" (git >= 2.46 sends Authorization: Bearer)
//! token = "access"                     # or "id"
//!
//! [[docker]]
//! registry = "registry.example.com"
//! profile = "corp"
//! ```
//!
//! A token must never reach a server it was not mapped to, so matching is exact on scheme,
//! host and port, and a path prefix matches only at `/` boundaries.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::url_policy::{is_bare_base, is_secure_or_loopback};

/// Username sent with the token in Basic auth when the config names none. Works with GitLab,
/// Gitea/Forgejo and most servers that read only the password.
pub const DEFAULT_USERNAME: &str = "oauth2";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHost {
    pub url: String,
    pub profile: String,
    /// A fixed username: `oauth2` (GitLab), `x-access-token` (GitHub-style servers), ...
    pub username: Option<String>,
    /// Or the username from an id_token claim, such as `preferred_username` or `email`.
    pub username_from: Option<String>,
    #[serde(default)]
    pub token: MappedToken,
    #[serde(default)]
    pub auth: GitAuth,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerRegistry {
    /// `host[:port]`, as docker names the registry.
    pub registry: String,
    pub profile: String,
    pub username: Option<String>,
    pub username_from: Option<String>,
    #[serde(default)]
    pub token: MappedToken,
}

/// What a helper hands out for a mapped server, whichever tool asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping<'a> {
    pub profile: &'a str,
    pub username: Option<&'a str>,
    pub username_from: Option<&'a str>,
    pub token: MappedToken,
}

impl GitHost {
    pub fn mapping(&self) -> Mapping<'_> {
        Mapping {
            profile: &self.profile,
            username: self.username.as_deref(),
            username_from: self.username_from.as_deref(),
            token: self.token,
        }
    }
}

impl DockerRegistry {
    pub fn mapping(&self) -> Mapping<'_> {
        Mapping {
            profile: &self.profile,
            username: self.username.as_deref(),
            username_from: self.username_from.as_deref(),
            token: self.token,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappedToken {
    #[default]
    Access,
    Id,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GitAuth {
    /// Username and token as the password (HTTP Basic): every git version.
    #[default]
    Basic,
    /// `Authorization: Bearer`, when git announces `capability[]=authtype` (git >= 2.46);
    /// older git falls back to Basic.
    Bearer,
}

/// A server a tool is about to call, as the tool names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: String,
    /// Lowercase host, with `:port` when the URL has a non-default one.
    pub authority: String,
    /// Without the leading `/`; `None` when the tool did not send one.
    pub path: Option<String>,
}

impl Target {
    pub fn parse(url: &str) -> Option<Target> {
        let parsed = Url::parse(url).ok()?;
        let host = parsed.host_str()?.to_ascii_lowercase();
        let authority = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        let path = parsed.path().trim_matches('/');
        Some(Target {
            scheme: parsed.scheme().to_string(),
            authority,
            path: (!path.is_empty()).then(|| path.to_string()),
        })
    }

    /// Whether this target (from the config) covers `asked` (from the tool).
    fn covers(&self, asked: &Target) -> bool {
        if self.scheme != asked.scheme || self.authority != asked.authority {
            return false;
        }
        match (&self.path, &asked.path) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(prefix), Some(path)) => {
                path == prefix
                    || path
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
                    // git may ask for `repo` where the config says `repo.git`, and back.
                    || path.trim_end_matches(".git") == prefix.trim_end_matches(".git")
            }
        }
    }
}

/// What GitHub's git over HTTPS takes as the username beside a user access token.
/// <https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation#about-authentication-as-a-github-app-installation>
pub const GITHUB_GIT_USERNAME: &str = "x-access-token";

/// A `[[git]]` entry for every GitHub profile whose host no written entry names: git on
/// `https://github.com/` (or the GHES host) then works with no more config, with the
/// username GitHub expects. Written entries win.
pub(crate) fn github_hosts(
    profiles: &std::collections::BTreeMap<String, crate::profile::Profile>,
    written: &[GitHost],
) -> Vec<GitHost> {
    let mut implied: Vec<GitHost> = Vec::new();
    for (name, profile) in profiles {
        let Some(url) = profile.github_url() else {
            continue;
        };
        let Some(target) = Target::parse(url) else {
            continue;
        };
        let named = |hosts: &[GitHost]| {
            hosts.iter().any(|host| {
                Target::parse(&host.url).is_some_and(|host| {
                    host.scheme == target.scheme && host.authority == target.authority
                })
            })
        };
        if named(written) || named(&implied) {
            continue;
        }
        implied.push(GitHost {
            url: format!("{url}/"),
            profile: name.clone(),
            username: Some(GITHUB_GIT_USERNAME.to_string()),
            username_from: None,
            token: MappedToken::Access,
            auth: GitAuth::Basic,
        });
    }
    implied
}

/// The most specific `[[git]]` entry for `asked`: the longest matching path prefix wins.
pub fn match_git<'a>(hosts: &'a [GitHost], asked: &Target) -> Option<&'a GitHost> {
    hosts
        .iter()
        .filter_map(|host| Some((Target::parse(&host.url)?, host)))
        .filter(|(target, _)| target.covers(asked))
        .max_by_key(|(target, _)| target.path.as_ref().map_or(0, String::len))
        .map(|(_, host)| host)
}

/// The `[[docker]]` entry for a registry as docker names it: `host[:port]`, or a URL.
pub fn match_docker<'a>(
    registries: &'a [DockerRegistry],
    asked: &str,
) -> Option<&'a DockerRegistry> {
    let asked = registry_authority(asked)?;
    registries
        .iter()
        .find(|entry| registry_authority(&entry.registry).as_deref() == Some(asked.as_str()))
}

/// `registry.example.com`, `https://registry.example.com/v1/` and `registry.example.com:443`
/// all name one registry to docker.
fn registry_authority(name: &str) -> Option<String> {
    let url = if name.contains("://") {
        name.to_string()
    } else {
        format!("https://{name}")
    };
    let target = Target::parse(&url)?;
    Some(target.authority.trim_end_matches(":443").to_string())
}

/// Checks a `[[git]]` entry; `Err` names the key.
pub(crate) fn validate_git(index: usize, host: &GitHost) -> Result<(), String> {
    let key = |field: &str| format!("git[{index}].{field}");
    let url = Url::parse(&host.url)
        .map_err(|err| format!("{}: `{}` is not a URL: {err}", key("url"), host.url))?;
    if !is_secure_or_loopback(&url) {
        return Err(format!(
            "{}: `{}` must use https: a token sent over plain http can be read on the way \
             (http is allowed only for 127.0.0.1, [::1] or localhost)",
            key("url"),
            host.url
        ));
    }
    if !is_bare_base(&url) {
        return Err(format!(
            "{}: `{}` may hold only scheme, host, port and path",
            key("url"),
            host.url
        ));
    }
    validate_credential(&key, host.mapping())
}

pub(crate) fn validate_docker(index: usize, entry: &DockerRegistry) -> Result<(), String> {
    let key = |field: &str| format!("docker[{index}].{field}");
    if registry_authority(&entry.registry).is_none() {
        return Err(format!(
            "{}: `{}` is not a registry host",
            key("registry"),
            entry.registry
        ));
    }
    validate_credential(&key, entry.mapping())
}

fn validate_credential(key: &dyn Fn(&str) -> String, mapping: Mapping<'_>) -> Result<(), String> {
    if mapping.username.is_some() && mapping.username_from.is_some() {
        return Err(format!(
            "{} and {}: set one of them, not both",
            key("username"),
            key("username_from")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(url: &str, profile: &str) -> GitHost {
        GitHost {
            url: url.into(),
            profile: profile.into(),
            username: None,
            username_from: None,
            token: MappedToken::Access,
            auth: GitAuth::Basic,
        }
    }

    fn asked(url: &str) -> Target {
        Target::parse(url).unwrap()
    }

    #[test]
    fn host_entries_match_scheme_host_and_port_exactly() {
        let hosts = [git("https://git.example.com/", "corp")];
        assert!(match_git(&hosts, &asked("https://git.example.com")).is_some());
        assert!(match_git(&hosts, &asked("https://GIT.example.com/team/app.git")).is_some());
        for other in [
            "http://git.example.com",
            "https://git.example.com:8443",
            "https://git.example.com.evil.test",
            "https://evil.test/git.example.com",
            "https://example.com",
        ] {
            assert!(match_git(&hosts, &asked(other)).is_none(), "{other}");
        }
    }

    #[test]
    fn path_prefixes_match_at_segment_boundaries_and_the_longest_wins() {
        let hosts = [
            git("https://git.example.com/", "corp"),
            git("https://git.example.com/secret", "secret"),
        ];
        let profile = |url: &str| match_git(&hosts, &asked(url)).map(|h| h.profile.as_str());
        assert_eq!(
            profile("https://git.example.com/secret/app.git"),
            Some("secret")
        );
        assert_eq!(profile("https://git.example.com/secret"), Some("secret"));
        assert_eq!(
            profile("https://git.example.com/secretive/app"),
            Some("corp")
        );
        assert_eq!(profile("https://git.example.com/other"), Some("corp"));
        // Without useHttpPath git sends no path: only host entries can match.
        assert_eq!(profile("https://git.example.com"), Some("corp"));
        let only_path = [git("https://git.example.com/secret", "secret")];
        assert!(match_git(&only_path, &asked("https://git.example.com")).is_none());
    }

    #[test]
    fn docker_registry_names_are_normalised() {
        let registries = [DockerRegistry {
            registry: "registry.example.com".into(),
            profile: "corp".into(),
            username: None,
            username_from: None,
            token: MappedToken::Access,
        }];
        for name in [
            "registry.example.com",
            "https://registry.example.com",
            "https://registry.example.com/v2/",
            "registry.example.com:443",
        ] {
            assert!(match_docker(&registries, name).is_some(), "{name}");
        }
        for name in ["registry.example.com:5000", "example.com", "evil.test"] {
            assert!(match_docker(&registries, name).is_none(), "{name}");
        }
    }

    #[test]
    fn plain_http_git_urls_are_refused_off_loopback() {
        let err = validate_git(0, &git("http://git.example.com/", "corp")).unwrap_err();
        assert!(err.contains("git[0].url") && err.contains("https"), "{err}");
        validate_git(0, &git("http://127.0.0.1:8080/", "corp")).unwrap();
    }
}
