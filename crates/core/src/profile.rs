//! A `[profiles.NAME]` table: an upstream to sign in to, parsed into the fields its kind has.
//!
//! The TOML keeps one flat table per profile (`kind` picks the meaning of the other keys); it
//! is read into [`RawProfile`] and converted once, so the rest of stagepass matches on
//! [`ProfileKind`] instead of reading keys that only apply to one kind.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::url_policy::is_secure_or_loopback;

/// Backstage's sign-in provider for identity-aware proxies of the oauth2-proxy kind.
pub const DEFAULT_PROXY_AUTH_PROVIDER: &str = "oauth2Proxy";

/// Where Backstage's auth plugin lives under the backend's base URL; the issuer of its
/// tokens and the base of its discovery document.
pub const BACKSTAGE_AUTH_PATH: &str = "/api/auth";
/// The client-ID metadata document Backstage ships for CLIs (redirect
/// `http://127.0.0.1:*/callback`), relative to the backend's base URL.
pub const BACKSTAGE_CLI_CLIENT_PATH: &str = "/api/auth/.well-known/oauth-client/cli.json";

/// What `status` and `doctor` say about a profile on Backstage's built-in CLI client.
pub const BACKSTAGE_SHARED_CLIENT_NOTE: &str = "signed in as Backstage's built-in CLI client \
     (cli.json): Backstage keeps one refresh token per user and client_id, so `backstage-cli \
     auth login` signs stagepass out and the other way round; give stagepass its own client-ID \
     document (client_id, allowed through auth.clientIdMetadataDocuments.allowedClientIdPatterns; \
     see the README)";

/// What Backstage asks for when a profile names no scopes: only `offline_access` (a refresh
/// token) matters to it, and its CLI client document declares these two.
pub const BACKSTAGE_SCOPES: [&str; 2] = ["openid", "offline_access"];

/// Where a `kind = "github"` profile signs in when it names no `url`.
pub const GITHUB_URL: &str = "https://github.com";
/// What an OAuth App asks for when a GitHub profile names no scopes: `repo` lets git reach
/// private repositories. GitHub Apps ignore scopes (their permissions are set on the app).
/// <https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps>
pub const GITHUB_SCOPES: [&str; 1] = ["repo"];

/// Serialized only for the agent's own worker processes (refresh, doctor probe), which get it
/// from their parent already parsed; a config file goes through [`RawProfile`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(flatten)]
    pub kind: ProfileKind,
    pub flow: FlowPreference,
    /// The claim that carries the user's groups or roles (`groups`, `roles`, a namespaced
    /// Auth0 claim...). When set, `stagepass doctor` checks that the tokens carry it.
    pub groups_claim: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProfileKind {
    /// An OpenID Connect provider: the organisation's IdP.
    Oidc {
        /// Kept as written: discovery compares it with the IdP's `issuer` string exactly.
        issuer: String,
        client_id: String,
        /// Always holds `openid`: the id_token says who signed in.
        scopes: Vec<String>,
        /// Sent as the RFC 8707 `resource` parameter on authorization, token and refresh
        /// requests.
        audience: Option<String>,
        /// Whether the client is confidential: its secret is then in the keychain.
        #[serde(default)]
        client_auth: ClientAuth,
        /// How the sign-in asks for a refresh token.
        #[serde(default)]
        offline: OfflineAccess,
    },
    /// Backstage's own OAuth 2.0 authorization server (`@backstage/plugin-auth-backend`
    /// 0.30+): public clients named by a client-ID metadata document URL, PKCE S256, tokens
    /// that are Backstage user tokens. See
    /// <https://backstage.io/docs/auth/> and
    /// <https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/>.
    Backstage {
        /// The backend's base URL, without a trailing slash; the issuer is derived from it.
        url: String,
        /// As written, or Backstage's built-in CLI client document under `url`.
        client_id: String,
        scopes: Vec<String>,
        /// A Backstage behind an identity-aware proxy: no sign-in of its own.
        via: Option<ViaProfile>,
    },
    /// GitHub or GitHub Enterprise Server: OAuth 2.0 without OpenID Connect. Fixed endpoints
    /// under `url` (no discovery), opaque tokens, the user from the REST API's `/user`.
    /// <https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps>
    Github {
        /// `https://github.com` or a GitHub Enterprise Server's base URL, no trailing slash.
        url: String,
        client_id: String,
        scopes: Vec<String>,
        /// With a secret, the browser flow (PKCE over loopback) and revocation are possible;
        /// without one, the device flow signs in.
        #[serde(default)]
        client_auth: ClientAuth,
    },
}

