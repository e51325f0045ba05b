//! The `github` preset: a `kind = "github"` profile from the app's client_id (and, for GitHub
//! Enterprise Server, `--domain`). See docs/providers/github.md.

use super::catalog::base_url;
use super::{PresetInput, quote};

/// The commented `[profiles.NAME]` block of a GitHub profile.
pub(super) fn render(name: &str, client_id: &str, input: &PresetInput) -> String {
    let mut lines = vec![
        "# GitHub (stagepass config init --preset github)".to_string(),
        format!(
            "# Setup on GitHub: docs/providers/github.md in the stagepass repository. Sign in with `stagepass login {name}`."
        ),
        "# - A GitHub App (Settings > Developer settings > GitHub Apps) with \"Enable Device Flow\" \
         on: its Client ID is the client_id. Its user tokens expire after 8 hours and stagepass \
         refreshes them (the refresh token rotates, and lasts six months)."
            .to_string(),
        "# - An OAuth App works too (\"Enable Device Flow\" on); its tokens never expire until \
         revoked."
            .to_string(),
        format!("[profiles.{name}]"),
        "kind = \"github\"".to_string(),
    ];
    match input.domain.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        Some(domain) => lines.push(format!("url = {}", quote(&base_url(domain)))),
        None => lines.push(
            "# url = \"https://github.example.com\"   # GitHub Enterprise Server; github.com when absent"
                .to_string(),
        ),
    }
    lines.push(format!("client_id = {}", quote(client_id)));
    lines.push(
        "# OAuth Apps: the scopes to ask for (\"repo\" when absent: git over HTTPS). GitHub Apps \
         ignore scopes; their permissions are set on the app."
            .to_string(),
    );
    lines.push("# scopes = [\"repo\", \"read:org\"]".to_string());
    lines.push(
        "# The device flow needs no secret. With the app's client secret (client_auth = \"secret\", \
         then `stagepass config set-secret NAME`) the browser can sign in too and `logout` \
         revokes the token at GitHub."
            .to_string(),
    );
    lines.push("flow = \"auto\"".to_string());
    let mut toml = lines.join("\n");
    toml.push('\n');
    toml
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn github_and_enterprise_profiles_parse() {
        let input = PresetInput::default();
        let toml = render("github", "Iv1.abc", &input);
        let config = Config::parse(std::path::Path::new("/t.toml"), &toml).unwrap();
        assert_eq!(
            config.profiles["github"].github_url(),
            Some("https://github.com")
        );
        let ghes = PresetInput {
            domain: Some("github.example.com".into()),
            ..PresetInput::default()
        };
        let toml = render("work", "Iv1.abc", &ghes);
        let config = Config::parse(std::path::Path::new("/t.toml"), &toml).unwrap();
        assert_eq!(
            config.profiles["work"].github_url(),
            Some("https://github.example.com")
        );
    }
}
