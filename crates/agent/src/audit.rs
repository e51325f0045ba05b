//! The audit log: one JSON line per credential hand-out, sign-in, refresh and sign-out.
//!
//! Never the token: only a short fingerprint (the first 12 hex digits of its SHA-256), enough
//! to match a line with a token seen in a server log. The file is 0600 in the data dir and
//! rotates at [`MAX_BYTES`], keeping [`paths::AUDIT_GENERATIONS`] previous files. Fields a
//! caller chooses are bounded, so no line grows with what a caller sends.

use std::fs::File;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;
use sha2::{Digest, Sha256};
use stagepass_core::paths;
use stagepass_proto::DelegationKind;

use tokio::sync::oneshot;

use crate::ancestry::{self, OsProcesses, ProcessTable};
#[cfg(unix)]
use crate::delivery::{self, Delivery, Finisher, Handoff};
use crate::io_thread::{Batch, IoThread, Refused};

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
    /// The delegation the line is about (a remote key's too): its name, never its key.
    /// `stagepass audit --delegation NAME` selects on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegation: Option<String>,
}

impl Caller {
    /// Reads the process table (/proc on Linux): blocking, so off the event loop
    /// ([`AuditLog::record_request`]).
    pub(crate) fn from_peer(
        table: &dyn ProcessTable,
        client: &str,
        pid: Option<i32>,
        uid: Option<u32>,
    ) -> Caller {
        let mut caller = Caller::unresolved(client, pid, uid);
        // Only for helpers: `stagepass token` is itself the consumer, and the extra reads
        // would sit on its hot path.
        if let Some((parent, exe)) = pid
            .filter(|_| matches!(caller.consumer.as_str(), "git" | "docker" | "kube"))
            .and_then(|pid| ancestry::invoker(table, pid))
        {
            caller.parent_pid = Some(parent);
            caller.parent_exe = exe;
        }
        caller.exe = pid.and_then(|pid| table.executable(pid));
        caller
    }

    /// What the transport says, without the executables the process table would add.
    pub(crate) fn unresolved(client: &str, pid: Option<i32>, uid: Option<u32>) -> Caller {
        // Clients name themselves "stagepass-git 0.1.0": the consumer is the part after the
        // prefix.
        let name = client.split_whitespace().next().unwrap_or("unknown");
        Caller {
            consumer: name.strip_prefix("stagepass-").unwrap_or(name).to_string(),
            pid,
            uid,
            ..Caller::default()
        }
    }

    /// A caller on the far side of a port forward, known only by the remote key it
    /// presented (`name` empty: a key the agent does not know).
    pub(crate) fn remote(name: &str) -> Caller {
        Caller {
            consumer: "remote".into(),
            remote_key: (!name.is_empty()).then(|| name.to_string()),
            delegation: (!name.is_empty()).then(|| name.to_string()),
            ..Caller::default()
        }
    }

    /// A caller known only by the delegation key it presented: a remote key's far side, or
    /// a program on this machine (`delegate`, `exec`).
    pub(crate) fn delegation(name: &str, kind: DelegationKind) -> Caller {
        match kind {
            DelegationKind::Remote => Caller::remote(name),
            DelegationKind::Delegate | DelegationKind::Exec => Caller {
                consumer: "delegation".into(),
                delegation: (!name.is_empty()).then(|| name.to_string()),
                ..Caller::default()
            },
        }
    }

    /// This caller, on a line about delegation `name` (it made or revoked it).
    pub(crate) fn about_delegation(&self, name: &str) -> Caller {
        Caller {
            delegation: Some(name.to_string()),
            ..self.clone()
        }
    }

