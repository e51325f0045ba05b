//! What the discovery document advertises, against what the profile needs: PKCE, grants,
//! the device endpoint, revocation, scopes and offline_access.

use serde_json::Value;

use super::{Check, ids};
use crate::config::{FlowPreference, Profile};
use crate::oidc::Provider;

fn strings<'a>(metadata: &'a Value, key: &str) -> Option<Vec<&'a str>> {
    metadata
        .get(key)?
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
}

pub(super) fn pkce_check(provider: &Provider, metadata: &Value) -> Check {
    match strings(metadata, "code_challenge_methods_supported") {
        None => Check::info(
            ids::IDP_PKCE,
            "the IdP does not advertise code_challenge_methods_supported; PKCE S256 is assumed",
        )
        .evidence("many IdPs (Entra, Google) support S256 without saying so"),
        Some(methods) if provider.capabilities().pkce_s256 => {
            Check::ok(ids::IDP_PKCE, "PKCE with S256 is advertised")
                .evidence(format!("code_challenge_methods_supported: {methods:?}"))
        }
        Some(methods) => Check::fail(ids::IDP_PKCE, "the IdP does not offer PKCE with S256")
            .evidence(format!("code_challenge_methods_supported: {methods:?}"))
            .fix("stagepass signs in as a public client and needs PKCE S256: enable it at the IdP"),
    }
}

pub(super) fn grants_check(name: &str, profile: &Profile, metadata: &Value) -> Check {
    let Some(grants) = strings(metadata, "grant_types_supported") else {
        return Check::info(
            ids::IDP_GRANTS,
            "the IdP does not advertise grant_types_supported",
        );
    };
    let mut needed = vec!["authorization_code", "refresh_token"];
    if profile.flow == FlowPreference::Device {
        needed = vec![DEVICE_GRANT, "refresh_token"];
    }
    let missing: Vec<&str> = needed
        .into_iter()
        .filter(|grant| !grants.contains(grant))
        .collect();
    if missing.is_empty() {
        return Check::ok(ids::IDP_GRANTS, "the grants stagepass needs are advertised")
            .evidence(format!("grant_types_supported: {grants:?}"));
    }
    Check::fail(
        ids::IDP_GRANTS,
        format!("the IdP does not advertise {}", missing.join(" and ")),
    )
    .evidence(format!("grant_types_supported: {grants:?}"))
    .fix(format!(
        "enable the grant for the client at the IdP{}",
        if missing.contains(&DEVICE_GRANT) {
            format!(", or set `profiles.{name}.flow = \"browser\"`")
        } else {
            String::new()
        }
    ))
}

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub(super) fn device_check(name: &str, profile: &Profile, provider: &Provider) -> Check {
    match (provider.capabilities().device_flow, profile.flow) {
        (true, _) => Check::ok(
            ids::IDP_DEVICE_FLOW,
            "a device authorization endpoint is advertised",
        ),
        (false, FlowPreference::Device) => Check::fail(
            ids::IDP_DEVICE_FLOW,
            "the profile uses the device flow but the IdP has no device authorization endpoint",
        )
        .fix(format!(
            "enable the device grant at the IdP, or set `profiles.{name}.flow = \"browser\"`"
        )),
        (false, FlowPreference::Auto) => Check::warn(
            ids::IDP_DEVICE_FLOW,
            "the IdP has no device authorization endpoint: over SSH, in a Codespace or a \
             container, sign-in cannot fall back to a device code",
        )
        .fix("enable the device grant at the IdP if people sign in from headless machines"),
        (false, FlowPreference::Browser) => Check::info(
            ids::IDP_DEVICE_FLOW,
            "no device authorization endpoint (not needed: the profile signs in with a browser)",
        ),
    }
}

pub(super) fn revocation_check(provider: &Provider) -> Check {
    if provider.capabilities().revocation {
        Check::ok(ids::IDP_REVOCATION, "a revocation endpoint is advertised")
    } else {
        Check::warn(
            ids::IDP_REVOCATION,
            "the IdP has no revocation endpoint: `stagepass logout` deletes the refresh token \
             locally but cannot revoke it",
        )
        .fix("end the session at the IdP as well when signing out matters")
    }
}

/// Scopes that name an API (`api://…/.default`, URLs) are never listed in
/// `scopes_supported`; only plain names are compared.
fn is_plain_scope(scope: &str) -> bool {
    !scope.contains(':') && !scope.contains('/')
}

pub(super) fn scopes_check(name: &str, profile: &Profile, metadata: &Value) -> Check {
    let Some(supported) = strings(metadata, "scopes_supported") else {
        return Check::info(
            ids::IDP_SCOPES,
            "the IdP does not advertise scopes_supported",
        );
    };
    let unknown: Vec<&str> = profile
        .scopes()
        .iter()
        .map(String::as_str)
        .filter(|scope| is_plain_scope(scope) && !supported.contains(scope))
        .collect();
    if unknown.is_empty() {
        return Check::ok(ids::IDP_SCOPES, "every requested scope is advertised")
            .evidence(format!("requested: {:?}", profile.scopes()));
    }
    Check::warn(
        ids::IDP_SCOPES,
        format!("the IdP does not advertise {}", unknown.join(", ")),
    )
    .evidence(format!("requested: {:?}", profile.scopes()))
    .evidence(format!("scopes_supported: {supported:?}"))
    .fix(format!(
        "remove them from `profiles.{name}.scopes`, or create them at the IdP; an IdP may \
         answer invalid_scope to a scope it does not know"
    ))
}

pub(super) fn offline_access_check(name: &str, profile: &Profile, metadata: &Value) -> Check {
    if profile.offline_access() == crate::config::OfflineAccess::AccessType {
        return Check::ok(
            ids::IDP_OFFLINE_ACCESS,
            "refresh tokens are asked for with access_type=offline (and prompt=consent while \
             none is held), not the offline_access scope",
        )
        .evidence(format!("profiles.{name}.offline = \"access_type\""));
    }
    let advertised = strings(metadata, "scopes_supported")
        .is_some_and(|scopes| scopes.contains(&"offline_access"));
    let requested = profile
        .scopes()
        .iter()
        .any(|scope| scope == "offline_access");
    match (advertised, requested) {
        (true, false) => Check::fail(
            ids::IDP_OFFLINE_ACCESS,
            "offline_access is not requested, but this IdP uses it to issue refresh tokens",
        )
        .evidence(format!("requested: {:?}", profile.scopes()))
        .evidence("scopes_supported includes offline_access")
        .fix(format!(
            "add \"offline_access\" to `profiles.{name}.scopes`: without it Okta, Auth0 and \
             Entra issue no refresh token and Keycloak one that dies with the browser session, \
             so every access token expiry means signing in again"
        )),
        (true, true) => Check::ok(
            ids::IDP_OFFLINE_ACCESS,
            "offline_access is requested, so the IdP can issue refresh tokens",
        ),
        (false, true) => Check::info(
            ids::IDP_OFFLINE_ACCESS,
            "offline_access is requested but the IdP does not advertise it",
        )
        .fix(format!(
            "if sign-in fails with invalid_scope, remove it from `profiles.{name}.scopes` (GitLab \
             and Google issue refresh tokens without it)"
        )),
        (false, false) => Check::ok(
            ids::IDP_OFFLINE_ACCESS,
            "the IdP does not use offline_access for refresh tokens",
        ),
    }
}
