//! Device authorization grant (RFC 8628), for machines with no browser at hand.

use std::time::{Duration, SystemTime};

use openidconnect::core::CoreDeviceAuthorizationResponse;
use openidconnect::{DeviceAuthorizationUrl, PkceCodeChallenge, PkceCodeVerifier, Scope};

use super::Provider;
use super::errors::request_error;
use crate::http::HttpClient;
use crate::profile::ProfileKindTag;
use crate::tokens::TokenSet;
use crate::{Error, Result};

/// What the user needs to approve the sign-in on another device.
#[derive(Debug)]
pub struct DeviceAuthorization {
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
    pub expires_in: Duration,
    details: CoreDeviceAuthorizationResponse,
    /// PKCE on the device grant: Keycloak demands it of a client whose PKCE method is S256
    /// ("Missing parameter: code_challenge_method"); IdPs without it ignore the parameters.
    verifier: PkceCodeVerifier,
}

impl DeviceAuthorization {
    pub(super) fn new(
        details: CoreDeviceAuthorizationResponse,
        verifier: PkceCodeVerifier,
    ) -> DeviceAuthorization {
        DeviceAuthorization {
            verification_uri: details.verification_uri().to_string(),
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|uri| uri.secret().clone()),
            user_code: details.user_code().secret().clone(),
            expires_in: details.expires_in(),
            details,
            verifier,
        }
    }

    pub(super) fn details(&self) -> &CoreDeviceAuthorizationResponse {
        &self.details
    }
}

impl Provider {
    fn device_endpoint(&self) -> Result<DeviceAuthorizationUrl> {
        self.metadata
            .additional_metadata()
            .device_authorization_endpoint
            .clone()
            .ok_or_else(|| Error::Discovery {
                issuer: self.issuer.clone(),
                reason: "the IdP advertises no device_authorization_endpoint: use the browser \
                         flow (`stagepass login --browser`)"
                    .into(),
            })
    }

    /// Asks the IdP for a device and user code (RFC 8628 §3.1).
    pub async fn start_device_authorization(
        &self,
        http: &HttpClient,
    ) -> Result<DeviceAuthorization> {
        if self.kind == ProfileKindTag::Github {
            return self.github_device_start(http).await;
        }
        let endpoint = self.device_endpoint()?;
        let url = endpoint.to_string();
        let client = self.client.clone().set_device_authorization_url(endpoint);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .exchange_device_code()
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .add_scope(Scope::new("openid".into()))
            .add_extra_param("code_challenge", challenge.as_str().to_owned())
            .add_extra_param(
                "code_challenge_method",
                challenge.method().as_str().to_owned(),
            );
        if let Some(resource) = &self.resource {
            request = request.add_extra_param("resource", resource.clone());
        }
        let details: CoreDeviceAuthorizationResponse = request
            .request_async(http)
            .await
            .map_err(|err| request_error("device authorization", &url, err))?;
        Ok(DeviceAuthorization::new(details, verifier))
    }

    /// Polls the token endpoint until the user approves, denies, or the code expires
    /// (RFC 8628 §3.4–3.5: honours `interval`, `slow_down` and `authorization_pending`).
    pub async fn finish_device_authorization(
        &self,
        authorization: &DeviceAuthorization,
        http: &HttpClient,
        now: impl Fn() -> SystemTime,
    ) -> Result<TokenSet> {
        if self.kind == ProfileKindTag::Github {
            return self.github_device_finish(authorization, http, now).await;
        }
        let endpoint = self.device_endpoint()?;
        let client = self.client.clone().set_device_authorization_url(endpoint);
        let mut request = client
            .exchange_device_access_token(&authorization.details)
            .map_err(|err| Error::BadResponse {
                during: "device sign-in",
                reason: err.to_string(),
            })?
            .add_extra_param("code_verifier", authorization.verifier.secret().clone());
        if let Some(resource) = &self.resource {
            request = request.add_extra_param("resource", resource.clone());
        }
        let response = request
            .request_async(http, tokio_sleep, Some(authorization.expires_in))
            .await
            .map_err(
                |err| match request_error("device sign-in", &self.token_endpoint(), err) {
                    err if err.oauth_code() == Some("expired_token") => Error::DeviceCodeExpired,
                    err => err,
                },
            )?;
        let tokens = self.token_set(&response, None, now(), http.clock_skew())?;
        if tokens.id_token.is_none() {
            return Err(Error::BadResponse {
                during: "device sign-in",
                reason: "no id_token in the token response".into(),
            });
        }
        Ok(tokens)
    }
}

async fn tokio_sleep(duration: Duration) {
    tokio::time::sleep(duration).await
}
