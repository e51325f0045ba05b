//! The remote keys: only the SHA-256 of each key is kept, with its name, scope, expiry and
//! last use, in a 0600 file of the data dir, so keys outlive agent restarts and a leaked
//! file gives nothing that can be presented.
//!
//! A presented key is hashed once and compared with every stored digest in constant time,
//! without stopping at a match, so timing says nothing about which digest (or how much of it)
//! matched.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stagepass_core::paths;
use stagepass_proto::{RemoteKeyInfo, Secret};
use subtle::ConstantTimeEq;

use super::scope::Scope;

/// Last use is written to the file at most this often per key; `remote list` asks the
/// agent, which has it to the second.
const LAST_USE_WRITE_INTERVAL: u64 = 60;
/// An expired key is kept this long (so `list` and the remote side can say "expired"),
/// then dropped when the next key is granted.
const KEEP_EXPIRED_SECS: u64 = 7 * 86_400;
const FILE_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    name: String,
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
    pub scope: Scope,
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
    pub scope: Scope,
    pub remote_port: Option<u16>,
    pub ttl_secs: u64,
}

pub(crate) struct RemoteKeys {
    path: PathBuf,
    /// `None` until the file is first read.
    records: Mutex<Option<Vec<Record>>>,
}

impl RemoteKeys {
    pub(crate) fn new(data_dir: &std::path::Path) -> RemoteKeys {
        RemoteKeys {
            path: paths::remote_keys_path(data_dir),
            records: Mutex::new(None),
        }
    }

    fn with<T>(&self, apply: impl FnOnce(&mut Vec<Record>) -> T) -> T {
        let mut slot = self
            .records
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let records = slot.get_or_insert_with(|| self.load());
        apply(records)
    }

    /// The file's records; none when it is missing or others could have written it (a
    /// digest planted there would be a key someone else holds).
    fn load(&self) -> Vec<Record> {
        let Ok(meta) = std::fs::symlink_metadata(&self.path) else {
            return Vec::new();
        };
        let trusted = meta.is_file()
            && meta.uid() == paths::current_uid()
            && meta.permissions().mode() & 0o022 == 0;
        if !trusted {
            tracing::error!(
                "ignoring {}: not a private file of this user; remote keys must be granted again",
                self.path.display()
            );
            return Vec::new();
        }
        let parsed = std::fs::read(&self.path)
            .map_err(|err| err.to_string())
            .and_then(|bytes| {
                serde_json::from_slice::<StoreFile>(&bytes).map_err(|err| err.to_string())
            });
        match parsed {
            Ok(file) if file.version == FILE_VERSION => file
                .keys
                .into_iter()
                .map(|record| Record {
                    written_use: record.last_used_at,
                    ..record
                })
                .collect(),
            Ok(file) => {
                tracing::error!(
                    "ignoring {}: version {} is not {FILE_VERSION}",
                    self.path.display(),
                    file.version
                );
                Vec::new()
            }
            Err(err) => {
                tracing::error!("ignoring {}: {err}", self.path.display());
                Vec::new()
            }
        }
    }

    /// Writes every record, whole, through a temporary file (0600) and a rename.
    fn save(&self, records: &[Record]) -> std::io::Result<()> {
        // As the audit log does: a missing data dir is created private.
        if let Some(dir) = self.path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let text = serde_json::to_vec_pretty(&StoreFile {
            version: FILE_VERSION,
            keys: records.to_vec(),
        })?;
        paths::write_private_file(&self.path, &[&text])
    }

    /// Whether any key is stored (the agent then serves the listener even without routes).
    pub(crate) fn any(&self) -> bool {
        self.with(|records| !records.is_empty())
    }

