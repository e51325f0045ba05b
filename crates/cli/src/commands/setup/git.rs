//! `setup git`: `credential.<url>.helper` for every `[[git]]` entry, in the global git config.
//!
//! Each URL gets an empty helper first, which resets the helpers inherited from less specific
//! config (a global `credential.helper = store` would otherwise also be asked, and offered
//! every short-lived token to store), then stagepass.

use std::process::Command;

use stagepass_core::config::Config;
use stagepass_core::credential_map::Target;

use stagepass_core::platform::Os;
use stagepass_core::tool_files::{self, GIT_HELPER};

use super::{ensure_helper, show, this_program};
use crate::error::CommandError;

pub fn run(config: &Config, undo: bool) -> Result<(), CommandError> {
    if config.git.is_empty() {
        return Err(CommandError::config(format!(
            "{} has no [[git]] entry: add one (url, profile) first",
            config.path.display()
        )));
    }
    let helper = helper_command()?;
    for host in &config.git {
        let url = host.url.trim_end_matches('/');
        let key = format!("credential.{url}.helper");
        let current = get_all(&key)?;
        let ours = vec![String::new(), helper.clone()];
        let needs_path = Target::parse(&host.url).is_some_and(|target| target.path.is_some());
        let path_key = format!("credential.{url}.useHttpPath");
        if undo {
            if current.is_empty() {
                continue;
            }
            if !current
                .iter()
                .all(|value| value.is_empty() || *value == helper)
            {
                outln!("  {key}: left alone, it holds helpers stagepass did not write");
                continue;
            }
            git(&["config", "--global", "--unset-all", &key])?;
            show('-', &key)?;
            if needs_path && !get_all(&path_key)?.is_empty() {
                git(&["config", "--global", "--unset-all", &path_key])?;
                show('-', &path_key)?;
            }
            continue;
        }
        if current == ours {
            outln!("  {key} = {helper} (unchanged)");
        } else {
            for value in &current {
                show('-', &format!("{key} = {value}"))?;
            }
            if !current.is_empty() {
                git(&["config", "--global", "--unset-all", &key])?;
            }
            git(&["config", "--global", "--add", &key, ""])?;
            git(&["config", "--global", "--add", &key, &helper])?;
            show('+', &format!("{key} ="))?;
            show('+', &format!("{key} = {helper}"))?;
        }
        // A path prefix can only match when git sends the path.
        if needs_path && get_all(&path_key)? != ["true"] {
            git(&["config", "--global", "--replace-all", &path_key, "true"])?;
            show('+', &format!("{path_key} = true"))?;
        }
    }
    Ok(())
}

/// `stagepass` when git can find `git-credential-stagepass` on PATH (made beside this program
/// on Windows), else this executable by absolute path.
fn helper_command() -> Result<String, CommandError> {
    if ensure_helper(GIT_HELPER)? {
        return Ok("stagepass".into());
    }
    Ok(tool_files::git_helper_by_path(
        Os::CURRENT,
        &this_program()?,
    ))
}

fn get_all(key: &str) -> Result<Vec<String>, CommandError> {
    let output = Command::new("git")
        .args(["config", "--global", "--get-all", key])
        .output()
        .map_err(git_missing)?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(String::from)
        .collect())
}

fn git(args: &[&str]) -> Result<(), CommandError> {
    let output = Command::new("git")
        .args(args)
        .output()
        .map_err(git_missing)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(CommandError::usage(format!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

fn git_missing(err: std::io::Error) -> CommandError {
    CommandError::from(std::io::Error::new(
        err.kind(),
        format!("cannot run git: {err}; install git first"),
    ))
}