/// A Backstage behind an identity-aware proxy (oauth2-proxy with JWT bearer tokens allowed).
/// Its user token comes from the proxy sign-in provider's refresh endpoint, called through the
/// proxy with the `oidc` profile's access token; the profile then has no sign-in or refresh
/// token of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViaProfile {
    /// An `oidc` profile of the same config.
    pub profile: String,
    /// The Backstage auth provider behind the proxy (default [`DEFAULT_PROXY_AUTH_PROVIDER`]).
    pub auth_provider: String,
}

/// How stagepass authenticates as the client at the token endpoint (RFC 6749 §2.3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// A public client (RFC 8252 §8.4): PKCE and no secret. The safe choice for a desktop app.
    #[default]
    None,
    /// A confidential client: the secret `stagepass config set-secret` put in the keychain is
    /// sent as the IdP's discovery document allows (`client_secret_basic` or `_post`).
    Secret,
}

/// How an OIDC profile asks the IdP for a refresh token (the `offline` key).
///
/// A typed setting rather than a guess from the issuer: an IdP in front of Google, or a
/// Google-compatible test server, says nothing by its URL, and a setting the preset writes
/// shows in the config what stagepass will send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineAccess {
    /// The `offline_access` scope (OpenID Connect Core 1.0 §11), listed in `scopes`.
    #[default]
    Scope,
    /// Google's `access_type=offline` authorization parameter, plus `prompt=consent` while
    /// stagepass holds no refresh token: Google issues one only with `access_type=offline`
    /// and only on the first consent unless `prompt=consent` asks again, and refuses the
    /// `offline_access` scope (`invalid_scope`). See
    /// <https://developers.google.com/identity/protocols/oauth2/native-app#step-2:-send-a-request-to-googles-oauth-2.0-server>.
    AccessType,
}

/// The `kind` key: which of [`ProfileKind`] a table is, without its fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileKindTag {
    #[default]
    Oidc,
    Backstage,
    Github,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowPreference {
    /// Browser when one can be opened where the user is, device code otherwise.
    #[default]
    Auto,
    Browser,
    Device,
}

impl Profile {
    pub fn tag(&self) -> ProfileKindTag {
        match self.kind {
            ProfileKind::Oidc { .. } => ProfileKindTag::Oidc,
            ProfileKind::Backstage { .. } => ProfileKindTag::Backstage,
            ProfileKind::Github { .. } => ProfileKindTag::Github,
        }
    }

