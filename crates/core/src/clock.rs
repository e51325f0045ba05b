//! Injected time, so expiry and refresh decisions are tested with a fake clock.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    fn now(&self) -> SystemTime;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to, for tests of anything that reads the time.
///
/// Not behind a feature flag: it is a dozen lines with no dependencies, and tests in every
/// crate (the agent's session service, the tray) use it; a flag would only add plumbing.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    pub fn starting_at(start: SystemTime) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|poison| poison.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

pub fn unix_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

pub fn from_unix_secs(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// `42s`, `4m 10s`, `2h 1m`, `3d 4h`: durations for people.
pub fn human_span(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86400 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86400, secs % 86400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = ManualClock::starting_at(from_unix_secs(1_000));
        assert_eq!(clock.now(), from_unix_secs(1_000));
        assert_eq!(clock.now(), from_unix_secs(1_000));
        clock.advance(Duration::from_secs(90));
        assert_eq!(unix_secs(clock.now()), 1_090);
    }
}
