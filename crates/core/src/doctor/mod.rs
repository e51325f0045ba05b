//! The checks behind `stagepass doctor` that need no agent and no CLI: the IdP as seen from
//! a profile, the claims of tokens the agent holds, and the keychain. Each check names one
//! misconfiguration precisely, shows what it saw and says how to fix it.
//!
//! Check ids are stable (scripts and tests match on them); see [`ids`].

mod claims;
mod idp;
mod keychain;
mod metadata;
mod probes;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub use claims::{HeldTokens, token_checks};
pub use idp::idp_checks;
pub use keychain::keychain_round_trip;
pub use probes::missing_secret;

/// backstage.client_id: a Backstage profile on the built-in CLI client shares its one
/// refresh token per user with `backstage-cli`. `None` for other profiles.
pub fn backstage_client_check(name: &str, profile: &crate::config::Profile) -> Option<Check> {
    if !profile.uses_backstage_cli_client() {
        return None;
    }
    Some(
        Check::warn(
            ids::BACKSTAGE_CLIENT_ID,
            "stagepass and backstage-cli share Backstage's built-in CLI client",
        )
        .for_profile(name)
        .evidence(format!("client_id {}", profile.client_id()))
        .evidence(crate::config::BACKSTAGE_SHARED_CLIENT_NOTE)
        .fix(format!(
            "publish a client-ID metadata document for stagepass, allow it in Backstage's \
             auth.clientIdMetadataDocuments.allowedClientIdPatterns and set \
             `profiles.{name}.client_id` to its URL (README, \"Backstage\")"
        )),
    )
}

/// The port `proxy.port` checks when none is given: the proxy's own default.
pub use crate::proxy_config::DEFAULT_PROXY_PORT;

/// The stable id of every check, in the order `stagepass doctor` runs them.
pub mod ids {
    pub const CONFIG_FILE: &str = "config.file";
    pub const CONFIG_PROFILE: &str = "config.profile";
    pub const IDP_DISCOVERY: &str = "idp.discovery";
    pub const IDP_ISSUER: &str = "idp.issuer";
    pub const IDP_PKCE: &str = "idp.pkce";
    pub const IDP_GRANTS: &str = "idp.grants";
    pub const IDP_DEVICE_FLOW: &str = "idp.device_flow";
    pub const IDP_REVOCATION: &str = "idp.revocation";
    pub const IDP_SCOPES: &str = "idp.scopes";
    pub const IDP_OFFLINE_ACCESS: &str = "idp.offline_access";
    pub const IDP_REDIRECT_URI: &str = "idp.redirect_uri";
    pub const IDP_CLIENT: &str = "idp.client";
    pub const IDP_AUTHORIZE: &str = "idp.authorize";
    pub const IDP_CLOCK_SKEW: &str = "idp.clock_skew";
    pub const BACKSTAGE_CLIENT_ID: &str = "backstage.client_id";
    pub const AGENT: &str = "agent";
    pub const TOKEN_SESSION: &str = "token.session";
    pub const TOKEN_AUDIENCE: &str = "token.audience";
    pub const TOKEN_SCOPES: &str = "token.scopes";
    pub const TOKEN_GROUPS: &str = "token.groups";
    pub const TOKEN_CLAIMS: &str = "token.claims";
    pub const TOKEN_LIFETIMES: &str = "token.lifetimes";
    pub const KEYCHAIN: &str = "keychain";
    pub const PROXY_PORT: &str = "proxy.port";
    pub const PROXY_ROUTES: &str = "proxy.routes";
    pub const HELPER_GIT: &str = "helper.git";
    pub const HELPER_DOCKER: &str = "helper.docker";
    pub const HELPER_KUBECTL: &str = "helper.kubectl";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    /// Nothing wrong; something worth knowing.
    Info,
    /// Not checked, because an earlier check failed.
    Skip,
    /// Works now, but will bite (a daily re-login, a missing helper...).
    Warn,
    /// Broken: sign-in, refresh or a consumer will fail.
    Fail,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Info => "info",
            Status::Skip => "skip",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One diagnosis: what was checked, how it went, what was seen, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// One of [`ids`]. Owned when read back from `stagepass-agent --doctor-probe`.
    pub check: Cow<'static, str>,
    /// The profile the check is about, for per-profile checks.
    pub profile: Option<String>,
    pub status: Status,
    /// One line naming the diagnosis.
    pub summary: String,
    /// What was seen: URLs, values, answers of the IdP.
    pub evidence: Vec<String>,
    /// What to do about it, for anything but `ok`.
    pub fix: Option<String>,
}

impl Check {
    pub fn new(check: &'static str, status: Status, summary: impl Into<String>) -> Check {
        Check {
            check: Cow::Borrowed(check),
            profile: None,
            status,
            summary: summary.into(),
            evidence: Vec::new(),
            fix: None,
        }
    }

    pub fn ok(check: &'static str, summary: impl Into<String>) -> Check {
        Check::new(check, Status::Ok, summary)
    }

    pub fn info(check: &'static str, summary: impl Into<String>) -> Check {
        Check::new(check, Status::Info, summary)
    }

    pub fn warn(check: &'static str, summary: impl Into<String>) -> Check {
        Check::new(check, Status::Warn, summary)
    }

    pub fn fail(check: &'static str, summary: impl Into<String>) -> Check {
        Check::new(check, Status::Fail, summary)
    }

    pub fn skip(check: &'static str, because: impl Into<String>) -> Check {
        Check::new(check, Status::Skip, because)
    }

    pub fn for_profile(mut self, profile: &str) -> Check {
        self.profile = Some(profile.to_string());
        self
    }

    pub fn evidence(mut self, line: impl Into<String>) -> Check {
        self.evidence.push(line.into());
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}
