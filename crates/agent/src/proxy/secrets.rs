//! The proxy's secrets: the key non-browser callers present, and random one-time values.
//!
//! Lookups of presented values go through their SHA-256, so a map lookup's timing says
//! nothing about the secret; the key itself is compared in constant time.

use std::path::Path;

use sha2::{Digest, Sha256};
use stagepass_core::paths;
use stagepass_proto::Secret;
use subtle::ConstantTimeEq;

/// 32 random bytes as 64 hex digits.
pub(crate) fn random_hex() -> std::io::Result<Secret<String>> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| {
        std::io::Error::other(format!(
            "the operating system's random source failed ({err}); try again, and check the \
             kernel's entropy source if it persists"
        ))
    })?;
    Ok(Secret::new(stagepass_core::hex::lower(&bytes)))
}

/// A one-way digest to look presented one-time values up by.
pub(crate) fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// Whether `presented` is `key`, in time that depends only on the lengths.
pub(crate) fn same_key(presented: &str, key: &str) -> bool {
    bool::from(presented.as_bytes().ct_eq(key.as_bytes()))
}

/// The key in `runtime_dir`, kept across agent restarts so running programs keep working;
/// created (0600, written whole before it appears) when it is missing or not trustworthy.
pub(crate) fn load_or_create_key(runtime_dir: &Path) -> std::io::Result<Secret<String>> {
    let path = paths::proxy_key_path(runtime_dir);
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        let private = meta.is_file() && paths::is_private_file(&meta, 0o077);
        if private && let Ok(text) = std::fs::read_to_string(&path) {
            let key = text.trim();
            if key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(Secret::new(key.to_string()));
            }
        }
    }
    let key = random_hex()?;
    paths::write_private_file(&path, &[key.expose().as_bytes(), b"\n"])?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    #[test]
    fn the_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let key = load_or_create_key(dir.path()).unwrap();
        let path = paths::proxy_key_path(dir.path());
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(load_or_create_key(dir.path()).unwrap(), key);
        // A key others could read is no key: replaced.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let replaced = load_or_create_key(dir.path()).unwrap();
        assert_ne!(replaced, key);
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn keys_compare_exactly() {
        let key = random_hex().unwrap();
        assert!(same_key(key.expose(), key.expose()));
        assert!(!same_key(&key.expose()[1..], key.expose()));
        assert!(!same_key("", key.expose()));
        assert_ne!(random_hex().unwrap(), key);
    }
}
