//! The TOML config: profiles to sign in to. Secrets never go in it.
//!
//! ```toml
//! [profiles.corp]
//! issuer = "https://idp.example.com/realms/eng"
//! client_id = "stagepass"
//! scopes = ["openid", "email", "groups", "offline_access"]
//! audience = "https://backstage.example.com"   # optional, sent as RFC 8707 `resource`
//! flow = "auto"                                # or "browser" / "device"
//! groups_claim = "groups"                      # optional: the claim that lists the user's groups
//!
//! [profiles.backstage]
//! kind = "backstage"                           # Backstage's own OAuth server (plugin-auth-backend)
//! url = "https://backstage.example.com"        # the backend's base URL
//! # client_id defaults to {url}/api/auth/.well-known/oauth-client/cli.json
//!
//! [desktop]                                    # optional: the tray app's preferences
//! notifications = true
//! backstage_url = "https://backstage.example.com"
//! quit_stops_agent = false
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::credential_map::{self, DockerRegistry, GitHost};
use crate::profile::{self, RawProfile};
pub use crate::profile::{
    BACKSTAGE_AUTH_PATH, BACKSTAGE_CLI_CLIENT_PATH, BACKSTAGE_SCOPES, BACKSTAGE_SHARED_CLIENT_NOTE,
    DEFAULT_PROXY_AUTH_PROVIDER, FlowPreference, GITHUB_SCOPES, OfflineAccess, Profile,
    ProfileKind, ProfileKindTag, ViaProfile,
};
use crate::proxy_config::{self, ProxySettings, RawRoute, Route};
use crate::url_policy::is_secure_or_loopback;
use crate::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, RawProfile>,
    #[serde(default)]
    git: Vec<GitHost>,
    #[serde(default)]
    docker: Vec<DockerRegistry>,
    #[serde(default)]
    desktop: Desktop,
    #[serde(default)]
    proxy: ProxySettings,
    #[serde(default)]
    route: Vec<RawRoute>,
}

/// The tray app's preferences. They live in the same file as the profiles so one file says
/// everything about a user's setup; the CLI and agent ignore them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Desktop {
    /// Desktop notifications on sign-in, sign-in needed and failing refreshes.
    #[serde(default = "enabled")]
    pub notifications: bool,
    /// What "Open Backstage" opens (until the local proxy provides a launch URL).
    pub backstage_url: Option<String>,
    /// Quitting the tray also stops the agent (off: helpers keep working after Quit).
    #[serde(default)]
    pub quit_stops_agent: bool,
}

impl Default for Desktop {
    fn default() -> Self {
        Desktop {
            notifications: true,
            backstage_url: None,
            quit_stops_agent: false,
        }
    }
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub path: PathBuf,
    pub profiles: BTreeMap<String, Profile>,
    /// Git servers and the profile whose token they get (see [`crate::credential_map`]).
    pub git: Vec<GitHost>,
    pub docker: Vec<DockerRegistry>,
    pub desktop: Desktop,
    /// The local proxy (see [`crate::proxy_config`]); it serves when `routes` is not empty.
    pub proxy: ProxySettings,
    pub routes: Vec<Route>,
}

