//! What the tokens of a signed-in profile say: audience, granted scopes, groups, lifetimes.
//! Pure: the claims come from the agent, decoded but never the tokens themselves.

use serde_json::Value;
use stagepass_proto::RefreshTokenState;

use super::{Check, ids};
use crate::clock::human_span;
use crate::config::{OfflineAccess, Profile};

/// A refresh token that lives this long or less forces a sign-in every working day.
const DAILY_SECS: u64 = 26 * 3600;
/// A refresh token that lives this long or less dies within the week: Google issues such
/// tokens to apps in "Testing" publishing status ("a refresh token expiring in 7 days",
/// <https://developers.google.com/identity/protocols/oauth2#expiration>). An hour of slack
/// for a lifetime counted from a response that took a moment.
const WEEKLY_SECS: u64 = 7 * 24 * 3600 + 3600;

/// The claims the agent reported for a signed-in profile.
#[derive(Debug, Clone, Copy)]
pub struct HeldTokens<'a> {
    /// `None` when the access token is opaque (not a JWT).
    pub access_claims: Option<&'a Value>,
    pub id_claims: Option<&'a Value>,
    pub refresh_token: RefreshTokenState,
}

/// token.audience, token.scopes, token.groups, token.claims and token.lifetimes.
pub fn token_checks(name: &str, profile: &Profile, tokens: HeldTokens<'_>) -> Vec<Check> {
    [
        audience_check(name, profile, tokens.access_claims),
        scopes_check(name, profile, tokens.access_claims),
        groups_check(name, profile, tokens),
        claims_check(tokens),
        lifetimes_check(name, profile, tokens),
    ]
    .into_iter()
    .map(|check| check.for_profile(name))
    .collect()
}

fn opaque(check: &'static str, what: &str) -> Check {
    Check::info(
        check,
        format!("the access token is opaque (not a JWT): its {what} cannot be read"),
    )
    .fix(
        "IdPs issue opaque access tokens when no API audience is requested; set the profile's \
         `audience` to the API the tokens are for",
    )
}

