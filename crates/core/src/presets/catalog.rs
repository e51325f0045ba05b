//! The presets. Every claim about an IdP here is also in its docs/providers/ page.

use super::{BuiltProfile, PresetError, PresetInput};

pub const NAMES: &[&str] = &[
    "keycloak", "okta", "entra", "google", "gitlab", "github", "space", "auth0", "generic",
];

pub(super) struct Preset {
    pub name: &'static str,
    pub title: &'static str,
    /// Comment lines above the profile.
    pub quirks: &'static [&'static str],
    pub scopes_note: &'static str,
    pub audience_note: &'static str,
    pub groups_claim: Option<&'static str>,
    pub groups_note: &'static str,
    pub device_note: &'static str,
    pub build: fn(&PresetInput) -> Result<BuiltProfile, PresetError>,
    /// Why no working profile can be written for this IdP yet.
    pub unsupported: Option<&'static str>,
}

/// A preset that explains why it writes nothing.
const fn unsupported(name: &'static str, title: &'static str, reason: &'static str) -> Preset {
    Preset {
        name,
        title,
        quirks: &[],
        scopes_note: "",
        audience_note: "",
        groups_claim: None,
        groups_note: "",
        device_note: "",
        build: |_| Err(PresetError::Invalid("this preset writes no profile".into())),
        unsupported: Some(reason),
    }
}

pub(super) fn find(name: &str) -> Result<&'static Preset, PresetError> {
    PRESETS
        .iter()
        .find(|preset| preset.name == name)
        .ok_or_else(|| PresetError::Unknown(name.to_string()))
}

const STANDARD_SCOPES: &[&str] = &["openid", "email", "profile", "offline_access"];

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|scope| scope.to_string()).collect()
}

fn required<'a>(
    value: &'a Option<String>,
    preset: &'static str,
    flag: &'static str,
    what: &'static str,
) -> Result<&'a str, PresetError> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .ok_or(PresetError::Missing { preset, flag, what })
}

/// A key a preset writes beyond the ones every profile has, with its comment.
pub(super) struct ExtraKey {
    pub comment: &'static str,
    pub line: &'static str,
}

/// The extra keys of preset `name`: kept apart from [`Preset`] so adding one touches no
/// other preset.
pub(super) fn extra_keys(name: &str) -> &'static [ExtraKey] {
    match name {
        "google" => &[
            ExtraKey {
                comment: "A Desktop app client sends its secret on the code exchange and on refresh; \
                          `stagepass config set-secret` puts it in the keychain, never here.",
                line: "client_auth = \"secret\"",
            },
            ExtraKey {
                comment: "access_type=offline, and prompt=consent while no refresh token is held: \
                          Google issues refresh tokens only so.",
                line: "offline = \"access_type\"",
            },
        ],
        _ => &[],
    }
}

/// `sso.example.com` or a base URL (`http://localhost:8080`, `https://host/auth`), without
/// a trailing slash.
pub(super) fn base_url(domain: &str) -> String {
    let domain = domain.trim_end_matches('/');
    if domain.contains("://") {
        domain.to_string()
    } else {
        format!("https://{domain}")
    }
}

