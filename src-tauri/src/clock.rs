//! Times as the user reads them: local wall-clock "14:32", with the weekday when not today.

use std::sync::OnceLock;

use time::{OffsetDateTime, UtcOffset};

static LOCAL_OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Reads the local UTC offset. Call from `main` before any thread starts: `time` refuses to
/// read it later in a multi-threaded process (the C library's lookup is not thread-safe).
pub fn capture_local_offset() {
    let offset = UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC);
    let _ = LOCAL_OFFSET.set(offset);
}

/// The wall clock in the user's zone, for display.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    pub now: u64,
    pub offset: UtcOffset,
}

impl WallClock {
    pub fn system() -> WallClock {
        WallClock {
            now: OffsetDateTime::now_utc().unix_timestamp().max(0) as u64,
            offset: LOCAL_OFFSET.get().copied().unwrap_or(UtcOffset::UTC),
        }
    }

    /// "14:32" today, "Mon 14:32" within a week, "2026-11-30 14:32" beyond.
    pub fn time_of(&self, unix: u64) -> String {
        let local = |secs: u64| {
            OffsetDateTime::from_unix_timestamp(secs as i64)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH)
                .to_offset(self.offset)
        };
        let (at, now) = (local(unix), local(self.now));
        let clock = format!("{:02}:{:02}", at.hour(), at.minute());
        let days_apart = (at.date().to_julian_day() - now.date().to_julian_day()).abs();
        if days_apart == 0 {
            clock
        } else if days_apart < 7 {
            format!("{} {clock}", &at.weekday().to_string()[..3])
        } else {
            format!("{} {clock}", at.date())
        }
    }

    /// "in 5 min", "in 2 h", "expired".
    pub fn remaining(&self, unix: u64) -> String {
        match unix.checked_sub(self.now) {
            None | Some(0) => "expired".into(),
            Some(secs) if secs < 90 => format!("in {secs} s"),
            Some(secs) if secs < 90 * 60 => format!("in {} min", secs / 60),
            Some(secs) => format!("in {} h", secs / 3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_weekday_and_date() {
        // 2026-11-22 (a Sunday) 12:00 UTC, shown two hours east of UTC.
        let clock = WallClock {
            now: 1_795_348_800,
            offset: UtcOffset::from_hms(2, 0, 0).unwrap(),
        };
        assert_eq!(clock.time_of(1_795_348_800 + 1920), "14:32");
        assert_eq!(clock.time_of(1_795_348_800 + 86_400), "Mon 14:00");
        assert_eq!(
            clock.time_of(1_795_348_800 + 10 * 86_400),
            "2026-12-02 14:00"
        );
        assert_eq!(clock.remaining(1_795_348_800 + 300), "in 5 min");
        assert_eq!(clock.remaining(1_795_348_800 - 1), "expired");
    }
}
