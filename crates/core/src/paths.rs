//! Where stagepass keeps its files. Each location can be overridden through an environment
//! variable so that tests and users can run isolated instances side by side.

use std::fs;
use std::io;
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use directories::ProjectDirs;

pub const CONFIG_ENV: &str = "STAGEPASS_CONFIG";
pub const RUNTIME_DIR_ENV: &str = "STAGEPASS_RUNTIME_DIR";
pub const DATA_DIR_ENV: &str = "STAGEPASS_DATA_DIR";

const SOCKET_NAME: &str = "agent.sock";
const LOCK_NAME: &str = "agent.lock";
const LOG_NAME: &str = "agent.log";
const AUDIT_NAME: &str = "audit.jsonl";
const PROXY_KEY_NAME: &str = "proxy.key";
const REMOTE_KEYS_NAME: &str = "remote-keys.json";

fn project_dirs() -> Option<ProjectDirs> {
    ProjectDirs::from("", "", "stagepass")
}

fn from_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
}

/// `$STAGEPASS_CONFIG`, else `stagepass/config.toml` in the platform config dir.
pub fn config_file() -> PathBuf {
    from_env(CONFIG_ENV).unwrap_or_else(|| match project_dirs() {
        Some(dirs) => dirs.config_dir().join("config.toml"),
        None => PathBuf::from("stagepass.toml"),
    })
}

/// `$STAGEPASS_DATA_DIR`, else the platform data dir (the audit log lives here).
pub fn data_dir() -> PathBuf {
    from_env(DATA_DIR_ENV).unwrap_or_else(|| match project_dirs() {
        Some(dirs) => dirs.data_dir().to_path_buf(),
        None => std::env::temp_dir().join(format!("stagepass-data-{}", user_tag())),
    })
}

/// `$STAGEPASS_RUNTIME_DIR`, else [`default_runtime_dir`]. The agent's socket, lock and log
/// live here.
pub fn runtime_dir() -> PathBuf {
    from_env(RUNTIME_DIR_ENV).unwrap_or_else(default_runtime_dir)
}

/// `$XDG_RUNTIME_DIR/stagepass`, else a per-user directory in the temp dir (macOS, where the
/// temp dir is already per user; Windows, where it is `%LOCALAPPDATA%\Temp`; containers
/// without a session).
pub fn default_runtime_dir() -> PathBuf {
    match project_dirs().and_then(|dirs| dirs.runtime_dir().map(Path::to_path_buf)) {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("stagepass-{}", user_tag())),
    }
}

pub fn socket_path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(SOCKET_NAME)
}

pub fn lock_path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(LOCK_NAME)
}

/// The local proxy's key (0600): non-browser callers present it as
/// `Proxy-Authorization: Bearer KEY`.
pub fn proxy_key_path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(PROXY_KEY_NAME)
}

pub fn agent_log_path(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join(LOG_NAME)
}

/// Where refresh workers take their per-profile locks. The lock guards the keychain entry,
/// which every agent of the user shares (say the tray's and a headless one with different
/// runtime dirs), so it lives beside the audit log rather than in one agent's runtime dir.
pub fn refresh_lock_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("locks")
}

/// The remote keys' records (0600): SHA-256 digests, scopes and expiry, never a key. In the
/// data dir, since keys outlive agent restarts.
pub fn remote_keys_path(data_dir: &Path) -> PathBuf {
    data_dir.join(REMOTE_KEYS_NAME)
}

/// The audit log, in the data dir; rotated ones have `.1` (the newest) to `.8` appended.
pub fn audit_log_path(data_dir: &Path) -> PathBuf {
    data_dir.join(AUDIT_NAME)
}

/// Rotated audit files kept besides the current one. Several, so that a burst of entries
/// cannot push the last day out: remote refusals are recorded one by one only a few per key
/// and minute, which fills far less than these generations in a day.
pub const AUDIT_GENERATIONS: usize = 8;

/// The audit log's files in time order: the oldest rotated one first, the current one last.
/// Readers (`stagepass audit`, the tray's Recent access) go through this to see the whole
/// history, and the agent to rotate.
pub fn audit_log_files(data_dir: &Path) -> Vec<PathBuf> {
    let current = audit_log_path(data_dir);
    let mut files: Vec<PathBuf> = (1..=AUDIT_GENERATIONS)
        .rev()
        .map(|generation| current.with_extension(format!("jsonl.{generation}")))
        .collect();
    files.push(current);
    files
}

#[cfg(unix)]
#[allow(unsafe_code)]
pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Who the user is, for per-user names in shared places (the temp dir): the uid on Unix, the
/// user name on Windows (a SID would do too, but needs a system call that can fail).
pub fn user_tag() -> String {
    #[cfg(unix)]
    let tag = current_uid().to_string();
    #[cfg(not(unix))]
    let tag = std::env::var("USERNAME").unwrap_or_else(|_| "user".into());
    tag
}

/// Options that create files readable and writable by the user only (0600 on Unix; on
/// Windows a new file inherits the ACL of its directory, which in the user's profile admits the
/// user, SYSTEM and Administrators only).
pub fn private_open_options() -> fs::OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = fs::OpenOptions::new();
    #[cfg(unix)]
    options.mode(0o600);
    options
}

