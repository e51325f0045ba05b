//! What the IdP says about a profile: its discovery document, the grants and methods it
//! advertises, and its clock.

use serde_json::Value;

use super::metadata::{
    device_check, grants_check, offline_access_check, pkce_check, revocation_check, scopes_check,
};
use super::probes::client_checks;
use super::{Check, ids};
use crate::ClientSecret;
use crate::clock::human_span;
use crate::config::Profile;
use crate::http::HttpClient;
use crate::oidc::Provider;
use crate::profile::ClientAuth;

/// Past this, the local clock is far enough off to confuse other tools (kubectl, git
/// servers) that check token times without stagepass's skew correction.
const SKEW_WARN_SECS: u64 = 30;

/// The IdP checks of one profile, in order: discovery, issuer, advertised grants and
/// methods, scopes, the redirect URI and client probes, clock skew.
///
/// `client_secret`: what the keychain holds for a profile with `client_auth = "secret"`.
pub async fn idp_checks(
    name: &str,
    profile: &Profile,
    client_secret: Option<ClientSecret>,
    http: &HttpClient,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let url = discovery_url(&profile.issuer());
    let document = match fetch_document(&url, http).await {
        Ok(document) => document,
        Err(failed) => {
            checks.push(failed.for_profile(name));
            for id in DEPENDENT_CHECKS {
                checks.push(
                    Check::skip(id, "needs the discovery document (see idp.discovery)")
                        .for_profile(name),
                );
            }
            return checks;
        }
    };
    let advertised = document.json["issuer"].as_str().unwrap_or_default();
    let issuer_check = issuer_check(name, &profile.issuer(), advertised);
    let issuer_matches = issuer_check.status == super::Status::Ok;
    // With a mismatched issuer, the other checks still run against the advertised one, so
    // one wrong character does not hide everything else.
    let provider = match Provider::discover_at(advertised, profile, http).await {
        Ok(provider) => provider,
        Err(err) => {
            checks.push(
                Check::fail(
                    ids::IDP_DISCOVERY,
                    "the discovery document is reachable but unusable",
                )
                .for_profile(name)
                .evidence(format!("fetched {url}"))
                .evidence(err.to_string())
                .fix("ask the IdP's admins; the document or its jwks_uri is broken"),
            );
            checks.push(issuer_check);
            for id in &DEPENDENT_CHECKS[1..] {
                checks.push(
                    Check::skip(id, "needs a usable discovery document (see idp.discovery)")
                        .for_profile(name),
                );
            }
            return checks;
        }
    };
    checks.push(
        Check::ok(
            ids::IDP_DISCOVERY,
            "the discovery document is reachable, is JSON and its keys load",
        )
        .for_profile(name)
        .evidence(format!("fetched {url}")),
    );
    checks.push(if issuer_matches {
        issuer_check
    } else {
        issuer_check.evidence("the checks below used the advertised issuer")
    });
    let (provider, secret_check) = attach_secret(name, profile, provider, client_secret);
    let metadata = &document.json;
    checks.push(pkce_check(&provider, metadata).for_profile(name));
    checks.push(grants_check(name, profile, metadata).for_profile(name));
    checks.push(device_check(name, profile, &provider).for_profile(name));
    checks.push(revocation_check(&provider).for_profile(name));
    checks.push(scopes_check(name, profile, metadata).for_profile(name));
    checks.push(offline_access_check(name, profile, metadata).for_profile(name));
    match secret_check {
        // Without its secret, probing the client only proves that it wants one.
        Some(check) => checks.push(check.for_profile(name)),
        None => {
            for check in client_checks(name, &provider, http).await {
                checks.push(check.for_profile(name));
            }
        }
    }
    checks.push(clock_check(document.had_date, http).for_profile(name));
    checks
}