    /// The agent itself (proactive refreshes).
    pub(crate) fn agent() -> Caller {
        Caller {
            consumer: "agent".into(),
            pid: Some(std::process::id() as i32),
            #[cfg(unix)]
            uid: Some(paths::current_uid()),
            ..Caller::default()
        }
    }
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

/// Who is on the other end of an IPC connection, as far as it is known yet: what the
/// transport said, until the writer thread has read the process table once for the
/// connection.
#[derive(Debug, Clone)]
pub(crate) enum Who {
    Peer {
        client: String,
        pid: Option<i32>,
        uid: Option<u32>,
    },
    Known(Caller),
}

impl Who {
    /// Reads the process table where the caller is not known yet: blocking, so on the
    /// writer thread.
    fn resolve(self, table: &dyn ProcessTable) -> Caller {
        match self {
            Who::Peer { client, pid, uid } => Caller::from_peer(table, &client, pid, uid),
            Who::Known(caller) => caller,
        }
    }

    fn unresolved(self) -> Caller {
        match self {
            Who::Peer { client, pid, uid } => Caller::unresolved(&client, pid, uid),
            Who::Known(caller) => caller,
        }
    }
}

/// An [`Entry`] whose caller the writer thread fills in: an IPC request's line, carried
/// across threads.
#[derive(Debug)]
pub(crate) struct RequestEntry {
    pub event: &'static str,
    pub profile: String,
    pub audience: Option<String>,
    pub kind: Option<&'static str>,
    pub fingerprint: Option<String>,
    pub outcome: String,
    /// For a line about a delegation (made or revoked by this caller): its name.
    pub delegation: Option<String>,
}

impl RequestEntry {
    /// The line for `caller`, the caller returned for the connection's next request.
    fn line(&self, caller: Caller, now: SystemTime) -> (Option<Vec<u8>>, Caller) {
        let about = self
            .delegation
            .as_deref()
            .map(|name| caller.about_delegation(name));
        let line = line(
            &Entry {
                event: self.event,
                caller: about.as_ref().unwrap_or(&caller),
                profile: &self.profile,
                audience: self.audience.as_deref(),
                kind: self.kind,
                fingerprint: self.fingerprint.clone(),
                outcome: &self.outcome,
            },
            now,
        );
        (line, caller)
    }
}

/// `text` cut to `MAX` characters, saying how long it was.
pub(crate) fn bounded<const MAX: usize, S: serde::Serializer>(
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
    let mut fingerprint = String::from("sha256:");
    fingerprint.push_str(&stagepass_core::hex::lower(&digest[..6]));
    fingerprint
}

/// Lines waiting for the writer thread. Hand-outs wait for room (the queue is never the reason
/// a line is lost); lines recorded where nobody can wait (refreshes, the proxy's counts) are
/// counted and noted instead, should the disk stall for this many lines.
const QUEUED_LINES: usize = 4096;

/// The audit log's front: lines are serialized on the caller and written by one thread, in
/// batches, in the order they were recorded.
pub(crate) struct AuditLog {
    path: PathBuf,
    writer: IoThread<Writer>,
    /// Lines refused by a full queue since the last note of them.
    dropped: AtomicU64,
}

impl AuditLog {
    pub(crate) fn new(data_dir: &Path) -> AuditLog {
        AuditLog::with_limit(data_dir, MAX_BYTES)
    }

