//! The keychain, wrapped once. Only the agent calls this.
//!
//! One entry per profile (service `stagepass`, user = profile name) holds a JSON
//! [`StoredLogin`]: the refresh token plus what is needed to resume without signing in again.
//! Entries are updated in place.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::tokens::RefreshLifetime;
use crate::{AccessToken, ClientSecret, IdToken, RefreshToken, Secret};

pub const KEYCHAIN_SERVICE: &str = "stagepass";
const RECORD_FORMAT: u32 = 1;

/// What survives an agent restart. Access tokens are deliberately absent: they live only in
/// the agent's memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredLogin {
    pub format: u32,
    /// The login is only valid for the issuer and client it was made with; a config edit that
    /// changes either must not send this refresh token somewhere else.
    pub issuer: String,
    pub client_id: String,
    /// What renews the login. Absent only for a login whose access token never expires
    /// (`access_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    pub id_token: Option<IdToken>,
    /// Unix seconds.
    pub saved_at: u64,
    /// The refresh token's life as the IdP stated it (`refresh_token_expires_in`), kept
    /// with the login so `doctor` can warn after an agent restart too. Absent in records
    /// of older versions and for IdPs that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_lifetime: Option<RefreshLifetime>,
    /// An access token that never expires (a GitHub OAuth App's): it is then the login
    /// itself, with no refresh token, so it is kept here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<AccessToken>,
    /// Who signed in, for a provider without id_tokens (GitHub's `GET /user`): shown by
    /// `status` after a restart and carried over by every refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<serde_json::Value>,
}

impl StoredLogin {
    pub fn new(
        issuer: String,
        client_id: String,
        refresh_token: RefreshToken,
        id_token: Option<IdToken>,
        saved_at: u64,
    ) -> Self {
        StoredLogin {
            format: RECORD_FORMAT,
            issuer,
            client_id,
            refresh_token: Some(refresh_token),
            id_token,
            saved_at,
            refresh_lifetime: None,
            access_token: None,
            identity: None,
        }
    }

    /// A login that is an access token which never expires.
    pub fn non_expiring(
        issuer: String,
        client_id: String,
        access_token: AccessToken,
        saved_at: u64,
    ) -> Self {
        StoredLogin {
            format: RECORD_FORMAT,
            issuer,
            client_id,
            refresh_token: None,
            id_token: None,
            saved_at,
            access_token: Some(access_token),
            identity: None,
            refresh_lifetime: None,
        }
    }

    pub fn belongs_to(&self, issuer: &str, client_id: &str) -> bool {
        self.issuer == issuer && self.client_id == client_id
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeychainError {
    #[cfg_attr(
        not(any(windows, target_os = "macos")),
        error(
            "no keychain service is reachable ({0}). On Linux stagepass needs a Secret Service on \
             the D-Bus session bus: start gnome-keyring or KeePassXC (Secret Service integration on), \
             or, over SSH, run it in `dbus-run-session` with `gnome-keyring-daemon --unlock`"
        )
    )]
    #[cfg_attr(
        target_os = "macos",
        error(
            "the macOS Keychain is not reachable ({0}): log in to the desktop session (a \
             LaunchAgent, not a LaunchDaemon), or unlock it with `security unlock-keychain`"
        )
    )]
    #[cfg_attr(
        windows,
        error(
            "Windows Credential Manager is not reachable ({0}): run stagepass in your own \
             interactive logon session (not as a service or another user)"
        )
    )]
    Unavailable(String),
    #[cfg_attr(
        not(any(windows, target_os = "macos")),
        error(
            "the keychain is locked ({0}): unlock it (log in to the desktop, or `gnome-keyring-daemon --unlock`) and retry"
        )
    )]
    #[cfg_attr(
        target_os = "macos",
        error("the Keychain is locked ({0}): unlock it (`security unlock-keychain`) and retry")
    )]
    #[cfg_attr(
        windows,
        error("Credential Manager refused access ({0}): sign in to Windows as yourself and retry")
    )]
    Locked(String),
    #[error(
        "the keychain entry for profile `{0}` is unreadable; it was left untouched: run `stagepass logout {0}` then sign in again"
    )]
    Corrupt(String),
    #[error("keychain error: {0}")]
    Other(String),
}

/// Raw secret storage, injected so the agent is testable without a keychain.
pub trait SecretStore: Send + Sync {
    fn get(&self, account: &str) -> Result<Option<Secret<String>>, KeychainError>;
    fn set(&self, account: &str, secret: &Secret<String>) -> Result<(), KeychainError>;
    /// Returns whether there was an entry.
    fn delete(&self, account: &str) -> Result<bool, KeychainError>;
}

/// Typed logins on top of a [`SecretStore`].
#[derive(Clone)]
pub struct LoginStore {
    secrets: Arc<dyn SecretStore>,
}

