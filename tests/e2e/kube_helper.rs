//! Real kubectl against a tiny HTTPS API endpoint that checks the bearer token like an API
//! server with `--oidc-issuer-url` (tests/servers/kube-server.mjs), with a kubeconfig user
//! written by `stagepass setup kube` that runs `stagepass kube-credential`.

use crate::support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Idp, Run, Sandbox, TestServer};

/// The kubectl on PATH, or `None` (with the reason printed) when there is none.
fn kubectl_version() -> Option<String> {
    match Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
    {
        Ok(output) if output.status.success() => {
            let json: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
            Some(json["clientVersion"]["gitVersion"].as_str()?.to_string())
        }
        Ok(output) => {
            support::missing_part(
                "a working kubectl",
                &format!(
                    "`kubectl version --client` failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            );
            None
        }
        Err(err) => {
            support::missing_part(
                &format!("kubectl ({err})"),
                "install `kubectl` or Debian's `kubernetes-client` (scripts/setup does) to run \
                 the kubectl tests",
            );
            None
        }
    }
}

struct World {
    sandbox: Sandbox,
    server: TestServer,
    kubeconfig: PathBuf,
    /// Created by the browser stand-in if anything tries to open a browser.
    browser_marker: PathBuf,
}

/// Runs a command, killing it (and failing) if it takes longer than a minute: a helper that
/// waits for a sign-in nobody can complete must not hang the suite.
fn run_bounded(mut command: Command, what: &str) -> Run {
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "`{what}` did not finish in 60 s; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run(child.wait_with_output().unwrap())
}

impl World {
    fn new(idp: &Idp, profile: &str) -> World {
        let mut sandbox = Sandbox::new(profile, &idp.issuer);
        let cert_dir = sandbox.path().join("kube-cert");
        std::fs::create_dir_all(&cert_dir).unwrap();
        let server = TestServer::start(
            "kube-server.mjs",
            &[
                ("ISSUER", idp.issuer.as_ref()),
                ("KUBE_CERT_DIR", cert_dir.as_os_str()),
            ],
        );
        sandbox.login_browser();
        // From now on a browser is a failure: a stand-in that leaves a mark and fails.
        let browser_marker = sandbox.path().join("browser-was-opened");
        let browser = sandbox.path().join("no-browser");
        std::fs::write(
            &browser,
            format!(
                "#!/bin/sh\ntouch '{}'\necho 'no browser in this test' >&2\nexit 1\n",
                browser_marker.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &browser,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        sandbox.set_env("BROWSER", browser.to_str().unwrap());
        let kubeconfig = sandbox.path().join("kubeconfig");
        World {
            sandbox,
            server,
            kubeconfig,
            browser_marker,
        }
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = self.sandbox.tool(program);
        command
            .args(args)
            .current_dir(self.sandbox.path())
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("SSH_CONNECTION")
            .env_remove("SSH_TTY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn run(&self, program: &str, args: &[&str]) -> Run {
        let what = format!("{program} {}", args.join(" "));
        run_bounded(self.command(program, args), &what)
    }

    fn kubectl(&self, args: &[&str]) -> Run {
        self.run("kubectl", args)
    }

    fn stagepass(&self, args: &[&str]) -> Run {
        self.run(env!("CARGO_BIN_EXE_stagepass"), args)
    }

    /// The kubeconfig user `name`, as kubectl reads the file.
    fn user(&self, name: &str) -> Option<serde_json::Value> {
        let view = self.kubectl(&["config", "view", "-o", "json"]);
        view.assert_ok();
        view.json()["users"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|user| user["name"] == name)
            .cloned()
    }
}

#[test]
fn kubectl_gets_the_id_token_with_no_prompt_and_fails_cleanly_when_signed_out() {
    let Some(version) = kubectl_version() else {
        return;
    };
    let started = Instant::now();
    let idp = Idp::start();
    let profile = "e2e-kube";
    let world = World::new(&idp, profile);
    let user = format!("stagepass-{profile}");

    let setup = world.stagepass(&["setup", "kube", profile]);
    setup.assert_ok();
    assert!(
        setup
            .stdout()
            .contains(&format!("+ kubeconfig user {user}: exec ")),
        "{}",
        setup.stdout()
    );
    let written = world.user(&user).expect("setup kube wrote the user");
    let exec = &written["user"]["exec"];
    assert_eq!(
        exec["command"].as_str(),
        Some(env!("CARGO_BIN_EXE_stagepass")),
        "{written}"
    );
    assert_eq!(
        exec["args"],
        serde_json::json!(["kube-credential", profile])
    );
    let api_version = exec["apiVersion"].as_str().unwrap_or_default().to_string();
    assert!(
        api_version.starts_with("client.authentication.k8s.io/"),
        "{written}"
    );
    if api_version.ends_with("/v1") {
        // kubectl refuses a v1 exec entry without interactiveMode.
        assert_eq!(
            exec["interactiveMode"], "IfAvailable",
            "kubectl {version} needs interactiveMode with v1: {written}"
        );
    }
    // Setting it up again changes nothing.
    let before = std::fs::read_to_string(&world.kubeconfig).unwrap();
    world.stagepass(&["setup", "kube", profile]).assert_ok();
    assert_eq!(std::fs::read_to_string(&world.kubeconfig).unwrap(), before);

    world
        .kubectl(&[
            "config",
            "set-cluster",
            "test",
            &format!("--server={}", world.server.url),
            &format!(
                "--certificate-authority={}",
                world.server.ready["ca_file"].as_str().unwrap()
            ),
        ])
        .assert_ok();
    world
        .kubectl(&[
            "config",
            "set-context",
            "test",
            "--cluster=test",
            &format!("--user={user}"),
        ])
        .assert_ok();
    world
        .kubectl(&["config", "use-context", "test"])
        .assert_ok();

    let call = Instant::now();
    let version_call = world.kubectl(&["get", "--raw", "/version"]);
    let took = call.elapsed();
    version_call.assert_ok();
    assert_eq!(
        version_call.json()["gitVersion"],
        "v1.30.0-stagepass-test",
        "{}",
        version_call.stdout()
    );
    let stats = world.server.stats();
    // The server takes only a token whose aud is the client id: the id_token.
    assert!(stats["accepted"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["rejected"], 0, "{stats}");
    let audit = std::fs::read_to_string(world.sandbox.data_dir().join("audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|line| line.contains("\"consumer\":\"kube\"")),
        "{audit}"
    );

    // Signed out: kubectl fails at once with stagepass's message, and nothing opens a browser.
    world.stagepass(&["logout", profile]).assert_ok();
    let accepted = world.server.stats()["accepted"].clone();
    let call = Instant::now();
    let signed_out = world.kubectl(&["get", "--raw", "/version"]);
    let took_signed_out = call.elapsed();
    assert_ne!(signed_out.code(), 0, "{}", signed_out.stdout());
    let stderr = signed_out.stderr();
    assert!(
        stderr.contains(&format!("profile `{profile}` is not signed in"))
            && stderr.contains(&format!("stagepass login {profile}")),
        "kubectl shows stagepass's reason and what to do:\n{stderr}"
    );
    assert!(stderr.contains("getting credentials: exec"), "{stderr}");
    assert!(
        !world.browser_marker.exists(),
        "no browser when kubectl cannot interact"
    );
    assert_eq!(
        world.server.stats()["accepted"],
        accepted,
        "no token reached the server"
    );

    world
        .stagepass(&["setup", "--undo", "kube", profile])
        .assert_ok();
    assert!(world.user(&user).is_none(), "setup --undo removed the user");
    eprintln!(
        "kubectl {version}, exec {api_version}: get --raw /version took {took:?}, \
         failing when signed out {took_signed_out:?}, whole test {:?}",
        started.elapsed()
    );
}

/// kubectl before 1.22 speaks v1beta1 and says nothing about interactivity (`"spec":{}`, the
/// exact value kubectl 1.20 sets). The plugin must answer in that version and, with no
/// terminal, must not open a browser when signed out. No kubectl needed: this is the plugin's
/// side of the contract.
#[test]
fn the_v1beta1_contract_of_old_kubectl_answers_in_kind_and_never_opens_a_browser() {
    let idp = Idp::start();
    let world = World::new(&idp, "e2e-kube-beta");
    const OLD_KUBECTL: &str = r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{}}"#;
    let plugin = |world: &World| {
        let mut command = world.command(
            env!("CARGO_BIN_EXE_stagepass"),
            &["kube-credential", "e2e-kube-beta"],
        );
        command.env("KUBERNETES_EXEC_INFO", OLD_KUBECTL);
        run_bounded(command, "stagepass kube-credential (v1beta1)")
    };

    let answer = plugin(&world);
    answer.assert_ok();
    let credential = answer.json();
    assert_eq!(
        credential["apiVersion"],
        "client.authentication.k8s.io/v1beta1"
    );
    assert_eq!(credential["kind"], "ExecCredential");
    assert!(
        credential["status"]["token"]
            .as_str()
            .is_some_and(|t| t.len() > 20)
    );

    world.stagepass(&["logout", "e2e-kube-beta"]).assert_ok();
    let started = Instant::now();
    let signed_out = plugin(&world);
    assert_eq!(
        signed_out.code(),
        4,
        "needs sign-in: {}",
        signed_out.stderr()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        !world.browser_marker.exists(),
        "no browser without a terminal"
    );
}