    fn with_limit(data_dir: &Path, max_bytes: u64) -> AuditLog {
        let file = AuditFile {
            path: paths::audit_log_path(data_dir),
            generations: paths::audit_log_files(data_dir),
            file: None,
            max_bytes,
        };
        AuditLog {
            path: file.path.clone(),
            writer: IoThread::start(
                "audit-writer",
                QUEUED_LINES,
                Writer {
                    file,
                    #[cfg(unix)]
                    runtime: tokio::runtime::Handle::try_current().ok(),
                },
            ),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues `entry` and goes on; it reaches the file in order with every other line.
    /// Failing to audit is logged, never fatal: the user must not lose access because the
    /// disk is full.
    pub(crate) fn record(&self, entry: &impl Serialize, now: SystemTime) {
        let Some(line) = line(entry, now) else {
            return;
        };
        self.note_dropped();
        match self.writer.try_submit(Pending::Line(line)) {
            Ok(_) => {}
            Err(Refused::Full(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::error!(
                        "the audit log {} is not keeping up; counting the lines it misses",
                        self.path.display()
                    );
                }
            }
            Err(Refused::Closed(_)) => {
                tracing::warn!("an audit line came after the agent's stop; not written");
            }
        }
    }

    /// Queues an IPC request's line and returns once it is written (or failed to be), along
    /// with every line before it: a hand-out is answered after its line, so whoever reads
    /// the log after the answer finds it. The event loop goes on meanwhile; only this caller
    /// waits. The writer thread reads the caller from the process table in the same turn (one
    /// trip to the thread per request, where a lookup thread and the writer took two) and
    /// returns it, for the connection's later requests.
    pub(crate) async fn record_request(
        &self,
        who: Who,
        entry: RequestEntry,
        now: SystemTime,
    ) -> Caller {
        self.note_dropped();
        let (written, caller) = oneshot::channel();
        let pending = Pending::Request {
            who: who.clone(),
            entry,
            now,
            reply: Reply::Written(written),
        };
        if !self.queue(pending).await {
            tracing::warn!("an audit line came after the agent's stop; not written");
            return who.unresolved();
        }
        // Only a thread gone mid-batch drops the sender; its items are gone with it.
        caller.await.unwrap_or_else(|_| who.unresolved())
    }

    /// Queues an IPC request's line together with its answer, which the writer thread sends
    /// right after the line is written (see `delivery.rs`), and returns once queued: the
    /// connection waits for the handoff only before its next answer. `None` once the writer
    /// stopped (the agent's way out): then nothing is sent, as nothing was audited.
    #[cfg(unix)]
    pub(crate) async fn record_and_deliver(
        &self,
        who: Who,
        entry: RequestEntry,
        now: SystemTime,
        answer: Delivery,
    ) -> Option<Handoff> {
        self.note_dropped();
        let (handoff, finisher) = delivery::handoff(who.clone().unresolved());
        let pending = Pending::Request {
            who,
            entry,
            now,
            reply: Reply::Deliver(answer, finisher),
        };
        if !self.queue(pending).await {
            tracing::warn!("a hand-out came after the agent's stop; not answered");
            return None;
        }
        Some(handoff)
    }

    /// Queues a request's line; resolves to whether it was queued (not once the writer
    /// stopped). It is queued here, before the first poll; only when the queue is full is
    /// there a wait, boxed: held across an await in the caller, its state (the line, ~0.5 KB,
    /// more than once) would be carried and copied by every connection's task, for a queue
    /// that mostly has room.
    fn queue(&self, pending: Pending) -> impl Future<Output = bool> + Send + '_ {
        let queued = match self.writer.try_submit(pending) {
            Ok(()) => Ok(true),
            Err(Refused::Closed(_)) => Ok(false),
            Err(Refused::Full(pending)) => Err(Box::pin(self.writer.submit(pending))),
        };
        async move {
            match queued {
                Ok(queued) => queued,
                Err(wait) => wait.await.is_ok(),
            }
        }
    }

    /// Writes every line recorded so far and stops the writer: the agent's way out.
    pub(crate) fn close(&self) {
        self.note_dropped();
        self.writer.close();
    }

    /// Says in the log itself how many lines a full queue cost, once there is room again.
    fn note_dropped(&self) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped == 0 {
            return;
        }
        let outcome = format!("{dropped} audit lines were not written: the disk did not keep up");
        let note = line(
            &Entry {
                event: "audit_dropped",
                caller: &Caller::agent(),
                profile: "",
                audience: None,
                kind: None,
                fingerprint: None,
                outcome: &outcome,
            },
            SystemTime::now(),
        );
        if let Some(note) = note
            && self.writer.try_submit(Pending::Line(note)).is_err()
        {
            self.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
    }
}

/// One JSON line: the entry stamped with `now`.
fn line(entry: &impl Serialize, now: SystemTime) -> Option<Vec<u8>> {
    #[derive(Serialize)]
    struct Line<'a, T> {
        time: &'a str,
        #[serde(flatten)]
        entry: &'a T,
    }
    let time = time::OffsetDateTime::from(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    match serde_json::to_vec(&Line { time: &time, entry }) {
        Ok(mut line) => {
            line.push(b'\n');
            Some(line)
        }
        Err(err) => {
            tracing::error!("cannot write an audit line: {err}");
            None
        }
    }
}

/// What the writer thread is given.
#[expect(
    clippy::large_enum_variant,
    reason = "requests are most of the queue: boxing them would cost an allocation each to \
              shrink the rarer lines"
)]
enum Pending {
    /// Serialized by whoever recorded it.
    Line(Vec<u8>),
    /// Serialized here, once its caller is known; `reply` goes out after the write.
    Request {
        who: Who,
        entry: RequestEntry,
        now: SystemTime,
        reply: Reply,
    },
}

