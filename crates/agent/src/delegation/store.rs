//! The delegations, remote keys among them: only the SHA-256 of each key is kept, with its
//! name, kind, scope, expiry and last use, in a 0600 file of the data dir, so keys outlive
//! agent restarts and a leaked file gives nothing that can be presented. (The file keeps its
//! first name, `remote-keys.json`, so keys granted before delegations existed still work.)
//!
//! A presented key is hashed once and compared with every stored digest in constant time,
//! without stopping at a match, so timing says nothing about which digest (or how much of it)
//! matched.
//!
//! The records in memory are the truth; the file follows, written by a thread of its own so
//! no request waits on an fsync. That thread always writes the newest records, so saves
//! queued together cost one write, and closing it writes whatever is still queued.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stagepass_core::paths;
use stagepass_proto::{DelegationInfo, DelegationKind, RemoteKey, RemoteKeyInfo};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use super::scope::Scope;
use crate::io_thread::{Batch, IoThread};
use crate::sync::lock;

/// Last use is written to the file at most this often per key; `remote list` asks the
/// agent, which has it to the second.
const LAST_USE_WRITE_INTERVAL: u64 = 60;
/// An expired key is kept this long (so `list` and the remote side can say "expired"),
/// then dropped when the next key is granted.
const KEEP_EXPIRED_SECS: u64 = 7 * 86_400;
const FILE_VERSION: u32 = 1;
/// Saves waiting at once. Each writes the newest records, so a full queue loses nothing: a
/// save already queued will write this change too.
const QUEUED_SAVES: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    name: String,
    /// Records written before delegations existed are remote keys.
    #[serde(default)]
    kind: DelegationKind,
    /// Hex SHA-256 of the key.
    sha256: String,
    #[serde(flatten)]
    scope: Scope,
    #[serde(default)]
    remote_port: Option<u16>,
    created_at: u64,
    expires_at: u64,
    #[serde(default)]
    last_used_at: Option<u64>,
    /// A revoked key's record keeps only its name and port (its digest is gone), so its
    /// caller hears "revoked" rather than a Host refusal; dropped like an expired one.
    #[serde(default)]
    revoked_at: Option<u64>,
    /// The last use the file holds, to throttle writes.
    #[serde(skip)]
    written_use: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    keys: Vec<Record>,
}

/// A key that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub name: String,
    pub kind: DelegationKind,
    pub scope: Scope,
    /// Unix seconds: nothing minted for it outlives this.
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Valid(Accepted),
    Expired {
        name: String,
    },
    /// Never granted, or revoked.
    Unknown,
}

/// A new key's parameters.
pub(crate) struct NewKey {
    pub name: String,
    pub kind: DelegationKind,
    pub scope: Scope,
    pub remote_port: Option<u16>,
    pub ttl_secs: u64,
}

/// The records, shared by the agent and the thread that saves them; `None` until the file
/// is first read.
type Records = Arc<Mutex<Option<Vec<Record>>>>;

/// What a save answers: `Err` says why the file could not be written.
type Saved = Result<(), String>;

pub(crate) struct Delegations {
    /// The CLIs holding `exec` delegations, whose processes get nothing but the proxy.
    pub held: super::held::Held,
    /// Requests of `ask` delegations waiting for an answer; they die with their delegation.
    pub approvals: super::approval::Approvals,
    /// Raw tokens minted for delegations: in memory only.
    pub minted: super::minted::MintedTokens,
    path: PathBuf,
    records: Records,
    saver: IoThread<KeyFile>,
}

impl Delegations {
    pub(crate) fn new(data_dir: &Path) -> Delegations {
        let path = paths::remote_keys_path(data_dir);
        let records = Records::default();
        let saver = IoThread::start(
            "remote-keys",
            QUEUED_SAVES,
            KeyFile {
                path: path.clone(),
                records: records.clone(),
            },
        );
        Delegations {
            held: Default::default(),
            approvals: Default::default(),
            minted: Default::default(),
            path,
            records,
            saver,
        }
    }

