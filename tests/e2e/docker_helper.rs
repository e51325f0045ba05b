//! `docker-credential-stagepass` against the docker credential helper protocol
//! (<https://github.com/docker/docker-credential-helpers>), and a real daemonless client
//! (skopeo) pulling a manifest from a registry that takes only valid tokens of the test IdP
//! (tests/servers/registry-server.mjs).

use crate::support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use support::{Idp, Run, Sandbox, TestServer};

const NOT_FOUND: &str = "credentials not found in native keychain";

/// The token-checking registry of tests/servers, plus what the docker tests ask of it.
struct RegistryServer(TestServer);

impl RegistryServer {
    fn start(issuer: &str) -> RegistryServer {
        RegistryServer(TestServer::start(
            "registry-server.mjs",
            &[("ISSUER", issuer.as_ref())],
        ))
    }

    /// `127.0.0.1:PORT`, as docker and skopeo name the registry.
    fn host(&self) -> &str {
        self.0.url.trim_start_matches("http://")
    }

    /// The HTTP status of `GET /v2/` with `token` as the Basic password.
    fn status_with(&self, username: &str, token: &str) -> String {
        let output = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-K", "-"])
            .arg(format!("{}/v2/", self.0.url))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                // On stdin, not in argv: `user = "NAME:TOKEN"` as a curl config line.
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(format!("user = \"{username}:{token}\"\n").as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// A signed-in sandbox whose config maps the registry to its profile, and a bin dir with
/// `docker-credential-stagepass`.
struct World {
    sandbox: Sandbox,
    server: RegistryServer,
    bin: PathBuf,
}

impl World {
    fn new(idp: &Idp, profile: &str) -> World {
        let sandbox = Sandbox::new(profile, &idp.issuer);
        let server = RegistryServer::start(&idp.issuer);
        let config = std::fs::read_to_string(sandbox.path().join("config.toml")).unwrap();
        sandbox.write_config(&format!(
            "{config}\n[[docker]]\nregistry = \"{}\"\nprofile = \"{profile}\"\n",
            server.host()
        ));
        let bin = sandbox.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_stagepass"),
            bin.join("docker-credential-stagepass"),
        )
        .unwrap();
        sandbox.login_browser();
        World {
            sandbox,
            server,
            bin,
        }
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = self.sandbox.tool(program);
        command
            .args(args)
            .current_dir(self.sandbox.path())
            .env("DOCKER_CONFIG", self.sandbox.path().join("docker"))
            .env(
                "PATH",
                format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap()),
            );
        command
    }

    /// `docker-credential-stagepass ACTION` with `input` on stdin, found on PATH by name as
    /// docker finds it.
    fn helper(&self, action: &str, input: &str) -> Run {
        support::run_with_input(
            self.command("docker-credential-stagepass", &[action]),
            input,
        )
    }

    fn stagepass(&self, args: &[&str]) -> Run {
        Run(self
            .command(env!("CARGO_BIN_EXE_stagepass"), args)
            .stdin(Stdio::null())
            .output()
            .unwrap())
    }
}

#[test]
fn get_store_erase_and_list_follow_the_docker_helper_protocol() {
    let idp = Idp::start();
    let world = World::new(&idp, "e2e-docker");
    let host = world.server.host().to_string();

    // get: the stored credential for a mapped registry, as JSON on stdout.
    let started = Instant::now();
    let get = world.helper("get", &format!("{host}\n"));
    let took = started.elapsed();
    get.assert_ok();
    let answer = get.json();
    let fields: Vec<&String> = answer.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        ["Secret", "ServerURL", "Username"],
        "exactly the protocol's fields: {}",
        get.stdout()
    );
    assert_eq!(answer["ServerURL"], host.as_str());
    assert_eq!(answer["Username"], "oauth2");
    let secret = answer["Secret"].as_str().unwrap().to_string();
    assert_eq!(
        world.server.status_with("oauth2", &secret),
        "200",
        "the registry takes the token"
    );
    assert_eq!(
        world.server.status_with("oauth2", "not-a-token"),
        "401",
        "and refuses anything else"
    );
    // docker also names registries by URL.
    let by_url = world.helper("get", &format!("https://{host}/v2/\n"));
    by_url.assert_ok();
    assert_eq!(by_url.json()["Secret"], secret.as_str());

    // An unmapped registry: the protocol's "not found", exit code 1, no token.
    for unmapped in ["registry.example.com", "127.0.0.1", "127.0.0.1:1"] {
        let miss = world.helper("get", &format!("{unmapped}\n"));
        miss.assert_code(1);
        assert_eq!(miss.stdout(), format!("{NOT_FOUND}\n"), "{unmapped}");
        assert!(!miss.stderr().contains(&secret), "{unmapped}");
    }

