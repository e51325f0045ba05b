//! Shared parts of the end-to-end tests: a real OpenID provider (panva's oidc-provider, see
//! tests/idp), an isolated stagepass sandbox (config, runtime dir, its own agent, an
//! environment cleared of the test's own), and the real Secret Service through `secret-tool`.
#![allow(dead_code)]

mod alone;

pub mod backstage;
pub mod crash;
pub mod doctor;
pub mod github;
pub mod keycloak;
pub mod local_user;
pub mod oauth2_proxy;
pub mod proxy;
pub mod ssh;

pub use alone::alone;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const CLIENT_ID: &str = "stagepass-test";
pub const AUDIENCE: &str = "https://backstage.test";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn idp_dir() -> PathBuf {
    repo_root().join("tests/idp")
}

/// The test IdP, stopped on drop.
pub struct Idp {
    child: Child,
    pub issuer: String,
}

impl Idp {
    pub fn start() -> Idp {
        Idp::start_with(&[])
    }

    /// `env`: IDP_ACCESS_TOKEN_TTL, IDP_DEVICE_CODE_TTL… (see tests/idp/server.mjs).
    pub fn start_with(env: &[(&str, &str)]) -> Idp {
        assert!(
            idp_dir().join("node_modules/oidc-provider").is_dir(),
            "the test IdP is not installed: run `npm ci --prefix tests/idp` (scripts/test does)"
        );
        let mut child = Command::new("node")
            .arg(idp_dir().join("server.mjs"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs the test IdP");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the IdP prints its issuer");
        let ready: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|err| panic!("IdP said {line:?}: {err}"));
        Idp {
            child,
            issuer: ready["issuer"].as_str().unwrap().to_string(),
        }
    }

