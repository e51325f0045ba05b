//! `stagepass setup git|docker|kube [--undo]`: points the tools at stagepass, idempotently,
//! and shows what changed.

mod docker;
mod git;
mod kube;

use stagepass_core::config::Config;
use stagepass_core::paths;
use stagepass_core::platform::{self, Os};

use crate::cli::{SetupArgs, SetupTool};
use crate::error::CommandError;

pub fn run(args: SetupArgs) -> Result<(), CommandError> {
    match args.tool {
        SetupTool::Git => git::run(&load_config()?, args.undo),
        SetupTool::Docker => docker::run(&load_config()?, args.undo),
        SetupTool::Kube(profile) => {
            kube::run(&load_config()?, profile.profile.as_deref(), args.undo)
        }
    }
}

fn load_config() -> Result<Config, CommandError> {
    Ok(Config::load(&paths::config_file())?)
}

/// One line of the diff a setup run prints.
fn show(sign: char, what: &str) -> Result<(), CommandError> {
    outln!("{sign} {what}");
    Ok(())
}

/// The command the tools run: this executable by absolute path, so it works whatever PATH the
/// tool runs with.
fn this_program() -> Result<String, CommandError> {
    let exe = std::env::current_exe()?;
    exe.to_str()
        .map(String::from)
        .ok_or_else(|| CommandError::usage(format!("the path {} is not UTF-8", exe.display())))
}

/// Whether `name` resolves to an executable on PATH (`name.exe` on Windows).
fn on_path(name: &str) -> bool {
    platform::find_on_path(name).is_some()
}

/// Makes the helper `name` runnable the way git or docker run it, where the platform has no
/// install script making it: on Windows it is created beside this program as a hard link (a
/// copy where the volume has none, e.g. FAT or some network shares), since symlinks there need
/// a privilege or developer mode. Returns whether it is on PATH afterwards. Elsewhere
/// scripts/install makes symlinks, and a missing one is left to the caller to name.
fn ensure_helper(name: &str) -> Result<bool, CommandError> {
    if on_path(name) {
        return Ok(true);
    }
    if Os::CURRENT != Os::Windows {
        return Ok(false);
    }
    let program = std::env::current_exe()?;
    let Some(dir) = program.parent() else {
        return Ok(false);
    };
    let helper = dir.join(Os::CURRENT.program_file(name));
    if !helper.is_file() {
        let how = match std::fs::hard_link(&program, &helper) {
            Ok(()) => "hard link",
            Err(_) => {
                std::fs::copy(&program, &helper)?;
                "copy"
            }
        };
        show(
            '+',
            &format!("{} ({how} of {})", helper.display(), program.display()),
        )?;
    }
    if on_path(name) {
        return Ok(true);
    }
    errln!(
        "warning: {} is not on PATH, so `{name}` is not found there: add that directory to \
         PATH (Settings > System > About > Advanced system settings > Environment Variables)",
        dir.display()
    );
    Ok(false)
}
