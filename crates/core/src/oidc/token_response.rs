use std::time::SystemTime;

use openidconnect::{Nonce, OAuth2TokenResponse, TokenResponse as _};

use super::Provider;
use super::provider::TokenResponse;
use crate::jwt;
use crate::profile::ProfileKindTag;
use crate::tokens::{ClockSkew, RefreshLifetime, TokenSet};
use crate::{AccessToken, Error, IdToken, RefreshToken, Result};

impl Provider {
    /// Turns a token response into a [`TokenSet`], verifying the id_token when there is one:
    /// signature against the IdP's JWKS, `iss`, `aud`, `exp`, and the `nonce` of the
    /// authorization request when `nonce` is given (refresh and device responses have none).
    ///
    /// Backstage differs: its `id_token` is the access token again (aud `backstage`, no
    /// nonce), not an OIDC id_token, so it is not kept as one; and its `expires_in` is always
    /// 3600 whatever `auth.backstageTokenExpiration` says, so the expiry is the JWT's `exp`.
    pub(super) fn token_set(
        &self,
        response: &TokenResponse,
        nonce: Option<&Nonce>,
        now: SystemTime,
        skew: ClockSkew,
    ) -> Result<TokenSet> {
        let access_token = response.access_token().secret().clone();
        let id_token = response
            .id_token()
            .filter(|_| self.kind == ProfileKindTag::Oidc);
        let (id_token, id_claims) = match id_token {
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
                (Some(IdToken::new(raw)), Some(claims))
            }
        };
        let expires_in = match self.kind {
            ProfileKindTag::Backstage if jwt::unverified_claims(&access_token).is_some() => None,
            _ => response.expires_in(),
        };
        let refresh_token = response
            .refresh_token()
            .map(|token| RefreshToken::new(token.secret().clone()));
        // Only a lifetime the IdP states: an opaque refresh token says nothing itself.
        let refresh_lifetime = response
            .extra_fields()
            .extra_fields()
            .refresh_token_expires_in
            .map(|secs| RefreshLifetime::stated(now, secs));
        Ok(TokenSet {
            expires_at: TokenSet::expiry(&access_token, expires_in, now, skew),
            access_token: AccessToken::new(access_token),
            token_type: token_type_name(response),
            refresh_token,
            refresh_lifetime,
            id_token,
            id_claims,
            received_at: now,
        })
    }
}

fn token_type_name(response: &TokenResponse) -> String {
    // RFC 6749 token types are case-insensitive; print the conventional spelling.
    let name = response.token_type().as_ref();
    if name.eq_ignore_ascii_case("bearer") {
        "Bearer".into()
    } else {
        name.to_string()
    }
}