/// Whether a file holding a secret is still the user's own and closed to others (`mask` the
/// mode bits others must not have): on Unix its owner and mode; on Windows, where the profile
/// directory's ACL is what protects it, whether it is a plain file.
pub fn is_private_file(meta: &fs::Metadata, mask: u32) -> bool {
    #[cfg(unix)]
    let private = meta.uid() == current_uid() && meta.permissions().mode() & mask == 0;
    #[cfg(not(unix))]
    let private = {
        let _ = mask;
        meta.is_file()
    };
    private
}

/// Replaces `path` with `parts`, readable and writable by the user only, atomically: a
/// temporary file beside it, synced, then renamed, so a crash leaves the old file or the new
/// one and never half of either.
pub fn write_private_file(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_file(&temporary);
    let mut file = private_open_options()
        .write(true)
        .create_new(true)
        .open(&temporary)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.sync_all()?;
    fs::rename(&temporary, path)
}

/// Creates `dir` (and parents) as 0700 when missing; refuses one that another user owns or
/// that others can enter, because the socket inside it is the agent's front door.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    ensure_own_dir(dir, PRIVATE)
}

/// Checks without creating: used by clients before they trust a socket.
pub fn check_private_dir(dir: &Path, meta: &fs::Metadata) -> io::Result<()> {
    check_own_dir(dir, meta, PRIVATE)
}

/// Creates the data dir as 0700 when missing; refuses one that another user owns or that
/// others can write (say a directory someone else made in /tmp, the fallback), where the
/// audit log and the remote keys' records could be replaced or redirected. Others may read
/// it: the files inside are 0600.
pub fn ensure_data_dir(dir: &Path) -> io::Result<()> {
    ensure_own_dir(dir, DATA)
}

/// What a directory of the user's may let others do, and how the user can move it.
#[cfg_attr(
    windows,
    allow(dead_code, reason = "Windows relies on the profile's ACL")
)]
struct DirRule {
    forbidden_mode: u32,
    forbidden_what: &'static str,
    env: &'static str,
}

const PRIVATE: DirRule = DirRule {
    forbidden_mode: 0o077,
    forbidden_what: "accessible to",
    env: RUNTIME_DIR_ENV,
};

const DATA: DirRule = DirRule {
    forbidden_mode: 0o022,
    forbidden_what: "writable by",
    env: DATA_DIR_ENV,
};

#[cfg(unix)]
fn ensure_own_dir(dir: &Path, rule: DirRule) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            // `recursive` applies the mode only to the last component, which is what matters.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        }
        Err(err) => Err(err),
        Ok(meta) => check_own_dir(dir, &meta, rule),
    }
}

/// On Windows the default dirs are under the user's profile (`%LOCALAPPDATA%`), whose ACL
/// admits the user, SYSTEM and Administrators only, and the agent's door is a pipe with its
/// own DACL: the directory only has to be a directory.
#[cfg(windows)]
fn ensure_own_dir(dir: &Path, rule: DirRule) -> io::Result<()> {
    match fs::symlink_metadata(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => fs::create_dir_all(dir),
        Err(err) => Err(err),
        Ok(meta) => check_own_dir(dir, &meta, rule),
    }
}

#[cfg(windows)]
fn check_own_dir(dir: &Path, meta: &fs::Metadata, rule: DirRule) -> io::Result<()> {
    if meta.is_dir() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{} is not a directory (a link or a file is not accepted): remove it or set {}",
            dir.display(),
            rule.env
        )))
    }
}

#[cfg(unix)]
fn check_own_dir(dir: &Path, meta: &fs::Metadata, rule: DirRule) -> io::Result<()> {
    if !meta.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory (a symlink or a file is not accepted)",
            dir.display()
        )));
    }
    if meta.uid() != current_uid() {
        return Err(io::Error::other(format!(
            "{} belongs to uid {}, not to you: remove it or set {}",
            dir.display(),
            meta.uid(),
            rule.env
        )));
    }
    if meta.mode() & rule.forbidden_mode != 0 {
        return Err(io::Error::other(format!(
            "{} is {} other users (mode {:o}): run `chmod 700 {}`, or set {} to another directory",
            dir.display(),
            rule.forbidden_what,
            meta.mode() & 0o777,
            dir.display(),
            rule.env
        )));
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_dir_and_refuses_an_open_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        let mode = fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);

        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_private_dir(&dir).unwrap_err();
        assert!(err.to_string().contains("chmod 700"), "{err}");
    }

    #[test]
    fn a_data_dir_others_can_write_is_refused_with_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        ensure_data_dir(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        // Readable by others is fine: the files inside are 0600.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_data_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o775)).unwrap();
        let err = ensure_data_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("writable by other users (mode 775)"), "{err}");
        assert!(
            err.contains("chmod 700") && err.contains(DATA_DIR_ENV),
            "{err}"
        );
        // A symlink to a directory is not the directory.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(ensure_data_dir(&link).is_err());
    }
}