    /// The issuer discovery starts from; for Backstage its auth plugin under `url`.
    pub fn issuer(&self) -> Cow<'_, str> {
        match &self.kind {
            ProfileKind::Oidc { issuer, .. } => Cow::Borrowed(issuer),
            ProfileKind::Backstage { url, .. } => Cow::Owned(backstage_issuer(url)),
            ProfileKind::Github { url, .. } => Cow::Borrowed(url),
        }
    }

    pub fn client_id(&self) -> &str {
        match &self.kind {
            ProfileKind::Oidc { client_id, .. }
            | ProfileKind::Backstage { client_id, .. }
            | ProfileKind::Github { client_id, .. } => client_id,
        }
    }

    pub fn scopes(&self) -> &[String] {
        match &self.kind {
            ProfileKind::Oidc { scopes, .. }
            | ProfileKind::Backstage { scopes, .. }
            | ProfileKind::Github { scopes, .. } => scopes,
        }
    }

    /// For a GitHub profile: its web base URL (`https://github.com` or the GHES host).
    pub fn github_url(&self) -> Option<&str> {
        match &self.kind {
            ProfileKind::Github { url, .. } => Some(url),
            _ => None,
        }
    }

    /// The RFC 8707 resource; Backstage tokens are always for Backstage.
    pub fn audience(&self) -> Option<&str> {
        match &self.kind {
            ProfileKind::Oidc { audience, .. } => audience.as_deref(),
            ProfileKind::Backstage { .. } | ProfileKind::Github { .. } => None,
        }
    }

    /// Backstage's own OAuth server has public clients only.
    pub fn client_auth(&self) -> ClientAuth {
        match &self.kind {
            ProfileKind::Oidc { client_auth, .. } | ProfileKind::Github { client_auth, .. } => {
                *client_auth
            }
            ProfileKind::Backstage { .. } => ClientAuth::None,
        }
    }

    /// How the sign-in asks for a refresh token; Backstage takes the `offline_access` scope,
    /// and GitHub asks for nothing (a GitHub App's user tokens come with a refresh token).
    pub fn offline_access(&self) -> OfflineAccess {
        match &self.kind {
            ProfileKind::Oidc { offline, .. } => *offline,
            ProfileKind::Backstage { .. } | ProfileKind::Github { .. } => OfflineAccess::Scope,
        }
    }

    /// For a Backstage profile: the backend's base URL, without a trailing slash.
    pub fn backstage_url(&self) -> Option<&str> {
        match &self.kind {
            ProfileKind::Backstage { url, .. } => Some(url),
            ProfileKind::Oidc { .. } | ProfileKind::Github { .. } => None,
        }
    }

    /// For a Backstage profile behind an identity-aware proxy: the `oidc` profile whose
    /// access token the proxy accepts, and the Backstage auth provider behind it.
    pub fn via(&self) -> Option<&ViaProfile> {
        match &self.kind {
            ProfileKind::Backstage { via, .. } => via.as_ref(),
            ProfileKind::Oidc { .. } | ProfileKind::Github { .. } => None,
        }
    }

    /// Whether this is a Backstage profile signing in as Backstage's built-in CLI client.
    /// Backstage keeps one refresh token per (user, client_id), so `backstage-cli auth login`
    /// and stagepass then sign each other out.
    pub fn uses_backstage_cli_client(&self) -> bool {
        match &self.kind {
            ProfileKind::Backstage {
                url,
                client_id,
                via: None,
                ..
            } => *client_id == backstage_cli_client(url),
            _ => false,
        }
    }
}

/// The REST API base of a GitHub: `api.github.com` for github.com, `URL/api/v3` for GitHub
/// Enterprise Server.
/// <https://docs.github.com/en/enterprise-server@latest/rest/quickstart>
pub fn github_api_url(url: &str) -> String {
    match url {
        GITHUB_URL => "https://api.github.com".to_string(),
        other => format!("{other}/api/v3"),
    }
}

fn backstage_issuer(url: &str) -> String {
    format!("{url}{BACKSTAGE_AUTH_PATH}")
}

fn backstage_cli_client(url: &str) -> String {
    format!("{url}{BACKSTAGE_CLI_CLIENT_PATH}")
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile", "offline_access"]
        .map(String::from)
        .to_vec()
}

/// A profile table as written; only [`RawProfile::parse`] reads it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfile {
    #[serde(default)]
    kind: ProfileKindTag,
    url: Option<String>,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    audience: Option<String>,
    #[serde(default)]
    flow: FlowPreference,
    groups_claim: Option<String>,
    via_profile: Option<String>,
    auth_provider: Option<String>,
    client_auth: Option<ClientAuth>,
    offline: Option<OfflineAccess>,
}

impl RawProfile {
    /// The profile `name` as its kind has it; `Err` names the key. Whether `via_profile` names
    /// an `oidc` profile needs the others: see [`check_via`].
    pub(crate) fn parse(self, name: &str) -> Result<Profile, String> {
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !valid_name {
            return Err(format!(
                "profile name `{name}` may only use letters, digits, `-`, `_` and `.`"
            ));
        }
        let key = |field: &str| format!("profiles.{name}.{field}");
        let kind = match self.kind {
            ProfileKindTag::Oidc => self.oidc(&key)?,
            ProfileKindTag::Backstage => self.backstage(&key)?,
            ProfileKindTag::Github => self.github(&key)?,
        };
        if self
            .groups_claim
            .as_ref()
            .is_some_and(|claim| claim.trim().is_empty())
        {
            return Err(format!(
                "{}: must name a claim, e.g. \"groups\"; remove the key when groups are not used",
                key("groups_claim")
            ));
        }
        Ok(Profile {
            kind,
            flow: self.flow,
            groups_claim: self.groups_claim,
        })
    }

