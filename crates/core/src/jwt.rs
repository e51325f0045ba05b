//! Reading JWT payloads without verifying them, for display and expiry only. Verified
//! id_token claims come from `openidconnect`; nothing here is trusted for access decisions.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The payload of a compact JWS, or `None` when `token` is not one (opaque tokens).
pub fn unverified_claims(token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.is_object().then_some(claims)
}

/// The `exp` claim in Unix seconds.
pub fn expiry(claims: &serde_json::Value) -> Option<u64> {
    claims.get("exp")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn reads_claims_and_expiry() {
        let claims = unverified_claims(&jwt(r#"{"sub":"alice","exp":1700000000}"#)).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(expiry(&claims), Some(1_700_000_000));
    }

    #[test]
    fn opaque_and_malformed_tokens_are_none() {
        assert!(unverified_claims("opaque-token").is_none());
        assert!(unverified_claims("a.b.c.d").is_none());
        assert!(unverified_claims(&jwt("[1,2]")).is_none());
        assert!(unverified_claims("e30.!!!.sig").is_none());
    }
}
