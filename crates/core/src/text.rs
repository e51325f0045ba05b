//! Untrusted text (IdP claims, a remote caller's profile name, an IdP's error description) on
//! its way to a terminal or a notification: control characters could move the cursor, rewrite
//! the screen or the window title (ESC and CSI sequences, C0, DEL, C1), and bidirectional
//! overrides could make a line read differently from what it holds. They are shown as
//! `\u001b`-style escapes instead; that form is also a valid JSON escape, so JSON output
//! stays JSON with the same values.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Whether `c` may not reach a terminal as is. `lines`: newline and tab are kept (text that
/// is meant to span lines); otherwise they are escaped too (one field on one line, so a
/// value cannot forge the next line).
fn is_unsafe(c: char, lines: bool) -> bool {
    match c {
        '\n' | '\t' => !lines,
        // C0, DEL and C1 (CSI is U+009B).
        c if c.is_control() => true,
        // Bidirectional marks, embeddings, overrides and isolates.
        '\u{061c}'
        | '\u{200e}'
        | '\u{200f}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

/// A [`fmt::Write`] that passes text on with its unsafe characters escaped.
pub struct Escaping<W> {
    pub inner: W,
    /// Keep newline and tab (whole output); `false` escapes them too (one field).
    pub lines: bool,
}

impl<W: fmt::Write> fmt::Write for Escaping<W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some(at) = rest.find(|c| is_unsafe(c, self.lines)) {
            self.inner.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            write!(self.inner, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        self.inner.write_str(rest)
    }
}

/// `text` as one line for a terminal or a notification: every control character, newline
/// included, and every bidirectional override escaped.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| is_unsafe(c, false)) {
        return Cow::Borrowed(text);
    }
    let mut out = Escaping {
        inner: String::with_capacity(text.len() + 8),
        lines: false,
    };
    // Writing to a String cannot fail.
    let _ = out.write_str(text);
    Cow::Owned(out.inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_overrides_are_escaped_and_the_rest_kept() {
        assert_eq!(one_line("Ada Lovelace, ünïcode"), "Ada Lovelace, ünïcode");
        assert!(matches!(one_line("plain"), Cow::Borrowed(_)));
        assert_eq!(
            one_line("\u{1b}]0;pwned\u{7}\u{1b}[2Jx"),
            "\\u001b]0;pwned\\u0007\\u001b[2Jx"
        );
        assert_eq!(
            one_line("a\u{9b}31m\u{7f}b\u{202e}c\nd\re"),
            "a\\u009b31m\\u007fb\\u202ec\\u000ad\\u000de"
        );
        let mut lines = Escaping {
            inner: String::new(),
            lines: true,
        };
        write!(lines, "one\ttwo\n\u{1b}[1mthree\u{2067}").unwrap();
        assert_eq!(lines.inner, "one\ttwo\n\\u001b[1mthree\\u2067");
        // The escapes are JSON escapes: a C1 character in a JSON string stays the same value.
        let json = serde_json::to_string("x\u{9b}y").unwrap();
        let mut escaped = Escaping {
            inner: String::new(),
            lines: true,
        };
        escaped.write_str(&json).unwrap();
        let back: String = serde_json::from_str(&escaped.inner).unwrap();
        assert_eq!(back, "x\u{9b}y");
    }
}
