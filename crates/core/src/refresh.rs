//! When to refresh, and how long to wait after a failure. Pure functions of time, tested
//! with a fake clock; the agent's scheduler applies them.

use std::time::{Duration, SystemTime};

/// Refresh at 80 % of the lifetime or a margin (a minute, at most a quarter of the lifetime)
/// before expiry, whichever comes first, minus
/// up to 5 % of the lifetime of jitter, so many agents (or profiles) signed in at the same
/// moment do not refresh at the same moment.
const LIFETIME_FRACTION: f64 = 0.80;
const JITTER_FRACTION: f64 = 0.05;
const MAX_MARGIN: Duration = Duration::from_secs(60);

/// After an outage-type failure (network, timeout, 5xx): 5 s, doubling, capped at 5 min,
/// ±20 % jitter. The cap keeps a long outage from hammering the IdP.
const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_CAP: Duration = Duration::from_secs(300);

/// When a token received at `received_at` and expiring at `expires_at` should be refreshed.
/// `jitter` is uniform in `[0, 1)`.
pub fn refresh_due(received_at: SystemTime, expires_at: SystemTime, jitter: f64) -> SystemTime {
    let lifetime = expires_at.duration_since(received_at).unwrap_or_default();
    let at_fraction = received_at + lifetime.mul_f64(LIFETIME_FRACTION);
    let before_expiry = expires_at - MAX_MARGIN.min(lifetime / 4);
    let due = at_fraction.min(before_expiry);
    due - lifetime.mul_f64(JITTER_FRACTION * jitter.clamp(0.0, 1.0))
}

/// The wait before retry number `failures` (1 for the first retry). `jitter` is uniform in
/// `[0, 1)`.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let delay = BACKOFF_BASE
        .saturating_mul(1u32 << exponent)
        .min(BACKOFF_CAP);
    delay.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

/// Where jitter comes from: injected, so tests pick the value and get the same schedule on
/// every run.
pub trait Jitter: Send + Sync {
    /// A value in `[0, 1)`.
    fn sample(&self) -> f64;
}

/// Uniform jitter. Not for secrets: std's per-process random hash keys, mixed with a counter
/// and the time, are plenty for spreading refreshes.
#[derive(Debug, Default)]
pub struct RandomJitter {
    draws: std::sync::atomic::AtomicU64,
}

impl Jitter for RandomJitter {
    fn sample(&self) -> f64 {
        use std::hash::{BuildHasher, Hasher};
        let draw = self
            .draws
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(draw);
        hasher.write_u64(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_nanos() as u64),
        );
        (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The same value every time, for tests.
#[derive(Debug, Clone, Copy)]
pub struct FixedJitter(pub f64);

impl Jitter for FixedJitter {
    fn sample(&self) -> f64 {
        self.0.clamp(0.0, 1.0 - f64::EPSILON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_secs;

    fn secs_after(start: SystemTime, time: SystemTime) -> f64 {
        time.duration_since(start).unwrap().as_secs_f64()
    }

    #[test]
    fn an_hour_token_is_refreshed_between_75_and_80_percent() {
        let start = from_unix_secs(1_000_000);
        let end = start + Duration::from_secs(3600);
        assert_eq!(secs_after(start, refresh_due(start, end, 0.0)), 2880.0);
        assert_eq!(
            secs_after(start, refresh_due(start, end, 0.999_999)).round(),
            2700.0
        );
    }

    #[test]
    fn day_and_minute_tokens() {
        let start = from_unix_secs(1_000_000);
        let end = start + Duration::from_secs(86_400);
        assert_eq!(secs_after(start, refresh_due(start, end, 0.0)), 69_120.0);
        let short = start + Duration::from_secs(60);
        // Short tokens: the margin (at most a quarter of the lifetime) comes before 80 %.
        assert_eq!(secs_after(start, refresh_due(start, short, 0.0)), 45.0);
        assert!(secs_after(start, refresh_due(start, short, 0.999)) >= 42.0);
        let five_minutes = start + Duration::from_secs(300);
        assert_eq!(
            secs_after(start, refresh_due(start, five_minutes, 0.0)),
            240.0
        );
    }

    #[test]
    fn an_expired_or_instant_token_is_due_at_once() {
        let start = from_unix_secs(1_000_000);
        assert_eq!(refresh_due(start, start, 0.5), start);
        assert!(refresh_due(start, start - Duration::from_secs(5), 0.5) <= start);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        assert_eq!(backoff(1, 0.5), Duration::from_secs(5));
        assert_eq!(backoff(2, 0.5), Duration::from_secs(10));
        assert_eq!(backoff(3, 0.5), Duration::from_secs(20));
        assert_eq!(backoff(20, 0.5), Duration::from_secs(300));
        assert_eq!(backoff(u32::MAX, 0.5), Duration::from_secs(300));
        assert_eq!(backoff(1, 0.0), Duration::from_secs(4));
        assert!(backoff(1, 0.999) < Duration::from_secs(6));
    }

    #[test]
    fn jitter_stays_in_range() {
        let jitter = RandomJitter::default();
        for _ in 0..1000 {
            let value = jitter.sample();
            assert!((0.0..1.0).contains(&value), "{value}");
        }
    }
}
