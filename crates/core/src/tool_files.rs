//! Where the tools stagepass plugs into look for their settings and helpers, on each
//! platform: docker's config.json, the names git and docker run stagepass's helpers by, and
//! the form of a git helper that names stagepass by path. `setup` writes and `doctor` reads
//! through these functions only.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::platform::Os;

/// The program git runs for `credential.helper = stagepass` (`.exe` on Windows).
pub const GIT_HELPER: &str = "git-credential-stagepass";
/// The program docker runs for `"credHelpers": {"REGISTRY": "stagepass"}` (`.exe` on
/// Windows). <https://docs.docker.com/reference/cli/docker/login/#credential-helpers>
pub const DOCKER_HELPER: &str = "docker-credential-stagepass";

/// The environment a tool sees, for one platform: injected so that every platform's layout is
/// tested, with a home of the test's choosing, on any platform.
pub struct ToolEnv<'a> {
    pub os: Os,
    /// An environment variable; `None` when unset or empty.
    pub var: &'a dyn Fn(&str) -> Option<OsString>,
    /// The account's home directory as the system has it (`directories`), for when the
    /// variable a tool reads is unset.
    pub system_home: Option<PathBuf>,
}

impl ToolEnv<'static> {
    /// This process's environment, on the platform it was built for.
    pub fn current() -> ToolEnv<'static> {
        ToolEnv {
            os: Os::CURRENT,
            var: &process_var,
            system_home: directories::BaseDirs::new().map(|dirs| dirs.home_dir().to_path_buf()),
        }
    }
}

fn process_var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|value| !value.is_empty())
}

impl ToolEnv<'_> {
    /// The home directory as docker's CLI finds it (`homedir.Get`): `%USERPROFILE%` on
    /// Windows, `$HOME` elsewhere; the account's home when that variable is unset.
    pub fn home(&self) -> Option<PathBuf> {
        let variable = match self.os {
            Os::Windows => "USERPROFILE",
            Os::Linux | Os::MacOs => "HOME",
        };
        (self.var)(variable)
            .map(PathBuf::from)
            .or_else(|| self.system_home.clone())
    }

    /// docker's config.json: in `$DOCKER_CONFIG`, else in `.docker` in the home directory
    /// (`%USERPROFILE%\.docker` on Windows, `~/.docker` on Linux and macOS).
    /// <https://docs.docker.com/reference/cli/docker/#configuration-files>
    pub fn docker_config_file(&self) -> Option<PathBuf> {
        let dir = match (self.var)("DOCKER_CONFIG") {
            Some(dir) => PathBuf::from(dir),
            None => self.home()?.join(".docker"),
        };
        Some(dir.join("config.json"))
    }
}

/// The `credential.helper` value that runs `program` (stagepass, by absolute path) as git's
/// helper. git runs an absolute helper through its shell with the action appended
/// (<https://git-scm.com/docs/gitcredentials#_custom_helpers>), so a path with characters
/// the shell would read is quoted behind `!`. On Windows git's shell is MSYS sh, which reads
/// `\` as an escape: the path is written with `/`, which Git for Windows also takes as
/// absolute (`C:/...`).
pub fn git_helper_by_path(os: Os, program: &str) -> String {
    let program = match os {
        Os::Windows => program.replace('\\', "/"),
        Os::Linux | Os::MacOs => program.to_string(),
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+".contains(c);
    let rest = match os {
        Os::Windows => without_drive(&program),
        Os::Linux | Os::MacOs => program.as_str(),
    };
    if rest.chars().all(plain) {
        format!("{program} git-credential")
    } else {
        format!("!'{}' git-credential", program.replace('\'', r"'\''"))
    }
}

/// `path` without a leading `C:`, which means nothing to the shell.
fn without_drive(path: &str) -> &str {
    match path.as_bytes() {
        [letter, b':', ..] if letter.is_ascii_alphabetic() => path.get(2..).unwrap_or(path),
        _ => path,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// docker's config file with `vars` as the environment and `/system-home` as the account's
    /// home.
    fn docker_file(os: Os, vars: &[(&str, &str)]) -> Option<PathBuf> {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        let var = |name: &str| vars.get(name).map(OsString::from);
        ToolEnv {
            os,
            var: &var,
            system_home: Some(PathBuf::from("/system-home")),
        }
        .docker_config_file()
    }

    #[test]
    fn docker_reads_userprofile_on_windows_and_not_home() {
        let file = docker_file(
            Os::Windows,
            &[("USERPROFILE", r"C:\Users\carol"), ("HOME", "/home/carol")],
        );
        assert_eq!(
            file,
            Some(
                PathBuf::from(r"C:\Users\carol")
                    .join(".docker")
                    .join("config.json")
            )
        );
    }

    #[test]
    fn docker_reads_home_on_linux_and_macos_and_not_userprofile() {
        for os in [Os::Linux, Os::MacOs] {
            let file = docker_file(
                os,
                &[("USERPROFILE", r"C:\Users\carol"), ("HOME", "/Users/carol")],
            );
            assert_eq!(
                file,
                Some(PathBuf::from("/Users/carol/.docker/config.json")),
                "{os:?}"
            );
        }
    }

    #[test]
    fn docker_config_wins_over_the_home_everywhere() {
        for os in [Os::Linux, Os::MacOs, Os::Windows] {
            let file = docker_file(
                os,
                &[
                    ("DOCKER_CONFIG", "/etc/team-docker"),
                    ("HOME", "/home/carol"),
                    ("USERPROFILE", r"C:\Users\carol"),
                ],
            );
            assert_eq!(
                file,
                Some(PathBuf::from("/etc/team-docker/config.json")),
                "{os:?}"
            );
        }
    }

    #[test]
    fn without_the_variable_the_accounts_home_is_used() {
        // A Windows service or a scheduled task may run without USERPROFILE.
        assert_eq!(
            docker_file(Os::Windows, &[("HOME", "/home/carol")]),
            Some(PathBuf::from("/system-home/.docker/config.json"))
        );
        assert_eq!(
            docker_file(Os::Linux, &[]),
            Some(PathBuf::from("/system-home/.docker/config.json"))
        );
    }

    #[test]
    fn a_windows_helper_path_is_written_with_slashes() {
        assert_eq!(
            git_helper_by_path(Os::Windows, r"C:\tools\stagepass.exe"),
            "C:/tools/stagepass.exe git-credential"
        );
        assert_eq!(
            git_helper_by_path(Os::Windows, r"C:\Program Files\stagepass\stagepass.exe"),
            "!'C:/Program Files/stagepass/stagepass.exe' git-credential"
        );
    }

    #[test]
    fn a_unix_helper_path_is_quoted_only_where_the_shell_would_read_it() {
        assert_eq!(
            git_helper_by_path(Os::Linux, "/home/carol/.local/bin/stagepass"),
            "/home/carol/.local/bin/stagepass git-credential"
        );
        assert_eq!(
            git_helper_by_path(Os::MacOs, "/Applications/My Tools/it's/stagepass"),
            r"!'/Applications/My Tools/it'\''s/stagepass' git-credential"
        );
        // A colon is the shell's business on Unix: quoted there.
        assert_eq!(
            git_helper_by_path(Os::Linux, "/opt/a:b/stagepass"),
            "!'/opt/a:b/stagepass' git-credential"
        );
    }
}