/// The provider as the profile's client, with its secret for a confidential one; a check that
/// fails when the secret cannot be used.
fn attach_secret(
    name: &str,
    profile: &Profile,
    provider: Provider,
    client_secret: Option<ClientSecret>,
) -> (Provider, Option<Check>) {
    if profile.client_auth() == ClientAuth::None {
        return (provider, None);
    }
    let Some(secret) = client_secret else {
        let check = Check::fail(
            ids::IDP_CLIENT,
            "the profile is a confidential client, and the keychain holds no client secret for it",
        )
        .evidence(format!("profiles.{name}.client_auth = \"secret\""))
        .fix(format!(
            "copy the client's secret from the IdP and run `stagepass config set-secret {name}` \
             (it reads the secret from standard input)"
        ));
        return (provider, Some(check));
    };
    match provider.clone().with_client_secret(secret) {
        Ok(provider) => (provider, None),
        Err(err) => {
            let check = Check::fail(
                ids::IDP_CLIENT,
                "the IdP takes no client secret in a way stagepass can send one",
            )
            .evidence(err.to_string())
            .fix(
                "make the client a public one with PKCE, or enable client_secret_basic or \
                  client_secret_post for it at the IdP",
            );
            (provider, Some(check))
        }
    }
}

/// The checks that cannot run without a discovery document, after idp.discovery itself.
const DEPENDENT_CHECKS: [&str; 10] = [
    ids::IDP_ISSUER,
    ids::IDP_PKCE,
    ids::IDP_GRANTS,
    ids::IDP_DEVICE_FLOW,
    ids::IDP_REVOCATION,
    ids::IDP_SCOPES,
    ids::IDP_OFFLINE_ACCESS,
    ids::IDP_REDIRECT_URI,
    ids::IDP_CLIENT,
    ids::IDP_CLOCK_SKEW,
];

/// OpenID Connect Discovery 1.0 §4: the issuer, then `/.well-known/openid-configuration`,
/// with one slash between them whether or not the issuer ends in one.
pub(super) fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

struct Document {
    json: Value,
    /// Whether the answer had a `Date` header, i.e. whether the clock skew is known.
    had_date: bool,
}

async fn fetch_document(url: &str, http: &HttpClient) -> Result<Document, Check> {
    let failed =
        |summary: &str| Check::fail(ids::IDP_DISCOVERY, summary).evidence(format!("GET {url}"));
    let request = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|err| failed("the discovery URL is not valid").evidence(err.to_string()))?;
    let response = http.execute(request).await.map_err(|err| {
        failed("the IdP's discovery document cannot be fetched")
            .evidence(err.to_string())
            .fix("check the network or VPN, and that the profile's `issuer` is the IdP's URL")
    })?;
    let had_date = response.headers().contains_key(http::header::DATE);
    let status = response.status();
    if status.is_redirection() {
        let location = crate::http::redirect_location(&response).unwrap_or("nowhere");
        return Err(failed("the discovery URL redirects instead of answering")
            .evidence(format!("HTTP {status}, Location: {location}"))
            .fix("use the issuer the IdP itself names (no redirects are followed for security)"));
    }
    if status.as_u16() == 404 {
        return Err(failed("there is no discovery document at the issuer")
            .evidence("HTTP 404")
            .fix(
                "check the profile's `issuer`: Keycloak issuers end in /realms/NAME, Okta's in \
                 /oauth2/default (or your authorization server), Entra's in /TENANT/v2.0",
            ));
    }
    if !status.is_success() {
        return Err(failed("the IdP refused to serve its discovery document")
            .evidence(format!("HTTP {status}")));
    }
    match serde_json::from_slice::<Value>(response.body()) {
        Ok(json)
            if json["issuer"]
                .as_str()
                .is_some_and(|issuer| !issuer.is_empty()) =>
        {
            Ok(Document { json, had_date })
        }
        Ok(json) if json.is_object() => Err(failed("the discovery document has no `issuer`")
            .fix("this is not an OpenID Connect discovery document: check the profile's `issuer`")),
        _ => {
            let content_type = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("none");
            let start: String = String::from_utf8_lossy(response.body())
                .chars()
                .take(60)
                .collect();
            Err(failed("the discovery document is not a JSON object")
                .evidence(format!(
                    "content-type {content_type}, starts with {start:?}"
                ))
                .fix(
                    "something else answers at this URL (a login page, a proxy): check the \
                     profile's `issuer`",
                ))
        }
    }
}

