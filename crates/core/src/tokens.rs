//! What a sign-in or a refresh yields, and when it stops being usable.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::clock::{from_unix_secs, unix_secs};
use crate::jwt;
use crate::{AccessToken, IdToken, RefreshToken};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenSet {
    pub access_token: AccessToken,
    pub token_type: String,
    /// The earlier of `expires_in` and the access token's own `exp`: some servers answer a
    /// fixed `expires_in` that outlives the token.
    pub expires_at: Option<SystemTime>,
    pub refresh_token: Option<RefreshToken>,
    /// When the IdP said how long the refresh token lives (`refresh_token_expires_in`).
    #[serde(default)]
    pub refresh_lifetime: Option<RefreshLifetime>,
    pub id_token: Option<IdToken>,
    /// Claims of `id_token`, verified (signature, iss, aud, exp, nonce) when it was received.
    pub id_claims: Option<serde_json::Value>,
    pub received_at: SystemTime,
}

impl TokenSet {
    /// Works out the expiry from `expires_in` and the token's `exp` claim, in local time.
    ///
    /// `skew` is how far the local clock is ahead of the IdP's (from its `Date` header):
    /// `exp` is the IdP's time, so a local clock running fast would otherwise see the token
    /// expire early, and a slow one would serve it after it died.
    pub fn expiry(
        access_token: &str,
        expires_in: Option<Duration>,
        received_at: SystemTime,
        skew: ClockSkew,
    ) -> Option<SystemTime> {
        let from_expires_in = expires_in.map(|lifetime| received_at + lifetime);
        let from_jwt = jwt::unverified_claims(access_token)
            .as_ref()
            .and_then(jwt::expiry)
            .map(|exp| skew.to_local(from_unix_secs(exp)));
        match (from_expires_in, from_jwt) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the access token stays valid for at least `min_valid` from `now`. A token with
    /// no known expiry is treated as valid: the server will say otherwise with a 401.
    ///
    /// `min_valid` is capped at half the token's lifetime: when the IdP issues tokens shorter
    /// than a caller asks for, no refresh can satisfy it, and refreshing on every request
    /// would only hammer the IdP.
    pub fn access_valid_for(&self, now: SystemTime, min_valid: Duration) -> bool {
        match self.expires_at {
            Some(expires_at) => valid_for(self.received_at, expires_at, now, min_valid),
            None => true,
        }
    }

    /// The id_token, when it stays valid for at least `min_valid`.
    pub fn id_token_valid_for(&self, now: SystemTime, min_valid: Duration) -> Option<&IdToken> {
        let claims = self.id_claims.as_ref()?;
        let expires_at = from_unix_secs(jwt::expiry(claims)?);
        let issued_at = claims
            .get("iat")
            .and_then(serde_json::Value::as_u64)
            .map_or(self.received_at, from_unix_secs);
        valid_for(issued_at, expires_at, now, min_valid)
            .then_some(self.id_token.as_ref())
            .flatten()
    }

    pub fn id_token_expires_at(&self) -> Option<u64> {
        self.id_claims.as_ref().and_then(jwt::expiry)
    }

    pub fn expires_at_unix(&self) -> Option<u64> {
        self.expires_at.map(unix_secs)
    }

    pub fn subject(&self) -> Option<&str> {
        self.id_claims.as_ref()?.get("sub")?.as_str()
    }

    pub fn email(&self) -> Option<&str> {
        self.id_claims.as_ref()?.get("email")?.as_str()
    }
}

/// A refresh token's life as the IdP stated it, in Unix seconds: `issued_at` is when the
/// token was received, `expires_at` that plus its `refresh_token_expires_in`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshLifetime {
    pub issued_at: u64,
    pub expires_at: u64,
}

impl RefreshLifetime {
    /// The life an IdP stated on receipt at `now` (`refresh_token_expires_in`, seconds).
    pub fn stated(now: SystemTime, expires_in_secs: u64) -> RefreshLifetime {
        let issued_at = crate::clock::unix_secs(now);
        RefreshLifetime {
            issued_at,
            expires_at: issued_at.saturating_add(expires_in_secs),
        }
    }

    /// The lifetime to keep after a refresh answered with `answered`. A rotated refresh
    /// token has only its own; a kept one keeps the day it was issued, with the newest
    /// expiry the IdP stated (Google answers a refresh without a new refresh token, and
    /// with `refresh_token_expires_in` counting down, for tokens of limited life).
    pub fn after_refresh(
        answered: Option<RefreshLifetime>,
        previous: Option<RefreshLifetime>,
        rotated: bool,
    ) -> Option<RefreshLifetime> {
        match (answered, previous) {
            _ if rotated => answered,
            (Some(answered), Some(previous)) => Some(RefreshLifetime {
                issued_at: previous.issued_at,
                expires_at: answered.expires_at,
            }),
            (answered, previous) => answered.or(previous),
        }
    }
}

