//! The audit log: one JSON line per credential hand-out, sign-in, refresh and sign-out.
//!
//! Never the token: only a short fingerprint (the first 12 hex digits of its SHA-256), enough
//! to match a line with a token seen in a server log. The file is 0600 in the data dir and
//! rotates at [`MAX_BYTES`], keeping [`paths::AUDIT_GENERATIONS`] previous files. Fields a
//! caller chooses are bounded, so no line grows with what a caller sends.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use sha2::{Digest, Sha256};
use stagepass_core::paths;

const MAX_BYTES: u64 = 4 << 20;

/// Characters kept of a profile name a caller asked for, and of an outcome (which may quote
/// what a caller sent).
const MAX_PROFILE_CHARS: usize = 128;
const MAX_OUTCOME_CHARS: usize = 256;

/// Who asked, from the socket's peer credentials.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Caller {
    /// What kind of client: `cli`, `git`, `docker`, `kube`, `proxy`, `remote`, `agent`.
    pub consumer: String,
    pub pid: Option<i32>,
    pub uid: Option<u32>,
    /// The caller's executable, read from /proc when available.
    pub exe: Option<String>,
    /// For the credential helpers, the program that ran the helper (git, docker, kubectl):
    /// the helper is only a messenger, its parent is who gets the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_pid: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_exe: Option<String>,
    /// For consumer `remote`: the name of the remote key used (never the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_key: Option<String>,
}

impl Caller {
    pub(crate) fn from_peer(client: &str, pid: Option<i32>, uid: u32) -> Caller {
        // Clients name themselves "stagepass-git 0.1.0": the consumer is the part after the
        // prefix.
        let name = client.split_whitespace().next().unwrap_or("unknown");
        let consumer = name.strip_prefix("stagepass-").unwrap_or(name).to_string();
        // Only for helpers: `stagepass token` is itself the consumer, and the extra /proc
        // reads would sit on its hot path.
        let parent_pid = pid
            .filter(|_| matches!(consumer.as_str(), "git" | "docker" | "kube"))
            .and_then(parent_of);
        Caller {
            consumer,
            pid,
            uid: Some(uid),
            exe: pid.and_then(executable),
            parent_pid,
            parent_exe: parent_pid.and_then(executable),
            remote_key: None,
        }
    }

    /// A caller on the far side of a port forward, known only by the remote key it
    /// presented (`name` empty: a key the agent does not know).
    pub(crate) fn remote(name: &str) -> Caller {
        Caller {
            consumer: "remote".into(),
            remote_key: (!name.is_empty()).then(|| name.to_string()),
            ..Caller::default()
        }
    }

    /// The agent itself (proactive refreshes).
    pub(crate) fn agent() -> Caller {
        Caller {
            consumer: "agent".into(),
            pid: Some(std::process::id() as i32),
            uid: Some(paths::current_uid()),
            ..Caller::default()
        }
    }
}

fn executable(pid: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|path| path.display().to_string())
}

/// The parent pid from /proc/PID/stat. The command name before it may hold spaces and
/// parentheses, so the fields are read after the last `)`.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, fields) = stat.rsplit_once(')')?;
    fields.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Debug, Serialize)]
pub(crate) struct Entry<'a> {
    pub event: &'a str,
    #[serde(flatten)]
    pub caller: &'a Caller,
    #[serde(serialize_with = "bounded::<MAX_PROFILE_CHARS, _>")]
    pub profile: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// `ok`, or the error message.
    #[serde(serialize_with = "bounded::<MAX_OUTCOME_CHARS, _>")]
    pub outcome: &'a str,
}

/// `text` cut to `MAX` characters, saying how long it was.
fn bounded<const MAX: usize, S: serde::Serializer>(
    text: &&str,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match text.char_indices().nth(MAX) {
        Some((end, _)) => serializer.collect_str(&format_args!(
            "{}… ({} bytes in all)",
            &text[..end],
            text.len()
        )),
        None => serializer.serialize_str(text),
    }
}

/// A short, one-way fingerprint of a token.
pub(crate) fn fingerprint(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256:{hex}")
}

pub(crate) struct AuditLog {
    path: PathBuf,
    /// Oldest first, `path` last: [`paths::audit_log_files`].
    generations: Vec<PathBuf>,
    /// The open file and its size, tracked here so a hand-out costs one write, no stat.
    file: Mutex<Option<(File, u64)>>,
    max_bytes: u64,
}

impl AuditLog {
    pub(crate) fn new(data_dir: &Path) -> AuditLog {
        AuditLog::with_limit(data_dir, MAX_BYTES)
    }

    fn with_limit(data_dir: &Path, max_bytes: u64) -> AuditLog {
        AuditLog {
            path: paths::audit_log_path(data_dir),
            generations: paths::audit_log_files(data_dir),
            file: Mutex::new(None),
            max_bytes,
        }
    }

    /// Appends `entry`. Failing to audit is logged, never fatal: the user must not lose
    /// access because the disk is full.
    pub(crate) fn record(&self, entry: &impl Serialize, now_rfc3339: &str) {
        if let Err(err) = self.append(entry, now_rfc3339) {
            tracing::error!("cannot write the audit log {}: {err}", self.path.display());
        }
    }

