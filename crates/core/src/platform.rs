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

/// The platform whose conventions apply: a value rather than `cfg!` at each use, so that each
/// platform's layout is unit-tested on any (`tool_files`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Os {
    /// Linux and the other Unix-likes but macOS.
    Linux,
    MacOs,
    Windows,
}

impl Os {
    /// The platform this was built for.
    pub const CURRENT: Os = if cfg!(windows) {
        Os::Windows
    } else if cfg!(target_os = "macos") {
        Os::MacOs
    } else {
        Os::Linux
    };

    /// The file a program called `name` is run from: `name.exe` on Windows, where a program
    /// is looked up on PATH by that name (`PATHEXT`).
    pub fn program_file(self, name: &str) -> String {
        match self {
            Os::Windows => format!("{name}.exe"),
            Os::Linux | Os::MacOs => name.to_string(),
        }
    }
}

/// Where `name` is found on PATH, as a shell or git or docker finds it (`name.exe` on
/// Windows).
pub fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    let file = Os::CURRENT.program_file(name);
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(&file))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::Os;

    #[test]
    fn programs_are_exe_files_on_windows_only() {
        assert_eq!(
            Os::Windows.program_file("git-credential-stagepass"),
            "git-credential-stagepass.exe"
        );
        assert_eq!(Os::MacOs.program_file("stagepass"), "stagepass");
        assert_eq!(Os::Linux.program_file("stagepass"), "stagepass");
    }

    #[test]
    fn background_processes_get_a_group_and_a_hidden_console_not_a_detached_one() {
        const DETACHED_PROCESS: u32 = 0x0000_0008;
        assert_eq!(super::WINDOWS_BACKGROUND_FLAGS, 0x0800_0200);
        assert_eq!(super::WINDOWS_BACKGROUND_FLAGS & DETACHED_PROCESS, 0);
    }
}
