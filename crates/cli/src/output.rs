//! Formatting shared by the commands, and the macros they print with. Everything printed
//! through them has its control characters escaped ([`stagepass_core::text`]): output shows
//! IdP claims, error descriptions and what remote callers asked for, none of which may drive
//! the terminal.

/// `println!` for command output. std's `println!` panics when the reader has gone away
/// (`stagepass status | grep -q …` closes the pipe early); this returns the write's error from
/// the enclosing function instead (`?`), which `main` turns into a quiet success when the
/// reader went away, as `cat` or `rg` do.
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` for command output; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))?
    };
}

/// `eprintln!` for messages and errors, escaped as [`outln!`] is.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

use std::time::{SystemTime, UNIX_EPOCH};

use stagepass_core::clock::human_span as span;
use stagepass_core::text::Escaping;

use crate::error::CommandError;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// `2026-11-22T14:32:05Z`, for JSON.
pub fn rfc3339(unix: u64) -> String {
    OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// `2026-11-22 14:32:05 UTC (in 4m 10s)`, for people.
pub fn when(unix: u64) -> String {
    let absolute = rfc3339(unix).replace('T', " ").replace('Z', " UTC");
    let now = now_unix();
    if unix >= now {
        format!("{absolute} (in {})", span(unix - now))
    } else {
        format!("{absolute} ({} ago)", span(now - unix))
    }
}

pub fn write_stdout(args: std::fmt::Arguments) -> Result<(), CommandError> {
    write_escaped(std::io::stdout().lock(), args).map_err(|err| {
        let message = format!("cannot write the output: {err}");
        let kind = CommandError::from(err).kind();
        CommandError::new(kind, message)
    })
}

pub fn write_stderr(args: std::fmt::Arguments) {
    // Nowhere left to report a failure to.
    let _ = write_escaped(std::io::stderr().lock(), args);
}

/// Formats `args` into `out` through [`Escaping`], keeping lines and tabs; no copy of the
/// text is made on the way.
fn write_escaped(out: impl std::io::Write, args: std::fmt::Arguments) -> std::io::Result<()> {
    /// `fmt::Write` over `io::Write`, keeping the I/O error that `fmt::Error` cannot carry.
    struct Io<W> {
        out: W,
        error: Option<std::io::Error>,
    }
    impl<W: std::io::Write> std::fmt::Write for Io<W> {
        fn write_str(&mut self, text: &str) -> std::fmt::Result {
            self.out.write_all(text.as_bytes()).map_err(|err| {
                self.error = Some(err);
                std::fmt::Error
            })
        }
    }
    let mut escaping = Escaping {
        inner: Io { out, error: None },
        lines: true,
    };
    match std::fmt::Write::write_fmt(&mut escaping, args) {
        Ok(()) => Ok(()),
        Err(_) => Err(escaping
            .inner
            .error
            .unwrap_or_else(|| std::io::Error::other("formatting failed"))),
    }
}

/// `45s`, `30m`, `2h`, `7d` as seconds.
pub fn parse_span(text: &str) -> Option<u64> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = number.parse().ok()?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(unit)
}

pub fn print_json(value: &serde_json::Value) -> Result<(), CommandError> {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(42), "42s");
        assert_eq!(span(250), "4m 10s");
        assert_eq!(span(7260), "2h 1m");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_span("2s"), Some(2));
        assert_eq!(parse_span("8h"), Some(28_800));
        assert_eq!(parse_span("7d"), Some(604_800));
        assert_eq!(parse_span("8"), None);
        assert_eq!(parse_span("h"), None);
        assert_eq!(parse_span("-1h"), None);
    }
}