    fn with<T>(&self, apply: impl FnOnce(&mut Vec<Record>) -> T) -> T {
        let mut slot = lock(&self.records);
        let records = slot.get_or_insert_with(|| load(&self.path));
        apply(records)
    }

    /// Has the file written, and says whether it was: for changes the user asked for.
    async fn save(&self) -> Saved {
        let (reply, answer) = oneshot::channel();
        if self.saver.submit(Some(reply)).await.is_err() {
            return Err("the agent is stopping".into());
        }
        answer
            .await
            .unwrap_or_else(|_| Err("the thread that writes it stopped".into()))
    }

    /// Has the file written and goes on: for what the agent notes by itself (a last use).
    fn save_later(&self) {
        // A full queue holds a save that will write this change as well.
        let _ = self.saver.try_submit(None);
    }

    /// Writes whatever is queued and stops the saving thread: the agent's way out.
    pub(crate) fn close(&self) {
        self.saver.close();
    }

    /// Whether any key is stored (the agent then serves the listener even without routes).
    pub(crate) fn any(&self) -> bool {
        self.with(|records| !records.is_empty())
    }

    /// Mints a key: shown once, only its digest kept. Granted once the file holds it.
    pub(crate) async fn grant(&self, new: NewKey, now: u64) -> Result<(RemoteKey, Record), String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|err| format!("no randomness: {err}"))?;
        let key = RemoteKey::new(URL_SAFE_NO_PAD.encode(bytes));
        bytes.fill(0);
        let sha256 = stagepass_core::hex::lower(&digest(key.expose()));
        let info = self.with(|records| {
            records.retain(|record| {
                let ended = record.revoked_at.unwrap_or(record.expires_at);
                ended.min(record.expires_at) + KEEP_EXPIRED_SECS > now
                    && !(record.revoked_at.is_some() && record.name == new.name)
            });
            if records.iter().any(|record| record.name == new.name) {
                let (noun, command) = match new.kind {
                    DelegationKind::Remote => ("a remote key", "remote revoke"),
                    _ => ("a delegation", "delegate revoke"),
                };
                return Err(format!(
                    "{noun} named `{}` exists; revoke it first (`stagepass {command} {}`) or pick another name",
                    new.name, new.name
                ));
            }
            let record = Record {
                name: new.name,
                kind: new.kind,
                sha256: sha256.clone(),
                scope: new.scope,
                remote_port: new.remote_port,
                created_at: now,
                expires_at: now.saturating_add(new.ttl_secs),
                last_used_at: None,
                revoked_at: None,
                written_use: None,
            };
            records.push(record.clone());
            Ok(record)
        })?;
        if let Err(err) = self.save().await {
            // Not on disk, so not granted. A save of other changes may have written it in
            // the meantime: the next save drops it there too.
            self.with(|records| records.retain(|record| record.sha256 != sha256));
            self.save_later();
            return Err(err);
        }
        Ok((key, info))
    }

    /// The live records (of `kind`, or all).
    pub(crate) fn list(&self, kind: Option<DelegationKind>) -> Vec<Record> {
        self.with(|records| {
            records
                .iter()
                .filter(|record| {
                    record.revoked_at.is_none() && kind.is_none_or(|kind| record.kind == kind)
                })
                .cloned()
                .collect()
        })
    }

    /// Deletes the digest of the key named `name` (of `kind`, or any); its record, when
    /// there was one.
    pub(crate) async fn revoke(
        &self,
        name: &str,
        kind: Option<DelegationKind>,
        now: u64,
    ) -> Result<Option<Record>, String> {
        let removed = self.with(|records| {
            let record = records.iter_mut().find(|record| {
                record.name == name
                    && record.revoked_at.is_none()
                    && kind.is_none_or(|kind| record.kind == kind)
            })?;
            record.sha256.clear();
            record.revoked_at = Some(now);
            Some(record.clone())
        });
        let Some(removed) = removed else {
            return Ok(None);
        };
        // Its waiting requests are refused now, not when they time out.
        self.approvals.end(name);
        // Still refused from memory; the file keeps it until the next write.
        self.save()
            .await
            .map_err(|err| format!("revoked in the agent, but {err}"))?;
        Ok(Some(removed))
    }

    /// Adds `grant` to the live delegation `name` ("allow for this delegation"); saved before
    /// it answers. `Ok(false)`: no such live delegation, or its grants are full.
    pub(crate) async fn widen(
        &self,
        name: &str,
        grant: super::scope::Grant,
        now: u64,
    ) -> Result<bool, String> {
        let widened = self.with(|records| {
            let Some(record) = records.iter_mut().find(|record| {
                record.name == name && record.revoked_at.is_none() && now < record.expires_at
            }) else {
                return false;
            };
            let approved = &mut record.scope.approved;
            if approved.contains(&grant) {
                return true;
            }
            if approved.len() >= super::scope::MAX_GRANTS {
                return false;
            }
            approved.push(grant);
            true
        });
        if widened {
            self.save().await?;
        }
        Ok(widened)
    }

    /// Whether `name` is a live delegation at `now` (not revoked, not expired).
    pub(crate) fn live(&self, name: &str, now: u64) -> bool {
        self.with(|records| {
            records.iter().any(|record| {
                record.name == name && record.revoked_at.is_none() && now < record.expires_at
            })
        })
    }

    /// Checks a presented key, and notes its use when it is valid.
    pub(crate) fn verify(&self, presented: &str, now: u64) -> Verdict {
        let presented = digest(presented);
        let (verdict, note_use) = self.with(|records| {
            let mut found = None;
            for (index, record) in records.iter().enumerate() {
                let Some(stored) = unhex(&record.sha256) else {
                    continue;
                };
                if bool::from(stored.ct_eq(&presented)) {
                    found = Some(index);
                }
            }
            let Some(index) = found else {
                return (Verdict::Unknown, false);
            };
            let record = &mut records[index];
            if now >= record.expires_at {
                let name = record.name.clone();
                return (Verdict::Expired { name }, false);
            }
            record.last_used_at = Some(now);
            let stale = record
                .written_use
                .is_none_or(|written| now >= written + LAST_USE_WRITE_INTERVAL);
            let accepted = Accepted {
                name: record.name.clone(),
                kind: record.kind,
                scope: record.scope.clone(),
                expires_at: record.expires_at,
            };
            if stale {
                record.written_use = Some(now);
            }
            (Verdict::Valid(accepted), stale)
        });
        if note_use {
            self.save_later();
        }
        verdict
    }

    /// The forwarded ports of the stored keys, allowed in Host besides the listener's own.
    /// Expired keys' too: a port alone grants nothing, and their callers should hear that
    /// the key expired rather than that the Host is wrong.
    pub(crate) fn ports(&self) -> Vec<u16> {
        self.with(|records| {
            records
                .iter()
                .filter_map(|record| record.remote_port)
                .collect()
        })
    }
}

