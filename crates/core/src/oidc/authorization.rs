//! Authorization code flow with PKCE over a loopback redirect (RFC 8252 §7.3, RFC 7636).
//!
//! Pure parts only: building the request, checking the callback, exchanging the code. The
//! agent owns the loopback listener.

use std::time::SystemTime;

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};
use url::Url;

use super::Provider;
use super::errors::request_error;
use crate::profile::{OfflineAccess, ProfileKindTag};
use crate::tokens::TokenSet;
use crate::{Error, OAuthError, Result};

/// An authorization request in flight. Holds the PKCE verifier and the nonce, so it lives
/// only in the agent.
#[derive(Debug)]
pub struct PendingAuthorization {
    /// Where to send the browser.
    pub url: Url,
    state: CsrfToken,
    nonce: Nonce,
    verifier: PkceCodeVerifier,
    redirect_uri: RedirectUrl,
}

/// Why a request to the loopback listener did not yield a code.
#[derive(Debug)]
pub enum CallbackError {
    /// Not the callback of this request (wrong or missing `state`): ignore it and keep
    /// waiting, so a stray or hostile local request cannot cancel the sign-in.
    Foreign(String),
    /// The IdP's answer to this request, and it ends the sign-in.
    Final(Error),
}

impl Provider {
    /// Builds the authorization request for `redirect_uri` (the loopback listener's URL).
    /// `holds_refresh_token`: whether stagepass already has one for this profile, which
    /// decides whether an [`OfflineAccess::AccessType`] IdP is asked to consent again.
    pub fn authorization_request(
        &self,
        redirect_uri: &Url,
        holds_refresh_token: bool,
    ) -> Result<PendingAuthorization> {
        let redirect_uri = RedirectUrl::from_url(redirect_uri.clone());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        if self.kind == ProfileKindTag::Github {
            return Ok(self.github_authorization_request(redirect_uri, &challenge, verifier));
        }
        let client = self.client.clone().set_redirect_uri(redirect_uri.clone());
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge)
            .add_scopes(self.scopes.iter().cloned().map(Scope::new));
        if let Some(resource) = &self.resource {
            request = request.add_extra_param("resource", resource.clone());
        }
        if self.offline == OfflineAccess::AccessType {
            // Google: "offline" makes the code exchange return a refresh token, and only
            // the first time the user consents; `prompt=consent` asks again, so a sign-in
            // without a refresh token gets one. Once one is held, a sign-in leaves it be
            // (no consent screen; the exchange answers without a refresh token and the held
            // one is kept). <https://developers.google.com/identity/protocols/oauth2/native-app#step-2:-send-a-request-to-googles-oauth-2.0-server>
            request = request.add_extra_param("access_type", "offline");
            if !holds_refresh_token {
                request = request.add_prompt(openidconnect::core::CoreAuthPrompt::Consent);
            }
        }
        let (url, state, nonce) = request.url();
        Ok(PendingAuthorization {
            url,
            state,
            nonce,
            verifier,
            redirect_uri,
        })
    }

    /// Exchanges the code of a checked callback for tokens, then verifies the id_token.
    pub async fn exchange_code(
        &self,
        pending: PendingAuthorization,
        code: AuthorizationCode,
        http: &crate::http::HttpClient,
        now: SystemTime,
    ) -> Result<TokenSet> {
        if self.kind == ProfileKindTag::Github {
            // GitHub's web flow: the code, the redirect URI and the PKCE verifier, plus the
            // client secret (`post_form` adds it), which its code exchange requires.
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.secret().as_str()),
                ("redirect_uri", pending.redirect_uri.as_str()),
                ("code_verifier", pending.verifier.secret().as_str()),
            ];
            return self.github_exchange(&form, http, now).await;
        }
        let client = self
            .client
            .clone()
            .set_redirect_uri(pending.redirect_uri.clone());
        let mut request = client
            .exchange_code(code)
            .map_err(|err| Error::BadResponse {
                during: "code exchange",
                reason: err.to_string(),
            })?
            .set_pkce_verifier(pending.verifier);
        if let Some(resource) = &self.resource {
            request = request.add_extra_param("resource", resource.clone());
        }
        let response = request
            .request_async(http)
            .await
            .map_err(|err| request_error("code exchange", &self.token_endpoint(), err))?;
        let tokens = self.token_set(&response, Some(&pending.nonce), now, http.clock_skew())?;
        // Backstage's tokens say who signed in themselves (`sub` is the user entity ref).
        if tokens.id_token.is_none() && self.kind == ProfileKindTag::Oidc {
            return Err(Error::BadResponse {
                during: "code exchange",
                reason: "no id_token in the token response (is `openid` among the scopes the client may request?)".into(),
            });
        }
        Ok(tokens)
    }
}

