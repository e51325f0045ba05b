//! `stagepass setup git|docker|kube [--undo]`: points the tools at stagepass, idempotently,
//! and shows what changed.

mod docker;
mod git;
mod kube;

use stagepass_core::config::Config;
use stagepass_core::paths;

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

/// Whether `name` resolves to an executable on PATH.
fn on_path(name: &str) -> bool {
    // Windows finds programs by their `.exe` name.
    let file = format!("{name}{}", std::env::consts::EXE_SUFFIX);
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(&file).is_file()))
}