/// The file's records; none when it is missing or others could have written it (a digest
/// planted there would be a key someone else holds).
fn load(path: &Path) -> Vec<Record> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Vec::new();
    };
    let trusted = meta.is_file() && paths::is_private_file(&meta, 0o022);
    if !trusted {
        tracing::error!(
            "ignoring {}: not a private file of this user; remote keys must be granted again",
            path.display()
        );
        return Vec::new();
    }
    let parsed = std::fs::read(path)
        .map_err(|err| err.to_string())
        .and_then(|bytes| {
            serde_json::from_slice::<StoreFile>(&bytes).map_err(|err| err.to_string())
        });
    match parsed {
        Ok(file) if file.version == FILE_VERSION => file
            .keys
            .into_iter()
            .map(|mut record| {
                // An `exec` delegation lives only while its CLI holds a connection to the
                // agent that made it: none survives that agent.
                if record.kind == DelegationKind::Exec && record.revoked_at.is_none() {
                    record.sha256.clear();
                    record.revoked_at = Some(record.last_used_at.unwrap_or(record.created_at));
                }
                Record {
                    written_use: record.last_used_at,
                    ..record
                }
            })
            .collect(),
        Ok(file) => {
            tracing::error!(
                "ignoring {}: version {} is not {FILE_VERSION}",
                path.display(),
                file.version
            );
            Vec::new()
        }
        Err(err) => {
            tracing::error!("ignoring {}: {err}", path.display());
            Vec::new()
        }
    }
}