    /// Mints a key: shown once, only its digest kept.
    pub(crate) fn grant(
        &self,
        new: NewKey,
        now: u64,
    ) -> Result<(Secret<String>, RemoteKeyInfo), String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|err| format!("no randomness: {err}"))?;
        let key = Secret::new(URL_SAFE_NO_PAD.encode(bytes));
        bytes.fill(0);
        self.with(|records| {
            records.retain(|record| {
                let ended = record.revoked_at.unwrap_or(record.expires_at);
                ended.min(record.expires_at) + KEEP_EXPIRED_SECS > now
                    && !(record.revoked_at.is_some() && record.name == new.name)
            });
            if records.iter().any(|record| record.name == new.name) {
                return Err(format!(
                    "a remote key named `{}` exists; revoke it first (`stagepass remote revoke {}`) or pick another --name",
                    new.name, new.name
                ));
            }
            let record = Record {
                name: new.name,
                sha256: hex(&digest(key.expose())),
                scope: new.scope,
                remote_port: new.remote_port,
                created_at: now,
                expires_at: now.saturating_add(new.ttl_secs),
                last_used_at: None,
                revoked_at: None,
                written_use: None,
            };
            let info = info(&record);
            records.push(record);
            if let Err(err) = self.save(records) {
                records.pop();
                return Err(format!(
                    "cannot write {}: {err}",
                    self.path.display()
                ));
            }
            Ok((key, info))
        })
    }

    pub(crate) fn list(&self) -> Vec<RemoteKeyInfo> {
        self.with(|records| {
            records
                .iter()
                .filter(|record| record.revoked_at.is_none())
                .map(info)
                .collect()
        })
    }

    /// Deletes the digest of the key named `name`; its record, when there was one.
    pub(crate) fn revoke(&self, name: &str, now: u64) -> Result<Option<RemoteKeyInfo>, String> {
        self.with(|records| {
            let Some(record) = records
                .iter_mut()
                .find(|record| record.name == name && record.revoked_at.is_none())
            else {
                return Ok(None);
            };
            record.sha256.clear();
            record.revoked_at = Some(now);
            let removed = record.clone();
            self.save(records).map_err(|err| {
                // Still refused from memory; the file keeps it until the next write.
                format!(
                    "revoked in the agent, but cannot write {}: {err}",
                    self.path.display()
                )
            })?;
            Ok(Some(info(&removed)))
        })
    }

    /// Checks a presented key, and notes its use when it is valid.
    pub(crate) fn verify(&self, presented: &str, now: u64) -> Verdict {
        let presented = digest(presented);
        self.with(|records| {
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
                return Verdict::Unknown;
            };
            let record = &mut records[index];
            if now >= record.expires_at {
                return Verdict::Expired {
                    name: record.name.clone(),
                };
            }
            record.last_used_at = Some(now);
            let stale = record
                .written_use
                .is_none_or(|written| now >= written + LAST_USE_WRITE_INTERVAL);
            let accepted = Accepted {
                name: record.name.clone(),
                scope: record.scope.clone(),
            };
            if stale {
                record.written_use = Some(now);
                if let Err(err) = self.save(records) {
                    tracing::warn!("cannot note a remote key's last use: {err}");
                }
            }
            Verdict::Valid(accepted)
        })
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

fn info(record: &Record) -> RemoteKeyInfo {
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
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
    use super::*;

    fn new_key(name: &str, ttl_secs: u64) -> NewKey {
        NewKey {
            name: name.into(),
            scope: Scope {
                routes: vec!["api".into()],
                profiles: vec!["corp".into()],
            },
            remote_port: Some(9000),
            ttl_secs,
        }
    }

    #[test]
    fn keys_verify_until_expiry_or_revocation_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = RemoteKeys::new(dir.path());
        let (key, info) = store.grant(new_key("cs", 100), 1000).unwrap();
        assert_eq!(key.expose().len(), 43, "32 bytes, base64url");
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
            store.grant(new_key("cs", 10), 1000).is_err(),
            "names are unique"
        );
        assert_eq!(store.ports(), vec![9000]);

        // Another agent reading the same file: the key and its last use are there.
        let restarted = RemoteKeys::new(dir.path());
        assert!(matches!(
            restarted.verify(key.expose(), 1060),
            Verdict::Valid(_)
        ));
        assert_eq!(restarted.list()[0].last_used_at, Some(1060));
        assert_eq!(restarted.revoke("cs", 1060).unwrap().unwrap().name, "cs");
        assert_eq!(restarted.revoke("cs", 1060).unwrap(), None);
        assert!(restarted.list().is_empty());
        // Its port stays allowed, so its caller hears "revoked", not a Host refusal.
        assert_eq!(restarted.ports(), vec![9000]);
        assert_eq!(restarted.verify(key.expose(), 1060), Verdict::Unknown);
        assert_eq!(
            RemoteKeys::new(dir.path()).verify(key.expose(), 1060),
            Verdict::Unknown,
            "revoked for good"
        );
        let text = std::fs::read_to_string(paths::remote_keys_path(dir.path())).unwrap();
        assert!(
            !text.contains(&hex(&digest(key.expose()))),
            "the digest is gone"
        );
        // The name can be granted again.
        let (again, _) = restarted.grant(new_key("cs", 100), 1070).unwrap();
        assert!(matches!(
            restarted.verify(again.expose(), 1071),
            Verdict::Valid(_)
        ));
        assert_eq!(restarted.verify(key.expose(), 1071), Verdict::Unknown);
    }

    #[test]
    fn the_file_holds_no_key_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = RemoteKeys::new(dir.path());
        let (key, _) = store.grant(new_key("cs", 100), 1000).unwrap();
        let path = paths::remote_keys_path(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(key.expose()));
        assert!(text.contains(&hex(&digest(key.expose()))));
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        // A file others could write is not trusted: a planted digest gets nothing.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(
            RemoteKeys::new(dir.path()).verify(key.expose(), 1010),
            Verdict::Unknown
        );
    }
}
