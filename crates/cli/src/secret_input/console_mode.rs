//! The Windows console input mode while a secret is typed: a pure function of the mode found,
//! so that it is tested on every platform.
//!
//! <https://learn.microsoft.com/en-us/windows/console/setconsolemode>

/// Ctrl-C is handled by the system (a `CTRL_C_EVENT`), not read as a character.
pub(super) const ENABLE_PROCESSED_INPUT: u32 = 0x0001;
/// Reads return a whole line, ended by Enter.
pub(super) const ENABLE_LINE_INPUT: u32 = 0x0002;
/// Typed characters are written back to the console; only valid with line input.
pub(super) const ENABLE_ECHO_INPUT: u32 = 0x0004;

/// Echo off; line input on, so a read returns at Enter rather than per key (and echo could
/// not be on without it anyway); processed input on, so Ctrl-C stays a signal, which the
/// caller's handler answers by restoring `found` before the process ends. Every other bit
/// (insert mode, quick edit, virtual terminal input) is left as the user had it.
pub(super) fn quiet(found: u32) -> u32 {
    (found & !ENABLE_ECHO_INPUT) | ENABLE_LINE_INPUT | ENABLE_PROCESSED_INPUT
}

#[cfg(test)]
mod tests {
    use super::*;

    /// cmd.exe's and PowerShell's usual mode: processed, line, echo, insert, quick edit,
    /// extended flags.
    const USUAL: u32 = 0x01F7;

    #[test]
    fn echo_goes_off_and_nothing_else_changes_in_the_usual_mode() {
        assert_eq!(quiet(USUAL), USUAL & !ENABLE_ECHO_INPUT);
        assert_eq!(quiet(USUAL) & ENABLE_ECHO_INPUT, 0);
    }

    #[test]
    fn line_and_processed_input_are_turned_on_where_a_program_left_them_off() {
        // A raw-mode program (an editor, PSReadLine) may leave only the extended bits.
        let raw = 0x0080 | 0x0200;
        assert_eq!(
            quiet(raw),
            raw | ENABLE_LINE_INPUT | ENABLE_PROCESSED_INPUT,
            "a per-key read would end the secret after one character"
        );
        assert_eq!(quiet(raw) & ENABLE_ECHO_INPUT, 0);
    }

    #[test]
    fn every_mode_comes_out_without_echo_and_with_whole_lines() {
        for found in 0..0x0400 {
            let mode = quiet(found);
            assert_eq!(mode & ENABLE_ECHO_INPUT, 0, "{found:#06x}");
            assert_eq!(mode & ENABLE_LINE_INPUT, ENABLE_LINE_INPUT, "{found:#06x}");
            assert_eq!(
                mode & !0x0007,
                found & !0x0007,
                "{found:#06x}: other bits kept"
            );
        }
    }
}
