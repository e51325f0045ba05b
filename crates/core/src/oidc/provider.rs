use std::time::SystemTime;

use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, DeviceAuthorizationUrl, DiscoveryError, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, ProviderMetadata, RefreshToken, RevocationUrl,
};
use serde::{Deserialize, Serialize};

use super::errors::request_error;
use crate::http::{HttpClient, HttpError};
use crate::profile::{Profile, ProfileKindTag};
use crate::tokens::TokenSet;
use crate::url_policy::is_secure_or_loopback;
use crate::{Error, Result, Secret};

/// Discovery fields `openidconnect` does not model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ExtraMetadata {
    /// RFC 8628 §4.
    pub device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
    /// RFC 7009 / RFC 8414.
    pub revocation_endpoint: Option<RevocationUrl>,
    /// RFC 9207: the IdP adds `iss` to authorization responses (mix-up defence).
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 8414; absent means the IdP does not say.
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

impl AdditionalProviderMetadata for ExtraMetadata {}

pub(super) type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

pub(super) type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What the IdP advertises, for `doctor`, the settings window and flow choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub pkce_s256: bool,
    pub device_flow: bool,
    pub revocation: bool,
    pub iss_parameter: bool,
}

/// A discovered IdP together with the client stagepass acts as.
#[derive(Debug, Clone)]
pub struct Provider {
    pub(super) metadata: Metadata,
    pub(super) client: OidcClient,
    pub(super) issuer: String,
    pub(super) client_id: String,
    pub(super) resource: Option<String>,
    pub(super) scopes: Vec<String>,
    /// Backstage's OAuth server speaks the same protocol, but its tokens differ: see
    /// [`Provider::token_set`].
    pub(super) kind: ProfileKindTag,
}

impl Provider {
    /// Fetches `{issuer}/.well-known/openid-configuration` and the JWKS (OpenID Connect
    /// Discovery 1.0 §4). The document's `issuer` must equal the configured one exactly.
    pub async fn discover(profile: &Profile, http: &HttpClient) -> Result<Provider> {
        Self::discover_at(&profile.issuer(), profile, http).await
    }

    /// [`Provider::discover`] from `issuer` rather than the profile's: `doctor` goes on with
    /// the issuer the IdP advertises when the configured one differs by a character.
    pub async fn discover_at(
        issuer: &str,
        profile: &Profile,
        http: &HttpClient,
    ) -> Result<Provider> {
        let issuer = issuer.to_string();
        let issuer_url = IssuerUrl::new(issuer.clone()).map_err(|err| Error::Discovery {
            issuer: issuer.clone(),
            reason: err.to_string(),
        })?;
        // `discover_async` fetches the document, then the JWKS: note the URLs, so a failure
        // is reported against the request that failed.
        let recording = Recording {
            http,
            requested: std::sync::Mutex::default(),
        };
        let result = Metadata::discover_async(issuer_url, &recording).await;
        let requested = recording.requested.into_inner().unwrap_or_default();
        let metadata = result.map_err(|err| discovery_error(&issuer, &requested, err))?;
        Self::from_metadata(metadata, profile)
    }