    /// Posts to the IdP's token endpoint directly, as another party holding `refresh_token`.
    pub fn refresh_directly(&self, refresh_token: &str) -> (u16, serde_json::Value) {
        let output = Command::new("node")
            .arg("-e")
            .arg(
                "const [url, rt, cid] = process.argv.slice(1);\
                 fetch(url, {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'},\
                   body: new URLSearchParams({grant_type: 'refresh_token', refresh_token: rt, client_id: cid})})\
                 .then(async r => console.log(JSON.stringify({status: r.status, body: await r.json()})));",
            )
            .arg(format!("{}/token", self.issuer))
            // Test-only refresh token of a throwaway IdP; argv is acceptable here.
            .arg(refresh_token)
            .arg(CLIENT_ID)
            .output()
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        (
            value["status"].as_u64().unwrap() as u16,
            value["body"].clone(),
        )
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a sandbox's programs inherit from the test's environment; everything else is
/// cleared, so a variable of the shell that runs the tests (SSH_CONNECTION, BROWSER, a
/// STAGEPASS_* of the developer's own) cannot change what a test sees.
const INHERITED: &[&str] = &[
    "PATH",
    // The Secret Service and the notifications of the test session (scripts/with-keyring).
    "DBUS_SESSION_BUS_ADDRESS",
    "CI",
    "LANG",
    "LC_ALL",
    "RUST_BACKTRACE",
    // Coverage runs.
    "LLVM_PROFILE_FILE",
];

/// `program` with a cleared environment: [`INHERITED`] and `HOME` only.
pub fn clean_command(program: impl AsRef<OsStr>, home: &Path) -> Command {
    let mut command = Command::new(program);
    command.env_clear().env("HOME", home);
    for name in INHERITED {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
}

/// The profile names of the live sandboxes. The keychain entry is named after the profile, and
/// every test of the binary shares the one Secret Service: two sandboxes with one name at once
/// would read and delete each other's logins.
static PROFILES: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn claim_profile(profile: &str) {
    let mut profiles = PROFILES.lock().unwrap_or_else(|err| err.into_inner());
    assert!(
        profiles.insert(profile.to_string()),
        "two live sandboxes use the profile name `{profile}`: give each test its own, or \
         let a helper that sets up several tests take one from `unique_profile`"
    );
}

/// A profile name no other sandbox of this run has: `stem` and a number.
pub fn unique_profile(stem: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{stem}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// An isolated stagepass: its own config, runtime dir (so its own agent), data dir and HOME,
/// and an environment cleared of the test's own. The keychain is the session's real Secret
/// Service; each sandbox claims its profile name for its lifetime.
pub struct Sandbox {
    dir: tempfile::TempDir,
    pub profile: String,
    env: Vec<(String, String)>,
    /// Keeps a test that must run alone ([`alone`]) from starting while this one lives.
    _running: alone::Running,
}

impl Sandbox {
    /// A sandbox whose config has one profile `profile` for `issuer`.
    pub fn new(profile: &str, issuer: &str) -> Sandbox {
        Sandbox::with_config(
            profile,
            &format!(
                "[profiles.{profile}]\n\
                 issuer = \"{issuer}\"\n\
                 client_id = \"{CLIENT_ID}\"\n\
                 scopes = [\"openid\", \"email\", \"profile\", \"groups\", \"offline_access\"]\n\
                 audience = \"{AUDIENCE}\"\n"
            ),
        )
    }

    pub fn with_config(profile: &str, config: &str) -> Sandbox {
        require_secret_service();
        let running = alone::Running::start();
        claim_profile(profile);
        // Short path: the socket path must fit in sun_path.
        let dir = tempfile::Builder::new()
            .prefix("sp")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let sandbox = Sandbox {
            env: vec![
                (
                    "STAGEPASS_CONFIG".into(),
                    path_str(&dir.path().join("config.toml")),
                ),
                (
                    "STAGEPASS_RUNTIME_DIR".into(),
                    path_str(&dir.path().join("run")),
                ),
                (
                    "STAGEPASS_DATA_DIR".into(),
                    path_str(&dir.path().join("data")),
                ),
                ("BROWSER".into(), path_str(&idp_dir().join("browser"))),
                ("STAGEPASS_LOG".into(), "debug".into()),
            ],
            dir,
            profile: profile.to_string(),
            _running: running,
        };
        // A leftover entry of an earlier, aborted run must not make a test pass.
        sandbox.delete_keychain_entry();
        sandbox
    }

    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.retain(|(key, _)| key != name);
        self.env.push((name.into(), value.into()));
    }

    /// The environment every stagepass command of this sandbox runs with.
    pub fn envs(&self) -> &[(String, String)] {
        &self.env
    }

    /// A directory of this sandbox, removed with it.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write_config(&self, config: &str) {
        std::fs::write(self.dir.path().join("config.toml"), config).unwrap();
    }

    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.tool(env!("CARGO_BIN_EXE_stagepass"));
        command.args(args);
        command
    }

    /// `program` (git, kubectl, a stagepass helper) as this sandbox runs it: the cleared
    /// environment, HOME in the sandbox, and the sandbox's variables.
    pub fn tool(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = clean_command(program, self.path());
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.command(args).stdin(Stdio::null()).output().unwrap())
    }

    pub fn login_browser(&self) -> Run {
        let run = self.run(&["login", &self.profile, "--browser"]);
        run.assert_ok();
        run
    }

    pub fn keychain_entry(&self) -> Option<serde_json::Value> {
        let output = Command::new("secret-tool")
            .args(["lookup", "service", "stagepass", "username", &self.profile])
            .output()
            .expect("secret-tool (libsecret-tools) is installed");
        if !output.status.success() || output.stdout.is_empty() {
            return None;
        }
        Some(serde_json::from_slice(&output.stdout).expect("the entry is JSON"))
    }

    pub fn stored_refresh_token(&self) -> String {
        self.keychain_entry().expect("a keychain entry")["refresh_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn delete_keychain_entry(&self) {
        let _ = Command::new("secret-tool")
            .args(["clear", "service", "stagepass", "username", &self.profile])
            .status();
    }

    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.runtime_dir().join("agent.log")).unwrap_or_default()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.command(&["agent", "stop"]).output();
        self.delete_keychain_entry();
        PROFILES
            .lock()
            .unwrap_or_else(|err| err.into_inner())
            .remove(&self.profile);
        if std::thread::panicking() {
            eprintln!("--- agent log ---\n{}", self.agent_log());
        }
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

fn require_secret_service() {
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "these tests need an unlocked Secret Service on a D-Bus session bus: run them through \
         `scripts/test` (dbus-run-session + gnome-keyring)"
    );
}