    fn oidc(&self, key: &dyn Fn(&str) -> String) -> Result<ProfileKind, String> {
        if self.url.is_some() {
            return Err(format!(
                "{}: only for kind = \"backstage\"; an OIDC profile names its `issuer`",
                key("url")
            ));
        }
        if self.issuer.is_empty() {
            return Err(format!(
                "{}: required: the IdP's issuer URL, e.g. \"https://idp.example.com/realms/eng\"",
                key("issuer")
            ));
        }
        check_issuer(&key("issuer"), &self.issuer)?;
        check_client_id(key, &self.client_id)?;
        if !self.scopes.iter().any(|scope| scope == "openid") {
            return Err(format!(
                "{}: must include \"openid\" (stagepass needs the id_token to know who signed in)",
                key("scopes")
            ));
        }
        if let Some(audience) = &self.audience
            && Url::parse(audience).is_err()
        {
            return Err(format!(
                "{}: `{audience}` must be an absolute URI (RFC 8707 resource indicator)",
                key("audience")
            ));
        }
        if self.via_profile.is_some() {
            return Err(format!(
                "{}: only used with kind = \"backstage\"",
                key("via_profile")
            ));
        }
        self.check_auth_provider(key)?;
        let offline = self.offline.unwrap_or_default();
        let mut scopes = self.scopes.clone();
        if offline == OfflineAccess::AccessType {
            // The defaults hold `offline_access`, which such an IdP refuses; one the user
            // wrote is a mistake worth naming.
            if self.scopes == default_scopes() {
                scopes.retain(|scope| scope != "offline_access");
            } else if scopes.iter().any(|scope| scope == "offline_access") {
                return Err(format!(
                    "{}: remove \"offline_access\": with offline = \"access_type\" the refresh \
                     token is asked for with access_type=offline, and Google refuses the scope \
                     (invalid_scope)",
                    key("scopes")
                ));
            }
        }
        Ok(ProfileKind::Oidc {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            scopes,
            audience: self.audience.clone(),
            client_auth: self.client_auth.unwrap_or_default(),
            offline,
        })
    }

    /// A Backstage profile leaves the issuer (the auth plugin's base) and, unless given, the
    /// `client_id` (the built-in CLI client-ID document) to its `url`.
    fn backstage(&self, key: &dyn Fn(&str) -> String) -> Result<ProfileKind, String> {
        if !self.issuer.is_empty() {
            return Err(format!(
                "{}: not used with kind = \"backstage\"; set `url` to the Backstage backend's base \
                 URL instead (the issuer is its {BACKSTAGE_AUTH_PATH})",
                key("issuer")
            ));
        }
        if self.audience.is_some() {
            return Err(format!(
                "{}: Backstage tokens are always for Backstage; remove the key",
                key("audience")
            ));
        }
        if self.client_auth == Some(ClientAuth::Secret) {
            return Err(format!(
                "{}: Backstage's auth server has public clients only; remove the key",
                key("client_auth")
            ));
        }
        if self.offline == Some(OfflineAccess::AccessType) {
            return Err(format!(
                "{}: Backstage takes the offline_access scope; remove the key",
                key("offline")
            ));
        }
        let Some(url) = self.url.as_deref().map(|url| url.trim_end_matches('/')) else {
            return Err(format!(
                "{}: required with kind = \"backstage\": the Backstage backend's base URL, \
                 e.g. \"https://backstage.example.com\"",
                key("url")
            ));
        };
        // The issuer is derived from `url`: name the key the user wrote.
        check_issuer(&key("url"), &backstage_issuer(url))?;
        let client_id = if self.client_id.is_empty() {
            backstage_cli_client(url)
        } else {
            self.client_id.clone()
        };
        check_client_id(key, &client_id)?;
        // Backstage ignores other scopes and needs no `openid`: its tokens say who signed in
        // without an OIDC id_token. Ask for what its CLI client document declares rather than
        // the OIDC defaults.
        let scopes = if self.scopes == default_scopes() {
            BACKSTAGE_SCOPES.map(String::from).to_vec()
        } else {
            self.scopes.clone()
        };
        let auth_provider = self.check_auth_provider(key)?;
        let via = match (&self.via_profile, auth_provider) {
            (None, _) => None,
            (Some(_), Some(provider)) if !is_provider_id(provider) => {
                return Err(format!(
                    "{}: a Backstage auth provider id such as `oauth2Proxy` (letters, digits, - and _)",
                    key("auth_provider")
                ));
            }
            (Some(profile), provider) => Some(ViaProfile {
                profile: profile.clone(),
                auth_provider: provider.unwrap_or(DEFAULT_PROXY_AUTH_PROVIDER).to_string(),
            }),
        };
        Ok(ProfileKind::Backstage {
            url: url.to_string(),
            client_id,
            scopes,
            via,
        })
    }

