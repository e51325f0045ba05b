//! GitHub and GitHub Enterprise Server behind the same [`Provider`]: OAuth 2.0 without
//! OpenID Connect. No discovery (the endpoints are fixed under the profile's `url`), no
//! id_token (who signed in comes from the REST API's `GET /user`), and a token endpoint that
//! answers errors with HTTP 200.
//!
//! - Device flow and web flow, endpoints and errors:
//!   <https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps>
//! - GitHub App user tokens (8 h) and their rotating refresh tokens:
//!   <https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens>
//! - Who signed in: <https://docs.github.com/en/rest/users/users#get-the-authenticated-user>
//! - Revocation: <https://docs.github.com/en/rest/apps/oauth-applications#delete-an-app-token>

use std::time::{Duration, SystemTime};

use openidconnect::core::{
    CoreClientAuthMethod, CoreDeviceAuthorizationResponse, CoreJsonWebKeySet, CoreResponseType,
};
use openidconnect::{
    AuthUrl, ClientId, DeviceAuthorizationUrl, IssuerUrl, JsonWebKeySetUrl, PkceCodeVerifier,
    ResponseTypes, TokenUrl,
};
use serde::Deserialize;

use super::provider::{ExtraMetadata, Metadata};
use super::{DeviceAuthorization, Provider};
use crate::http::HttpClient;
use crate::profile::{Profile, github_api_url};
use crate::tokens::{RefreshLifetime, TokenSet};
use crate::{AccessToken, Error, OAuthError, RefreshToken, Result};

/// GitHub's endpoints under the web URL.
const DEVICE_PATH: &str = "/login/device/code";
const TOKEN_PATH: &str = "/login/oauth/access_token";
const AUTHORIZE_PATH: &str = "/login/oauth/authorize";
/// The device grant of RFC 8628 §3.4, which GitHub's device flow uses.
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.5: `slow_down` adds 5 s to the polling interval (GitHub says the same).
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// RFC 8628 §3.5: a poll the network failed doubles the interval, up to this (the `oauth2`
/// crate's cap, which the device flow of other IdPs gets), never below what `slow_down` set.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The media type of GitHub's REST API.
const GITHUB_JSON: &str = "application/vnd.github+json";

/// A token endpoint answer: GitHub sends errors with HTTP 200 and an `error` field.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    /// A GitHub App's refresh token lives 6 months; the answer says how long exactly.
    refresh_token_expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
    /// With `slow_down`: the new interval in seconds.
    interval: Option<u64>,
}

/// The part of `GET /user` stagepass shows.
#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    name: Option<String>,
    email: Option<String>,
}

