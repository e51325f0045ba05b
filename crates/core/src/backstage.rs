//! Who the signed-in user is in Backstage: the identity its auth plugin holds for them and
//! their User entity in the catalog. The agent calls this with the token it holds, so the
//! token does not leave it.
//!
//! - UserInfo: `GET {url}/api/auth/v1/userinfo` answers `{"claims": {"sub", "ent"}}`, the
//!   user entity ref and the ownership entity refs the sign-in resolver gave the user
//!   (<https://backstage.io/docs/auth/identity-resolver>).
//! - Catalog: `GET {url}/api/catalog/entities/by-name/{kind}/{namespace}/{name}`
//!   (<https://backstage.io/docs/features/software-catalog/software-catalog-api>).
//!
//! And, for a Backstage behind an identity-aware proxy, its user token: see
//! [`token_through_proxy`].

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::http::HttpClient;
use crate::tokens::TokenSet;
use crate::{AccessToken, Error, Result};

/// What Backstage knows about the signed-in user.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `user:default/alice`.
    pub user_entity_ref: String,
    /// The user and the groups whose ownership the user shares, e.g. `group:default/team-a`.
    pub ownership_entity_refs: Vec<String>,
    /// The catalog's User entity, `None` when the catalog has none under that ref.
    pub entity: Option<serde_json::Value>,
}

impl Identity {
    /// `spec.profile.displayName` of the User entity.
    pub fn display_name(&self) -> Option<&str> {
        self.entity
            .as_ref()?
            .pointer("/spec/profile/displayName")?
            .as_str()
    }

    pub fn email(&self) -> Option<&str> {
        self.entity
            .as_ref()?
            .pointer("/spec/profile/email")?
            .as_str()
    }
}

#[derive(Deserialize)]
struct UserInfo {
    claims: UserInfoClaims,
}

#[derive(Deserialize)]
struct UserInfoClaims {
    sub: String,
    #[serde(default)]
    ent: Vec<String>,
}

/// Asks the Backstage backend at `base_url` who `token` belongs to. `userinfo_endpoint` is
/// the one its discovery document names.
pub async fn whoami(
    base_url: &str,
    userinfo_endpoint: &str,
    token: &AccessToken,
    http: &HttpClient,
) -> Result<Identity> {
    let (status, body) = get(http, userinfo_endpoint, token).await?;
    if status != 200 {
        return Err(refused("userinfo", userinfo_endpoint, status, &body));
    }
    let info: UserInfo = serde_json::from_slice(&body).map_err(|err| Error::BadResponse {
        during: "userinfo",
        reason: format!(
            "{userinfo_endpoint} did not answer {{\"claims\": {{\"sub\", \"ent\"}}}}: {err}"
        ),
    })?;
    let entity_url = entity_url(base_url, &info.claims.sub).ok_or_else(|| Error::BadResponse {
        during: "userinfo",
        reason: format!("`{}` is not an entity ref", info.claims.sub),
    })?;
    let (status, body) = get(http, &entity_url, token).await?;
    let entity = match status {
        200 => Some(
            serde_json::from_slice(&body).map_err(|err| Error::BadResponse {
                during: "catalog lookup",
                reason: format!("{entity_url}: {err}"),
            })?,
        ),
        // Signed in, but the user has no entity (a resolver that does not require one, or
        // the user left the catalog since).
        404 => None,
        _ => return Err(refused("catalog lookup", &entity_url, status, &body)),
    };
    Ok(Identity {
        user_entity_ref: info.claims.sub,
        ownership_entity_refs: info.claims.ent,
        entity,
    })
}