fn audience_check(name: &str, profile: &Profile, access: Option<&Value>) -> Check {
    let Some(access) = access else {
        return opaque(ids::TOKEN_AUDIENCE, "audience");
    };
    let aud: Vec<&str> = match &access["aud"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let Some(configured) = profile.audience() else {
        return Check::info(
            ids::TOKEN_AUDIENCE,
            "no audience is configured: the access token is for whatever the IdP chooses",
        )
        .evidence(format!("aud: {aud:?}"))
        .fix(format!(
            "set `profiles.{name}.audience` to the API (e.g. the Backstage URL) that must accept the token"
        ));
    };
    if aud.contains(&configured) {
        return Check::ok(
            ids::TOKEN_AUDIENCE,
            format!("the access token is issued for {configured}"),
        )
        .evidence(format!("aud: {aud:?}"));
    }
    Check::fail(
        ids::TOKEN_AUDIENCE,
        format!("the access token is not issued for the configured audience {configured}"),
    )
    .evidence(format!("aud: {aud:?}"))
    .evidence(format!("profiles.{name}.audience: {configured:?}"))
    .fix(
        "the API will reject these tokens. Make the IdP put the audience in `aud`: register \
         the API as a resource (RFC 8707), or add an audience mapper (Keycloak), an \
         authorization server audience (Okta), an API identifier (Auth0)",
    )
}

/// `scope` (a space-separated string, RFC 9068) or `scp` (Okta, Entra: a list or a string).
fn granted_scopes(access: &Value) -> Option<Vec<String>> {
    let value = access.get("scope").or_else(|| access.get("scp"))?;
    Some(match value {
        Value::String(text) => text.split_whitespace().map(String::from).collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => return None,
    })
}

fn scopes_check(name: &str, profile: &Profile, access: Option<&Value>) -> Check {
    let Some(access) = access else {
        return opaque(ids::TOKEN_SCOPES, "scopes");
    };
    let Some(granted) = granted_scopes(access) else {
        return Check::info(
            ids::TOKEN_SCOPES,
            "the access token has no `scope` or `scp` claim: the granted scopes are not visible",
        );
    };
    // `openid` is for the id_token and `offline_access` for the refresh token: IdPs often
    // leave both out of the access token; token.lifetimes checks the refresh token itself.
    // API scopes (`api://…/.default`) appear in the token under their short names.
    let missing: Vec<&str> = profile
        .scopes()
        .iter()
        .map(String::as_str)
        .filter(|scope| !matches!(*scope, "openid" | "offline_access"))
        .filter(|scope| !scope.contains(':') && !scope.contains('/'))
        .filter(|scope| !granted.iter().any(|granted| granted == scope))
        .collect();
    if missing.is_empty() {
        return Check::ok(ids::TOKEN_SCOPES, "every requested scope was granted")
            .evidence(format!("granted: {granted:?}"));
    }
    Check::warn(
        ids::TOKEN_SCOPES,
        format!("the IdP did not grant {}", missing.join(", ")),
    )
    .evidence(format!("requested: {:?}", profile.scopes()))
    .evidence(format!("granted: {granted:?}"))
    .fix(format!(
        "allow these scopes for the client at the IdP (Keycloak: the client's Client scopes \
         tab; Okta: the authorization server's access policy), or remove them from \
         `profiles.{name}.scopes`"
    ))
}

fn groups_check(name: &str, profile: &Profile, tokens: HeldTokens<'_>) -> Check {
    let find = |claim: &str| {
        [
            ("access token", tokens.access_claims),
            ("id_token", tokens.id_claims),
        ]
        .into_iter()
        .find_map(|(token, claims)| Some((token, claims?.get(claim)?)))
    };
    let Some(claim) = &profile.groups_claim else {
        return match find("groups") {
            Some((token, groups)) => Check::info(
                ids::TOKEN_GROUPS,
                format!("the {token} has a `groups` claim, but no groups_claim is configured"),
            )
            .evidence(format!("groups: {groups}"))
            .fix(format!(
                "set `profiles.{name}.groups_claim = \"groups\"` if access decisions use it"
            )),
            None => Check::info(
                ids::TOKEN_GROUPS,
                "no groups claim is configured or present",
            ),
        };
    };
    match find(claim) {
        Some((token, groups)) => Check::ok(
            ids::TOKEN_GROUPS,
            format!("the {token} carries the `{claim}` claim"),
        )
        .evidence(format!("{claim}: {groups}")),
        None => Check::fail(
            ids::TOKEN_GROUPS,
            format!("neither token carries the configured groups claim `{claim}`"),
        )
        .evidence(format!("profiles.{name}.groups_claim: {claim:?}"))
        .fix(format!(
            "add a groups mapper at the IdP (Keycloak: Group Membership mapper named `{claim}`; \
             Okta: a groups claim on the authorization server; Entra: Token configuration → \
             Add groups claim; Auth0: an Action that sets the namespaced claim), and request \
             its scope in `profiles.{name}.scopes` if it has one"
        )),
    }
}

fn claims_check(tokens: HeldTokens<'_>) -> Check {
    let mut check = Check::info(
        ids::TOKEN_CLAIMS,
        "the claims of the tokens held (decoded, for reference)",
    );
    for (token, claims) in [
        ("access token", tokens.access_claims),
        ("id_token", tokens.id_claims),
    ] {
        let Some(Value::Object(claims)) = claims else {
            check = check.evidence(format!("{token}: none or opaque"));
            continue;
        };
        let listed: Vec<String> = claims
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        check = check.evidence(format!("{token}: {}", listed.join(" ")));
    }
    check
}

fn lifetime(claims: &Value) -> Option<u64> {
    let exp = claims.get("exp")?.as_u64()?;
    let iat = claims.get("iat")?.as_u64()?;
    exp.checked_sub(iat)
}

fn lifetimes_check(name: &str, profile: &Profile, tokens: HeldTokens<'_>) -> Check {
    let access_type = profile.offline_access() == OfflineAccess::AccessType;
    let access = match tokens.access_claims.and_then(lifetime) {
        Some(secs) => format!("access token: {} (exp - iat)", human_span(secs)),
        None => "access token: lifetime not visible (opaque or no exp/iat)".to_string(),
    };
    match tokens.refresh_token {
        RefreshTokenState::None => Check::fail(
            ids::TOKEN_LIFETIMES,
            "the IdP issued no refresh token: every access token expiry means signing in again",
        )
        .evidence(access)
        .fix(if access_type {
            format!(
                "`stagepass logout {name}` then `stagepass login {name}`: a sign-in without a \
                 refresh token asks Google with access_type=offline and prompt=consent, which \
                 issues one to a Desktop app client"
            )
        } else {
            format!(
                "request \"offline_access\" in `profiles.{name}.scopes` and allow the refresh \
                 token grant (and offline access) for the client at the IdP, then `stagepass \
                 login {name}`"
            )
        }),
        RefreshTokenState::Held {
            issued_at: Some(issued_at),
            expires_at: Some(expires_at),
        } if expires_at.saturating_sub(issued_at) <= DAILY_SECS => {
            let life = human_span(expires_at.saturating_sub(issued_at));
            Check::warn(
                ids::TOKEN_LIFETIMES,
                format!("refresh tokens live {life}: expect to sign in again every day"),
            )
            .evidence(access)
            .evidence(format!("refresh token: {life} (exp - iat)"))
            .fix(
                "raise the refresh token or session lifetime at the IdP (Keycloak: SSO Session \
                 Max, or offline_access for offline sessions; Okta: the access policy rule's \
                 refresh token lifetime; Auth0: the API's refresh token expiration)",
            )
        }
        RefreshTokenState::Held {
            issued_at: Some(issued_at),
            expires_at: Some(expires_at),
        } if expires_at.saturating_sub(issued_at) <= WEEKLY_SECS => {
            let life = human_span(expires_at.saturating_sub(issued_at));
            let check = Check::warn(
                ids::TOKEN_LIFETIMES,
                format!("the refresh token dies within 7 days of sign-in ({life})"),
            )
            .evidence(access)
            .evidence(format!(
                "refresh token: {life}, as the IdP stated (refresh_token_expires_in) or its exp - iat"
            ));
            if access_type {
                check.fix(format!(
                    "is the app still in Testing status? Google gives apps in Testing publishing \
                     status refresh tokens that expire after 7 days (unless only openid, email \
                     and profile are requested). Publish it (Google Auth Platform > Audience > \
                     Publish app, \"In production\"), then `stagepass logout {name}` and \
                     `stagepass login {name}` for a token without that limit"
                ))
            } else {
                check.fix(
                    "expect to sign in again every week; raise the refresh token or session \
                     lifetime at the IdP",
                )
            }
        }
        RefreshTokenState::Held {
            issued_at,
            expires_at,
        } => {
            let refresh = match (issued_at, expires_at) {
                (Some(iat), Some(exp)) => {
                    format!(
                        "refresh token: {} (exp - iat)",
                        human_span(exp.saturating_sub(iat))
                    )
                }
                _ => "refresh token: held; opaque, so its lifetime is the IdP's setting".into(),
            };
            Check::ok(ids::TOKEN_LIFETIMES, "a refresh token is held")
                .evidence(access)
                .evidence(refresh)
        }
        RefreshTokenState::Unknown => Check::info(
            ids::TOKEN_LIFETIMES,
            "the agent does not report its refresh token (an older agent)",
        )
        .evidence(access),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn profile(extra: &str) -> Profile {
        let text = format!(
            "[profiles.p]\nissuer = \"https://idp.example\"\nclient_id = \"c\"\n\
             audience = \"https://api.example\"\n{extra}"
        );
        let config = Config::parse(std::path::Path::new("/t.toml"), &text).unwrap();
        config.profiles["p"].clone()
    }

    fn check<'a>(checks: &'a [Check], id: &str) -> &'a Check {
        checks.iter().find(|check| check.check == id).unwrap()
    }

    #[test]
    fn daily_refresh_tokens_are_flagged() {
        let access = json!({"aud": "https://api.example", "iat": 1000, "exp": 1300, "scope": "openid email profile"});
        let tokens = HeldTokens {
            access_claims: Some(&access),
            id_claims: None,
            refresh_token: RefreshTokenState::Held {
                issued_at: Some(1000),
                expires_at: Some(1000 + 10 * 3600),
            },
        };
        let checks = token_checks("p", &profile(""), tokens);
        let lifetimes = check(&checks, ids::TOKEN_LIFETIMES);
        assert_eq!(lifetimes.status, super::super::Status::Warn);
        assert!(lifetimes.summary.contains("every day"), "{lifetimes:?}");
        assert!(lifetimes.evidence[0].contains("5m 0s"), "{lifetimes:?}");
        assert_eq!(
            check(&checks, ids::TOKEN_AUDIENCE).status,
            super::super::Status::Ok
        );
    }

    #[test]
    fn a_refresh_token_of_seven_days_asks_about_testing_status_for_google_style_profiles() {
        let held = |life: u64| HeldTokens {
            access_claims: None,
            id_claims: None,
            refresh_token: RefreshTokenState::Held {
                issued_at: Some(1000),
                expires_at: Some(1000 + life),
            },
        };
        let google = profile("offline = \"access_type\"\n");
        let testing = token_checks("p", &google, held(604_799));
        let lifetimes = check(&testing, ids::TOKEN_LIFETIMES);
        assert_eq!(
            lifetimes.status,
            super::super::Status::Warn,
            "{lifetimes:?}"
        );
        assert!(lifetimes.summary.contains("within 7 days"), "{lifetimes:?}");
        assert!(
            lifetimes.fix.as_deref().unwrap().contains("Testing status"),
            "{lifetimes:?}"
        );
        // Google's 6-month inactivity limit is no reason to warn.
        let production = token_checks("p", &google, held(180 * 86_400));
        let lifetimes = check(&production, ids::TOKEN_LIFETIMES);
        assert_eq!(lifetimes.status, super::super::Status::Ok, "{lifetimes:?}");
        let generic = token_checks("p", &profile(""), held(604_799));
        let lifetimes = check(&generic, ids::TOKEN_LIFETIMES);
        assert_eq!(lifetimes.status, super::super::Status::Warn);
        assert!(!lifetimes.fix.as_deref().unwrap().contains("Testing"));
    }

    #[test]
    fn missing_groups_and_scopes_are_named() {
        let access = json!({"aud": ["x"], "scp": ["email"]});
        let tokens = HeldTokens {
            access_claims: Some(&access),
            id_claims: None,
            refresh_token: RefreshTokenState::None,
        };
        let checks = token_checks("p", &profile("groups_claim = \"roles\"\n"), tokens);
        assert!(
            check(&checks, ids::TOKEN_GROUPS)
                .summary
                .contains("`roles`")
        );
        assert!(
            check(&checks, ids::TOKEN_SCOPES)
                .summary
                .contains("did not grant profile")
        );
        assert!(
            check(&checks, ids::TOKEN_AUDIENCE)
                .summary
                .contains("not issued for")
        );
        assert_eq!(
            check(&checks, ids::TOKEN_LIFETIMES).status,
            super::super::Status::Fail
        );
    }
}