const PRESETS: &[Preset] = &[
    Preset {
        name: "keycloak",
        title: "Keycloak",
        quirks: &[
            "The issuer is https://HOST/realms/REALM exactly as Keycloak names itself (KC_HOSTNAME); \
             behind a TLS proxy set KC_PROXY_HEADERS, or it calls itself http://.",
            "The client: OpenID Connect, Client authentication off (public), Standard flow on, \
             redirect URI http://127.0.0.1/callback.",
        ],
        scopes_note: "offline_access: refresh tokens that outlive the browser session (users need the \
                      offline_access role, a default role).",
        audience_note: "Keycloak ignores the `resource` parameter: an Audience mapper on the client puts your API in aud",
        groups_claim: Some("groups"),
        groups_note: "From a Group Membership mapper with Token Claim Name `groups` (add it to the client's dedicated scope).",
        device_note: "Keycloak has the device grant: turn on \"OAuth 2.0 Device Authorization Grant\" in the client.",
        unsupported: None,
        build: |input| {
            let domain = required(
                &input.domain,
                "keycloak",
                "--domain",
                "the Keycloak host, e.g. sso.example.com",
            )?;
            let realm = required(&input.realm, "keycloak", "--realm", "the realm name")?;
            Ok(BuiltProfile {
                issuer: format!("{}/realms/{realm}", base_url(domain)),
                scopes: scopes(STANDARD_SCOPES),
                audience: input.audience.clone(),
            })
        },
    },
    Preset {
        name: "okta",
        title: "Okta",
        quirks: &[
            "The issuer is a custom authorization server (/oauth2/default or your own, --issuer): \
             the org server (https://DOMAIN) issues access tokens only for Okta's own APIs.",
            "The app: OIDC, Native Application, client authentication None (PKCE), grant types \
             Authorization Code and Refresh Token.",
        ],
        scopes_note: "offline_access: Okta issues refresh tokens only with it, and only when the access policy rule allows them.",
        audience_note: "the authorization server's Audience setting decides aud (api://default unless changed)",
        groups_claim: Some("groups"),
        groups_note: "Add a `groups` claim to the authorization server (Security > API > Claims, value type Groups).",
        device_note: "Okta has the device grant: tick Device Authorization among the app's grant types.",
        unsupported: None,
        build: |input| {
            let issuer = match &input.issuer {
                Some(issuer) => issuer.trim().to_string(),
                None => {
                    let domain = required(
                        &input.domain,
                        "okta",
                        "--domain",
                        "your Okta domain, e.g. example.okta.com",
                    )?;
                    format!("{}/oauth2/default", base_url(domain))
                }
            };
            Ok(BuiltProfile {
                issuer,
                scopes: scopes(STANDARD_SCOPES),
                audience: input.audience.clone(),
            })
        },
    },
    Preset {
        name: "entra",
        title: "Microsoft Entra ID",
        quirks: &[
            "The issuer is https://login.microsoftonline.com/TENANT-ID/v2.0, with the tenant's ID \
             (a GUID), never `common` or `organizations`.",
            "The app registration: redirect URI http://127.0.0.1/callback under \"Mobile and desktop \
             applications\", Allow public client flows: Yes.",
            "The API's manifest needs \"accessTokenAcceptedVersion\": 2 for v2.0 access tokens.",
        ],
        scopes_note: "Entra names the API in a scope: api://APP-ID/.default (what --audience adds).",
        audience_note: "Entra v2.0 refuses the `resource` parameter; the api://…/.default scope picks the API instead",
        groups_claim: Some("groups"),
        groups_note: "Token configuration > Add groups claim (object IDs; past 200 groups Entra sends a link instead). App roles come in `roles`.",
        device_note: "Entra has the device grant once Allow public client flows is Yes.",
        unsupported: None,
        build: |input| {
            let tenant = required(
                &input.tenant,
                "entra",
                "--tenant",
                "the directory (tenant) ID, a GUID",
            )?;
            if matches!(tenant, "common" | "organizations" | "consumers") {
                return Err(PresetError::Invalid(format!(
                    "--tenant {tenant}: the multi-tenant endpoints' discovery documents name the issuer \
                     https://login.microsoftonline.com/{{tenantid}}/v2.0, a template no token ever \
                     carries; give your tenant's ID (Entra admin center > Overview > Tenant ID)"
                )));
            }
            if !is_guid(tenant) {
                return Err(PresetError::Invalid(format!(
                    "--tenant {tenant}: Entra's issuer names the tenant by its ID even when it is \
                     looked up by domain; give the tenant ID, a GUID (Entra admin center > Overview)"
                )));
            }
            let mut list = scopes(STANDARD_SCOPES);
            if let Some(api) = &input.audience {
                list.push(format!("{}/.default", api.trim_end_matches('/')));
            }
            Ok(BuiltProfile {
                issuer: format!("https://login.microsoftonline.com/{tenant}/v2.0"),
                scopes: list,
                audience: None,
            })
        },
    },
    Preset {
        name: "google",
        title: "Google",
        quirks: &[
            "The client: Google Auth Platform > Clients > Create client, type \"Desktop app\" (any \
             loopback port, PKCE). Its secret must be sent although Google does not treat it as one: \
             `stagepass config set-secret` keeps it in the keychain.",
            "An app in \"Testing\" publishing status gets refresh tokens that die after 7 days \
             (`stagepass doctor` warns); publish it (\"In production\") for lasting ones.",
        ],
        scopes_note: "Google refuses the offline_access scope: `offline` below asks for refresh tokens its way.",
        audience_note: "Google access tokens are opaque and only for Google APIs; it takes no `resource`",
        groups_claim: None,
        groups_note: "Google's id_token carries no groups (a Workspace account's domain is in `hd`).",
        device_note: "Google's device flow needs another client of type \"TVs and Limited Input devices\" and allows only openid, email and profile.",
        unsupported: None,
        // --issuer only for a Google-compatible stand-in (a test server, a gateway).
        build: |input| {
            Ok(BuiltProfile {
                issuer: input
                    .issuer
                    .clone()
                    .unwrap_or_else(|| "https://accounts.google.com".into()),
                scopes: scopes(&["openid", "email", "profile"]),
                audience: None,
            })
        },
    },
    Preset {
        name: "gitlab",
        title: "GitLab",
        quirks: &[
            "The application: Confidential unchecked (a public client, PKCE), scopes openid email \
             profile, redirect URI http://127.0.0.1/callback.",
            "Whether GitLab accepts any port on the loopback redirect URI depends on its version: \
             `stagepass doctor` probes it.",
        ],
        scopes_note: "GitLab issues refresh tokens without offline_access, which it does not know.",
        audience_note: "GitLab access tokens are opaque and only for GitLab's own API",
        groups_claim: Some("groups_direct"),
        groups_note: "GitLab's id_token lists the user's direct groups in `groups_direct`.",
        device_note: "Recent GitLab versions have the device grant; `stagepass doctor` says whether yours does.",
        unsupported: None,
        build: |input| {
            let domain = input.domain.as_deref().unwrap_or("gitlab.com");
            Ok(BuiltProfile {
                issuer: base_url(domain),
                scopes: scopes(&["openid", "email", "profile"]),
                audience: None,
            })
        },
    },
    // Rendered by `presets::github`: a GitHub profile has no issuer, scopes or claims to set.
    Preset {
        name: "github",
        title: "GitHub",
        quirks: &[],
        scopes_note: "",
        audience_note: "",
        groups_claim: None,
        groups_note: "",
        device_note: "",
        build: |_| Err(PresetError::Invalid("rendered by presets::github".into())),
        unsupported: None,
    },
    unsupported(
        "space",
        "JetBrains Space",
        "JetBrains discontinued Space on 1 June 2025: there is no Space server to sign in to. \
         Sign in to the IdP your Space organisation federated with (Keycloak, Okta, Entra, \
         Google, GitHub…) with its preset; see docs/providers/space.md",
    ),
    Preset {
        name: "auth0",
        title: "Auth0",
        quirks: &[
            "Auth0's issuer ends with a slash: keep it, discovery compares it character for character.",
            "The application: Native, Token Endpoint Authentication Method None, Allowed Callback \
             URLs http://127.0.0.1/callback.",
            "Auth0 takes the API as `audience`: turn on the tenant's Resource Parameter Compatibility \
             Profile so it accepts the standard `resource` stagepass sends.",
        ],
        scopes_note: "offline_access: refresh tokens, once the API allows offline access.",
        audience_note: "the API's identifier; without one Auth0 issues opaque tokens for /userinfo only",
        groups_claim: None,
        groups_note: "Auth0 has no groups claim of its own: a post-login Action adds a namespaced one, e.g. groups_claim = \"https://example.com/groups\".",
        device_note: "Auth0 has the device grant: Advanced Settings > Grant Types > Device Code.",
        unsupported: None,
        build: |input| {
            let domain = required(
                &input.domain,
                "auth0",
                "--domain",
                "your tenant's domain, e.g. example.eu.auth0.com",
            )?;
            Ok(BuiltProfile {
                issuer: format!("{}/", base_url(domain)),
                scopes: scopes(STANDARD_SCOPES),
                audience: input.audience.clone(),
            })
        },
    },
    Preset {
        name: "generic",
        title: "Any OpenID Connect provider",
        quirks: &[
            "The client: public (PKCE S256, no secret), redirect URI http://127.0.0.1/callback with \
             any port, authorization code and refresh token grants.",
        ],
        scopes_note: "offline_access: most IdPs issue refresh tokens only with it.",
        audience_note: "the API the access tokens are for, sent as the RFC 8707 `resource`",
        groups_claim: Some("groups"),
        groups_note: "The claim that lists the user's groups; remove if tokens carry none.",
        device_note: "auto: a browser where one opens, the device grant over SSH (if the IdP has it).",
        unsupported: None,
        build: |input| {
            let issuer = required(&input.issuer, "generic", "--issuer", "the IdP's issuer URL")?;
            Ok(BuiltProfile {
                issuer: issuer.to_string(),
                scopes: scopes(STANDARD_SCOPES),
                audience: input.audience.clone(),
            })
        },
    },
];

fn is_guid(text: &str) -> bool {
    text.len() == 36
        && text.char_indices().all(|(at, c)| match at {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}
