//! Values larger than one keychain entry may hold, split across several entries.
//!
//! Windows Credential Manager keeps at most 2,560 bytes per credential
//! (`CRED_MAX_CREDENTIAL_BLOB_SIZE`), and the keyring store writes passwords as UTF-16: 1,280
//! UTF-16 units. A stored login (refresh token plus ID token, a JWT that alone is often longer)
//! does not fit. Rather than truncate or drop the ID token, a value over the limit is written as
//! parts (`PROFILE (part 1)`, `PROFILE (part 2)`, … — spaces and parentheses cannot occur in a
//! profile name, so these never collide with a login) and the profile's own entry holds a
//! header naming the number of parts and a SHA-256 of the whole, so a read of parts from two
//! different writes (a crash between two part writes) is reported as corrupt, never returned
//! as a wrong token.
//!
//! <https://learn.microsoft.com/en-us/windows/win32/api/wincred/ns-wincred-credentialw>

use sha2::{Digest, Sha256};

use crate::Secret;
use crate::store::{KeychainError, SecretStore};

/// The most UTF-16 units one Credential Manager entry holds (2,560 bytes).
pub const CREDENTIAL_MANAGER_UNITS: usize = 2560 / 2;

const HEADER_PREFIX: &str = "stagepass-parts:v1:";

/// A [`SecretStore`] whose entries hold at most `max_units` UTF-16 units each.
pub struct Chunked<S> {
    inner: S,
    max_units: usize,
}

impl<S: SecretStore> Chunked<S> {
    /// `max_units` must leave room for a header (about 90 units); smaller limits are raised.
    pub fn new(inner: S, max_units: usize) -> Self {
        Chunked {
            inner,
            max_units: max_units.max(128),
        }
    }

    fn header(&self, account: &str) -> Result<Option<Header>, KeychainError> {
        let Some(raw) = self.inner.get(account)? else {
            return Ok(None);
        };
        Ok(Header::parse(raw.expose()))
    }

    /// Deletes parts `from..=to` (those a previous, longer value left).
    fn delete_parts(&self, account: &str, from: usize, to: usize) -> Result<(), KeychainError> {
        for index in from..=to {
            self.inner.delete(&part_account(account, index))?;
        }
        Ok(())
    }
}

impl<S: SecretStore> SecretStore for Chunked<S> {
    fn get(&self, account: &str) -> Result<Option<Secret<String>>, KeychainError> {
        let Some(raw) = self.inner.get(account)? else {
            return Ok(None);
        };
        let Some(header) = Header::parse(raw.expose()) else {
            return Ok(Some(raw));
        };
        let mut whole = String::new();
        for index in 1..=header.parts {
            let part = self
                .inner
                .get(&part_account(account, index))?
                .ok_or_else(|| KeychainError::Corrupt(account.to_string()))?;
            whole.push_str(part.expose());
        }
        if digest(&whole) != header.digest {
            return Err(KeychainError::Corrupt(account.to_string()));
        }
        Ok(Some(Secret::new(whole)))
    }

    fn set(&self, account: &str, secret: &Secret<String>) -> Result<(), KeychainError> {
        let previous = self.header(account)?.map_or(0, |header| header.parts);
        let value = secret.expose();
        // A value that looks like a header is stored in parts too, so it reads back as itself.
        if units(value) <= self.max_units && Header::parse(value).is_none() {
            self.inner.set(account, secret)?;
            return self.delete_parts(account, 1, previous);
        }
        let parts = split(value, self.max_units);
        for (index, part) in parts.iter().enumerate() {
            self.inner.set(
                &part_account(account, index + 1),
                &Secret::new(part.to_string()),
            )?;
        }
        let header = Header {
            parts: parts.len(),
            digest: digest(value),
        };
        self.inner.set(account, &Secret::new(header.render()))?;
        self.delete_parts(account, parts.len() + 1, previous)
    }

    fn delete(&self, account: &str) -> Result<bool, KeychainError> {
        let parts = self.header(account)?.map_or(0, |header| header.parts);
        let existed = self.inner.delete(account)?;
        self.delete_parts(account, 1, parts)?;
        Ok(existed)
    }
}

struct Header {
    parts: usize,
    digest: String,
}

impl Header {
    fn parse(text: &str) -> Option<Header> {
        let (parts, digest) = text.strip_prefix(HEADER_PREFIX)?.split_once(':')?;
        let parts = parts
            .parse()
            .ok()
            .filter(|&parts| parts > 0 && parts < 1000)?;
        (digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Header {
            parts,
            digest: digest.to_string(),
        })
    }

    fn render(&self) -> String {
        format!("{HEADER_PREFIX}{}:{}", self.parts, self.digest)
    }
}

fn part_account(account: &str, index: usize) -> String {
    format!("{account} (part {index})")
}

fn digest(text: &str) -> String {
    crate::hex::lower(&Sha256::digest(text.as_bytes()))
}

fn units(text: &str) -> usize {
    text.chars().map(char::len_utf16).sum()
}