/// A finished `stagepass` run.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.0.stdout)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}\n{}", self.stdout(), self.stderr()))
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.code(),
            0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code(),
            code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout().contains(needle),
            "expected {needle:?} in stdout:\n{}",
            self.stdout()
        );
        self
    }

    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr().contains(needle),
            "expected {needle:?} in stderr:\n{}",
            self.stderr()
        );
        self
    }
}

/// `login --device --json` in the background, its JSON lines, and the first one (the code).
pub fn start_device_sign_in(
    sandbox: &Sandbox,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
    serde_json::Value,
) {
    let mut login = sandbox
        .command(&["login", "--device", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(login.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["step"], "device_code", "{first}");
    (login, lines, first)
}

/// Runs the scripted browser against a device-flow verification URI.
pub fn approve_device_code(verification_uri_complete: &str, env: &[(&str, &str)]) -> Output {
    Command::new(idp_dir().join("browser"))
        .arg("--device")
        .arg(verification_uri_complete)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The claims of a JWT, unverified: for asserting on what a token says.
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.trim().split('.').nth(1).expect("a JWT");
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&json).unwrap()
}

/// An OIDC profile section with the suite's audience and `groups` claim.
pub fn oidc_profile(profile: &str, issuer: &str, client_id: &str, scopes: &str) -> String {
    format!(
        "[profiles.{profile}]\n\
         issuer = \"{issuer}\"\n\
         client_id = \"{client_id}\"\n\
         scopes = [{scopes}]\n\
         audience = \"{AUDIENCE}\"\n\
         groups_claim = \"groups\"\n"
    )
}

/// A real client or server a test needs is not installed. On a laptop the test skips with
/// this message; under `CI=true` a missing part fails the run with its name instead.
pub fn missing_part(part: &str, how_to_install: &str) {
    let message = format!("{part} is missing: {how_to_install}");
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "under CI=true no test skips: {message}"
    );
    eprintln!("skipping: {message}");
}

pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Idp {
    fn get(&self, path: &str) -> serde_json::Value {
        let output = Command::new("node")
            .arg("-e")
            .arg("fetch(process.argv[1]).then(r => r.text()).then(t => console.log(t))")
            .arg(format!("{}{path}", self.issuer))
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// How many refresh-token grants the IdP's token endpoint received.
    pub fn refresh_calls(&self) -> u64 {
        self.get("/test/stats")["token"]["refresh_token"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Makes the token endpoint answer 503 (`true`) or serve again (`false`).
    pub fn set_outage(&self, on: bool) {
        self.get(&format!("/test/outage?on={}", u8::from(on)));
    }
}

pub fn current_uid() -> u32 {
    let output = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// A test server of tests/servers/ (git, kube API, registry), killed on drop. Its stdin stays
/// a pipe held here: the server also exits when the test process dies and the pipe closes.
pub struct TestServer {
    child: Child,
    /// The JSON line the server printed when ready: `url`, and `ca_file` for HTTPS servers.
    pub ready: serde_json::Value,
    pub url: String,
}

impl TestServer {
    pub fn start(script: &str, env: &[(&str, &std::ffi::OsStr)]) -> TestServer {
        let mut child = Command::new("node")
            .arg(repo_root().join("tests/servers").join(script))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs the test server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|err| panic!("{script} said {line:?}: {err}"));
        let url = ready["url"].as_str().unwrap().to_string();
        TestServer { child, ready, url }
    }

    /// `GET /test/stats`: what the server accepted and refused.
    pub fn stats(&self) -> serde_json::Value {
        let output = self.curl(&["-s"], "/test/stats");
        serde_json::from_slice(&output.stdout).unwrap_or_else(|err| {
            panic!(
                "stats are not JSON ({err}): {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// `POST` to a test control such as `/test/reject-next?n=1`.
    pub fn post(&self, path: &str) {
        assert!(self.curl(&["-s", "-X", "POST"], path).status.success());
    }

    fn curl(&self, args: &[&str], path: &str) -> Output {
        let mut command = Command::new("curl");
        command.args(args);
        if let Some(ca_file) = self.ready["ca_file"].as_str() {
            command.args(["--cacert", ca_file]);
        }
        command.arg(format!("{}{path}", self.url)).output().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command` with `input` on its stdin, as git and docker feed their helpers.
pub fn run_with_input(mut command: Command, input: &str) -> Run {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    Run(child.wait_with_output().unwrap())
}