impl Provider {
    /// A GitHub profile's provider, built from its `url` without a network call. The
    /// metadata is what discovery would have said; no JWKS is ever fetched (no id_token).
    pub(super) fn github(profile: &Profile, url: &str) -> Result<Provider> {
        let bad = |reason: String| Error::Discovery {
            issuer: url.to_string(),
            reason,
        };
        let endpoint = |path: &str| format!("{url}{path}");
        let metadata = Metadata::new(
            IssuerUrl::new(url.to_string()).map_err(|err| bad(err.to_string()))?,
            AuthUrl::new(endpoint(AUTHORIZE_PATH)).map_err(|err| bad(err.to_string()))?,
            // Required by the metadata type, never fetched.
            JsonWebKeySetUrl::new(endpoint("/login/oauth")).map_err(|err| bad(err.to_string()))?,
            vec![ResponseTypes::new(vec![CoreResponseType::Code])],
            Vec::new(),
            Vec::new(),
            ExtraMetadata {
                device_authorization_endpoint: Some(
                    DeviceAuthorizationUrl::new(endpoint(DEVICE_PATH))
                        .map_err(|err| bad(err.to_string()))?,
                ),
                revocation_endpoint: None,
                authorization_response_iss_parameter_supported: false,
                code_challenge_methods_supported: Some(vec!["S256".into()]),
            },
        )
        .set_token_endpoint(Some(
            TokenUrl::new(endpoint(TOKEN_PATH)).map_err(|err| bad(err.to_string()))?,
        ))
        // GitHub takes `client_id` and `client_secret` as body parameters.
        .set_token_endpoint_auth_methods_supported(Some(vec![
            CoreClientAuthMethod::ClientSecretPost,
        ]))
        .set_jwks(CoreJsonWebKeySet::new(Vec::new()));
        let client = super::provider::OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(profile.client_id().to_string()),
            None,
        );
        Ok(Provider::assemble(metadata, client, profile))
    }

    /// The REST API base, for a GitHub provider.
    fn github_api(&self) -> String {
        github_api_url(&self.issuer)
    }

    /// Asks for a device and user code: `POST /login/device/code` with `client_id` and
    /// `scope` (GitHub's "Device flow", step 1).
    pub(super) async fn github_device_start(
        &self,
        http: &HttpClient,
    ) -> Result<DeviceAuthorization> {
        let url = format!("{}{DEVICE_PATH}", self.issuer);
        let scope = self.scopes.join(" ");
        let response = self
            .post_form(http, &url, &[("scope", &scope)], "device authorization")
            .await?;
        let body = response.body();
        if let Some(error) = oauth_error(body) {
            return Err(Error::OAuth {
                during: "device authorization",
                source: error,
            });
        }
        let details: CoreDeviceAuthorizationResponse =
            serde_json::from_slice(body).map_err(|err| Error::BadResponse {
                during: "device authorization",
                reason: format!("HTTP {}: {err}", response.status()),
            })?;
        Ok(DeviceAuthorization::new(
            details,
            PkceCodeVerifier::new(String::new()),
        ))
    }

    /// Polls `POST /login/oauth/access_token` until the user approves (GitHub's "Device flow",
    /// step 3 and its error codes): `authorization_pending` waits, `slow_down` waits 5 s
    /// longer (or the `interval` it names), `expired_token` ends the sign-in.
    pub(super) async fn github_device_finish(
        &self,
        authorization: &DeviceAuthorization,
        http: &HttpClient,
        now: impl Fn() -> SystemTime,
    ) -> Result<TokenSet> {
        let details = authorization.details();
        // Absent, RFC 8628 §3.2's 5 s applies (the response type defaults it).
        let mut interval = details.interval();
        let deadline = now() + authorization.expires_in;
        let device_code = details.device_code().secret().clone();
        loop {
            tokio::time::sleep(interval).await;
            if now() > deadline {
                return Err(Error::DeviceCodeExpired);
            }
            let form = [
                ("device_code", device_code.as_str()),
                ("grant_type", DEVICE_GRANT),
            ];
            let answer = match self.github_token_call(http, &form, "device sign-in").await {
                Ok(answer) => answer,
                Err(Error::Unreachable { source, .. }) if source.is_transient() => {
                    // The user may be approving right now: a dropped connection or a busy
                    // server must not end the sign-in, only slow the polling down.
                    tracing::info!(error = %source, "device poll failed; polling less often");
                    interval = interval.max((interval * 2).min(MAX_BACKOFF));
                    continue;
                }
                Err(err) => return Err(err),
            };
            match answer.error.as_deref() {
                None => return self.github_signed_in(answer, http, now()).await,
                Some("authorization_pending") => {}
                Some("slow_down") => {
                    interval = answer
                        .interval
                        .map(Duration::from_secs)
                        .unwrap_or(interval + SLOW_DOWN_STEP);
                }
                Some("expired_token") => return Err(Error::DeviceCodeExpired),
                Some(_) => {
                    return Err(Error::OAuth {
                        during: "device sign-in",
                        source: answer_error(&answer),
                    });
                }
            }
        }
    }

    /// Trades a `ghr_` refresh token for new tokens: `grant_type=refresh_token`, and the
    /// client secret only when the profile has one (device-flow tokens refresh without).
    /// GitHub rotates the refresh token on every use and refuses the old one
    /// (`bad_refresh_token`). Who signed in does not change: the caller keeps it.
    pub(super) async fn github_refresh(
        &self,
        refresh_token: &RefreshToken,
        http: &HttpClient,
        now: SystemTime,
    ) -> Result<TokenSet> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
        ];
        let answer = self.github_token_call(http, &form, "refresh").await?;
        if answer.error.is_some() {
            return Err(Error::OAuth {
                during: "refresh",
                source: answer_error(&answer),
            });
        }
        let mut tokens = token_set(answer, now, http)?;
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token.clone());
        }
        Ok(tokens)
    }

    /// Exchanges the web flow's code (with the PKCE verifier and the client secret, which
    /// GitHub's code exchange still needs) for tokens, then asks who signed in.
    pub(super) async fn github_exchange(
        &self,
        form: &[(&str, &str)],
        http: &HttpClient,
        now: SystemTime,
    ) -> Result<TokenSet> {
        let answer = self.github_token_call(http, form, "code exchange").await?;
        if answer.error.is_some() {
            return Err(Error::OAuth {
                during: "code exchange",
                source: answer_error(&answer),
            });
        }
        self.github_signed_in(answer, http, now).await
    }

    /// A token endpoint call; `Accept: application/json` always, or GitHub answers
    /// form-encoded (`post_form` sends it).
    async fn github_token_call(
        &self,
        http: &HttpClient,
        form: &[(&str, &str)],
        during: &'static str,
    ) -> Result<TokenAnswer> {
        let url = format!("{}{TOKEN_PATH}", self.issuer);
        let response = self.post_form(http, &url, form, during).await?;
        if let Some(error) = oauth_error(response.body()) {
            return Ok(TokenAnswer {
                access_token: None,
                token_type: None,
                expires_in: None,
                refresh_token: None,
                refresh_token_expires_in: None,
                interval: interval_of(response.body()),
                error: Some(error.code),
                error_description: error.description,
            });
        }
        serde_json::from_slice(response.body()).map_err(|err| Error::BadResponse {
            during,
            reason: format!("HTTP {} without a token: {err}", response.status()),
        })
    }

    /// New tokens from a sign-in, with the user they belong to.
    async fn github_signed_in(
        &self,
        answer: TokenAnswer,
        http: &HttpClient,
        now: SystemTime,
    ) -> Result<TokenSet> {
        let mut tokens = token_set(answer, now, http)?;
        tokens.id_claims = Some(self.github_user(&tokens.access_token, http).await?);
        Ok(tokens)
    }

    /// `GET {api}/user`: the signed-in user as claims stagepass reads (`sub` = the numeric
    /// `id` as a string, the key that never changes; `login`, `name`, `email` for display).
    async fn github_user(
        &self,
        token: &AccessToken,
        http: &HttpClient,
    ) -> Result<serde_json::Value> {
        let url = format!("{}/user", self.github_api());
        let request = http::Request::get(&url)
            .header(http::header::ACCEPT, GITHUB_JSON)
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", token.expose()),
            );
        let response = http.send(request, Vec::new(), "user lookup").await?;
        if !response.status().is_success() {
            return Err(Error::BadResponse {
                during: "user lookup",
                reason: format!("GET {url} answered HTTP {}", response.status()),
            });
        }
        let user: User =
            serde_json::from_slice(response.body()).map_err(|err| Error::BadResponse {
                during: "user lookup",
                reason: format!("GET {url}: {err}"),
            })?;
        let mut claims = serde_json::json!({
            "sub": user.id.to_string(),
            "id": user.id,
            "login": user.login,
        });
        for (key, value) in [("name", user.name), ("email", user.email)] {
            if let Some(value) = value {
                claims[key] = value.into();
            }
        }
        Ok(claims)
    }

    /// `DELETE {api}/applications/{client_id}/token` with Basic `client_id:secret` and the
    /// access token in the JSON body. `Ok(false)` without a client secret: GitHub then
    /// lets only the user revoke, in their settings (see [`github_revoke_page`]).
    pub(super) async fn github_revoke(
        &self,
        token: &AccessToken,
        http: &HttpClient,
    ) -> Result<bool> {
        let Some(secret) = self.client_secret() else {
            return Ok(false);
        };
        let url = format!(
            "{}/applications/{}/token",
            self.github_api(),
            self.client_id
        );
        let body = serde_json::json!({ "access_token": token.expose() }).to_string();
        let request = http::Request::delete(&url)
            .header(http::header::ACCEPT, GITHUB_JSON)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::AUTHORIZATION,
                super::provider::basic_credentials(&self.client_id, secret),
            );
        let response = http.send(request, body.into_bytes(), "revocation").await?;
        match response.status().as_u16() {
            204 | 200 => Ok(true),
            status => Err(Error::BadResponse {
                during: "revocation",
                reason: format!("DELETE {url} answered HTTP {status}"),
            }),
        }
    }
}

