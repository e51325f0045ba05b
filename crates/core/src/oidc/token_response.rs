use std::time::SystemTime;

use openidconnect::core::CoreTokenResponse;
use openidconnect::{Nonce, OAuth2TokenResponse, TokenResponse};

use super::Provider;
use crate::jwt;
use crate::tokens::{ClockSkew, TokenSet};
use crate::{Error, Result, Secret};

impl Provider {
    /// Turns a token response into a [`TokenSet`], verifying the id_token when there is one:
    /// signature against the IdP's JWKS, `iss`, `aud`, `exp`, and the `nonce` of the
    /// authorization request when `nonce` is given (refresh and device responses have none).
    pub(super) fn token_set(
        &self,
        response: &CoreTokenResponse,
        nonce: Option<&Nonce>,
        now: SystemTime,
        skew: ClockSkew,
    ) -> Result<TokenSet> {
        let (id_token, id_claims) = match response.id_token() {
            None => (None, None),
            Some(id_token) => {
                let verifier = self.client.id_token_verifier();
                let verified = match nonce {
                    Some(nonce) => id_token.claims(&verifier, nonce).map(|_| ()),
                    None => id_token
                        .claims(&verifier, |_: Option<&Nonce>| Ok(()))
                        .map(|_| ()),
                };
                verified.map_err(|err| Error::IdToken(err.to_string()))?;
                let raw = id_token.to_string();
                // The standard-claims struct drops custom claims such as `groups`; the
                // payload just passed verification, so read it whole.
                let claims = jwt::unverified_claims(&raw)
                    .ok_or_else(|| Error::IdToken("the payload is not a JSON object".into()))?;
                (Some(Secret::new(raw)), Some(claims))
            }
        };
        let access_token = response.access_token().secret().clone();
        Ok(TokenSet {
            expires_at: TokenSet::expiry(&access_token, response.expires_in(), now, skew),
            access_token: Secret::new(access_token),
            token_type: token_type_name(response),
            refresh_token: response
                .refresh_token()
                .map(|token| Secret::new(token.secret().clone())),
            id_token,
            id_claims,
            received_at: now,
        })
    }
}

fn token_type_name(response: &CoreTokenResponse) -> String {
    // RFC 6749 token types are case-insensitive; print the conventional spelling.
    let name = response.token_type().as_ref();
    if name.eq_ignore_ascii_case("bearer") {
        "Bearer".into()
    } else {
        name.to_string()
    }
}
