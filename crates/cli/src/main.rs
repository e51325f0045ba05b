//! `stagepass`: sign in once; git, curl, kubectl, docker and scripts get short-lived
//! credentials from the agent.

#[macro_use]
mod output;
mod agent_link;
// Opening a browser is shared with the tray app, so it lives in the client crate.
use stagepass_client::browser;
use stagepass_core::tool_files::{DOCKER_HELPER, GIT_HELPER};
mod cli;
mod commands;
mod error;
mod exit;
mod progress;
mod remote_mode;
mod replace;
mod secret_input;

fn main() -> std::process::ExitCode {
    // git and docker find helpers by name: `git-credential-stagepass` and
    // `docker-credential-stagepass` are links to this binary (on Windows hard links or copies
    // named `….exe`, and Windows file names ignore case).
    let invoked_as = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|path| Some(path.file_name()?.to_string_lossy().into_owned()))
        .map(|name| helper_name(&name));
    let args: Vec<std::ffi::OsString> = match invoked_as.as_deref() {
        Some(name @ (GIT_HELPER | DOCKER_HELPER)) => {
            let subcommand = name.trim_end_matches("-stagepass");
            ["stagepass".into(), subcommand.into()]
                .into_iter()
                .chain(std::env::args_os().skip(1))
                .collect()
        }
        _ => std::env::args_os().collect(),
    };
    // clap prints its own usage error or help and picks its code (2 for bad usage, 0 for help).
    let cli = cli::Cli::try_parse_args(args).unwrap_or_else(|err| err.exit());
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => exit::report(&err),
    }
}

/// The program name without Windows' `.exe`, lower-cased there (`GIT-CREDENTIAL-STAGEPASS.EXE`
/// is the same file).
fn helper_name(file_name: &str) -> String {
    if cfg!(windows) {
        let lower = file_name.to_ascii_lowercase();
        lower.strip_suffix(".exe").unwrap_or(&lower).to_string()
    } else {
        file_name.to_string()
    }
}
