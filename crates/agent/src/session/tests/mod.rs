//! The session service in process, against the fake IdP of `stagepass_core::testing`, an
//! in-memory keychain and a manual clock. Timing tests run on tokio's paused time: the
//! scheduler's sleeps and the clock are advanced together by [`World::pass`].

mod backoff;
mod events;
mod rejection;
mod rotation;
mod schedule;
mod single_flight;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use stagepass_core::clock::{ManualClock, from_unix_secs};
use stagepass_core::http::{HttpClient, HttpLimits};
use stagepass_core::refresh::FixedJitter;
use stagepass_core::store::{KeychainError, LoginStore, MemoryStore, SecretStore, StoredLogin};
use stagepass_core::testing::{FakeIdp, Reply};
use stagepass_core::{RefreshToken, Secret};
use stagepass_proto::{AgentError, TokenGrant, TokenKind};

use super::Session;
use crate::sessions::Agent;
use crate::{AgentOptions, Dependencies};

const PROFILE: &str = "corp";
/// The fake IdP's access token lifetime. With no jitter the scheduler refreshes at 80 %
/// (240 s), and a token is expired 301 s after it was issued.
const LIFETIME: Duration = Duration::from_secs(300);
const EXPIRED: Duration = Duration::from_secs(301);

/// A keychain that can refuse writes, like a locked one.
#[derive(Default)]
struct Keychain {
    memory: MemoryStore,
    refuse_writes: AtomicBool,
}

impl SecretStore for Keychain {
    fn get(&self, account: &str) -> Result<Option<Secret<String>>, KeychainError> {
        self.memory.get(account)
    }

    fn set(&self, account: &str, secret: &Secret<String>) -> Result<(), KeychainError> {
        if self.refuse_writes.load(Ordering::SeqCst) {
            return Err(KeychainError::Unavailable("the keychain is locked".into()));
        }
        self.memory.set(account, secret)
    }

    fn delete(&self, account: &str) -> Result<bool, KeychainError> {
        self.memory.delete(account)
    }
}

struct World {
    idp: FakeIdp,
    agent: Arc<Agent>,
    clock: Arc<ManualClock>,
    keychain: Arc<Keychain>,
    _dir: tempfile::TempDir,
}

impl World {
    /// An agent whose keychain holds a login of `corp` (refresh token `rt-0`), with nothing
    /// in memory yet; the IdP's next refresh answers `at-1`/`rt-1`.
    async fn signed_in() -> World {
        World::signed_in_with("").await
    }

    /// Like [`World::signed_in`], with `more_config` (`{idp}`: the fake IdP's URL) added to
    /// the config file.
    async fn signed_in_with(more_config: &str) -> World {
        let idp = FakeIdp::standard().await;
        idp.route("/token", tokens(1));
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("stagepass.toml");
        std::fs::write(
            &config_path,
            format!(
                "[profiles.{PROFILE}]\nissuer = \"{}\"\nclient_id = \"stagepass-test\"\n{}",
                idp.base,
                more_config.replace("{idp}", &idp.base)
            ),
        )
        .unwrap();
        let keychain = Arc::new(Keychain::default());
        let clock = Arc::new(ManualClock::starting_at(from_unix_secs(1_800_000_000)));
        let deps = Dependencies {
            http: HttpClient::new(HttpLimits::default()).unwrap(),
            logins: LoginStore::new(keychain.clone()),
            clock: clock.clone(),
            jitter: Arc::new(FixedJitter(0.0)),
            notifier: Arc::new(crate::notify::Silent),
            refresh_worker: None,
        };
        let options = AgentOptions {
            runtime_dir: dir.path().join("run"),
            config_path,
            data_dir: dir.path().join("data"),
            notifications: false,
        };
        let world = World {
            idp,
            agent: Arc::new(Agent::new(options, deps)),
            clock,
            keychain,
            _dir: dir,
        };
        let profile = world.session().profile.clone();
        let login = StoredLogin::new(
            profile.issuer().into_owned(),
            profile.client_id().to_string(),
            RefreshToken::new("rt-0".into()),
            None,
            0,
        );
        world.agent.deps.logins.save(PROFILE, &login).unwrap();
        world
    }

    fn session(&self) -> Arc<Session> {
        self.session_of(PROFILE)
    }

    fn session_of(&self, name: &str) -> Arc<Session> {
        let config = self.agent.config().unwrap();
        let (name, profile) = config.profile(Some(name)).unwrap();
        self.agent.session(name, profile)
    }

    async fn token(&self, min_valid: Duration) -> Result<TokenGrant, AgentError> {
        super::token(&self.agent, &self.session(), TokenKind::Access, min_valid).await
    }

    /// The access token handed out now, or the error's kind and message.
    async fn access_token(&self) -> Result<String, String> {
        self.token(Duration::ZERO)
            .await
            .map(|grant| grant.token.expose().to_string())
            .map_err(|err| format!("{:?}: {}", err.kind, err.message))
    }

    /// Refreshes the IdP has answered (discovery not counted).
    fn refreshes(&self) -> usize {
        self.idp.hits("/token")
    }

    /// Lets `time` pass for the agent's clock and for tokio's timers alike.
    async fn pass(&self, time: Duration) {
        self.clock.advance(time);
        tokio::time::advance(time).await;
    }

    fn refuse_keychain_writes(&self, refuse: bool) {
        self.keychain.refuse_writes.store(refuse, Ordering::SeqCst);
    }

    fn saved_refresh_token(&self) -> Option<String> {
        let login = self.agent.deps.logins.load(PROFILE).unwrap()?;
        Some(login.refresh_token?.expose().to_string())
    }

    fn held_refresh_token(&self) -> Option<String> {
        self.session().read(|data| {
            let token = data.tokens()?.refresh_token.as_ref()?;
            Some(token.expose().to_string())
        })
    }
}

/// A token response: `at-N`, rotating the refresh token to `rt-N`.
fn tokens(n: u32) -> Reply {
    Reply::json(
        200,
        json!({
            "access_token": format!("at-{n}"),
            "token_type": "Bearer",
            "expires_in": LIFETIME.as_secs(),
            "refresh_token": format!("rt-{n}"),
        }),
    )
}

fn outage() -> Reply {
    Reply::json(503, json!({ "error": "temporarily_unavailable" }))
}

/// Waits until `done` holds: 5 s of paused time (which costs nothing) for the agent's tasks,
/// and a second of real time for its threads (the keychain's, a log writer's).
async fn until(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("{what}: still not so after 5 s");
}