/// What the writer does for a request once its line is written.
enum Reply {
    /// Tells the connection's task, which sends the answer.
    Written(oneshot::Sender<Caller>),
    /// Sends the answer itself.
    #[cfg(unix)]
    Deliver(Delivery, Finisher),
}

impl Reply {
    fn send(self, caller: Caller, #[cfg(unix)] runtime: Option<&tokio::runtime::Handle>) {
        match self {
            Reply::Written(written) => {
                let _ = written.send(caller);
            }
            #[cfg(unix)]
            Reply::Deliver(answer, finisher) => finisher.deliver(answer, caller, runtime),
        }
    }
}

/// The writer thread's side of the log.
struct Writer {
    file: AuditFile,
    /// Where an answer a client is slow to take is finished (see `delivery.rs`).
    #[cfg(unix)]
    runtime: Option<tokio::runtime::Handle>,
}

impl Batch for Writer {
    type Item = Pending;

    fn handle(&mut self, batch: Vec<Pending>) {
        let mut lines = Vec::with_capacity(batch.len());
        let mut answers = Vec::new();
        for pending in batch {
            match pending {
                Pending::Line(line) => lines.push(line),
                Pending::Request {
                    who,
                    entry,
                    now,
                    reply,
                } => {
                    let (line, caller) = entry.line(who.resolve(&OsProcesses), now);
                    lines.extend(line);
                    answers.push((reply, caller));
                }
            }
        }
        self.file.write(&lines);
        // After the write: whoever reads the log after the answer finds the line.
        for (reply, caller) in answers {
            reply.send(
                caller,
                #[cfg(unix)]
                self.runtime.as_ref(),
            );
        }
    }
}

/// The file itself, owned by the writer thread: the open file and its size, tracked here
/// so a batch costs one write, no stat.
struct AuditFile {
    path: PathBuf,
    /// Oldest first, `path` last: [`paths::audit_log_files`].
    generations: Vec<PathBuf>,
    file: Option<(File, u64)>,
    max_bytes: u64,
}

impl AuditFile {
    /// Failing to audit is logged, never fatal (see [`AuditLog::record`]).
    fn write(&mut self, lines: &[Vec<u8>]) {
        if let Err(err) = self.append(lines) {
            tracing::error!("cannot write the audit log {}: {err}", self.path.display());
        }
    }

