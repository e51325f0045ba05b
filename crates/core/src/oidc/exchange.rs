//! Down-scoped access tokens for delegations: OAuth 2.0 Token Exchange (RFC 8693) where the
//! IdP offers it to this client, else a refresh that asks for fewer scopes (RFC 6749 §6,
//! [`Provider::refresh_narrowed`]).
//!
//! Keycloak's standard token exchange (V2,
//! <https://www.keycloak.org/securing-apps/token-exchange>) lets a *confidential* client
//! with `standard.token.exchange.enabled` trade a user's access token issued to it for one
//! with a narrower `audience` (a client ID) and `scope`; it returns no refresh token.

use std::time::{Duration, SystemTime};

use openidconnect::core::CoreGrantType;
use serde::Deserialize;

use super::Provider;
use super::provider::refusal;
use crate::http::HttpClient;
use crate::profile::ProfileKindTag;
use crate::tokens::TokenSet;
use crate::{AccessToken, Error, Result};

/// RFC 8693 §2.1.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A token minted for someone else than the developer: held in memory only, never stored.
#[derive(Debug, Clone)]
pub struct Minted {
    pub access_token: AccessToken,
    pub token_type: String,
    /// As the IdP states it (`expires_in`, the JWT's `exp`), before any cap.
    pub expires_at: Option<SystemTime>,
    /// The scopes granted: the response's `scope` (RFC 6749 §5.1), else the JWT's claim.
    pub scopes: Option<Vec<String>>,
}

impl Minted {
    pub fn from_tokens(tokens: &TokenSet, response_scope: Option<&str>) -> Minted {
        Minted {
            access_token: tokens.access_token.clone(),
            token_type: tokens.token_type.clone(),
            expires_at: tokens.expires_at,
            scopes: granted_scopes(response_scope, tokens.access_token.expose()),
        }
    }

    /// Whether the IdP granted no scope beyond `asked` (RFC 6749 §3.3: it must say when it
    /// granted other scopes than asked). An answer that says nothing is not proof.
    pub fn within(&self, asked: &[String]) -> bool {
        self.scopes
            .as_ref()
            .is_some_and(|granted| granted.iter().all(|scope| asked.contains(scope)))
    }
}

/// The granted scopes: the response's `scope`, else the JWT access token's `scope` claim.
pub fn granted_scopes(response_scope: Option<&str>, access_token: &str) -> Option<Vec<String>> {
    let claims = crate::jwt::unverified_claims(access_token);
    let text = response_scope.map(str::to_string).or_else(|| {
        claims
            .as_ref()?
            .get("scope")
            .and_then(|value| value.as_str())
            .map(str::to_string)
    })?;
    Some(text.split_whitespace().map(str::to_string).collect())
}

/// RFC 8693 §2.2.1, as far as stagepass reads it.
#[derive(Deserialize)]
struct ExchangeResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    issued_token_type: Option<String>,
}

impl Provider {
    /// Whether this client can exchange tokens: an OpenID Connect profile with a client
    /// secret (Keycloak lets only confidential clients exchange) at an IdP whose discovery
    /// document lists the token-exchange grant.
    pub fn offers_token_exchange(&self) -> bool {
        let grant = CoreGrantType::Extension(TOKEN_EXCHANGE_GRANT.to_string());
        self.kind == ProfileKindTag::Oidc
            && self.client_secret().is_some()
            && self
                .metadata
                .grant_types_supported()
                .is_some_and(|grants| grants.contains(&grant))
    }

    /// Trades the developer's access token (`subject`) for one narrowed to `audience` and
    /// `scopes` (RFC 8693 §2.1). A refresh token in the answer is dropped: a delegated
    /// token is never renewed behind the developer's back.
    pub async fn exchange(
        &self,
        subject: &AccessToken,
        audience: Option<&str>,
        scopes: &[String],
        http: &HttpClient,
        now: SystemTime,
    ) -> Result<Minted> {
        const DURING: &str = "token exchange";
        let scope = scopes.join(" ");
        let mut form = vec![
            ("grant_type", TOKEN_EXCHANGE_GRANT),
            ("subject_token", subject.expose()),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
        ];
        if let Some(audience) = audience {
            form.push(("audience", audience));
        }
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        let response = self
            .post_form(http, &self.token_endpoint(), &form, DURING)
            .await?;
        if !response.status().is_success() {
            return Err(refusal(&response, DURING));
        }
        let answer: ExchangeResponse =
            serde_json::from_slice(response.body()).map_err(|err| Error::BadResponse {
                during: DURING,
                reason: err.to_string(),
            })?;
        if answer
            .issued_token_type
            .as_deref()
            .is_some_and(|kind| kind != ACCESS_TOKEN_TYPE)
        {
            return Err(Error::BadResponse {
                during: DURING,
                reason: "the IdP issued another kind of token than an access token".into(),
            });
        }
        let expires_in = answer.expires_in.map(Duration::from_secs);
        Ok(Minted {
            expires_at: TokenSet::expiry(&answer.access_token, expires_in, now, http.clock_skew()),
            scopes: granted_scopes(answer.scope.as_deref(), &answer.access_token),
            token_type: match answer.token_type {
                Some(kind) if !kind.eq_ignore_ascii_case("bearer") => kind,
                _ => "Bearer".into(),
            },
            access_token: AccessToken::new(answer.access_token),
        })
    }
}

impl Provider {
    /// Revokes a delegated access token (RFC 7009 §2.1, `token_type_hint=access_token`), with
    /// the client secret when there is one. `Ok(false)` when the IdP has no revocation
    /// endpoint, an error when it refuses; IdPs that revoke only refresh tokens may answer 200
    /// and do nothing.
    pub async fn revoke_delegated(&self, token: &AccessToken, http: &HttpClient) -> Result<bool> {
        self.revoke_token(token.expose(), "access_token", http)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granted_scopes_come_from_the_answer_else_the_jwt() {
        assert_eq!(
            granted_scopes(Some("openid email"), "opaque"),
            Some(vec!["openid".to_string(), "email".to_string()])
        );
        assert_eq!(granted_scopes(None, "opaque"), None);
        let minted = |scopes: Option<Vec<&str>>| Minted {
            access_token: AccessToken::new("x".into()),
            token_type: "Bearer".into(),
            expires_at: None,
            scopes: scopes.map(|list| list.into_iter().map(String::from).collect()),
        };
        let asked = vec!["email".to_string(), "openid".to_string()];
        assert!(minted(Some(vec!["email"])).within(&asked));
        assert!(!minted(Some(vec!["email", "profile"])).within(&asked));
        assert!(!minted(None).within(&asked), "silence is no proof");
    }
}