fn issuer_check(name: &str, configured: &str, advertised: &str) -> Check {
    if configured == advertised {
        return Check::ok(
            ids::IDP_ISSUER,
            "the IdP's issuer equals the configured one exactly",
        )
        .for_profile(name)
        .evidence(format!("issuer {advertised}"));
    }
    let difference = issuer_difference(configured, advertised);
    Check::fail(
        ids::IDP_ISSUER,
        format!("the IdP's issuer differs from the configured one: {difference}"),
    )
    .for_profile(name)
    .evidence(format!("configured: {configured:?}"))
    .evidence(format!("advertised: {advertised:?}"))
    .fix(format!(
        "set `profiles.{name}.issuer = \"{advertised}\"` (character for character: tokens \
         carry this exact string in `iss`). If that is not the URL users reach, the IdP's own \
         hostname setting is wrong (Keycloak: KC_HOSTNAME)"
    ))
}

fn issuer_difference(configured: &str, advertised: &str) -> &'static str {
    let same_host_spelling = |a: &str, b: &str| a.replace("localhost", "127.0.0.1") == b;
    if configured.trim_end_matches('/') == advertised.trim_end_matches('/') {
        if configured.ends_with('/') {
            "the configured issuer has a trailing slash the IdP's has not"
        } else {
            "the IdP's issuer ends in a slash the configured one lacks"
        }
    } else if same_host_spelling(configured, advertised)
        || same_host_spelling(advertised, configured)
    {
        "`localhost` and `127.0.0.1` are different issuers"
    } else if configured.replacen("https://", "http://", 1)
        == advertised.replacen("https://", "http://", 1)
    {
        "http and https differ (an IdP behind a TLS proxy that does not pass X-Forwarded-Proto \
         names itself http://)"
    } else if configured.eq_ignore_ascii_case(advertised) {
        "they differ in letter case"
    } else {
        "they are different URLs"
    }
}

fn clock_check(had_date: bool, http: &HttpClient) -> Check {
    if !had_date {
        return Check::info(
            ids::IDP_CLOCK_SKEW,
            "the IdP sent no Date header: the clock skew is unknown",
        );
    }
    let skew = http.clock_skew().0;
    let direction = if skew > 0 { "ahead of" } else { "behind" };
    let size = human_span(skew.unsigned_abs());
    if skew.unsigned_abs() <= SKEW_WARN_SECS {
        return Check::ok(
            ids::IDP_CLOCK_SKEW,
            format!("the local clock is within {SKEW_WARN_SECS}s of the IdP's"),
        )
        .evidence(format!("skew {skew:+}s (from the IdP's Date header)"));
    }
    Check::warn(
        ids::IDP_CLOCK_SKEW,
        format!("the local clock is {size} {direction} the IdP's"),
    )
    .evidence(format!(
        "skew {skew:+}s (local minus the IdP's Date header)"
    ))
    .fix(
        "turn on time synchronisation (timedatectl set-ntp true; on macOS and Windows, set the \
         time automatically): stagepass corrects for it, but token checks in kubectl, git servers \
         and Backstage do not",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_differences_are_named() {
        let diff = issuer_difference;
        assert!(diff("https://a.example/", "https://a.example").contains("trailing slash"));
        assert!(diff("https://a.example", "https://a.example/").contains("ends in a slash"));
        assert!(diff("http://localhost:8080", "http://127.0.0.1:8080").contains("localhost"));
        assert!(diff("https://a.example", "http://a.example").contains("http and https"));
        assert!(diff("https://A.example", "https://a.example").contains("letter case"));
        assert!(diff("https://a.example", "https://b.example").contains("different URLs"));
    }

    #[test]
    fn discovery_url_has_one_slash() {
        assert_eq!(
            discovery_url("https://a.example/realms/x/"),
            "https://a.example/realms/x/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://a.example"),
            "https://a.example/.well-known/openid-configuration"
        );
    }
}