    /// Appends `lines` with as few writes as rotation allows: one per file they land in.
    fn append(&mut self, lines: &[Vec<u8>]) -> std::io::Result<()> {
        let (mut file, mut size) = match self.file.take() {
            Some(open) => open,
            None => {
                // The file is 0600; a missing dir is created private, a dir others can write
                // (where the file could be swapped) is refused.
                if let Some(dir) = self.path.parent() {
                    paths::ensure_data_dir(dir)?;
                }
                let file = open(&self.path)?;
                let size = file.metadata()?.len();
                (file, size)
            }
        };
        let mut pending: Vec<u8> = Vec::new();
        for line in lines {
            if size + (pending.len() + line.len()) as u64 > self.max_bytes {
                file.write_all(&pending)?;
                pending.clear();
                self.rotate()?;
                file = open(&self.path)?;
                size = 0;
            }
            pending.extend_from_slice(line);
        }
        file.write_all(&pending)?;
        size += pending.len() as u64;
        self.file = Some((file, size));
        Ok(())
    }

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
    let mut options = paths::private_open_options();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    // No O_NOFOLLOW on Windows: the link is looked for first (in the user's profile, where
    // no other user can plant one in between).
    #[cfg(windows)]
    if std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink()) {
        return Err(symlink_refused(path));
    }
    #[cfg(unix)]
    let opened = options.open(path).map_err(|err| {
        if err.raw_os_error() == Some(libc::ELOOP) {
            symlink_refused(path)
        } else {
            err
        }
    });
    #[cfg(windows)]
    let opened = options.open(path);
    opened
}