    /// A GitHub profile: `url` (default github.com) and a client_id; nothing OIDC.
    fn github(&self, key: &dyn Fn(&str) -> String) -> Result<ProfileKind, String> {
        let not_used = |field: &str, why: &str| {
            Err(format!(
                "{}: not used with kind = \"github\"; {why}",
                key(field)
            ))
        };
        if !self.issuer.is_empty() {
            return not_used("issuer", "set `url` for GitHub Enterprise Server instead");
        }
        if self.audience.is_some() {
            return not_used("audience", "GitHub tokens are for GitHub; remove the key");
        }
        if self.via_profile.is_some() || self.auth_provider.is_some() {
            return not_used(
                "via_profile",
                "only a Backstage profile signs in through another",
            );
        }
        let url = self
            .url
            .as_deref()
            .unwrap_or(GITHUB_URL)
            .trim_end_matches('/');
        check_issuer(&key("url"), url)?;
        check_client_id(key, &self.client_id)?;
        let scopes = if self.scopes == default_scopes() {
            GITHUB_SCOPES.map(String::from).to_vec()
        } else {
            self.scopes.clone()
        };
        Ok(ProfileKind::Github {
            url: url.to_string(),
            client_id: self.client_id.clone(),
            scopes,
            client_auth: self.client_auth.unwrap_or_default(),
        })
    }

    /// `auth_provider` is only read next to `via_profile`.
    fn check_auth_provider(&self, key: &dyn Fn(&str) -> String) -> Result<Option<&str>, String> {
        match (&self.via_profile, &self.auth_provider) {
            (None, Some(_)) => Err(format!(
                "{}: only used with `via_profile` (a Backstage behind oauth2-proxy)",
                key("auth_provider")
            )),
            (_, provider) => Ok(provider.as_deref()),
        }
    }
}

