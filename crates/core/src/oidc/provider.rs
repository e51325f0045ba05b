use std::time::SystemTime;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClaimName, CoreClaimType, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreSubjectIdentifierType, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, DeviceAuthorizationUrl, DiscoveryError,
    EmptyAdditionalClaims, EndpointMaybeSet, EndpointNotSet, EndpointSet, ExtraTokenFields,
    IdTokenFields, IssuerUrl, ProviderMetadata, RevocationUrl, StandardErrorResponse,
    StandardTokenResponse,
};
use serde::{Deserialize, Serialize};

use super::errors::request_error;
use crate::http::{HttpClient, HttpError};
use crate::profile::{OfflineAccess, Profile, ProfileKindTag};
use crate::tokens::TokenSet;
use crate::url_policy::is_secure_or_loopback;
use crate::{AccessToken, ClientSecret, Error, IdToken, RefreshToken, Result};

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

/// Token response fields beyond RFC 6749 §5.1 that stagepass reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct ExtraTokens {
    /// Seconds the refresh token has left, where the IdP says: Google sends it for refresh
    /// tokens of limited life (<https://developers.google.com/identity/protocols/oauth2/native-app#exchange-authorization-code>),
    /// GitHub Apps for their 6-month refresh tokens. Recorded with the login so `doctor` can
    /// warn before the token dies.
    pub refresh_token_expires_in: Option<u64>,
}

impl ExtraTokenFields for ExtraTokens {}

/// A token response as `openidconnect`'s core one, plus [`ExtraTokens`].
pub(super) type TokenResponse = StandardTokenResponse<
    IdTokenFields<
        EmptyAdditionalClaims,
        ExtraTokens,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

pub(super) type OidcClient = openidconnect::Client<
    EmptyAdditionalClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
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

/// How a confidential client's secret goes to the IdP (RFC 6749 §2.3.1, OpenID Connect Core
/// §9): chosen from the discovery document's `token_endpoint_auth_methods_supported`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretMethod {
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

impl SecretMethod {
    pub fn name(self) -> &'static str {
        match self {
            SecretMethod::Basic => "client_secret_basic",
            SecretMethod::Post => "client_secret_post",
        }
    }

    /// Basic first: it is the default when the IdP names no methods (OpenID Connect Discovery
    /// 1.0 §3) and keeps the secret out of request bodies that proxies may log.
    fn choose(supported: Option<&Vec<CoreClientAuthMethod>>) -> Option<SecretMethod> {
        let Some(supported) = supported else {
            return Some(SecretMethod::Basic);
        };
        if supported.contains(&CoreClientAuthMethod::ClientSecretBasic) {
            Some(SecretMethod::Basic)
        } else if supported.contains(&CoreClientAuthMethod::ClientSecretPost) {
            Some(SecretMethod::Post)
        } else {
            None
        }
    }
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
    /// How the sign-in asks for a refresh token.
    pub(super) offline: OfflineAccess,
    /// Set for a confidential client, by [`Provider::with_client_secret`].
    client_secret: Option<(ClientSecret, SecretMethod)>,
}