/// How far the local clock runs ahead of the IdP's (negative: behind), in whole seconds
/// (the resolution of an HTTP `Date`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockSkew(pub i64);

impl ClockSkew {
    /// Differences this small are the `Date` header's rounding, not skew.
    const NOISE_SECS: i64 = 2;

    pub fn between(local: SystemTime, server: SystemTime) -> ClockSkew {
        let local = crate::clock::unix_secs(local) as i64;
        let server = crate::clock::unix_secs(server) as i64;
        ClockSkew(local - server)
    }

    /// Converts an instant of the IdP's clock to the local clock.
    pub fn to_local(self, server_time: SystemTime) -> SystemTime {
        match self.0 {
            skew if skew.abs() <= Self::NOISE_SECS => server_time,
            skew if skew > 0 => server_time + Duration::from_secs(skew as u64),
            skew => server_time - Duration::from_secs(skew.unsigned_abs()),
        }
    }
}

/// The validity rule of [`TokenSet::access_valid_for`], shared by both token kinds.
fn valid_for(
    issued_at: SystemTime,
    expires_at: SystemTime,
    now: SystemTime,
    min_valid: Duration,
) -> bool {
    let lifetime = expires_at.duration_since(issued_at).unwrap_or_default();
    expires_at >= now + min_valid.min(lifetime / 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn jwt_exp_wins_over_a_longer_expires_in() {
        let now = from_unix_secs(1_000_000);
        let payload = URL_SAFE_NO_PAD.encode(r#"{"exp":1000300}"#);
        let token = format!("e30.{payload}.sig");
        let none = ClockSkew::default();
        let expiry = TokenSet::expiry(&token, Some(Duration::from_secs(3600)), now, none).unwrap();
        assert_eq!(unix_secs(expiry), 1_000_300);
        let opaque = TokenSet::expiry("opaque", Some(Duration::from_secs(60)), now, none).unwrap();
        assert_eq!(unix_secs(opaque), 1_000_060);
        assert_eq!(TokenSet::expiry("opaque", None, now, none), None);
    }

    #[test]
    fn jwt_exp_is_moved_to_the_local_clock() {
        // The local clock runs 10 minutes ahead of the IdP's.
        let local_now = from_unix_secs(1_000_600);
        let idp_now = from_unix_secs(1_000_000);
        let skew = ClockSkew::between(local_now, idp_now);
        assert_eq!(skew, ClockSkew(600));
        let payload = URL_SAFE_NO_PAD.encode(r#"{"exp":1000300}"#);
        let token = format!("e30.{payload}.sig");
        // exp is 300 s after the IdP's now: 300 s after the local now too, not already past.
        let expiry = TokenSet::expiry(&token, None, local_now, skew).unwrap();
        assert_eq!(unix_secs(expiry), 1_000_900);
        let behind = ClockSkew::between(idp_now, local_now);
        assert_eq!(
            unix_secs(behind.to_local(from_unix_secs(1_000_300))),
            999_700
        );
        // Rounding of the Date header is not skew.
        assert_eq!(ClockSkew(2).to_local(idp_now), idp_now);
    }

    #[test]
    fn a_kept_refresh_token_keeps_its_issue_day_and_a_rotated_one_starts_afresh() {
        let life = |issued_at, expires_at| RefreshLifetime {
            issued_at,
            expires_at,
        };
        let first = Some(life(1_000, 1_000 + 604_799));
        let countdown = Some(life(5_000, 1_000 + 604_799));
        assert_eq!(
            RefreshLifetime::after_refresh(countdown, first, false),
            Some(life(1_000, 1_000 + 604_799))
        );
        assert_eq!(RefreshLifetime::after_refresh(None, first, false), first);
        assert_eq!(RefreshLifetime::after_refresh(None, first, true), None);
        assert_eq!(
            RefreshLifetime::after_refresh(countdown, first, true),
            countdown
        );
    }

    #[test]
    fn validity_window() {
        let now = from_unix_secs(1_000);
        let set = TokenSet {
            access_token: AccessToken::new("a".into()),
            token_type: "Bearer".into(),
            expires_at: Some(from_unix_secs(1_100)),
            refresh_token: None,
            refresh_lifetime: None,
            id_token: None,
            id_claims: None,
            received_at: now,
        };
        assert!(set.access_valid_for(from_unix_secs(1_060), Duration::from_secs(40)));
        assert!(!set.access_valid_for(from_unix_secs(1_061), Duration::from_secs(40)));
        // Asking for more than the IdP ever gives is capped at half the lifetime (50 s).
        assert!(set.access_valid_for(now, Duration::from_secs(3600)));
        assert!(set.access_valid_for(from_unix_secs(1_050), Duration::from_secs(3600)));
        assert!(!set.access_valid_for(from_unix_secs(1_051), Duration::from_secs(3600)));
        assert!(!set.access_valid_for(from_unix_secs(1_101), Duration::ZERO));
    }
}