impl Config {
    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|err| Error::Config {
            path: path.to_path_buf(),
            message: if err.kind() == std::io::ErrorKind::NotFound {
                "no config file here: create it with a `[profiles.NAME]` table \
                 (issuer, client_id), or point STAGEPASS_CONFIG at one"
                    .to_string()
            } else {
                format!("cannot read it: {err}")
            },
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let config_error = |message: String| Error::Config {
            path: path.to_path_buf(),
            message,
        };
        // toml's message names the line, the key and what is allowed there.
        let file: ConfigFile =
            toml::from_str(text).map_err(|err| config_error(err.to_string().trim().to_string()))?;
        let profiles = file
            .profiles
            .into_iter()
            .map(|(name, raw)| Ok((name.clone(), raw.parse(&name)?)))
            .collect::<Result<BTreeMap<_, _>, String>>()
            .map_err(config_error)?;
        for (name, profile) in &profiles {
            profile::check_via(name, profile, &profiles).map_err(config_error)?;
        }
        let known_profile = |key: String, profile: &str| {
            if profiles.contains_key(profile) {
                Ok(())
            } else {
                Err(format!("{key}: no profile `{profile}` in [profiles]"))
            }
        };
        for (index, host) in file.git.iter().enumerate() {
            credential_map::validate_git(index, host)
                .and_then(|()| known_profile(format!("git[{index}].profile"), &host.profile))
                .map_err(config_error)?;
        }
        for (index, entry) in file.docker.iter().enumerate() {
            credential_map::validate_docker(index, entry)
                .and_then(|()| known_profile(format!("docker[{index}].profile"), &entry.profile))
                .map_err(config_error)?;
        }
        if let Some(url) = &file.desktop.backstage_url
            && !Url::parse(url).is_ok_and(|url| is_secure_or_loopback(&url))
        {
            return Err(config_error(format!(
                "desktop.backstage_url: `{url}` must be an https URL (or http on loopback)"
            )));
        }
        let routes = proxy_config::parse_routes(file.route, &profiles).map_err(config_error)?;
        let mut git = file.git;
        git.extend(credential_map::github_hosts(&profiles, &git));
        Ok(Config {
            path: path.to_path_buf(),
            profiles,
            git,
            docker: file.docker,
            desktop: file.desktop,
            proxy: file.proxy,
            routes,
        })
    }

