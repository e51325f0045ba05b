//! `setup docker`: `credHelpers` entries in docker's config.json for every `[[docker]]` entry.
//! Other keys of the file are kept as they are.

use std::path::PathBuf;

use stagepass_core::config::Config;

use stagepass_core::platform::Os;
use stagepass_core::tool_files::{DOCKER_HELPER, ToolEnv};

use super::{ensure_helper, show};
use crate::error::CommandError;

const HELPER: &str = "stagepass";

pub fn run(config: &Config, undo: bool) -> Result<(), CommandError> {
    if config.docker.is_empty() {
        return Err(CommandError::config(format!(
            "{} has no [[docker]] entry: add one (registry, profile) first",
            config.path.display()
        )));
    }
    let path = docker_config_path()?;
    let mut file: serde_json::Value = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|err| {
            CommandError::config(format!(
                "{} is not valid JSON ({err}); fix it first",
                path.display()
            ))
        })?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(err) => return Err(err.into()),
    };
    let Some(object) = file.as_object_mut() else {
        return Err(CommandError::config(format!(
            "{} is not a JSON object",
            path.display()
        )));
    };
    let helpers = object
        .entry("credHelpers")
        .or_insert_with(|| serde_json::json!({}));
    let Some(helpers) = helpers.as_object_mut() else {
        return Err(CommandError::config(format!(
            "credHelpers in {} is not an object",
            path.display()
        )));
    };
    let mut changed = false;
    for entry in &config.docker {
        let registry = entry.registry.as_str();
        let current = helpers.get(registry).and_then(|value| value.as_str());
        match (undo, current) {
            (false, Some(HELPER)) => outln!("  credHelpers.{registry} = {HELPER} (unchanged)"),
            (false, _) => {
                if let Some(other) = current {
                    show('-', &format!("credHelpers.{registry} = {other}"))?;
                }
                helpers.insert(registry.into(), HELPER.into());
                show('+', &format!("credHelpers.{registry} = {HELPER}"))?;
                changed = true;
            }
            (true, Some(HELPER)) => {
                helpers.remove(registry);
                show('-', &format!("credHelpers.{registry} = {HELPER}"))?;
                changed = true;
            }
            (true, _) => {}
        }
    }
    if changed {
        write_atomically(&path, &file)?;
        outln!("  wrote {}", path.display());
    }
    // Windows: made beside this program, with its own warning when that is not on PATH.
    if !undo && !ensure_helper(DOCKER_HELPER)? && Os::CURRENT != Os::Windows {
        errln!(
            "warning: docker runs `{DOCKER_HELPER}`, which is not on PATH: link it to \
             stagepass (scripts/install does), e.g. `ln -s \"$(command -v stagepass)\" ~/.local/bin/{DOCKER_HELPER}`"
        );
    }
    Ok(())
}

/// Where docker reads its config on this platform (`tool_files`).
fn docker_config_path() -> Result<PathBuf, CommandError> {
    ToolEnv::current().docker_config_file().ok_or_else(|| {
        CommandError::usage(
            "no home directory (HOME, or USERPROFILE on Windows): set DOCKER_CONFIG",
        )
    })
}

/// A crash halfway must not leave docker with half a config: write a sibling, then rename.
fn write_atomically(path: &std::path::Path, value: &serde_json::Value) -> Result<(), CommandError> {
    let dir = path.parent().ok_or_else(|| {
        std::io::Error::other(format!("{} has no parent directory", path.display()))
    })?;
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).map_or(0o600, |meta| meta.permissions().mode() & 0o777)
    };
    let temporary = path.with_extension("json.stagepass-tmp");
    let mut text = serde_json::to_string_pretty(value).map_err(std::io::Error::from)?;
    text.push('\n');
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        // The existing file's mode is kept (docker's own default is 0600).
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let mut file = options.open(&temporary)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    Ok(())
}