impl Provider {
    /// Fetches `{issuer}/.well-known/openid-configuration` and the JWKS (OpenID Connect
    /// Discovery 1.0 §4). The document's `issuer` must equal the configured one exactly.
    /// A GitHub profile has fixed endpoints: nothing is fetched.
    pub async fn discover(profile: &Profile, http: &HttpClient) -> Result<Provider> {
        if let Some(url) = profile.github_url() {
            return Self::github(profile, url);
        }
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
        let client = OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(profile.client_id().to_string()),
            None,
        );
        Ok(Self::assemble(metadata, client, profile))
    }

    pub(super) fn assemble(metadata: Metadata, client: OidcClient, profile: &Profile) -> Provider {
        Provider {
            issuer: metadata.issuer().as_str().to_string(),
            client_id: profile.client_id().to_string(),
            resource: profile.audience().map(String::from),
            scopes: profile
                .scopes()
                .iter()
                .filter(|scope| *scope != "openid")
                .cloned()
                .collect(),
            kind: profile.tag(),
            offline: profile.offline_access(),
            metadata,
            client,
            client_secret: None,
        }
    }

    /// This provider as a confidential client: every token, device and revocation request
    /// then carries `secret` the way the IdP's discovery document allows.
    pub fn with_client_secret(mut self, secret: ClientSecret) -> Result<Provider> {
        let method = SecretMethod::choose(self.metadata.token_endpoint_auth_methods_supported())
            .ok_or_else(|| Error::Discovery {
                issuer: self.issuer.clone(),
                reason: "its token_endpoint_auth_methods_supported names neither \
                         client_secret_basic nor client_secret_post, the ways stagepass can send \
                         a client secret"
                    .into(),
            })?;
        self.client = self
            .client
            .set_client_secret(openidconnect::ClientSecret::new(
                secret.expose().to_string(),
            ))
            .set_auth_type(match method {
                SecretMethod::Basic => openidconnect::AuthType::BasicAuth,
                SecretMethod::Post => openidconnect::AuthType::RequestBody,
            });
        self.client_secret = Some((secret, method));
        Ok(self)
    }

    /// The confidential client's secret, for the agent's refresh worker.
    pub fn client_secret(&self) -> Option<&ClientSecret> {
        self.client_secret.as_ref().map(|(secret, _)| secret)
    }

    /// How the client secret is sent; `None` for a public client.
    pub fn secret_method(&self) -> Option<SecretMethod> {
        self.client_secret.as_ref().map(|(_, method)| *method)
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
        if let Some(url) = profile.github_url() {
            return Self::github(profile, url);
        }
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
        refresh_token: &RefreshToken,
        previous_id_token: Option<(&IdToken, &serde_json::Value)>,
        http: &HttpClient,
        now: SystemTime,
    ) -> Result<TokenSet> {
        if self.kind == ProfileKindTag::Github {
            return self.github_refresh(refresh_token, http, now).await;
        }
        let (tokens, _) = self
            .refresh_scoped(refresh_token, previous_id_token, None, http, now)
            .await?;
        Ok(tokens)
    }

    /// [`Provider::refresh`] asking for `scope` only (RFC 6749 §6: a subset of the grant's),
    /// for a delegation's narrower token; with the `scope` the IdP answered. The refresh
    /// token it returns keeps the grant's whole scope (RFC 6749 §6) and is the developer's.
    pub async fn refresh_narrowed(
        &self,
        refresh_token: &RefreshToken,
        previous_id_token: Option<(&IdToken, &serde_json::Value)>,
        scope: &str,
        http: &HttpClient,
        now: SystemTime,
    ) -> Result<(TokenSet, Option<String>)> {
        self.refresh_scoped(refresh_token, previous_id_token, Some(scope), http, now)
            .await
    }

    async fn refresh_scoped(
        &self,
        refresh_token: &RefreshToken,
        previous_id_token: Option<(&IdToken, &serde_json::Value)>,
        scope: Option<&str>,
        http: &HttpClient,
        now: SystemTime,
    ) -> Result<(TokenSet, Option<String>)> {
        let refresh_token_value =
            openidconnect::RefreshToken::new(refresh_token.expose().to_string());
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
        if let Some(scope) = scope {
            request = request.add_extra_param("scope", scope.to_string());
        }
        let response = request
            .request_async(http)
            .await
            .map_err(|err| request_error("refresh", &self.token_endpoint(), err))?;
        let granted = openidconnect::OAuth2TokenResponse::scopes(&response).map(|scopes| {
            scopes
                .iter()
                .map(|scope| scope.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        });
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
        Ok((tokens, granted))
    }

    /// Revokes a refresh token (RFC 7009 §2.1), with the client secret when there is one.
    /// `Ok(false)` when the IdP has no revocation endpoint.
    ///
    /// Done by hand rather than through `oauth2`, which refuses plain-http endpoints even on
    /// loopback; [`HttpClient`] already enforces https everywhere else.
    pub async fn revoke(&self, refresh_token: &RefreshToken, http: &HttpClient) -> Result<bool> {
        if self.kind == ProfileKindTag::Github {
            // GitHub revokes access tokens only: see `revoke_access_token`.
            return Ok(false);
        }
        self.revoke_token(refresh_token.expose(), "refresh_token", http)
            .await
    }

    /// RFC 7009 §2.1: `token` of the kind `hint` says. `Ok(false)` when the IdP has no
    /// revocation endpoint.
    pub(super) async fn revoke_token(
        &self,
        token: &str,
        hint: &str,
        http: &HttpClient,
    ) -> Result<bool> {
        let Some(endpoint) = &self.metadata.additional_metadata().revocation_endpoint else {
            return Ok(false);
        };
        let form = [("token", token), ("token_type_hint", hint)];
        let response = self
            .post_form(http, &endpoint.to_string(), &form, "revocation")
            .await?;
        if response.status().is_success() {
            return Ok(true);
        }
        Err(refusal(&response, "revocation"))
    }
}