impl Provider {
    /// GitHub's web flow authorization URL: no `openid` scope and no nonce (it is OAuth 2.0
    /// only), PKCE S256 (accepted since July 2025), a loopback redirect.
    /// <https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps#1-request-a-users-github-identity>
    fn github_authorization_request(
        &self,
        redirect_uri: RedirectUrl,
        challenge: &PkceCodeChallenge,
        verifier: PkceCodeVerifier,
    ) -> PendingAuthorization {
        let state = CsrfToken::new_random();
        let mut url = self.metadata.authorization_endpoint().url().clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("scope", &self.scopes.join(" "))
            .append_pair("state", state.secret())
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", challenge.method().as_str());
        PendingAuthorization {
            url,
            state,
            nonce: Nonce::new_random(),
            verifier,
            redirect_uri,
        }
    }
}

/// Error codes an IdP's error page may name (RFC 6749 §4.1.2.1 and common extensions).
const KNOWN_AUTHORIZATION_ERRORS: &[&str] = &[
    "invalid_client",
    "unauthorized_client",
    "invalid_redirect_uri",
    "redirect_uri_mismatch",
    "invalid_request",
    "invalid_scope",
    "invalid_target",
    "unsupported_response_type",
];

/// Error pages that name no OAuth error code, by their wording, with the code they mean.
/// Keycloak (its login theme's messages `clientNotFoundMessage` and `invalidParameterMessage`)
/// shows an HTML page with HTTP 400 for an unknown client and for a redirect URI it does not
/// accept, instead of redirecting (RFC 6749 §4.1.2.1 forbids redirecting to an unverified URI).
const AUTHORIZATION_ERROR_WORDINGS: &[(&str, &str)] = &[
    ("Client not found.", "invalid_client"),
    ("Invalid parameter: redirect_uri", "invalid_redirect_uri"),
];

/// The OAuth error an authorization endpoint's error page names or describes, if any.
fn authorization_error_on_page(body: &str) -> Option<String> {
    let named = KNOWN_AUTHORIZATION_ERRORS
        .iter()
        .copied()
        .find(|code| body.contains(code));
    let described = || {
        AUTHORIZATION_ERROR_WORDINGS
            .iter()
            .find(|(wording, _)| body.contains(wording))
            .map(|(_, code)| *code)
    };
    named.or_else(described).map(str::to_string)
}

impl Provider {
    /// Requests the authorization URL once without a browser, following no redirect, so a
    /// client or redirect URI the IdP refuses is reported at once instead of as an error
    /// page in a browser tab the agent never hears back from.
    pub async fn probe_authorization(
        &self,
        pending: &PendingAuthorization,
        http: &crate::http::HttpClient,
    ) -> Result<()> {
        let request = http::Request::get(pending.url.as_str())
            .body(Vec::new())
            .map_err(|err| Error::Callback(err.to_string()))?;
        let response = http
            .execute(request)
            .await
            .map_err(|source| Error::Unreachable {
                url: self.metadata.authorization_endpoint().to_string(),
                source,
            })?;
        let status = response.status();
        if status.is_redirection() {
            let location = crate::http::redirect_location(&response).unwrap_or_default();
            // An error sent straight back to our redirect URI is the IdP's final word.
            if let Some(query) = location
                .strip_prefix(pending.redirect_uri.as_str())
                .and_then(|rest| rest.strip_prefix('?'))
                && let Err(CallbackError::Final(err)) = pending.check_callback(query, self)
            {
                return Err(err);
            }
            return Ok(());
        }
        if status.is_client_error() {
            let code = authorization_error_on_page(&String::from_utf8_lossy(response.body()));
            return Err(Error::AuthorizationRefused {
                status: status.as_u16(),
                code,
            });
        }
        Ok(())
    }
}

impl PendingAuthorization {
    /// Checks the query string of a request to the redirect URI (RFC 6749 §4.1.2, RFC 9207).
    pub fn check_callback(
        &self,
        query: &str,
        provider: &Provider,
    ) -> Result<AuthorizationCode, CallbackError> {
        let param = |name: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        match param("state") {
            Some(state) if constant_time_eq(state.as_bytes(), self.state.secret().as_bytes()) => {}
            Some(_) => return Err(CallbackError::Foreign("the state does not match".into())),
            None => return Err(CallbackError::Foreign("no state parameter".into())),
        }
        // RFC 9207 §2.4: when the IdP says it sends `iss`, a response without it or with
        // another issuer may come from a mix-up attack and is refused.
        match param("iss") {
            Some(iss) if iss != provider.issuer() => {
                return Err(CallbackError::Final(Error::Callback(format!(
                    "the response names issuer `{iss}`, expected `{}` (possible mix-up attack)",
                    provider.issuer()
                ))));
            }
            None if provider.capabilities().iss_parameter => {
                return Err(CallbackError::Final(Error::Callback(
                    "the IdP advertises RFC 9207 but sent no `iss` parameter".into(),
                )));
            }
            _ => {}
        }
        if let Some(code) = param("error") {
            return Err(CallbackError::Final(Error::OAuth {
                during: "sign-in",
                source: OAuthError {
                    code,
                    description: param("error_description"),
                },
            }));
        }
        match param("code") {
            Some(code) if !code.is_empty() => Ok(AuthorizationCode::new(code)),
            _ => Err(CallbackError::Final(Error::Callback(
                "the response carries neither a code nor an error".into(),
            ))),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