impl LoginStore {
    pub fn new(secrets: Arc<dyn SecretStore>) -> Self {
        LoginStore { secrets }
    }

    pub fn load(&self, profile: &str) -> Result<Option<StoredLogin>, KeychainError> {
        let Some(raw) = self.secrets.get(profile)? else {
            return Ok(None);
        };
        serde_json::from_str(raw.expose())
            .map(Some)
            .map_err(|_| KeychainError::Corrupt(profile.to_string()))
    }

    pub fn save(&self, profile: &str, login: &StoredLogin) -> Result<(), KeychainError> {
        let raw = serde_json::to_string(login)
            .map_err(|err| KeychainError::Other(format!("cannot encode the login: {err}")))?;
        self.secrets.set(profile, &Secret::new(raw))
    }

    pub fn delete(&self, profile: &str) -> Result<bool, KeychainError> {
        self.secrets.delete(profile)
    }

    /// The confidential client's secret of `profile`, in its own entry beside the login so a
    /// sign-out (which deletes the login) keeps it.
    pub fn load_client_secret(&self, profile: &str) -> Result<Option<ClientSecret>, KeychainError> {
        let Some(raw) = self.secrets.get(&client_secret_account(profile))? else {
            return Ok(None);
        };
        ClientSecret::parse(raw.expose())
            .map(Some)
            .map_err(|_| KeychainError::Corrupt(profile.to_string()))
    }

    pub fn save_client_secret(
        &self,
        profile: &str,
        secret: &ClientSecret,
    ) -> Result<(), KeychainError> {
        let raw = Secret::new(secret.expose().to_string());
        self.secrets.set(&client_secret_account(profile), &raw)
    }

    /// Returns whether there was a secret.
    pub fn delete_client_secret(&self, profile: &str) -> Result<bool, KeychainError> {
        self.secrets.delete(&client_secret_account(profile))
    }

    /// Reads a profile's entry to find out early whether the keychain works at all, so a
    /// sign-in is not wasted on a keychain that cannot keep it.
    pub fn check_reachable(&self, profile: &str) -> Result<(), KeychainError> {
        self.secrets.get(profile).map(|_| ())
    }
}

/// Spaces and parentheses are not allowed in profile names, so this account can never be a
/// login's.
fn client_secret_account(profile: &str) -> String {
    format!("{profile} (client secret)")
}

/// The OS keychain through `keyring-core`. The platform store is opened lazily and opened
/// again after a failure, so starting gnome-keyring after the agent needs no agent restart.
#[derive(Default)]
pub struct OsKeychain {
    store: Mutex<Option<Arc<keyring_core::CredentialStore>>>,
}

impl OsKeychain {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens the platform store now rather than at the first call, so that call is fast.
    pub fn open(&self) -> Result<(), KeychainError> {
        self.store().map(drop)
    }

    fn store(&self) -> Result<Arc<keyring_core::CredentialStore>, KeychainError> {
        let mut slot = self
            .store
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match slot.as_ref() {
            Some(store) => Ok(store.clone()),
            None => {
                let store = open_platform_store()?;
                *slot = Some(store.clone());
                Ok(store)
            }
        }
    }

    fn entry(&self, account: &str) -> Result<keyring_core::Entry, KeychainError> {
        let store = self.store()?;
        store.build(KEYCHAIN_SERVICE, account, None).map_err(|err| {
            // A broken connection poisons the cached store; drop it so the next call reconnects.
            self.forget_store();
            classify(err)
        })
    }

    fn forget_store(&self) {
        *self
            .store
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = None;
    }

    /// Runs `op` on the profile's entry; a missing entry is `Ok(None)`.
    fn run<T>(
        &self,
        account: &str,
        op: impl FnOnce(&keyring_core::Entry) -> keyring_core::Result<T>,
    ) -> Result<Option<T>, KeychainError> {
        match op(&self.entry(account)?) {
            Ok(value) => Ok(Some(value)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(err) => {
                if matches!(err, keyring_core::Error::PlatformFailure(_)) {
                    self.forget_store();
                }
                Err(classify(err))
            }
        }
    }
}

fn open_platform_store() -> Result<Arc<keyring_core::CredentialStore>, KeychainError> {
    #[cfg(all(unix, not(target_os = "macos")))]
    let store = zbus_secret_service_keyring_store::Store::new();
    #[cfg(target_os = "macos")]
    let store = apple_native_keyring_store::keychain::Store::new();
    #[cfg(windows)]
    let store = windows_native_keyring_store::Store::new();
    match store {
        Ok(store) => Ok(store),
        Err(err) => Err(KeychainError::Unavailable(err.to_string())),
    }
}

fn classify(err: keyring_core::Error) -> KeychainError {
    match err {
        keyring_core::Error::NoStorageAccess(inner) => KeychainError::Locked(inner.to_string()),
        keyring_core::Error::PlatformFailure(inner) => {
            KeychainError::Unavailable(inner.to_string())
        }
        keyring_core::Error::NoDefaultStore => {
            KeychainError::Unavailable("no default credential store".into())
        }
        other => KeychainError::Other(other.to_string()),
    }
}

/// One platform entry per account, as the keyring store holds it.
struct Entries<'a>(&'a OsKeychain);