/// `text` in pieces of at most `max_units` UTF-16 units, cut between characters (never
/// inside a surrogate pair).
fn split(text: &str, max_units: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut used) = (0, 0);
    for (at, ch) in text.char_indices() {
        if used + ch.len_utf16() > max_units {
            parts.push(&text[start..at]);
            (start, used) = (at, 0);
        }
        used += ch.len_utf16();
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::MemoryStore;

    /// Refuses what Credential Manager refuses: more than `max` UTF-16 units.
    struct Limited {
        memory: Arc<MemoryStore>,
        max: usize,
    }

    impl SecretStore for Limited {
        fn get(&self, account: &str) -> Result<Option<Secret<String>>, KeychainError> {
            self.memory.get(account)
        }
        fn set(&self, account: &str, secret: &Secret<String>) -> Result<(), KeychainError> {
            if units(secret.expose()) > self.max {
                return Err(KeychainError::Other("too long".into()));
            }
            self.memory.set(account, secret)
        }
        fn delete(&self, account: &str) -> Result<bool, KeychainError> {
            self.memory.delete(account)
        }
    }

    fn store() -> (Chunked<Limited>, Arc<MemoryStore>) {
        let memory = Arc::new(MemoryStore::default());
        let limited = Limited {
            memory: memory.clone(),
            max: CREDENTIAL_MANAGER_UNITS,
        };
        (Chunked::new(limited, CREDENTIAL_MANAGER_UNITS), memory)
    }

    fn get(store: &Chunked<Limited>, account: &str) -> Option<String> {
        store
            .get(account)
            .unwrap()
            .map(|secret| secret.expose().to_string())
    }

    #[test]
    fn a_login_over_the_limit_is_split_and_joined_whole() {
        let (store, memory) = store();
        // A refresh token and a long ID token, with non-ASCII claims (a name in UTF-16
        // surrogate pairs among them), three times the limit.
        let value = format!(
            "{{\"refresh_token\":\"{}\",\"id_token\":\"{}\",\"name\":\"{}\"}}",
            "r".repeat(900),
            "e".repeat(2400),
            "Zoë 𝄞".repeat(100)
        );
        assert!(units(&value) > 3 * CREDENTIAL_MANAGER_UNITS);
        store.set("corp", &Secret::new(value.clone())).unwrap();
        assert_eq!(get(&store, "corp").as_deref(), Some(value.as_str()));
        // Four parts, none over the limit, and a header in the profile's entry.
        for index in 1..=4 {
            let part = memory
                .get(&format!("corp (part {index})"))
                .unwrap()
                .unwrap();
            assert!(units(part.expose()) <= CREDENTIAL_MANAGER_UNITS);
        }
        assert!(memory.get("corp (part 5)").unwrap().is_none());
        let header = memory.get("corp").unwrap().unwrap();
        assert!(
            header.expose().starts_with("stagepass-parts:v1:4:"),
            "{header:?}"
        );

        // Shorter again: one entry, the old parts gone.
        store.set("corp", &Secret::new("short".into())).unwrap();
        assert_eq!(get(&store, "corp").as_deref(), Some("short"));
        assert!(memory.get("corp (part 1)").unwrap().is_none());

        store.set("corp", &Secret::new(value)).unwrap();
        assert!(store.delete("corp").unwrap());
        assert!(get(&store, "corp").is_none());
        assert!(memory.get("corp (part 2)").unwrap().is_none());
        assert!(!store.delete("corp").unwrap());
    }

    #[test]
    fn parts_from_two_writes_or_a_missing_part_are_corrupt_not_a_wrong_token() {
        let (store, memory) = store();
        let value = "x".repeat(3000);
        store.set("corp", &Secret::new(value)).unwrap();
        // A crash between two part writes of the next value.
        memory
            .set("corp (part 2)", &Secret::new("y".repeat(1280)))
            .unwrap();
        assert_eq!(
            store.get("corp").unwrap_err(),
            KeychainError::Corrupt("corp".into())
        );
        memory.delete("corp (part 2)").unwrap();
        assert_eq!(
            store.get("corp").unwrap_err(),
            KeychainError::Corrupt("corp".into())
        );
    }

    #[test]
    fn values_at_the_limit_or_shaped_like_a_header_read_back_as_themselves() {
        let (store, memory) = store();
        let exact = "a".repeat(CREDENTIAL_MANAGER_UNITS);
        store.set("corp", &Secret::new(exact.clone())).unwrap();
        assert_eq!(memory.get("corp").unwrap().unwrap().expose(), &exact);
        let lookalike = format!("{HEADER_PREFIX}1:{}", "0".repeat(64));
        store.set("corp", &Secret::new(lookalike.clone())).unwrap();
        assert_eq!(get(&store, "corp"), Some(lookalike));
        // A surrogate pair is never cut in half.
        let clefs = "𝄞".repeat(CREDENTIAL_MANAGER_UNITS);
        assert!(split(&clefs, 1279).iter().all(|part| units(part) <= 1279));
        assert_eq!(split(&clefs, 1279).concat(), clefs);
    }
}