    pub(super) fn from_metadata(metadata: Metadata, profile: &Profile) -> Result<Provider> {
        let issuer = metadata.issuer().as_str().to_string();
        let bad = |reason: String| Error::Discovery {
            issuer: issuer.clone(),
            reason,
        };
        let token_endpoint = metadata
            .token_endpoint()
            .ok_or_else(|| bad("the discovery document has no token_endpoint".into()))?;
        for (name, url) in [
            (
                "authorization_endpoint",
                metadata.authorization_endpoint().url(),
            ),
            ("token_endpoint", token_endpoint.url()),
            ("jwks_uri", metadata.jwks_uri().url()),
        ] {
            if !is_secure_or_loopback(url) {
                return Err(bad(format!("{name} {url} must use https")));
            }
        }
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(profile.client_id().to_string()),
            None,
        );
        Ok(Provider {
            issuer,
            client_id: profile.client_id().to_string(),
            resource: profile.audience().map(String::from),
            scopes: profile
                .scopes()
                .iter()
                .filter(|scope| *scope != "openid")
                .cloned()
                .collect(),
            kind: profile.tag(),
            metadata,
            client,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The discovery document and keys, for another process that acts for the same profile
    /// (the agent's refresh worker) without discovering again.
    pub fn export(&self) -> serde_json::Value {
        serde_json::json!({ "metadata": self.metadata, "jwks": self.metadata.jwks() })
    }

    /// The inverse of [`Provider::export`].
    pub fn import(exported: serde_json::Value, profile: &Profile) -> Result<Provider> {
        #[derive(Deserialize)]
        struct Exported {
            metadata: Metadata,
            jwks: openidconnect::core::CoreJsonWebKeySet,
        }
        let exported: Exported =
            serde_json::from_value(exported).map_err(|err| Error::Discovery {
                issuer: profile.issuer().into_owned(),
                reason: format!("cannot read the exported discovery document: {err}"),
            })?;
        Self::from_metadata(exported.metadata.set_jwks(exported.jwks), profile)
    }

    /// The profile's scopes the sign-in requests besides `openid`.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn kind(&self) -> ProfileKindTag {
        self.kind
    }

    /// The OpenID Connect UserInfo endpoint, when the discovery document names one.
    pub fn userinfo_endpoint(&self) -> Option<String> {
        self.metadata.userinfo_endpoint().map(|url| url.to_string())
    }

    pub fn capabilities(&self) -> Capabilities {
        let extra = self.metadata.additional_metadata();
        Capabilities {
            pkce_s256: extra
                .code_challenge_methods_supported
                .as_ref()
                .is_none_or(|methods| methods.iter().any(|method| method == "S256")),
            device_flow: extra.device_authorization_endpoint.is_some(),
            revocation: extra.revocation_endpoint.is_some(),
            iss_parameter: extra.authorization_response_iss_parameter_supported,
        }
    }

    pub(super) fn token_endpoint(&self) -> String {
        self.metadata
            .token_endpoint()
            .map(|url| url.to_string())
            .unwrap_or_default()
    }

    /// Trades a refresh token for a new token set (RFC 6749 §6). When the IdP does not rotate
    /// the refresh token, the old one is carried over; likewise the id_token.
    pub async fn refresh(
        &self,
        refresh_token: &Secret<String>,
        previous_id_token: Option<(&Secret<String>, &serde_json::Value)>,
        http: &HttpClient,
        now: SystemTime,
    ) -> Result<TokenSet> {
        let refresh_token_value = RefreshToken::new(refresh_token.expose().clone());
        let mut request = self
            .client
            .exchange_refresh_token(&refresh_token_value)
            .map_err(|err| Error::BadResponse {
                during: "refresh",
                reason: err.to_string(),
            })?;
        if let Some(resource) = &self.resource {
            request = request.add_extra_param("resource", resource.clone());
        }
        let response = request
            .request_async(http)
            .await
            .map_err(|err| request_error("refresh", &self.token_endpoint(), err))?;
        let mut tokens = self.token_set(&response, None, now, http.clock_skew())?;
        if tokens.refresh_token.is_none() {
            tokens.refresh_token = Some(refresh_token.clone());
        }
        if tokens.id_token.is_none()
            && let Some((id_token, claims)) = previous_id_token
        {
            tokens.id_token = Some(id_token.clone());
            tokens.id_claims = Some(claims.clone());
        }
        Ok(tokens)
    }

    /// Revokes a refresh token (RFC 7009 §2.1) as a public client. `Ok(false)` when the IdP
    /// has no revocation endpoint.
    ///
    /// Done by hand rather than through `oauth2`, which refuses plain-http endpoints even on
    /// loopback; [`HttpClient`] already enforces https everywhere else.
    pub async fn revoke(&self, refresh_token: &Secret<String>, http: &HttpClient) -> Result<bool> {
        let Some(endpoint) = &self.metadata.additional_metadata().revocation_endpoint else {
            return Ok(false);
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", refresh_token.expose())
            .append_pair("token_type_hint", "refresh_token")
            .append_pair("client_id", &self.client_id)
            .finish();
        let response = post_form(http, &endpoint.to_string(), body, "revocation").await?;
        if response.status().is_success() {
            return Ok(true);
        }
        let error: Option<oauth2::basic::BasicErrorResponse> =
            serde_json::from_slice(response.body()).ok();
        Err(match error {
            Some(error) => Error::OAuth {
                during: "revocation",
                source: error.into(),
            },
            None => Error::BadResponse {
                during: "revocation",
                reason: format!("HTTP {} without an OAuth error", response.status()),
            },
        })
    }
}

/// POSTs a form to an IdP endpoint as a public client (no secret, no redirects followed).
pub(super) async fn post_form(
    http: &HttpClient,
    endpoint: &str,
    body: String,
    during: &'static str,
) -> Result<oauth2::HttpResponse> {
    let request = http::Request::post(endpoint)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(http::header::ACCEPT, "application/json")
        .body(body.into_bytes())
        .map_err(|err| Error::BadResponse {
            during,
            reason: err.to_string(),
        })?;
    http.execute(request)
        .await
        .map_err(|source| Error::Unreachable {
            url: endpoint.to_string(),
            source,
        })
}

/// An [`HttpClient`] that notes the URL of every request.
struct Recording<'h> {
    http: &'h HttpClient,
    requested: std::sync::Mutex<Vec<String>>,
}

impl<'c> oauth2::AsyncHttpClient<'c> for Recording<'_> {
    type Error = HttpError;
    type Future = <HttpClient as oauth2::AsyncHttpClient<'c>>::Future;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        if let Ok(mut requested) = self.requested.lock() {
            requested.push(request.uri().to_string());
        }
        oauth2::AsyncHttpClient::call(self.http, request)
    }
}

/// `requested`: the URLs fetched, the discovery document's first, then the JWKS's.
fn discovery_error(issuer: &str, requested: &[String], err: DiscoveryError<HttpError>) -> Error {
    let discovery = |reason: String| Error::Discovery {
        issuer: issuer.to_string(),
        reason,
    };
    if let [_, jwks_uri] = requested {
        return match err {
            DiscoveryError::Request(source) => Error::Unreachable {
                url: jwks_uri.clone(),
                source,
            },
            DiscoveryError::Response(_, _, message) => {
                discovery(format!("jwks_uri {jwks_uri}: {message}"))
            }
            DiscoveryError::Parse(err) => {
                discovery(format!("the JWKS at {jwks_uri} is not valid: {err}"))
            }
            other => discovery(format!("jwks_uri {jwks_uri}: {other}")),
        };
    }
    match err {
        DiscoveryError::Request(source) => Error::Unreachable {
            url: format!("{issuer}/.well-known/openid-configuration"),
            source,
        },
        DiscoveryError::Response(status, _, message) if status.as_u16() == 404 => {
            discovery(format!(
                "{message}: no OpenID discovery document there; check the profile's `issuer` \
             (Keycloak issuers end in /realms/NAME)"
            ))
        }
        DiscoveryError::Response(_, _, message) => discovery(message),
        DiscoveryError::Parse(err) => {
            discovery(format!("the discovery document is not valid: {err}"))
        }
        DiscoveryError::Validation(message) => discovery(format!(
            "{message}; the profile's `issuer` must match the IdP's exactly, trailing slash included"
        )),
        other => discovery(other.to_string()),
    }
}