/// The file, written by its own thread from the newest records.
struct KeyFile {
    path: PathBuf,
    records: Records,
}

impl Batch for KeyFile {
    /// Whoever waits to hear whether the save worked.
    type Item = Option<oneshot::Sender<Saved>>;

    fn handle(&mut self, waiting: Vec<Self::Item>) {
        // One write for the whole batch: the records now hold every change they queued for.
        let saved = self
            .write()
            .map_err(|err| format!("cannot write {}: {err}", self.path.display()));
        if let Err(err) = &saved {
            tracing::warn!("{err}");
        }
        for reply in waiting.into_iter().flatten() {
            let _ = reply.send(saved.clone());
        }
    }
}

impl KeyFile {
    /// Writes every record, whole, through a temporary file (0600) and a rename.
    fn write(&self) -> std::io::Result<()> {
        // Serialized under the lock (microseconds); written without it.
        let text = {
            let records = lock(&self.records);
            let Some(records) = records.as_ref() else {
                return Ok(());
            };
            serde_json::to_vec_pretty(&StoreFile {
                version: FILE_VERSION,
                keys: records.clone(),
            })?
        };
        // As the audit log does: a missing data dir is created private.
        if let Some(dir) = self.path.parent() {
            paths::ensure_data_dir(dir)?;
        }
        paths::write_private_file(&self.path, &[&text])
    }
}

