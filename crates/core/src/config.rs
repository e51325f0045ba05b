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
use crate::proxy_config::{self, ProxySettings, Route};
use crate::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
    #[serde(default)]
    git: Vec<GitHost>,
    #[serde(default)]
    docker: Vec<DockerRegistry>,
    #[serde(default)]
    desktop: Desktop,
    #[serde(default)]
    proxy: ProxySettings,
    #[serde(default)]
    route: Vec<Route>,
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default)]
    pub kind: ProfileKind,
    /// `kind = "backstage"` only: the Backstage backend's base URL. [`Config::parse`] derives
    /// `issuer` (its auth plugin, `{url}/api/auth`) and the default `client_id` from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Kept as written: discovery compares it with the IdP's `issuer` string exactly.
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Sent as the RFC 8707 `resource` parameter on authorization, token and refresh requests.
    pub audience: Option<String>,
    #[serde(default)]
    pub flow: FlowPreference,
    /// The claim that carries the user's groups or roles (`groups`, `roles`, a namespaced
    /// Auth0 claim...). When set, `stagepass doctor` checks that the tokens carry it.
    pub groups_claim: Option<String>,
    /// `kind = "backstage"` only: a Backstage behind an identity-aware proxy (oauth2-proxy
    /// with JWT bearer tokens allowed). Its user token comes from the proxy sign-in provider's
    /// refresh endpoint, called through the proxy with this `oidc` profile's access token;
    /// the profile then has no sign-in or refresh token of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_profile: Option<String>,
    /// With `via_profile`: the Backstage auth provider behind the proxy
    /// (default [`DEFAULT_PROXY_AUTH_PROVIDER`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_provider: Option<String>,
}

/// Backstage's sign-in provider for identity-aware proxies of the oauth2-proxy kind.
pub const DEFAULT_PROXY_AUTH_PROVIDER: &str = "oauth2Proxy";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKind {
    /// An OpenID Connect provider: the organisation's IdP.
    #[default]
    Oidc,
    /// Backstage's own OAuth 2.0 authorization server (`@backstage/plugin-auth-backend`
    /// 0.30+): public clients named by a client-ID metadata document URL, PKCE S256, tokens
    /// that are Backstage user tokens. See
    /// <https://backstage.io/docs/auth/> and
    /// <https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/>.
    Backstage,
}

/// Where Backstage's auth plugin lives under the backend's base URL; the issuer of its
/// tokens and the base of its discovery document.
pub const BACKSTAGE_AUTH_PATH: &str = "/api/auth";
/// The client-ID metadata document Backstage ships for CLIs (redirect
/// `http://127.0.0.1:*/callback`), relative to the backend's base URL.
pub const BACKSTAGE_CLI_CLIENT_PATH: &str = "/api/auth/.well-known/oauth-client/cli.json";

impl Profile {
    /// For a Backstage profile: the backend's base URL, without a trailing slash.
    pub fn backstage_url(&self) -> Option<&str> {
        match self.kind {
            ProfileKind::Backstage => self.url.as_deref().map(|url| url.trim_end_matches('/')),
            ProfileKind::Oidc => None,
        }
    }

    /// For a Backstage profile behind an identity-aware proxy: the `oidc` profile whose
    /// access token the proxy accepts, and the Backstage auth provider behind it.
    pub fn backstage_via(&self) -> Option<(&str, &str)> {
        self.backstage_url()?;
        let via = self.via_profile.as_deref()?;
        Some((
            via,
            self.auth_provider
                .as_deref()
                .unwrap_or(DEFAULT_PROXY_AUTH_PROVIDER),
        ))
    }

    /// Whether this is a Backstage profile signing in as Backstage's built-in CLI client.
    /// Backstage keeps one refresh token per (user, client_id), so `backstage-cli auth login`
    /// and stagepass then sign each other out.
    pub fn uses_backstage_cli_client(&self) -> bool {
        self.via_profile.is_none()
            && self
                .backstage_url()
                .is_some_and(|url| self.client_id == format!("{url}{BACKSTAGE_CLI_CLIENT_PATH}"))
    }
}