/// The Backstage user token of whoever holds `idp_token`, for a Backstage behind an
/// identity-aware proxy: the proxy accepts the IdP's JWT as a bearer (oauth2-proxy's
/// `skip_jwt_bearer_tokens`) and forwards the identity to Backstage's proxy sign-in provider,
/// whose `GET {url}/api/auth/{provider}/refresh` answers
/// `{"backstageIdentity": {"token", "expiresInSeconds"}}`
/// (<https://backstage.io/docs/auth/oauth2-proxy/provider>). The expiry is the JWT's `exp`
/// when it comes first. There is no refresh token: the IdP profile holds that one.
pub async fn token_through_proxy(
    base_url: &str,
    provider: &str,
    idp_token: &AccessToken,
    http: &HttpClient,
    received_at: SystemTime,
) -> Result<TokenSet> {
    #[derive(Deserialize)]
    struct Refreshed {
        #[serde(rename = "backstageIdentity")]
        identity: ProxiedIdentity,
    }
    #[derive(Deserialize)]
    struct ProxiedIdentity {
        token: String,
        #[serde(rename = "expiresInSeconds")]
        expires_in: Option<u64>,
    }
    let url = format!(
        "{}/api/auth/{provider}/refresh",
        base_url.trim_end_matches('/')
    );
    let (status, body) = get(http, &url, idp_token).await?;
    if status != 200 {
        return Err(refused(
            "Backstage sign-in through the proxy",
            &url,
            status,
            &body,
        ));
    }
    let refreshed: Refreshed = serde_json::from_slice(&body).map_err(|err| Error::BadResponse {
        during: "Backstage sign-in through the proxy",
        reason: format!("{url} did not answer {{\"backstageIdentity\": {{\"token\"}}}}: {err}"),
    })?;
    let ProxiedIdentity { token, expires_in } = refreshed.identity;
    Ok(TokenSet {
        expires_at: TokenSet::expiry(
            &token,
            expires_in.map(Duration::from_secs),
            received_at,
            http.clock_skew(),
        ),
        access_token: AccessToken::new(token),
        token_type: "Bearer".into(),
        refresh_token: None,
        refresh_lifetime: None,
        id_token: None,
        id_claims: None,
        received_at,
    })
}

/// `kind:namespace/name` (namespace optional) to the catalog's by-name URL.
fn entity_url(base_url: &str, entity_ref: &str) -> Option<String> {
    let (kind, rest) = entity_ref.split_once(':')?;
    let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
    if [kind, namespace, name].iter().any(|part| part.is_empty()) {
        return None;
    }
    let mut url = url::Url::parse(base_url).ok()?;
    url.path_segments_mut().ok()?.pop_if_empty().extend([
        "api", "catalog", "entities", "by-name", kind, namespace, name,
    ]);
    Some(url.to_string())
}

async fn get(http: &HttpClient, url: &str, token: &AccessToken) -> Result<(u16, Vec<u8>)> {
    let request = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        // Backstage's auth refresh endpoints insist on it (a CSRF guard for browsers).
        .header("x-requested-with", "XMLHttpRequest")
        .header(
            http::header::AUTHORIZATION,
            format!("Bearer {}", token.expose()),
        );
    let response = http.send(request, Vec::new(), "Backstage request").await?;
    Ok((response.status().as_u16(), response.into_body()))
}

fn refused(during: &'static str, url: &str, status: u16, body: &[u8]) -> Error {
    // Backstage errors are `{"error": {"name", "message"}}`.
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.pointer("/error/message")?.as_str().map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(200).collect());
    Error::BadResponse {
        during,
        reason: format!("{url} answered HTTP {status}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_refs_become_catalog_urls() {
        assert_eq!(
            entity_url("https://backstage.example.com", "user:default/alice").as_deref(),
            Some("https://backstage.example.com/api/catalog/entities/by-name/user/default/alice")
        );
        assert_eq!(
            entity_url("http://127.0.0.1:7007/", "user:jo.smith").as_deref(),
            Some("http://127.0.0.1:7007/api/catalog/entities/by-name/user/default/jo.smith")
        );
        // Path segments are escaped, so a hostile ref cannot reach another endpoint.
        assert_eq!(
            entity_url("https://b.example", "user:default/../../x").as_deref(),
            Some("https://b.example/api/catalog/entities/by-name/user/default/..%2F..%2Fx")
        );
        assert_eq!(entity_url("https://b.example", "alice"), None);
        assert_eq!(entity_url("https://b.example", "user:"), None);
    }
}
