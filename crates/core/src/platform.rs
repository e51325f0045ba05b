//! Small per-platform facts shared by the client and the agent.

/// How the agent and its refresh workers are started on Windows: a process group of their own
/// (Ctrl-C and Ctrl-Break of the starting console do not reach them) and a hidden console
/// rather than none. With `DETACHED_PROCESS` instead, every console program the agent starts
/// (its refresh workers) would open a console window of its own; `CREATE_NO_WINDOW` is also
/// ignored when combined with it.
///
/// <https://learn.microsoft.com/en-us/windows/win32/procthread/process-creation-flags>
pub const WINDOWS_BACKGROUND_FLAGS: u32 = CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW;

const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
const CREATE_NO_WINDOW: u32 = 0x0800_0000;

#[cfg(test)]
mod tests {
    #[test]
    fn background_processes_get_a_group_and_a_hidden_console_not_a_detached_one() {
        const DETACHED_PROCESS: u32 = 0x0000_0008;
        assert_eq!(super::WINDOWS_BACKGROUND_FLAGS, 0x0800_0200);
        assert_eq!(super::WINDOWS_BACKGROUND_FLAGS & DETACHED_PROCESS, 0);
    }
}