impl SecretStore for Entries<'_> {
    fn get(&self, account: &str) -> Result<Option<Secret<String>>, KeychainError> {
        Ok(self
            .0
            .run(account, |entry| entry.get_password())?
            .map(Secret::new))
    }

    fn set(&self, account: &str, secret: &Secret<String>) -> Result<(), KeychainError> {
        self.0
            .run(account, |entry| entry.set_password(secret.expose()))
            .map(|_| ())
    }

    fn delete(&self, account: &str) -> Result<bool, KeychainError> {
        Ok(self
            .0
            .run(account, |entry| entry.delete_credential())?
            .is_some())
    }
}

impl OsKeychain {
    /// The Secret Service and the macOS Keychain hold a login in one entry.
    #[cfg(not(windows))]
    fn entries(&self) -> Entries<'_> {
        Entries(self)
    }

    /// Credential Manager holds 2,560 bytes per entry: larger logins are split.
    #[cfg(windows)]
    fn entries(&self) -> crate::store_chunks::Chunked<Entries<'_>> {
        crate::store_chunks::Chunked::new(
            Entries(self),
            crate::store_chunks::CREDENTIAL_MANAGER_UNITS,
        )
    }
}

impl SecretStore for OsKeychain {
    fn get(&self, account: &str) -> Result<Option<Secret<String>>, KeychainError> {
        self.entries().get(account)
    }

    fn set(&self, account: &str, secret: &Secret<String>) -> Result<(), KeychainError> {
        self.entries().set(account, secret)
    }

    fn delete(&self, account: &str) -> Result<bool, KeychainError> {
        self.entries().delete(account)
    }
}

/// An in-memory store for unit tests of the agent.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<std::collections::HashMap<String, Secret<String>>>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Secret<String>>> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, account: &str) -> Result<Option<Secret<String>>, KeychainError> {
        Ok(self.lock().get(account).cloned())
    }

    fn set(&self, account: &str, secret: &Secret<String>) -> Result<(), KeychainError> {
        self.lock().insert(account.to_string(), secret.clone());
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<bool, KeychainError> {
        Ok(self.lock().remove(account).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_round_trip_and_corrupt_entry_is_reported_not_lost() {
        let memory = Arc::new(MemoryStore::default());
        let store = LoginStore::new(memory.clone());
        assert!(store.load("corp").unwrap().is_none());
        let login = StoredLogin::new(
            "https://idp".into(),
            "cli".into(),
            RefreshToken::new("rt-1".into()),
            None,
            42,
        );
        store.save("corp", &login).unwrap();
        let back = store.load("corp").unwrap().unwrap();
        assert_eq!(back.refresh_token.as_ref().unwrap().expose(), "rt-1");
        assert!(back.belongs_to("https://idp", "cli"));
        assert!(!back.belongs_to("https://idp", "other"));

        memory.set("corp", &Secret::new("not json".into())).unwrap();
        assert_eq!(
            store.load("corp").unwrap_err(),
            KeychainError::Corrupt("corp".into())
        );
        // The unreadable entry is still there for the user to inspect.
        assert!(memory.get("corp").unwrap().is_some());
    }

    #[test]
    fn client_secret_lives_beside_the_login_and_outlives_its_deletion() {
        let memory = Arc::new(MemoryStore::default());
        let store = LoginStore::new(memory.clone());
        let login = StoredLogin::new(
            "https://idp".into(),
            "cli".into(),
            RefreshToken::new("rt".into()),
            None,
            1,
        );
        store.save("corp", &login).unwrap();
        let secret = ClientSecret::parse("s3cret").unwrap();
        store.save_client_secret("corp", &secret).unwrap();
        assert_eq!(
            store
                .load("corp")
                .unwrap()
                .unwrap()
                .refresh_token
                .unwrap()
                .expose(),
            "rt"
        );
        assert!(store.delete("corp").unwrap());
        assert_eq!(
            store.load_client_secret("corp").unwrap().unwrap().expose(),
            "s3cret"
        );
        assert!(store.load_client_secret("other").unwrap().is_none());
        assert!(store.delete_client_secret("corp").unwrap());
        assert!(store.load_client_secret("corp").unwrap().is_none());
    }
}
