//! The keychain check: a write, read and delete under a throwaway account, so a keychain
//! that is missing, locked or refusing writes shows up before a sign-in is wasted on it.

use std::time::Instant;

use super::{Check, ids};
use crate::Secret;
use crate::store::{KeychainError, SecretStore};

/// Parentheses and spaces are not allowed in profile names, so this account can never be a
/// real login's.
fn probe_account() -> String {
    format!("(doctor probe {})", std::process::id())
}

pub fn keychain_round_trip(store: &dyn SecretStore) -> Check {
    let account = probe_account();
    let started = Instant::now();
    let value = Secret::new(format!(
        "stagepass doctor probe, safe to delete ({:?})",
        std::time::SystemTime::now()
    ));
    let steps = || -> Result<(), (&'static str, KeychainError)> {
        store.set(&account, &value).map_err(|err| ("write", err))?;
        let read = store.get(&account).map_err(|err| ("read", err))?;
        if read.as_ref().map(Secret::expose) != Some(value.expose()) {
            // Best effort: leave nothing behind.
            let _ = store.delete(&account);
            return Err((
                "read",
                KeychainError::Other("the entry read back differs from the one written".into()),
            ));
        }
        store.delete(&account).map_err(|err| ("delete", err))?;
        match store.get(&account) {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err((
                "delete",
                KeychainError::Other("the entry is still there after deleting it".into()),
            )),
            Err(err) => Err(("read after delete", err)),
        }
    };
    match steps() {
        Ok(()) => Check::ok(
            ids::KEYCHAIN,
            "the keychain is reachable and unlocked; a write, read and delete worked",
        )
        .evidence(format!(
            "round trip under the throwaway account {account:?} took {} ms",
            started.elapsed().as_millis()
        )),
        Err((step, err)) => {
            let summary = match &err {
                KeychainError::Unavailable(_) => "no keychain service is reachable",
                KeychainError::Locked(_) => "the keychain is locked",
                _ => "the keychain refused a round trip",
            };
            let fix = match &err {
                KeychainError::Unavailable(_) | KeychainError::Locked(_) => err.to_string(),
                _ => "check the keychain application (Seahorse, Keychain Access, Credential \
                      Manager) for a prompt or a policy that blocks stagepass"
                    .to_string(),
            };
            Check::fail(ids::KEYCHAIN, format!("{summary} (the {step} failed)"))
                .evidence(format!(
                    "{step} of the throwaway account {account:?}: {}",
                    detail(&err)
                ))
                .fix(fix)
        }
    }
}

fn detail(err: &KeychainError) -> &str {
    match err {
        KeychainError::Unavailable(detail)
        | KeychainError::Locked(detail)
        | KeychainError::Corrupt(detail)
        | KeychainError::Other(detail) => detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn round_trip_leaves_nothing_behind() {
        let store = MemoryStore::default();
        let check = keychain_round_trip(&store);
        assert_eq!(check.status, super::super::Status::Ok, "{check:?}");
        assert!(store.get(&probe_account()).unwrap().is_none());
    }
}
