//! The real Keycloak: `org.keycloak:keycloak-quarkus-dist`, which scripts/setup fetches with
//! Maven into a cache outside the work tree. One server per test binary, started on first use
//! with `kc.sh start-dev` on a free port and an in-memory database, so every run begins with
//! the realms of tests/keycloak/ exactly as committed (created through the admin API).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::proxy::free_port;
use super::{Sandbox, missing_part, repo_root};

/// The realm of most tests, and its clients (tests/keycloak/realm-stagepass.json).
pub const REALM: &str = "stagepass";
pub const CLIENT: &str = "stagepass";
/// The same client with 10 s access tokens, for tests that wait for expiry.
pub const SHORT_CLIENT: &str = "stagepass-short";
pub const SCOPES: &str = r#""openid", "email", "profile", "offline_access""#;

/// Keycloak's first start on a new cache also builds its server image (about a minute more).
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// The versions scripts/setup installs (tests/real-stack.env).
pub fn pinned_version(name: &str) -> String {
    include_str!("../../real-stack.env")
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{name} is not in tests/real-stack.env"))
        .trim()
        .to_string()
}

/// Where scripts/setup keeps what it fetched: `STAGEPASS_TEST_CACHE`, else the user's cache dir.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STAGEPASS_TEST_CACHE") {
        return dir.into();
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache"));
    base.join("stagepass-test")
}

fn keycloak_dir() -> PathBuf {
    repo_root().join("tests/keycloak")
}

pub struct Keycloak {
    pub url: String,
    admin_password: String,
}

/// The binary's Keycloak, started on first use; `None` where it is not installed and the
/// test may skip (never under `CI=true`).
pub fn keycloak() -> Option<&'static Keycloak> {
    static KEYCLOAK: OnceLock<Option<Keycloak>> = OnceLock::new();
    KEYCLOAK.get_or_init(Keycloak::start).as_ref()
}