    /// The profile called `name`, or the only profile when `name` is `None`.
    pub fn profile(&self, name: Option<&str>) -> Result<(&str, &Profile)> {
        let known = || {
            if self.profiles.is_empty() {
                "none (add a [profiles.NAME] table)".to_string()
            } else {
                self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            }
        };
        match name {
            Some(name) => self
                .profiles
                .get_key_value(name)
                .map(|(name, profile)| (name.as_str(), profile))
                .ok_or_else(|| Error::UnknownProfile {
                    name: name.to_string(),
                    path: self.path.clone(),
                    known: known(),
                }),
            None => {
                let mut profiles = self.profiles.iter();
                match (profiles.next(), profiles.next()) {
                    (Some((name, profile)), None) => Ok((name.as_str(), profile)),
                    (None, _) => Err(Error::Config {
                        path: self.path.clone(),
                        message: "no profile defined: add a [profiles.NAME] table".into(),
                    }),
                    _ => Err(Error::AmbiguousProfile {
                        path: self.path.clone(),
                        known: known(),
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("/etc/stagepass.toml"), text)
    }

    const MINIMAL: &str = r#"
        [profiles.corp]
        issuer = "https://idp.example.com/realms/eng"
        client_id = "stagepass"
    "#;

    #[test]
    fn minimal_profile_gets_defaults() {
        let config = parse(MINIMAL).unwrap();
        let (name, profile) = config.profile(None).unwrap();
        assert_eq!(name, "corp");
        assert_eq!(profile.flow, FlowPreference::Auto);
        assert!(profile.scopes().contains(&"openid".to_string()));
        assert_eq!(profile.audience(), None);
    }

    #[test]
    fn unknown_key_names_file_key_and_allowed_keys() {
        let err = parse(&format!("{MINIMAL}\nclientid = \"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/stagepass.toml"), "{err}");
        assert!(err.contains("clientid"), "{err}");
        assert!(err.contains("client_id"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = parse(
            r#"
            [profiles.corp]
            issuer = "https://idp.example.com"
            client_id = "stagepass"
            scopes = "openid email"
        "#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("scopes"), "{err}");
        assert!(err.contains("sequence"), "{err}");
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let remote = MINIMAL.replace("https://idp.example.com", "http://idp.example.com");
        let err = parse(&remote).unwrap_err().to_string();
        assert!(err.contains("profiles.corp.issuer"), "{err}");
        let local = MINIMAL.replace("https://idp.example.com", "http://127.0.0.1:8080");
        parse(&local).unwrap();
    }

    #[test]
    fn bad_flow_lists_the_allowed_values() {
        let err = parse(&format!("{MINIMAL}flow = \"magic\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("auto") && err.contains("device"), "{err}");
    }

    #[test]
    fn scopes_without_openid_are_refused() {
        let err = parse(&format!("{MINIMAL}scopes = [\"email\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("profiles.corp.scopes"), "{err}");
    }

    #[test]
    fn desktop_table_is_optional_and_checked() {
        assert_eq!(parse(MINIMAL).unwrap().desktop, Desktop::default());
        let with = format!("{MINIMAL}\n[desktop]\nnotifications = false\n");
        assert!(!parse(&with).unwrap().desktop.notifications);
        let bad = format!("{MINIMAL}\n[desktop]\nbackstage_url = \"ftp://x\"\n");
        let err = parse(&bad).unwrap_err().to_string();
        assert!(err.contains("desktop.backstage_url"), "{err}");
    }

    #[test]
    fn backstage_profile_needs_only_a_url() {
        let config = parse(
            r#"
            [profiles.backstage]
            kind = "backstage"
            url = "https://backstage.example.com/"
        "#,
        )
        .unwrap();
        let profile = &config.profiles["backstage"];
        assert_eq!(profile.issuer(), "https://backstage.example.com/api/auth");
        assert_eq!(
            profile.client_id(),
            "https://backstage.example.com/api/auth/.well-known/oauth-client/cli.json"
        );
        assert!(profile.uses_backstage_cli_client());
        let own = parse(
            r#"
            [profiles.backstage]
            kind = "backstage"
            url = "https://backstage.example.com"
            client_id = "https://example.com/stagepass.json"
        "#,
        )
        .unwrap();
        assert_eq!(
            own.profiles["backstage"].client_id(),
            "https://example.com/stagepass.json"
        );
        assert!(!own.profiles["backstage"].uses_backstage_cli_client());
    }

    #[test]
    fn backstage_behind_a_proxy_names_its_idp_profile() {
        let config = parse(&format!(
            "{MINIMAL}\n[profiles.portal]\nkind = \"backstage\"\nurl = \"https://portal.example.com\"\nvia_profile = \"corp\"\n"
        ))
        .unwrap();
        let portal = &config.profiles["portal"];
        assert_eq!(
            portal.via(),
            Some(&ViaProfile {
                profile: "corp".into(),
                auth_provider: "oauth2Proxy".into()
            })
        );
        assert!(
            !portal.uses_backstage_cli_client(),
            "no OAuth client of its own"
        );
        assert_eq!(config.profiles["corp"].via(), None);

        for (extra, key, says) in [
            (
                "via_profile = \"nobody\"\n",
                "profiles.portal.via_profile",
                "no profile `nobody`",
            ),
            (
                "via_profile = \"portal\"\n",
                "profiles.portal.via_profile",
                "OpenID Connect",
            ),
            (
                "via_profile = \"corp\"\nauth_provider = \"../v1/token\"\n",
                "profiles.portal.auth_provider",
                "letters, digits",
            ),
            (
                "auth_provider = \"oauth2Proxy\"\n",
                "profiles.portal.auth_provider",
                "only used with",
            ),
        ] {
            let err = parse(&format!(
                "{MINIMAL}\n[profiles.portal]\nkind = \"backstage\"\nurl = \"https://portal.example.com\"\n{extra}"
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains(key) && err.contains(says), "{extra}: {err}");
        }
        let err = parse(&format!("{MINIMAL}via_profile = \"corp\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("profiles.corp.via_profile"), "{err}");
    }

    #[test]
    fn backstage_profile_errors_name_the_key() {
        let err = parse("[profiles.b]\nkind = \"backstage\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("profiles.b.url") && err.contains("required"),
            "{err}"
        );
        let err =
            parse("[profiles.b]\nkind = \"backstage\"\nurl = \"http://backstage.example.com\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("profiles.b.url") && err.contains("https"),
            "{err}"
        );
        let err = parse(&format!(
            "{MINIMAL}url = \"https://backstage.example.com\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("profiles.corp.url"), "{err}");
        let err = parse("[profiles.c]\nclient_id = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("profiles.c.issuer") && err.contains("required"),
            "{err}"
        );
    }

    #[test]
    fn profile_choice() {
        let two = format!("{MINIMAL}\n{}", MINIMAL.replace("corp", "home"));
        let config = parse(&two).unwrap();
        let err = config.profile(None).unwrap_err().to_string();
        assert!(err.contains("corp, home"), "{err}");
        assert_eq!(config.profile(Some("home")).unwrap().0, "home");
        let err = config.profile(Some("nope")).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("corp, home"), "{err}");
    }
}