/// The IdP's OAuth error (RFC 6749 §5.2) in a non-2xx answer, or what else it was.
pub(super) fn refusal(response: &oauth2::HttpResponse, during: &'static str) -> Error {
    let error: Option<oauth2::basic::BasicErrorResponse> =
        serde_json::from_slice(response.body()).ok();
    match error {
        Some(error) => Error::OAuth {
            during,
            source: error.into(),
        },
        None => Error::BadResponse {
            during,
            reason: format!("HTTP {} without an OAuth error", response.status()),
        },
    }
}

impl Provider {
    /// Revokes an access token where the provider revokes access tokens rather than refresh
    /// tokens (GitHub, with the client secret). `Ok(false)` when it cannot.
    pub async fn revoke_access_token(
        &self,
        token: &AccessToken,
        http: &HttpClient,
    ) -> Result<bool> {
        match self.kind {
            ProfileKindTag::Github => self.github_revoke(token, http).await,
            _ => Ok(false),
        }
    }

    /// POSTs `form` to an IdP endpoint as this client: `client_id` in the body for a public
    /// client, plus the secret as [`SecretMethod`] says for a confidential one (RFC 6749
    /// §2.3.1). No redirects are followed.
    pub(super) async fn post_form(
        &self,
        http: &HttpClient,
        endpoint: &str,
        form: &[(&str, &str)],
        during: &'static str,
    ) -> Result<oauth2::HttpResponse> {
        let (body, authorization) = self.client_form(form);
        let mut request = http::Request::post(endpoint)
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json");
        if let Some(authorization) = authorization {
            request = request.header(http::header::AUTHORIZATION, authorization);
        }
        http.send(request, body.into_bytes(), during).await
    }
}

impl Provider {
    /// The form body, and the Authorization header value for `client_secret_basic`.
    pub(super) fn client_form(&self, form: &[(&str, &str)]) -> (String, Option<String>) {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        body.extend_pairs(form);
        let mut authorization = None;
        match &self.client_secret {
            Some((secret, SecretMethod::Basic)) => {
                authorization = Some(basic_credentials(&self.client_id, secret));
            }
            Some((secret, SecretMethod::Post)) => {
                body.append_pair("client_id", &self.client_id);
                body.append_pair("client_secret", secret.expose());
            }
            None => {
                body.append_pair("client_id", &self.client_id);
            }
        }
        (body.finish(), authorization)
    }
}

/// RFC 6749 §2.3.1: both parts form-encoded before they are joined and base64-encoded.
pub(super) fn basic_credentials(client_id: &str, secret: &ClientSecret) -> String {
    use base64::Engine;
    let encode =
        |value: &str| url::form_urlencoded::byte_serialize(value.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(client_id), encode(secret.expose()));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
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