fn is_provider_id(provider: &str) -> bool {
    !provider.is_empty()
        && provider
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_issuer(key: &str, issuer: &str) -> Result<(), String> {
    match Url::parse(issuer) {
        Err(err) => Err(format!("{key}: `{issuer}` is not a URL: {err}")),
        Ok(url) if !is_secure_or_loopback(&url) => Err(format!(
            "{key}: `{issuer}` must use https (plain http is allowed only for 127.0.0.1, [::1] or localhost)"
        )),
        Ok(_) => Ok(()),
    }
}

fn check_client_id(key: &dyn Fn(&str) -> String, client_id: &str) -> Result<(), String> {
    if client_id.trim().is_empty() {
        return Err(format!("{}: must not be empty", key("client_id")));
    }
    Ok(())
}

/// `via_profile` names an `oidc` profile of the same config.
pub(crate) fn check_via(
    name: &str,
    profile: &Profile,
    profiles: &BTreeMap<String, Profile>,
) -> Result<(), String> {
    let Some(via) = profile.via() else {
        return Ok(());
    };
    let key = format!("profiles.{name}.via_profile");
    match profiles.get(&via.profile).map(|upstream| &upstream.kind) {
        Some(ProfileKind::Oidc { .. }) => Ok(()),
        Some(ProfileKind::Backstage { .. } | ProfileKind::Github { .. }) => Err(format!(
            "{key}: `{}` must be an OpenID Connect profile (the IdP whose access token the \
             proxy accepts), not a Backstage or GitHub profile",
            via.profile
        )),
        None => Err(format!("{key}: no profile `{}` in [profiles]", via.profile)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::credential_map::{GITHUB_GIT_USERNAME, Target, match_git};

    fn parse(text: &str) -> crate::Result<Config> {
        Config::parse(std::path::Path::new("/t.toml"), text)
    }

    #[test]
    fn a_github_profile_defaults_to_github_com_and_maps_its_git_host() {
        let config = parse("[profiles.gh]\nkind = \"github\"\nclient_id = \"Iv1.x\"\n").unwrap();
        let profile = &config.profiles["gh"];
        assert_eq!(profile.github_url(), Some("https://github.com"));
        assert_eq!(profile.scopes(), ["repo"]);
        assert_eq!(
            super::github_api_url("https://github.com"),
            "https://api.github.com"
        );
        let asked = Target::parse("https://github.com/owner/repo.git").unwrap();
        let host = match_git(&config.git, &asked).unwrap();
        assert_eq!(host.profile, "gh");
        assert_eq!(host.username.as_deref(), Some(GITHUB_GIT_USERNAME));
        assert!(match_git(&config.git, &Target::parse("https://gitlab.com/x").unwrap()).is_none());
    }

    #[test]
    fn enterprise_server_has_its_api_under_api_v3_and_a_written_git_entry_wins() {
        let config = parse(
            "[profiles.ghe]\nkind = \"github\"\nurl = \"https://github.example.com/\"\n\
             client_id = \"Iv1.x\"\n\n[[git]]\nurl = \"https://github.example.com/\"\n\
             profile = \"ghe\"\nusername = \"me\"\n",
        )
        .unwrap();
        let url = config.profiles["ghe"].github_url().unwrap();
        assert_eq!(url, "https://github.example.com");
        assert_eq!(
            super::github_api_url(url),
            "https://github.example.com/api/v3"
        );
        assert_eq!(config.git.len(), 1);
        assert_eq!(config.git[0].username.as_deref(), Some("me"));
    }

    #[test]
    fn oidc_keys_are_refused_on_a_github_profile() {
        for (key, value) in [
            ("issuer", "\"https://github.com\""),
            ("audience", "\"https://api.github.com\""),
            ("via_profile", "\"x\""),
        ] {
            let text = format!(
                "[profiles.gh]\nkind = \"github\"\nclient_id = \"Iv1.x\"\n{key} = {value}\n"
            );
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains(&format!("profiles.gh.{key}")), "{err}");
        }
        let err = parse("[profiles.gh]\nkind = \"github\"\nurl = \"http://github.example.com\"\nclient_id = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must use https"), "{err}");
    }

    fn parse_google(extra: &str) -> Result<Profile, String> {
        let text = format!(
            "[profiles.g]\nissuer = \"https://accounts.google.com\"\nclient_id = \"c\"\n{extra}"
        );
        Config::parse(std::path::Path::new("/t.toml"), &text)
            .map(|config| config.profiles["g"].clone())
            .map_err(|err| err.to_string())
    }

    #[test]
    fn access_type_offline_drops_the_default_offline_access_scope_and_refuses_a_written_one() {
        let google = parse_google("offline = \"access_type\"\n").unwrap();
        assert_eq!(google.offline_access(), OfflineAccess::AccessType);
        assert_eq!(google.scopes(), ["openid", "email", "profile"]);
        let written = parse_google(
            "offline = \"access_type\"\nscopes = [\"openid\", \"email\", \"offline_access\"]\n",
        )
        .unwrap_err();
        assert!(written.contains("profiles.g.scopes"), "{written}");
        assert!(written.contains("invalid_scope"), "{written}");
        let standard = parse_google("").unwrap();
        assert_eq!(standard.offline_access(), OfflineAccess::Scope);
        assert!(standard.scopes().iter().any(|s| s == "offline_access"));
    }
}
