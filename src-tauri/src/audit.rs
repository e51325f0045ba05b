//! Recent access: the last entries of the agent's audit log. The file is the user's own and
//! holds no secret, so it is read directly, like `stagepass audit` does.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use stagepass_core::paths;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub time: String,
    /// `token`, `credential`, `sign_in`, `refresh`, `sign_out`…
    pub event: String,
    /// `cli`, `git`, `docker`, `kube`, `tray`, `agent`…
    pub consumer: String,
    pub pid: Option<i64>,
    /// The program, from /proc when the agent could read it.
    pub program: Option<String>,
    pub profile: String,
    pub audience: Option<String>,
    pub outcome: String,
    /// The delegation (an AI agent's, a script's) the line is about: the window marks these
    /// rows so that what agents did stands apart from what people did.
    pub delegation: Option<String>,
}

/// The newest `limit` entries, newest first, optionally of one profile only. Read from the
/// newest file back, stopping when there are enough: the rotated files hold tens of MiB.
pub fn recent(data_dir: &Path, limit: usize, profile: Option<&str>) -> Vec<AuditEntry> {
    let mut newest = Vec::with_capacity(limit);
    for file in paths::audit_log_files(data_dir).iter().rev() {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for entry in text.lines().rev().filter_map(parse) {
            if profile.is_some_and(|profile| profile != entry.profile) {
                continue;
            }
            if newest.len() >= limit {
                return newest;
            }
            newest.push(entry);
        }
    }
    newest
}

fn parse(line: &str) -> Option<AuditEntry> {
    let entry: Value = serde_json::from_str(line).ok()?;
    let text = |key: &str| entry[key].as_str().map(String::from);
    Some(AuditEntry {
        time: text("time")?,
        event: text("event").unwrap_or_default(),
        consumer: text("consumer").unwrap_or_default(),
        pid: entry["pid"].as_i64(),
        program: text("exe"),
        profile: text("profile").unwrap_or_default(),
        audience: text("audience"),
        outcome: text("outcome").unwrap_or_default(),
        delegation: text("delegation"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delegations_lines_name_it_and_a_persons_do_not() {
        let agent = parse(r#"{"time":"2026-12-03T10:00:00Z","event":"proxy_request","consumer":"delegation","delegation":"claude","profile":"","outcome":"ok"}"#).unwrap();
        assert_eq!(agent.delegation.as_deref(), Some("claude"));
        let person = parse(r#"{"time":"2026-12-03T10:00:01Z","event":"token","consumer":"git","profile":"corp","outcome":"ok"}"#).unwrap();
        assert_eq!(person.delegation, None);
    }

    #[test]
    fn newest_first_across_rotation_with_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let files = paths::audit_log_files(dir.path());
        let [.., rotated, current] = files.as_slice() else {
            panic!("at least two files")
        };
        let line = |n: u32, profile: &str| {
            format!(
                r#"{{"time":"2026-11-22T10:00:{n:02}Z","event":"token","consumer":"git","pid":{n},"exe":"/usr/bin/git","profile":"{profile}","outcome":"ok"}}"#
            )
        };
        let old: Vec<_> = (0..3).map(|n| line(n, "corp")).collect();
        std::fs::write(rotated, old.join("\n") + "\n").unwrap();
        let new: Vec<_> = (3..6)
            .map(|n| line(n, if n == 4 { "home" } else { "corp" }))
            .collect();
        std::fs::write(current, new.join("\n") + "\nnot json\n").unwrap();

        let entries = recent(dir.path(), 4, None);
        let pids: Vec<_> = entries.iter().map(|e| e.pid.unwrap()).collect();
        assert_eq!(pids, [5, 4, 3, 2]);
        assert_eq!(entries[0].program.as_deref(), Some("/usr/bin/git"));
        let corp: Vec<_> = recent(dir.path(), 50, Some("corp"))
            .iter()
            .map(|e| e.pid.unwrap())
            .collect();
        assert_eq!(corp, [5, 3, 2, 1, 0]);
        assert!(recent(&dir.path().join("none"), 50, None).is_empty());
    }
}