    fn append<T: Serialize>(&self, entry: &T, now_rfc3339: &str) -> std::io::Result<()> {
        #[derive(Serialize)]
        struct Line<'a, T> {
            time: &'a str,
            #[serde(flatten)]
            entry: &'a T,
        }
        let mut line = serde_json::to_vec(&Line {
            time: now_rfc3339,
            entry,
        })?;
        line.push(b'\n');
        let mut slot = self
            .file
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if slot.is_none() {
            // The file is 0600; a missing dir is created private, a dir others can write
            // (where the file could be swapped) is refused.
            if let Some(dir) = self.path.parent() {
                paths::ensure_data_dir(dir)?;
            }
            let file = open(&self.path)?;
            let size = file.metadata()?.len();
            *slot = Some((file, size));
        }
        let (file, size) = slot.as_mut().expect("opened above");
        if *size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
            *file = open(&self.path)?;
            *size = 0;
        }
        file.write_all(&line)?;
        *size += line.len() as u64;
        Ok(())
    }
}

impl AuditLog {
    /// Shifts every file one generation older, the oldest one out: `.7` replaces `.8`, and so
    /// on down to the current file becoming `.1`. A rename replaces a link planted under an
    /// older name rather than writing through it.
    fn rotate(&self) -> std::io::Result<()> {
        for pair in self.generations.windows(2) {
            match std::fs::rename(&pair[1], &pair[0]) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
        Ok(())
    }
}

/// Opens the log for appending, never through a symlink: one planted in its place (say by
/// another user, in a data dir in /tmp) would have the agent append to a file of their
/// choosing, with the user's rights.
fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|err| {
            if err.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other(format!(
                    "{} is a symbolic link; the audit log is never written through one: \
                     remove the link (the agent then starts a new log)",
                    path.display()
                ))
            } else {
                err
            }
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    #[test]
    fn helpers_are_recorded_with_the_program_that_ran_them() {
        let me = std::process::id() as i32;
        let git = Caller::from_peer("stagepass-git 0.1.0", Some(me), 0);
        assert_eq!(git.consumer, "git");
        assert_eq!(
            git.parent_pid,
            Some(std::os::unix::process::parent_id() as i32)
        );
        assert!(git.parent_exe.is_some());
        // `stagepass token` is the consumer itself: no parent lookup on its hot path.
        let cli = Caller::from_peer("stagepass-cli 0.1.0", Some(me), 0);
        assert_eq!((cli.parent_pid, cli.parent_exe), (None, None));
    }

    fn entry<'a>(caller: &'a Caller, outcome: &'a str) -> Entry<'a> {
        Entry {
            event: "token",
            caller,
            profile: "corp",
            audience: Some("https://backstage.example.com"),
            kind: Some("access"),
            fingerprint: Some(fingerprint("eyJsecret")),
            outcome,
        }
    }

    #[test]
    fn lines_are_json_without_the_token_and_the_file_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let log = AuditLog::new(&tmp.path().join("data"));
        let caller =
            Caller::from_peer("stagepass-git 0.1.0", Some(std::process::id() as i32), 1000);
        log.record(&entry(&caller, "ok"), "2026-11-22T10:00:00Z");
        let path = paths::audit_log_path(&tmp.path().join("data"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("eyJsecret"));
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["consumer"], "git");
        assert_eq!(line["event"], "token");
        assert_eq!(line["time"], "2026-11-22T10:00:00Z");
        assert_eq!(line["fingerprint"], fingerprint("eyJsecret"));
        assert!(line["exe"].as_str().is_some_and(|exe| !exe.is_empty()));
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn the_log_rotates_and_stays_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let log = AuditLog::with_limit(tmp.path(), 1000);
        let caller = Caller::agent();
        for _ in 0..100 {
            log.append(&entry(&caller, "ok"), "2026-11-22T10:00:00Z")
                .unwrap();
        }
        let current = std::fs::metadata(paths::audit_log_path(tmp.path()))
            .unwrap()
            .len();
        let previous = std::fs::metadata(tmp.path().join("audit.jsonl.1"))
            .unwrap()
            .len();
        assert!(current <= 1000 && previous <= 1000, "{current} {previous}");
        let files = paths::audit_log_files(tmp.path());
        assert!(files.iter().all(|file| file.exists()), "{files:?}");
        assert!(!tmp.path().join("audit.jsonl.9").exists());
    }

    #[test]
    fn what_a_caller_sends_is_bounded_in_a_line() {
        let caller = Caller::remote("");
        let huge = "p".repeat(16 << 10);
        let line = serde_json::to_string(&Entry {
            profile: &huge,
            outcome: &huge,
            ..entry(&caller, "")
        })
        .unwrap();
        assert!(line.len() < 1024, "{} bytes", line.len());
        assert!(line.contains("(16384 bytes in all)"), "{line}");
    }

    #[test]
    fn a_symlinked_log_is_refused_and_its_target_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
        let target = tmp.path().join("victim");
        std::fs::write(&target, "precious\n").unwrap();
        std::os::unix::fs::symlink(&target, paths::audit_log_path(&data)).unwrap();
        let log = AuditLog::new(&data);
        let err = log
            .append(&entry(&Caller::agent(), "ok"), "2026-11-22T10:00:00Z")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert!(err.contains("remove the link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[test]
    fn fingerprints_are_short_and_stable() {
        assert_eq!(fingerprint("a"), fingerprint("a"));
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("a").len(), "sha256:".len() + 12);
    }
}