/// What `status` and `doctor` say about a profile on Backstage's built-in CLI client.
pub const BACKSTAGE_SHARED_CLIENT_NOTE: &str = "signed in as Backstage's built-in CLI client \
     (cli.json): Backstage keeps one refresh token per user and client_id, so `backstage-cli \
     auth login` signs stagepass out and the other way round; give stagepass its own client-ID \
     document (client_id, allowed through auth.clientIdMetadataDocuments.allowedClientIdPatterns; \
     see the README)";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowPreference {
    /// Browser when one can be opened where the user is, device code otherwise.
    #[default]
    Auto,
    Browser,
    Device,
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile", "offline_access"]
        .map(String::from)
        .to_vec()
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
        let mut file: ConfigFile =
            toml::from_str(text).map_err(|err| config_error(err.to_string().trim().to_string()))?;
        for (name, profile) in &mut file.profiles {
            if profile.kind == ProfileKind::Backstage {
                derive_backstage(name, profile).map_err(config_error)?;
            }
            validate_profile(name, profile).map_err(config_error)?;
        }
        for (name, profile) in &file.profiles {
            validate_via(name, profile, &file.profiles).map_err(config_error)?;
        }
        let known_profile = |key: String, profile: &str| {
            if file.profiles.contains_key(profile) {
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
        proxy_config::validate_routes(&mut file.route, &file.profiles).map_err(config_error)?;
        Ok(Config {
            path: path.to_path_buf(),
            profiles: file.profiles,
            git: file.git,
            docker: file.docker,
            desktop: file.desktop,
            proxy: file.proxy,
            routes: file.route,
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

/// Fills in what a Backstage profile leaves to its `url`: the issuer (the auth plugin's base)
/// and, unless given, the built-in CLI client-ID document as `client_id`.
fn derive_backstage(name: &str, profile: &mut Profile) -> Result<(), String> {
    let key = |field: &str| format!("profiles.{name}.{field}");
    if !profile.issuer.is_empty() {
        return Err(format!(
            "{}: not used with kind = \"backstage\"; set `url` to the Backstage backend's base \
             URL instead (the issuer is its {BACKSTAGE_AUTH_PATH})",
            key("issuer")
        ));
    }
    if profile.audience.is_some() {
        return Err(format!(
            "{}: Backstage tokens are always for Backstage; remove the key",
            key("audience")
        ));
    }
    let Some(url) = profile.backstage_url().map(String::from) else {
        return Err(format!(
            "{}: required with kind = \"backstage\": the Backstage backend's base URL, \
             e.g. \"https://backstage.example.com\"",
            key("url")
        ));
    };
    profile.issuer = format!("{url}{BACKSTAGE_AUTH_PATH}");
    // Backstage looks only for `offline_access` (a refresh token); ask for what its CLI
    // client document declares rather than the OIDC defaults.
    if profile.scopes == default_scopes() {
        profile.scopes = ["openid", "offline_access"].map(String::from).to_vec();
    }
    if profile.client_id.is_empty() {
        profile.client_id = format!("{url}{BACKSTAGE_CLI_CLIENT_PATH}");
    }
    Ok(())
}

/// `via_profile` names an `oidc` profile, and only a Backstage profile has it.
fn validate_via(
    name: &str,
    profile: &Profile,
    profiles: &BTreeMap<String, Profile>,
) -> Result<(), String> {
    let key = |field: &str| format!("profiles.{name}.{field}");
    match (&profile.via_profile, profile.kind) {
        (None, _) if profile.auth_provider.is_some() => Err(format!(
            "{}: only used with `via_profile` (a Backstage behind oauth2-proxy)",
            key("auth_provider")
        )),
        (None, _) => Ok(()),
        (Some(_), ProfileKind::Oidc) => Err(format!(
            "{}: only used with kind = \"backstage\"",
            key("via_profile")
        )),
        (Some(_), ProfileKind::Backstage)
            if profile.auth_provider.as_deref().is_some_and(|provider| {
                provider.is_empty()
                    || !provider
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }) =>
        {
            Err(format!(
                "{}: a Backstage auth provider id such as `oauth2Proxy` (letters, digits, - and _)",
                key("auth_provider")
            ))
        }
        (Some(via), ProfileKind::Backstage) => match profiles.get(via) {
            Some(upstream) if upstream.kind == ProfileKind::Oidc => Ok(()),
            Some(_) => Err(format!(
                "{}: `{via}` must be an OpenID Connect profile (the IdP whose access token the \
                 proxy accepts), not another Backstage profile",
                key("via_profile")
            )),
            None => Err(format!(
                "{}: no profile `{via}` in [profiles]",
                key("via_profile")
            )),
        },
    }
}

fn validate_profile(name: &str, profile: &Profile) -> Result<(), String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(format!(
            "profile name `{name}` may only use letters, digits, `-`, `_` and `.`"
        ));
    }
    let key = |field: &str| format!("profiles.{name}.{field}");
    if profile.kind == ProfileKind::Oidc {
        if profile.url.is_some() {
            return Err(format!(
                "{}: only for kind = \"backstage\"; an OIDC profile names its `issuer`",
                key("url")
            ));
        }
        if profile.issuer.is_empty() {
            return Err(format!(
                "{}: required: the IdP's issuer URL, e.g. \"https://idp.example.com/realms/eng\"",
                key("issuer")
            ));
        }
    }
    // For Backstage the issuer was derived from `url`: name the key the user wrote.
    let issuer_key = match profile.kind {
        ProfileKind::Oidc => key("issuer"),
        ProfileKind::Backstage => key("url"),
    };
    match Url::parse(&profile.issuer) {
        Err(err) => {
            return Err(format!(
                "{issuer_key}: `{}` is not a URL: {err}",
                profile.issuer
            ));
        }
        Ok(url) if !is_secure_or_loopback(&url) => {
            return Err(format!(
                "{issuer_key}: `{}` must use https (plain http is allowed only for 127.0.0.1, [::1] or localhost)",
                profile.issuer
            ));
        }
        Ok(_) => {}
    }
    if profile.client_id.trim().is_empty() {
        return Err(format!("{}: must not be empty", key("client_id")));
    }
    // Backstage ignores scopes; its tokens say who signed in without an OIDC id_token.
    if profile.kind == ProfileKind::Oidc && !profile.scopes.iter().any(|scope| scope == "openid") {
        return Err(format!(
            "{}: must include \"openid\" (stagepass needs the id_token to know who signed in)",
            key("scopes")
        ));
    }
    if profile
        .groups_claim
        .as_ref()
        .is_some_and(|claim| claim.trim().is_empty())
    {
        return Err(format!(
            "{}: must name a claim, e.g. \"groups\"; remove the key when groups are not used",
            key("groups_claim")
        ));
    }
    if let Some(audience) = &profile.audience
        && Url::parse(audience).is_err()
    {
        return Err(format!(
            "{}: `{audience}` must be an absolute URI (RFC 8707 resource indicator)",
            key("audience")
        ));
    }
    Ok(())
}

/// TLS everywhere except the loopback interface, where a local IdP (tests, a dev Keycloak)
/// cannot be reached by anyone else anyway.
pub fn is_secure_or_loopback(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(domain)) => domain == "localhost",
            None => false,
        },
        _ => false,
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
        assert!(profile.scopes.contains(&"openid".to_string()));
        assert_eq!(profile.audience, None);
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
        assert_eq!(profile.issuer, "https://backstage.example.com/api/auth");
        assert_eq!(
            profile.client_id,
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
            own.profiles["backstage"].client_id,
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
        assert_eq!(portal.backstage_via(), Some(("corp", "oauth2Proxy")));
        assert!(
            !portal.uses_backstage_cli_client(),
            "no OAuth client of its own"
        );
        assert_eq!(config.profiles["corp"].backstage_via(), None);

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
