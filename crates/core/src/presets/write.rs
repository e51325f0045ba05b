//! Adding a rendered profile to the config file without losing anything already there.

use std::path::Path;

use super::RenderedProfile;
use crate::config::Config;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// There was no config file; it now holds the profile.
    Created,
    /// The profile was appended after the existing content.
    Appended,
    /// `--force`: the old table of the same name is kept, commented out, and the new one
    /// appended.
    Replaced,
}

/// Appends `profile` to the config at `path`, creating the file when missing. An existing
/// profile of the same name is refused unless `replace`, and then commented out rather than
/// deleted. The result is checked to parse, with every other profile unchanged, before the
/// file is replaced (atomically).
pub fn add_profile(path: &Path, profile: &RenderedProfile, replace: bool) -> Result<WriteOutcome> {
    let config_error = |message: String| Error::Config {
        path: path.to_path_buf(),
        message,
    };
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(Error::io(format!("cannot read {}", path.display()), err)),
    };
    let before = match &existing {
        Some(text) => Config::parse(path, text).map_err(|err| {
            config_error(format!(
                "the config does not parse, so nothing was added; fix it first: {err}"
            ))
        })?,
        None => Config::parse(path, "")?,
    };
    let mut text = existing.clone().unwrap_or_default();
    let mut outcome = if existing.is_some() {
        WriteOutcome::Appended
    } else {
        WriteOutcome::Created
    };
    if before.profiles.contains_key(&profile.name) {
        if !replace {
            return Err(config_error(format!(
                "profile `{}` already exists; pass --force to replace it (the old table is kept, \
                 commented out), or choose another --name",
                profile.name
            )));
        }
        text = comment_out_table(&text, &profile.name).ok_or_else(|| {
            config_error(format!(
                "profile `{}` is not written as a [profiles.{}] table, so it cannot be replaced \
                 safely; remove it by hand, then run this again",
                profile.name, profile.name
            ))
        })?;
        outcome = WriteOutcome::Replaced;
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&profile.toml);
    let after = Config::parse(path, &text).map_err(|err| {
        config_error(format!(
            "adding the profile would break the config, so nothing was written: {err}"
        ))
    })?;
    let others_unchanged = before
        .profiles
        .iter()
        .filter(|(name, _)| **name != profile.name)
        .all(|(name, old)| after.profiles.get(name) == Some(old));
    if !others_unchanged || !after.profiles.contains_key(&profile.name) {
        return Err(config_error(
            "the edit would change other profiles, so nothing was written; add the profile by \
             hand (`--print` shows it)"
                .into(),
        ));
    }
    write_atomically(path, &text)?;
    Ok(outcome)
}

/// The table header a line declares, e.g. `profiles.corp` for `[ profiles . "corp" ] # x`.
fn table_header(line: &str) -> Option<String> {
    let line = line.trim();
    let inner = line.strip_prefix('[')?.split(']').next()?;
    if line.starts_with("[[") {
        return None;
    }
    Some(
        inner
            .split('.')
            .map(|part| part.trim().trim_matches('"').trim_matches('\''))
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The text with the `[profiles.NAME]` table (header to the next header) commented out, or
/// `None` when there is no such table.
fn comment_out_table(text: &str, name: &str) -> Option<String> {
    let wanted = format!("profiles.{name}");
    let mut out = String::with_capacity(text.len() + 256);
    let mut inside = false;
    let mut found = false;
    for line in text.split_inclusive('\n') {
        if let Some(header) = table_header(line) {
            inside = header == wanted;
            if inside {
                found = true;
                out.push_str("# replaced by `stagepass config init --force`:\n");
            }
        }
        if inside {
            out.push_str("# ");
        }
        out.push_str(line);
    }
    found.then_some(out)
}

fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let io = |what: &str, err| Error::io(format!("cannot {what} {}", path.display()), err);
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|err| io("create the directory of", err))?;
    }
    let temp = path.with_extension("toml.stagepass-new");
    std::fs::write(&temp, text).map_err(|err| io("write next to", err))?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(&temp, meta.permissions())
            .map_err(|err| io("copy the permissions of", err))?;
    }
    std::fs::rename(&temp, path).map_err(|err| {
        let _ = std::fs::remove_file(&temp);
        io("replace", err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(name: &str, issuer: &str) -> RenderedProfile {
        RenderedProfile {
            name: name.into(),
            toml: format!("[profiles.{name}]\nissuer = \"{issuer}\"\nclient_id = \"c\"\n"),
            guide: String::new(),
            needs_secret: false,
        }
    }

    #[test]
    fn appends_refuses_and_replaces_keeping_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.toml");
        let first = rendered("corp", "https://a.example");
        assert_eq!(
            add_profile(&path, &first, false).unwrap(),
            WriteOutcome::Created
        );
        // A comment of the user's, and a second profile.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("# my note\n");
        std::fs::write(&path, &text).unwrap();
        let home = rendered("home", "https://h.example");
        assert_eq!(
            add_profile(&path, &home, false).unwrap(),
            WriteOutcome::Appended
        );

        let again = rendered("corp", "https://b.example");
        let err = add_profile(&path, &again, false).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        assert_eq!(
            add_profile(&path, &again, true).unwrap(),
            WriteOutcome::Replaced
        );

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# issuer = \"https://a.example\""), "{text}");
        assert!(text.contains("# my note"), "{text}");
        let config = Config::load(&path).unwrap();
        assert_eq!(config.profiles["corp"].issuer(), "https://b.example");
        assert_eq!(config.profiles["home"].issuer(), "https://h.example");
    }

    #[test]
    fn a_broken_config_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[profiles.x\n").unwrap();
        let err = add_profile(&path, &rendered("corp", "https://a.example"), false).unwrap_err();
        assert!(err.to_string().contains("fix it first"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[profiles.x\n");
    }

    #[test]
    fn headers_are_recognised_in_their_spellings() {
        assert_eq!(
            table_header(" [ profiles . \"corp\" ] # x").unwrap(),
            "profiles.corp"
        );
        assert_eq!(table_header("[profiles.corp]").unwrap(), "profiles.corp");
        assert!(table_header("scopes = [\"openid\"]").is_none());
        assert!(table_header("[[array]]").is_none());
    }
}