impl Record {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// As `delegate list` shows it.
    pub(crate) fn info(&self) -> DelegationInfo {
        DelegationInfo {
            name: self.name.clone(),
            kind: self.kind,
            routes: self.scope.routes.clone(),
            profiles: self.scope.profiles.clone(),
            methods: self.scope.methods.map(|methods| methods.names()),
            paths: self.scope.paths.iter().map(ToString::to_string).collect(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            ask_timeout_secs: self.scope.ask,
            approved: self
                .scope
                .approved
                .iter()
                .map(ToString::to_string)
                .collect(),
            tokens: self.scope.tokens.as_deref().cloned(),
        }
    }

    /// As `remote list` shows it.
    pub(crate) fn remote_info(&self) -> RemoteKeyInfo {
        remote_info(self)
    }
}

fn remote_info(record: &Record) -> RemoteKeyInfo {
    RemoteKeyInfo {
        name: record.name.clone(),
        routes: record.scope.routes.clone(),
        profiles: record.scope.profiles.clone(),
        remote_port: record.remote_port,
        created_at: record.created_at,
        expires_at: record.expires_at,
        last_used_at: record.last_used_at,
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (index, pair) in text.as_bytes().chunks(2).enumerate() {
        out[index] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn new_key(name: &str, ttl_secs: u64) -> NewKey {
        NewKey {
            name: name.into(),
            kind: DelegationKind::Remote,
            scope: Scope {
                routes: vec!["api".into()],
                profiles: vec!["corp".into()],
                ..Scope::default()
            },
            remote_port: Some(9000),
            ttl_secs,
        }
    }

    #[tokio::test]
    async fn keys_verify_until_expiry_or_revocation_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Delegations::new(dir.path());
        let (key, info) = store.grant(new_key("cs", 100), 1000).await.unwrap();
        assert_eq!(key.expose().len(), 43, "32 bytes, base64url");
        let info = info.remote_info();
        assert_eq!((info.created_at, info.expires_at), (1000, 1100));
        let Verdict::Valid(accepted) = store.verify(key.expose(), 1050) else {
            panic!("a fresh key is valid");
        };
        assert_eq!(accepted.name, "cs");
        assert_eq!(store.verify(&key.expose()[1..], 1050), Verdict::Unknown);
        assert_eq!(store.verify("", 1050), Verdict::Unknown);
        assert_eq!(
            store.verify(key.expose(), 1100),
            Verdict::Expired { name: "cs".into() }
        );
        assert!(
            store.grant(new_key("cs", 10), 1000).await.is_err(),
            "names are unique"
        );
        assert_eq!(store.ports(), vec![9000]);

        // Another agent reading the same file, once this one stopped: the key and its last
        // use are there.
        store.close();
        let restarted = Delegations::new(dir.path());
        assert_eq!(restarted.list(None)[0].info().last_used_at, Some(1050));
        assert!(matches!(
            restarted.verify(key.expose(), 1060),
            Verdict::Valid(_)
        ));
        assert_eq!(restarted.list(None)[0].info().last_used_at, Some(1060));
        assert_eq!(
            restarted
                .revoke("cs", None, 1060)
                .await
                .unwrap()
                .unwrap()
                .name(),
            "cs"
        );
        assert!(restarted.revoke("cs", None, 1060).await.unwrap().is_none());
        assert!(restarted.list(None).is_empty());
        // Its port stays allowed, so its caller hears "revoked", not a Host refusal.
        assert_eq!(restarted.ports(), vec![9000]);
        assert_eq!(restarted.verify(key.expose(), 1060), Verdict::Unknown);
        assert_eq!(
            Delegations::new(dir.path()).verify(key.expose(), 1060),
            Verdict::Unknown,
            "revoked for good"
        );
        let text = std::fs::read_to_string(paths::remote_keys_path(dir.path())).unwrap();
        assert!(
            !text.contains(&stagepass_core::hex::lower(&digest(key.expose()))),
            "the digest is gone"
        );
        // The name can be granted again.
        let (again, _) = restarted.grant(new_key("cs", 100), 1070).await.unwrap();
        assert!(matches!(
            restarted.verify(again.expose(), 1071),
            Verdict::Valid(_)
        ));
        assert_eq!(restarted.verify(key.expose(), 1071), Verdict::Unknown);
    }

    #[tokio::test]
    async fn the_file_holds_no_key_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = Delegations::new(dir.path());
        let (key, _) = store.grant(new_key("cs", 100), 1000).await.unwrap();
        let path = paths::remote_keys_path(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(key.expose()));
        assert!(text.contains(&stagepass_core::hex::lower(&digest(key.expose()))));
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // A file others could write is not trusted: a planted digest gets nothing.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(
            Delegations::new(dir.path()).verify(key.expose(), 1010),
            Verdict::Unknown
        );
    }

    #[tokio::test]
    async fn a_last_use_reaches_the_file_by_the_stop_and_an_unwritten_grant_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Delegations::new(dir.path());
        let (key, _) = store.grant(new_key("cs", 100), 1000).await.unwrap();
        assert!(matches!(
            store.verify(key.expose(), 1042),
            Verdict::Valid(_)
        ));
        // Noted in memory at once, written behind; the stop writes what is queued.
        assert_eq!(store.list(None)[0].info().last_used_at, Some(1042));
        store.close();
        assert_eq!(
            Delegations::new(dir.path()).list(None)[0]
                .info()
                .last_used_at,
            Some(1042)
        );

        // A data dir that cannot be made (a file is in the way): nothing is granted.
        let blocked = dir.path().join("blocked");
        std::fs::write(&blocked, "").unwrap();
        let store = Delegations::new(&blocked);
        let err = store.grant(new_key("cs", 100), 1000).await.unwrap_err();
        assert!(err.contains("cannot write"), "{err}");
        assert!(store.list(None).is_empty(), "not granted when not saved");
    }
}
