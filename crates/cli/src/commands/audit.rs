//! `stagepass audit`: who got which token, when. Reads the agent's audit log directly: it is
//! the user's own file and holds no secret, so no agent is needed.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use stagepass_core::paths;
use stagepass_core::text::one_line;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::AuditArgs;
use crate::error::CommandError;

const FOLLOW_POLL: Duration = Duration::from_millis(250);

pub fn run(args: AuditArgs) -> Result<(), CommandError> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let files = paths::audit_log_files(&paths::data_dir());
    let path = paths::audit_log_path(&paths::data_dir());
    let show = |line: &str| -> Result<(), CommandError> {
        let Ok(entry) = serde_json::from_str::<Value>(line) else {
            return Ok(());
        };
        if let Some(name) = &args.delegation
            && entry["delegation"].as_str() != Some(name.as_str())
        {
            return Ok(());
        }
        if let Some(since) = since {
            let at = entry["time"]
                .as_str()
                .and_then(|time| OffsetDateTime::parse(time, &Rfc3339).ok());
            if at.is_none_or(|at| at < since) {
                return Ok(());
            }
        }
        if args.json {
            outln!("{line}");
        } else {
            outln!("{}", describe(&entry));
        }
        Ok(())
    };
    for file in files {
        if let Ok(text) = std::fs::read_to_string(&file) {
            text.lines().try_for_each(show)?;
        }
    }
    if args.follow {
        follow(&path, show)?;
    } else if !path.exists() && !args.json {
        errln!("no audit log yet at {}", path.display());
    }
    Ok(())
}

/// Prints lines appended after the current end, reopening the file when it rotates.
fn follow(
    path: &Path,
    mut show: impl FnMut(&str) -> Result<(), CommandError>,
) -> Result<(), CommandError> {
    let open = |from_end: bool| -> std::io::Result<Option<(BufReader<std::fs::File>, u64)>> {
        match std::fs::File::open(path) {
            Ok(mut file) => {
                let inode = file_id(&file.metadata()?);
                if from_end {
                    file.seek(SeekFrom::End(0))?;
                }
                Ok(Some((BufReader::new(file), inode)))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    };
    let mut current = open(true)?;
    let mut line = String::new();
    loop {
        if let Some((reader, inode)) = current.as_mut() {
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    break;
                }
                if line.ends_with('\n') {
                    show(line.trim_end())?;
                }
            }
            let rotated = std::fs::metadata(path).map(|meta| file_id(&meta)).ok() != Some(*inode);
            if rotated {
                current = open(false)?;
                continue;
            }
        } else {
            current = open(false)?;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// `30m`, `2h`, `7d`, `45s`, or an RFC 3339 time.
fn parse_since(text: &str) -> Result<OffsetDateTime, CommandError> {
    if let Ok(time) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(time);
    }
    let seconds = crate::output::parse_span(text).ok_or_else(|| {
        CommandError::usage(format!(
            "--since {text}: use a duration like 30m, 2h, 7d, or a time like 2026-11-22T10:00:00Z"
        ))
    })?;
    Ok(OffsetDateTime::now_utc() - time::Duration::seconds(seconds as i64))
}

fn describe(entry: &Value) -> String {
    // One line per entry: a field (a remote caller's profile name) cannot start another.
    let field = |key: &str| one_line(entry[key].as_str().unwrap_or("-")).into_owned();
    let pid = entry["pid"]
        .as_i64()
        .map_or_else(|| "-".to_string(), |pid| pid.to_string());
    format!(
        "{}  {:<14} {:<6} pid {:<7} {:<28} {:<12} {:<6} {:<20} {}",
        field("time").replace('T', " "),
        field("event"),
        field("consumer"),
        pid,
        field("exe"),
        field("profile"),
        field("kind"),
        field("fingerprint"),
        outcome(entry, &field),
    )
}

/// The outcome, with the delegation and, for its proxied requests, what it asked for.
fn outcome(entry: &Value, field: &impl Fn(&str) -> String) -> String {
    let mut text = String::new();
    if entry["delegation"].is_string() {
        text.push_str(&format!("[{}] ", field("delegation")));
    }
    if entry["method"].is_string() {
        let status = entry["status"]
            .as_u64()
            .map_or_else(|| "-".to_string(), |status| status.to_string());
        text.push_str(&format!(
            "{} {} {} -> {status}: ",
            field("method"),
            field("route"),
            field("path")
        ));
    }
    if entry["tool"].is_string() {
        text.push_str(&format!("MCP tool {}: ", field("tool")));
    }
    text.push_str(&field("outcome"));
    text
}

/// What tells a rotated log from the one being followed: the inode on Unix; on Windows the
/// creation time (a rotation renames the file away and the agent creates a new one).
#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(windows)]
fn file_id(meta: &std::fs::Metadata) -> u64 {
    std::os::windows::fs::MetadataExt::creation_time(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_durations_and_times() {
        let now = OffsetDateTime::now_utc();
        let ten_minutes = parse_since("10m").unwrap();
        assert!(
            (now - ten_minutes - time::Duration::minutes(10)).abs() < time::Duration::seconds(5)
        );
        assert_eq!(
            parse_since("2026-11-22T10:00:00Z").unwrap(),
            OffsetDateTime::parse("2026-11-22T10:00:00Z", &Rfc3339).unwrap()
        );
        assert!(parse_since("yesterday").is_err());
    }
}
