//! Provider presets for `stagepass config init`: each knows its IdP's issuer URL shape,
//! recommended scopes, groups claim, device grant and quirks, and writes a commented profile.
//! The user supplies only what a preset cannot know: the client_id and the realm, tenant or
//! domain.

mod catalog;
mod github;
mod write;

pub use catalog::NAMES;
pub use write::{WriteOutcome, add_profile};

/// What the user gave on the command line.
#[derive(Debug, Clone, Default)]
pub struct PresetInput {
    /// The profile name; the preset's name when absent.
    pub name: Option<String>,
    pub client_id: Option<String>,
    /// For `generic`, or to override a preset's issuer (an Okta custom authorization server).
    pub issuer: Option<String>,
    pub realm: Option<String>,
    pub tenant: Option<String>,
    /// Host name (or base URL) of the IdP: `sso.example.com`, `example.okta.com`.
    pub domain: Option<String>,
    /// The API the access tokens are for.
    pub audience: Option<String>,
}

/// A profile ready to be appended to the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedProfile {
    pub name: String,
    /// The commented `[profiles.NAME]` block.
    pub toml: String,
    /// Where the IdP-side setup is described.
    pub guide: String,
    /// Whether the profile is a confidential client: `stagepass config set-secret` comes
    /// before the first sign-in.
    pub needs_secret: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresetError {
    #[error("unknown preset `{0}`; known: {known}", known = NAMES.join(", "))]
    Unknown(String),
    #[error("the {preset} preset needs {flag} ({what})")]
    Missing {
        preset: &'static str,
        flag: &'static str,
        what: &'static str,
    },
    #[error("{0}")]
    Invalid(String),
    /// stagepass cannot sign in to this IdP; the reason says why and what to do instead.
    #[error("the {preset} preset cannot write a working profile: {reason}")]
    Unsupported {
        preset: &'static str,
        reason: &'static str,
    },
}

/// Renders the profile `preset` makes of `input`. The result always parses as a config.
pub fn render(preset: &str, input: &PresetInput) -> Result<RenderedProfile, PresetError> {
    let preset = catalog::find(preset)?;
    if let Some(reason) = preset.unsupported {
        return Err(PresetError::Unsupported {
            preset: preset.name,
            reason,
        });
    }
    let name = input
        .name
        .clone()
        .unwrap_or_else(|| preset.name.to_string());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(PresetError::Invalid(format!(
            "profile name `{name}` may only use letters, digits, `-`, `_` and `.`"
        )));
    }
    let client_id = || {
        input.client_id.as_deref().ok_or(PresetError::Missing {
            preset: preset.name,
            flag: "--client-id",
            what: "the ID of the public client registered at the IdP",
        })
    };
    let guide = format!("docs/providers/{}.md", preset.name);
    if preset.name == "github" {
        let toml = github::render(&name, client_id()?, input);
        // The device flow needs no secret; the browser flow's is optional (docs/providers/github.md).
        return Ok(RenderedProfile {
            name,
            toml,
            guide,
            needs_secret: false,
        });
    }
    let profile = (preset.build)(input)?;
    let client_id = client_id()?;
    let mut toml = String::new();
    let mut line = |text: &str| {
        toml.push_str(text);
        toml.push('\n');
    };
    line(&format!(
        "# {} (stagepass config init --preset {})",
        preset.title, preset.name
    ));
    line(&format!(
        "# IdP-side setup: {guide} in the stagepass repository. Check it with `stagepass doctor {name}`."
    ));
    for quirk in preset.quirks {
        line(&format!("# - {quirk}"));
    }
    line(&format!("[profiles.{name}]"));
    line(&format!("issuer = {}", quote(&profile.issuer)));
    line(&format!("client_id = {}", quote(client_id)));
    line(&format!("# {}", preset.scopes_note));
    let scopes: Vec<String> = profile.scopes.iter().map(|scope| quote(scope)).collect();
    line(&format!("scopes = [{}]", scopes.join(", ")));
    match (&profile.audience, input.audience.is_some()) {
        (Some(audience), _) => line(&format!("audience = {}", quote(audience))),
        (None, false) => line(&format!(
            "# audience = \"https://backstage.example.com\"   # {}",
            preset.audience_note
        )),
        (None, true) => line(&format!("# audience: {}", preset.audience_note)),
    }
    match preset.groups_claim {
        Some(claim) => {
            line(&format!("# {}", preset.groups_note));
            line(&format!("groups_claim = {}", quote(claim)));
        }
        None => line(&format!("# groups_claim: {}", preset.groups_note)),
    }
    for key in catalog::extra_keys(preset.name) {
        line(&format!("# {}", key.comment));
        line(key.line);
    }
    line(&format!("# {}", preset.device_note));
    line("flow = \"auto\"");
    let parsed = crate::config::Config::parse(std::path::Path::new("preset.toml"), &toml).map_err(
        |err| PresetError::Invalid(format!("the rendered profile does not parse: {err}")),
    )?;
    let needs_secret = parsed
        .profiles
        .get(&name)
        .is_some_and(|profile| profile.client_auth() == crate::profile::ClientAuth::Secret);
    Ok(RenderedProfile {
        name,
        toml,
        guide,
        needs_secret,
    })
}

/// What a preset's builder decides from the input.
pub(crate) struct BuiltProfile {
    pub issuer: String,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
}

/// A TOML basic string.
fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn full_input() -> PresetInput {
        PresetInput {
            name: None,
            client_id: Some("stagepass".into()),
            issuer: Some("https://idp.example.com".into()),
            realm: Some("eng".into()),
            tenant: Some("11111111-2222-4333-8444-555555555555".into()),
            domain: Some("idp.example.com".into()),
            audience: Some("https://backstage.example.com".into()),
        }
    }

    #[test]
    fn every_supported_preset_renders_a_valid_profile() {
        let mut supported = 0;
        for preset in NAMES {
            match render(preset, &full_input()) {
                Ok(rendered) => {
                    let config = Config::parse(std::path::Path::new("/t.toml"), &rendered.toml)
                        .unwrap_or_else(|err| panic!("{preset}: {err}\n{}", rendered.toml));
                    assert!(config.profiles.contains_key(*preset), "{preset}");
                    supported += 1;
                }
                Err(PresetError::Unsupported { .. }) => {}
                Err(err) => panic!("{preset}: {err}"),
            }
        }
        assert_eq!(supported, 8);
    }

    #[test]
    fn the_google_preset_writes_a_confidential_access_type_profile() {
        let rendered = render(
            "google",
            &PresetInput {
                client_id: Some("1234-abc.apps.googleusercontent.com".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(rendered.needs_secret);
        let config = Config::parse(std::path::Path::new("/t.toml"), &rendered.toml).unwrap();
        let google = &config.profiles["google"];
        assert_eq!(google.issuer(), "https://accounts.google.com");
        assert_eq!(google.client_auth(), crate::profile::ClientAuth::Secret);
        assert_eq!(
            google.offline_access(),
            crate::profile::OfflineAccess::AccessType
        );
        assert!(
            !google
                .scopes()
                .iter()
                .any(|scope| scope == "offline_access")
        );
        assert!(!render("keycloak", &full_input()).unwrap().needs_secret);
    }

    #[test]
    fn missing_inputs_name_the_flag() {
        let err = render("keycloak", &PresetInput::default()).unwrap_err();
        assert!(err.to_string().contains("--domain"), "{err}");
        let err = render(
            "entra",
            &PresetInput {
                tenant: Some("common".into()),
                client_id: Some("x".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("common"), "{err}");
    }
}