/// Where a user revokes an app's access when stagepass cannot (no client secret).
/// <https://docs.github.com/en/apps/using-github-apps/reviewing-and-revoking-authorization-of-github-apps>
pub fn github_revoke_page(url: &str, client_id: &str) -> String {
    format!("{url}/settings/connections/applications/{client_id}")
}

fn oauth_error(body: &[u8]) -> Option<OAuthError> {
    #[derive(Deserialize)]
    struct ErrorAnswer {
        error: String,
        error_description: Option<String>,
    }
    let answer: ErrorAnswer = serde_json::from_slice(body).ok()?;
    Some(OAuthError {
        code: answer.error,
        description: answer.error_description,
    })
}

fn interval_of(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()?
        .get("interval")?
        .as_u64()
}

fn answer_error(answer: &TokenAnswer) -> OAuthError {
    OAuthError {
        code: answer.error.clone().unwrap_or_default(),
        description: answer.error_description.clone(),
    }
}

/// No `expires_in`: an OAuth App token (or a GitHub App with expiring tokens off) that lasts
/// until revoked; served without an expiry.
fn token_set(answer: TokenAnswer, now: SystemTime, http: &HttpClient) -> Result<TokenSet> {
    let Some(access_token) = answer.access_token else {
        return Err(Error::BadResponse {
            during: "token request",
            reason: "no access_token in GitHub's answer".into(),
        });
    };
    let token_type = match answer.token_type.as_deref() {
        None => "Bearer".to_string(),
        Some(name) if name.eq_ignore_ascii_case("bearer") => "Bearer".to_string(),
        Some(name) => name.to_string(),
    };
    Ok(TokenSet {
        expires_at: TokenSet::expiry(
            &access_token,
            answer.expires_in.map(Duration::from_secs),
            now,
            http.clock_skew(),
        ),
        access_token: AccessToken::new(access_token),
        token_type,
        refresh_token: answer.refresh_token.map(RefreshToken::new),
        refresh_lifetime: answer
            .refresh_token_expires_in
            .map(|secs| RefreshLifetime::stated(now, secs)),
        id_token: None,
        id_claims: None,
        received_at: now,
    })
}
