//! Requests that ask the IdP what it thinks of this client without signing anyone in, for
//! `stagepass doctor`.

use url::Url;

use super::Provider;
use crate::http::HttpClient;
use crate::{OAuthError, Result};

/// A code no IdP ever issued: the token endpoint must refuse it, and how it refuses tells
/// whether it accepts the client.
const MADE_UP_CODE: &str = "stagepass-doctor-probe-not-a-real-code";
/// A well-formed PKCE verifier (RFC 7636 §4.1: 43 to 128 characters) that matches nothing.
const MADE_UP_VERIFIER: &str = "stagepass-doctor-probe-verifier-0000000000000000";

/// The token endpoint's answer to a code exchange with a made-up code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenEndpointProbe {
    /// Refused with an OAuth error; `invalid_grant` means the client itself was accepted.
    Refused(OAuthError),
    /// Any other answer (no OAuth error), with its HTTP status and, for an error status, the
    /// start of the body. A success body is never kept: it could hold tokens.
    Unexpected { status: u16, body_start: String },
}

impl Provider {
    /// Exchanges a made-up authorization code as this client (PKCE, and its secret if it is
    /// a confidential one). An IdP that accepts the client answers `invalid_grant` (the code
    /// is unknown); `invalid_client` means it does not know the client or wants a secret, and
    /// `unauthorized_client` that the client may not use the authorization code grant.
    pub async fn probe_token_endpoint(
        &self,
        redirect_uri: &Url,
        http: &HttpClient,
    ) -> Result<TokenEndpointProbe> {
        let endpoint = self.token_endpoint();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", MADE_UP_CODE),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", MADE_UP_VERIFIER),
        ];
        let response = self
            .post_form(http, &endpoint, &form, "token endpoint probe")
            .await?;
        let error: Option<oauth2::basic::BasicErrorResponse> =
            serde_json::from_slice(response.body()).ok();
        Ok(match error {
            Some(error) if !response.status().is_success() => {
                TokenEndpointProbe::Refused(error.into())
            }
            _ if response.status().is_success() => TokenEndpointProbe::Unexpected {
                status: response.status().as_u16(),
                body_start: String::new(),
            },
            _ => TokenEndpointProbe::Unexpected {
                status: response.status().as_u16(),
                body_start: String::from_utf8_lossy(response.body())
                    .chars()
                    .take(120)
                    .collect(),
            },
        })
    }
}
