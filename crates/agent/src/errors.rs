//! Turns core errors into answers that tell the user what to do next.

use stagepass_core::Error;
use stagepass_core::store::KeychainError;
use stagepass_proto::{AgentError, ErrorKind};

pub(crate) fn reply(
    kind: ErrorKind,
    message: impl Into<String>,
    hint: Option<String>,
) -> AgentError {
    AgentError {
        kind,
        message: message.into(),
        hint,
    }
}

pub(crate) fn not_signed_in(profile: &str) -> AgentError {
    reply(
        ErrorKind::NeedsSignIn,
        format!("profile `{profile}` is not signed in"),
        Some(login_hint(profile)),
    )
}

pub(crate) fn login_hint(profile: &str) -> String {
    format!("run `stagepass login {profile}`")
}

pub(crate) fn keychain(err: &KeychainError) -> AgentError {
    reply(ErrorKind::Keychain, err.to_string(), None)
}

/// `profile` is the profile the request was about, when known, for the hint.
pub fn from_core(err: &Error, profile: Option<&str>) -> AgentError {
    let name = profile.unwrap_or("PROFILE");
    let message = err.to_string();
    let (kind, hint) = match err {
        Error::Config { path, .. } => (
            ErrorKind::Config,
            Some(format!("fix {} and retry", path.display())),
        ),
        Error::UnknownProfile { .. } => (ErrorKind::BadRequest, None),
        Error::AmbiguousProfile { .. } => (
            ErrorKind::BadRequest,
            Some("name the profile, e.g. `stagepass token PROFILE`".into()),
        ),
        Error::Unreachable { .. } => (
            ErrorKind::IdpUnreachable,
            Some(format!(
                "check your network or VPN and `profiles.{name}.issuer`; tokens already issued keep working until they expire"
            )),
        ),
        Error::Discovery { .. } => (
            ErrorKind::Idp,
            Some(format!("check `profiles.{name}.issuer` in the config")),
        ),
        Error::AuthorizationRefused { code, .. } => (ErrorKind::Idp, Some(authorization_hint(code.as_deref(), name))),
        Error::OAuth { during, source } => match source.code.as_str() {
            "access_denied" => (
                ErrorKind::SignInAborted,
                Some(format!("the sign-in was denied at the IdP; {} to try again", login_hint(name))),
            ),
            "invalid_grant" => (
                ErrorKind::NeedsSignIn,
                Some(format!("the IdP no longer accepts this login (revoked, expired or reused refresh token); {}", login_hint(name))),
            ),
            // Google refuses the device flow to a Desktop app client ("Invalid client type"):
            // it needs a client of type "TVs and Limited Input devices".
            // <https://developers.google.com/identity/protocols/oauth2/limited-input-device>
            "invalid_client" if *during == "device authorization" && source.description.as_deref().is_some_and(|text| text.contains("client type")) => (
                ErrorKind::Idp,
                Some(format!(
                    "this client may not use the device flow (a Google Desktop app client may not): sign in with `stagepass login {name} --browser`, or give the device flow its own client (Google: type \"TVs and Limited Input devices\") in another profile"
                )),
            ),
            "invalid_client" | "unauthorized_client" => (
                ErrorKind::Idp,
                Some(format!(
                    "check `profiles.{name}.client_id`: the IdP does not know it, it may not use the {during} grant, or it wants a client secret; a confidential client (client_auth = \"secret\") whose secret was rotated needs `stagepass config set-secret {name}`; `stagepass doctor {name}` tells which"
                )),
            ),
            "invalid_request" if stagepass_core::doctor::missing_secret(source) => (
                ErrorKind::Idp,
                Some(format!(
                    "the IdP wants this client's secret (a Google Desktop app client does): set `client_auth = \"secret\"` in [profiles.{name}] and run `stagepass config set-secret {name}`"
                )),
            ),
            "invalid_scope" => (
                ErrorKind::Idp,
                Some(format!("remove the scopes the IdP does not offer from `profiles.{name}.scopes`")),
            ),
            "invalid_target" => (
                ErrorKind::Idp,
                Some(format!("the IdP does not accept `profiles.{name}.audience` as a resource for this client")),
            ),
            _ => (ErrorKind::Idp, None),
        },
        Error::BadResponse { .. } => (
            ErrorKind::Idp,
            Some("the IdP's answer was malformed; if it persists, run `stagepass doctor` or ask the IdP's admins".into()),
        ),
        Error::IdToken(_) => (
            ErrorKind::Idp,
            Some("check the computer's clock and that the profile's issuer and client_id are right".into()),
        ),
        Error::Callback(_) => (ErrorKind::Idp, Some(format!("{} to try again", login_hint(name)))),
        Error::DeviceCodeExpired => (
            ErrorKind::SignInAborted,
            Some(format!("run `stagepass login {name} --device` again and approve the code before it expires")),
        ),
        Error::MissingClientSecret { profile } => (
            ErrorKind::Config,
            Some(format!(
                "copy the client's secret from the IdP and run `stagepass config set-secret {profile}` (it reads the secret from standard input)"
            )),
        ),
        Error::Keychain(_) => (ErrorKind::Keychain, None),
        Error::Io { .. } => (ErrorKind::Internal, None),
    };
    reply(kind, message, hint)
}

fn authorization_hint(code: Option<&str>, name: &str) -> String {
    match code {
        Some("invalid_client" | "unauthorized_client") => format!(
            "check `profiles.{name}.client_id`: the IdP does not know this client, or it is not a public (PKCE, no secret) client"
        ),
        Some("invalid_redirect_uri" | "redirect_uri_mismatch") => format!(
            "the client `profiles.{name}.client_id` must allow the loopback redirect URI http://127.0.0.1/callback with any port (RFC 8252 §7.3); `localhost` instead of 127.0.0.1 or a trailing slash breaks it"
        ),
        _ => format!(
            "check `profiles.{name}.client_id` and the client's settings at the IdP (redirect URI http://127.0.0.1/callback, PKCE S256)"
        ),
    }
}