    // store and erase (docker login/logout) are accepted and change nothing.
    let refreshes = idp.refresh_calls();
    let store = world.helper(
        "store",
        &format!(r#"{{"ServerURL":"{host}","Username":"someone","Secret":"from-docker-login"}}"#),
    );
    store.assert_ok();
    assert_eq!(store.stdout(), "");
    let erase = world.helper("erase", &format!("{host}\n"));
    erase.assert_ok();
    assert_eq!(erase.stdout(), "");
    let status = world.stagepass(&["status", "--json"]).json();
    assert_eq!(status["profiles"][0]["state"], "signed_in", "{status}");
    let again = world.helper("get", &format!("{host}\n"));
    again.assert_ok();
    assert_eq!(
        again.json()["Secret"],
        secret.as_str(),
        "erase did not mark the token bad, store did not replace it"
    );
    assert_eq!(idp.refresh_calls(), refreshes, "no refresh for store/erase");

    // list: the mapped registries and their usernames.
    let list = world.helper("list", "");
    list.assert_ok();
    assert_eq!(list.json(), serde_json::json!({ host.clone(): "oauth2" }));

    // An action docker does not have is a usage error, not a silent success.
    let unknown = world.helper("frobnicate", "");
    assert_ne!(unknown.code(), 0);
    assert!(
        unknown.stderr().contains("frobnicate"),
        "{}",
        unknown.stderr()
    );

    let audit = std::fs::read_to_string(world.sandbox.data_dir().join("audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|line| line.contains("\"consumer\":\"docker\"")),
        "{audit}"
    );
    assert!(!audit.contains(&secret), "the audit log holds no token");
    eprintln!("docker-credential-stagepass get took {took:?} (first call)");
}

#[test]
fn skopeo_pulls_a_manifest_through_the_helper_set_up_by_stagepass() {
    if let Err(err) = Command::new("skopeo").arg("--version").output() {
        support::missing_part(
            &format!("skopeo ({err})"),
            "install Debian's `skopeo` (scripts/setup does) to run a real docker credential \
             helper client",
        );
        return;
    }
    let idp = Idp::start();
    let world = World::new(&idp, "e2e-docker-skopeo");
    let host = world.server.host().to_string();

    // `setup docker` writes exactly the credHelpers entry skopeo reads from an auth file.
    let setup = world.stagepass(&["setup", "docker"]);
    setup.assert_ok();
    assert!(
        setup
            .stdout()
            .contains(&format!("+ credHelpers.{host} = stagepass")),
        "{}",
        setup.stdout()
    );
    let auth_file = world.sandbox.path().join("docker/config.json");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&auth_file).unwrap()).unwrap();
    assert_eq!(
        written,
        serde_json::json!({ "credHelpers": { host.clone(): "stagepass" } })
    );

    let image = format!("docker://{host}/team/app:1.0");
    let inspect = |auth: &std::path::Path| {
        Run(world
            .command(
                "skopeo",
                &["inspect", "--tls-verify=false", "--retry-times=0", &image],
            )
            .env("REGISTRY_AUTH_FILE", auth)
            .stdin(Stdio::null())
            .output()
            .unwrap())
    };
    let started = Instant::now();
    let pulled = inspect(&auth_file);
    let took = started.elapsed();
    pulled.assert_ok();
    let manifest = pulled.json();
    assert!(
        manifest["Name"].as_str().unwrap().ends_with("team/app"),
        "{manifest}"
    );
    assert!(
        manifest["Digest"].as_str().unwrap().starts_with("sha256:"),
        "{manifest}"
    );
    let stats = world.server.0.stats();
    assert!(stats["accepted"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["basic"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["rejected"], 0, "{stats}");

    // Undone, skopeo has no credential (it reads DOCKER_CONFIG too), and the registry says no.
    world.stagepass(&["setup", "--undo", "docker"]).assert_ok();
    let undone: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&auth_file).unwrap()).unwrap();
    assert_eq!(undone, serde_json::json!({ "credHelpers": {} }));
    let anonymous = inspect(&auth_file);
    assert_ne!(anonymous.code(), 0, "{}", anonymous.stdout());
    assert_eq!(
        world.server.0.stats()["accepted"],
        stats["accepted"],
        "no token after setup --undo"
    );
    eprintln!("skopeo inspect through the helper took {took:?}");
}

#[test]
fn a_malformed_config_is_a_config_error_that_names_the_file() {
    // No IdP or agent is needed: `list` reads only the config.
    let sandbox = Sandbox::with_config("e2e-docker-badconfig", "[[docker]\nregistry = ");
    let bin = sandbox.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_stagepass"),
        bin.join("docker-credential-stagepass"),
    )
    .unwrap();
    let mut command = sandbox.tool(bin.join("docker-credential-stagepass"));
    command.arg("list");
    let list = support::run_with_input(command, "");
    list.assert_code(3)
        .assert_stderr_contains("config.toml")
        .assert_stderr_contains("hint: fix ");
    assert_eq!(list.stdout(), "", "nothing for docker to parse");
}