fn symlink_refused(path: &Path) -> std::io::Error {
    std::io::Error::other(format!(
        "{} is a symbolic link; the audit log is never written through one: \
         remove the link (the agent then starts a new log)",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::ancestry::OsProcesses;

    #[test]
    fn helpers_are_recorded_with_the_program_that_ran_them() {
        let me = std::process::id() as i32;
        let git = Caller::from_peer(&OsProcesses, "stagepass-git 0.1.0", Some(me), Some(0));
        assert_eq!(git.consumer, "git");
        // The test runner's parent (cargo), or the first non-shell above it.
        assert!(git.parent_pid.is_some_and(|pid| pid > 1), "{git:?}");
        assert!(git.parent_exe.is_some());
        // `stagepass token` is the consumer itself: no parent lookup on its hot path.
        let cli = Caller::from_peer(&OsProcesses, "stagepass-cli 0.1.0", Some(me), Some(0));
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

    /// 2026-11-22T10:00:00Z.
    fn ten_o_clock() -> SystemTime {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_341_600)
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn lines_are_json_without_the_token_and_the_file_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let log = AuditLog::new(&tmp.path().join("data"));
        let caller = Caller::from_peer(
            &OsProcesses,
            "stagepass-git 0.1.0",
            Some(std::process::id() as i32),
            Some(1000),
        );
        // The hand-out's way: once it returns, the line is in the file.
        log.record_request(Who::Known(caller), request_entry(), ten_o_clock())
            .await;
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

    fn request_entry() -> RequestEntry {
        RequestEntry {
            event: "token",
            profile: "corp".into(),
            audience: None,
            kind: Some("access"),
            fingerprint: Some(fingerprint("eyJsecret")),
            outcome: "ok".into(),
            delegation: None,
        }
    }

    #[tokio::test]
    async fn a_request_line_names_the_caller_read_from_proc_and_is_written_when_answered() {
        let tmp = tempfile::tempdir().unwrap();
        let log = AuditLog::new(tmp.path());
        let me = std::process::id() as i32;
        let who = Who::Peer {
            client: "stagepass-git 0.1.0".into(),
            pid: Some(me),
            uid: Some(1000),
        };
        let caller = log
            .record_request(who, request_entry(), ten_o_clock())
            .await;
        // Written before the answer: the line is in the file now.
        let written = lines(&paths::audit_log_path(tmp.path()));
        let [line] = written.as_slice() else {
            panic!("one line: {written:?}");
        };
        let exe = std::env::current_exe().unwrap().display().to_string();
        assert_eq!(line["exe"], exe.as_str());
        assert_eq!(line["consumer"], "git");
        assert!(line["parent_exe"].is_string(), "a helper's parent is named");
        assert_eq!(line["fingerprint"], fingerprint("eyJsecret"));
        assert_eq!(caller.exe.as_deref(), Some(exe.as_str()));

        // The connection's next request reuses the caller; a delegation's line names it.
        let about = RequestEntry {
            delegation: Some("bot".into()),
            ..request_entry()
        };
        let again = log
            .record_request(Who::Known(caller), about, ten_o_clock())
            .await;
        assert_eq!(
            again.delegation, None,
            "the connection's caller stays as it was"
        );
        let written = lines(&paths::audit_log_path(tmp.path()));
        assert_eq!(written[1]["delegation"], "bot");
        assert_eq!(written[1]["exe"], exe.as_str());

        // Stopped: the caller is still named by what the transport said.
        log.close();
        let who = Who::Peer {
            client: "stagepass-cli 0.1.0".into(),
            pid: Some(me),
            uid: Some(1000),
        };
        let stopped = log
            .record_request(who, request_entry(), ten_o_clock())
            .await;
        assert_eq!((stopped.consumer.as_str(), stopped.exe), ("cli", None));
        assert_eq!(lines(&paths::audit_log_path(tmp.path())).len(), 2);
    }

    #[test]
    fn no_line_is_lost_on_close_and_they_keep_their_order() {
        let tmp = tempfile::tempdir().unwrap();
        let log = AuditLog::new(tmp.path());
        let caller = Caller::agent();
        for n in 0..2000 {
            log.record(&entry(&caller, &n.to_string()), ten_o_clock());
        }
        log.close();
        let outcomes: Vec<String> = lines(&paths::audit_log_path(tmp.path()))
            .iter()
            .map(|line| line["outcome"].as_str().unwrap().to_string())
            .collect();
        let expected: Vec<String> = (0..2000).map(|n: u32| n.to_string()).collect();
        assert_eq!(outcomes, expected);
        // Stopped: a straggler is refused, not written half way through a stop.
        log.record(&entry(&caller, "late"), ten_o_clock());
        assert_eq!(lines(&paths::audit_log_path(tmp.path())).len(), 2000);
    }

    #[test]
    fn a_batch_is_one_write_per_file_and_still_rotates() {
        let tmp = tempfile::tempdir().unwrap();
        let mut file = AuditFile {
            path: paths::audit_log_path(tmp.path()),
            generations: paths::audit_log_files(tmp.path()),
            file: None,
            max_bytes: 1000,
        };
        let line = line(&entry(&Caller::agent(), "ok"), ten_o_clock()).unwrap();
        // 100 lines of ~200 bytes in one batch: five to a file, twenty files' worth.
        file.append(&vec![line.clone(); 100]).unwrap();
        let current = std::fs::metadata(paths::audit_log_path(tmp.path()))
            .unwrap()
            .len();
        let previous = std::fs::metadata(tmp.path().join("audit.jsonl.1"))
            .unwrap()
            .len();
        assert!(current <= 1000 && previous <= 1000, "{current} {previous}");
        assert_eq!(
            previous % line.len() as u64,
            0,
            "no line split across files"
        );
        let files = paths::audit_log_files(tmp.path());
        assert!(files.iter().all(|file| file.exists()), "{files:?}");
        assert!(!tmp.path().join("audit.jsonl.9").exists());
    }

    #[test]
    fn the_log_rotates_and_stays_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let log = AuditLog::with_limit(tmp.path(), 1000);
        let caller = Caller::agent();
        for _ in 0..100 {
            log.record(&entry(&caller, "ok"), ten_o_clock());
        }
        log.close();
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
        let mut file = AuditFile {
            path: paths::audit_log_path(&data),
            generations: paths::audit_log_files(&data),
            file: None,
            max_bytes: MAX_BYTES,
        };
        let err = file.append(&[b"{}\n".to_vec()]).unwrap_err().to_string();
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