impl Keycloak {
    fn start() -> Option<Keycloak> {
        let home = cache_dir().join(format!("keycloak-{}", pinned_version("KEYCLOAK_VERSION")));
        if !home.join("bin/kc.sh").is_file() {
            missing_part(
                &format!("Keycloak ({})", home.display()),
                "run scripts/setup, which fetches org.keycloak:keycloak-quarkus-dist with Maven",
            );
            return None;
        }
        let port = free_port();
        let admin_password = format!("admin-{}", std::process::id());
        let log_path = std::env::temp_dir().join(format!("stagepass-keycloak-{port}.log"));
        let mut command = Command::new(home.join("bin/kc.sh"));
        command
            .args([
                "start-dev",
                "--db=dev-mem",
                "--http-host=127.0.0.1",
                "--log=file",
            ])
            .arg(format!("--http-port={port}"))
            .arg(format!("--log-file={}", log_path.display()))
            .env("KC_BOOTSTRAP_ADMIN_USERNAME", "admin")
            .env("KC_BOOTSTRAP_ADMIN_PASSWORD", &admin_password);
        spawn_for_the_life_of_the_process(command);
        let keycloak = Keycloak {
            url: format!("http://127.0.0.1:{port}"),
            admin_password,
        };
        let started = Instant::now();
        while !keycloak.answers() {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "Keycloak did not start within {START_TIMEOUT:?}; its log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!(
            "keycloak: up at {} after {:?}",
            keycloak.url,
            started.elapsed()
        );
        let realms =
            ["realm-stagepass.json", "realm-shortsession.json"].map(|f| keycloak_dir().join(f));
        let output = keycloak.admin(
            &["import"],
            &realms.each_ref().map(|p| p.to_str().unwrap()),
            None,
        );
        assert!(
            output.status.success(),
            "realm import: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Some(keycloak)
    }

    fn answers(&self) -> bool {
        Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "--max-time", "2"])
            .arg(format!("{}/realms/master", self.url))
            .status()
            .is_ok_and(|status| status.success())
    }

    pub fn issuer(&self, realm: &str) -> String {
        format!("{}/realms/{realm}", self.url)
    }

    /// Runs tests/keycloak/admin.mjs `command` with `args`, and `stdin` as its input.
    fn admin(&self, command: &[&str], args: &[&str], stdin: Option<&str>) -> std::process::Output {
        let mut child = Command::new("node")
            .arg(keycloak_dir().join("admin.mjs"))
            .arg(command[0])
            .arg(&self.url)
            .args(&command[1..])
            .args(args)
            .env("KC_BOOTSTRAP_ADMIN_USERNAME", "admin")
            .env("KC_BOOTSTRAP_ADMIN_PASSWORD", &self.admin_password)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node runs tests/keycloak/admin.mjs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or_default().as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn admin_json(&self, command: &[&str], stdin: &str) -> serde_json::Value {
        let output = self.admin(command, &[], Some(stdin));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Keycloak's own verdict on a token (RFC 7662 introspection).
    pub fn introspect(&self, token: &str) -> serde_json::Value {
        self.admin_json(&["introspect", REALM], token)
    }

    /// A refresh grant at Keycloak, as another party holding `refresh_token`: (status, body).
    pub fn refresh_directly(&self, client: &str, refresh_token: &str) -> (u16, serde_json::Value) {
        let answer = self.admin_json(&["refresh", REALM, client], refresh_token);
        (
            answer["status"].as_u64().unwrap() as u16,
            answer["body"].clone(),
        )
    }

    /// How many events of `kind` (e.g. REFRESH_TOKEN) Keycloak recorded for `client`.
    pub fn events(&self, kind: &str, client: &str) -> u64 {
        self.admin_json(&["events", REALM, kind, client], "")["count"]
            .as_u64()
            .unwrap()
    }

    /// The profile section for `client` of `realm`, with the scopes and audience of the realm.
    pub fn profile(&self, profile: &str, realm: &str, client: &str, scopes: &str) -> String {
        super::oidc_profile(profile, &self.issuer(realm), client, scopes)
    }

    /// A sandbox whose one profile signs in to `client` of the main realm as `user`, through
    /// the scripted browser that fills Keycloak's own pages.
    pub fn sandbox(&self, profile: &str, client: &str, user: &str) -> Sandbox {
        self.sandbox_with(profile, user, &self.profile(profile, REALM, client, SCOPES))
    }

    pub fn sandbox_with(&self, profile: &str, user: &str, config: &str) -> Sandbox {
        let mut sandbox = Sandbox::with_config(profile, config);
        sandbox.set_env("BROWSER", keycloak_dir().join("browser").to_str().unwrap());
        sandbox.set_env("STAGEPASS_TEST_USER", user);
        sandbox
    }
}

/// Approves a device sign-in on Keycloak's own verification pages as `user`.
pub fn approve_device_code(verification_uri_complete: &str, user: &str) -> std::process::Output {
    Command::new(keycloak_dir().join("browser"))
        .arg("--device")
        .arg(verification_uri_complete)
        .env("STAGEPASS_TEST_USER", user)
        .output()
        .unwrap()
}

/// Starts `program args` so that it dies with this process: a server shared by a whole test
/// binary has no owner to drop it. `setpriv --pdeathsig` (util-linux) sets the parent-death
/// signal, which follows the thread that forked, so the fork happens on a thread that never ends.
///
/// The signal is TERM, not KILL: `kc.sh` runs Java as its own child and forwards TERM to it
/// (a trap), while a KILLed script leaves Java running with no parent; every test run left a
/// Keycloak of half a gigabyte behind that way.
pub fn spawn_for_the_life_of_the_process(command: Command) {
    let mut wrapped = Command::new("setpriv");
    wrapped
        .args(["--pdeathsig", "TERM", "--"])
        .arg(command.get_program())
        .args(command.get_args());
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let child = wrapped
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let started = child.is_ok();
        tx.send(child.map(|_| ())).unwrap();
        if started {
            loop {
                std::thread::park();
            }
        }
    });
    rx.recv()
        .unwrap()
        .expect("setpriv (util-linux) starts the server");
}
