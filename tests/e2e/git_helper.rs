//! Real git against `git http-backend` behind a server that accepts only valid tokens from the
//! test IdP (tests/servers/git-server.mjs), with stagepass as git's credential helper.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use support::{Idp, Sandbox, TestServer};

/// A sandbox whose config maps the git server to its profile, git set up by `stagepass setup
/// git`, and a bare repository with one commit.
struct World {
    sandbox: Sandbox,
    server: TestServer,
    bin: PathBuf,
}

impl World {
    fn new(idp: &Idp, profile: &str) -> World {
        let sandbox = Sandbox::new(profile, &idp.issuer);
        let root = sandbox.path().join("repos");
        std::fs::create_dir_all(&root).unwrap();
        let server = TestServer::start(
            "git-server.mjs",
            &[
                ("ISSUER", idp.issuer.as_ref()),
                ("GIT_PROJECT_ROOT", root.as_os_str()),
            ],
        );
        let config = std::fs::read_to_string(sandbox.path().join("config.toml")).unwrap();
        sandbox.write_config(&format!(
            "{config}\n[[git]]\nurl = \"{}/\"\nprofile = \"{profile}\"\n",
            server.url
        ));
        let bin = sandbox.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_stagepass"),
            bin.join("git-credential-stagepass"),
        )
        .unwrap();
        let world = World {
            sandbox,
            server,
            bin,
        };
        let seed = world.sandbox.path().join("seed");
        world
            .git(&["init", "-q", "-b", "main", seed.to_str().unwrap()])
            .assert_ok();
        std::fs::write(seed.join("README"), "hello\n").unwrap();
        world.git_in(&seed, &["add", "README"]).assert_ok();
        world
            .git_in(&seed, &["commit", "-q", "-m", "first"])
            .assert_ok();
        world
            .git(&[
                "clone",
                "-q",
                "--bare",
                seed.to_str().unwrap(),
                root.join("app.git").to_str().unwrap(),
            ])
            .assert_ok();
        world
    }

    fn repo_url(&self) -> String {
        format!("{}/app.git", self.server.url)
    }

    fn command(&self, program: &str, dir: &Path, args: &[&str]) -> Command {
        let mut command = self.sandbox.tool(program);
        command
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", self.sandbox.path().join("gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env(
                "PATH",
                format!("{}:{}", self.bin.display(), std::env::var("PATH").unwrap()),
            )
            .stdin(Stdio::null());
        command
    }

    fn git_in(&self, dir: &Path, args: &[&str]) -> support::Run {
        support::Run(self.command("git", dir, args).output().unwrap())
    }

    fn git(&self, args: &[&str]) -> support::Run {
        self.git_in(self.sandbox.path(), args)
    }

    fn stagepass(&self, args: &[&str]) -> support::Run {
        support::Run(
            self.command(env!("CARGO_BIN_EXE_stagepass"), self.sandbox.path(), args)
                .output()
                .unwrap(),
        )
    }
}

#[test]
fn clone_push_and_fetch_work_with_no_prompt_and_setup_is_idempotent() {
    let idp = Idp::start();
    let world = World::new(&idp, "e2e-git");
    world.sandbox.login_browser();
    let setup = world.stagepass(&["setup", "git"]);
    setup.assert_ok();
    assert!(
        setup.stdout().contains("+ credential."),
        "{}",
        setup.stdout()
    );
    let again = world.stagepass(&["setup", "git"]);
    assert!(again.stdout().contains("(unchanged)"), "{}", again.stdout());

    let work = world.sandbox.path().join("work");
    world
        .git(&["clone", "-q", &world.repo_url(), work.to_str().unwrap()])
        .assert_ok();
    std::fs::write(work.join("CHANGE"), "pushed\n").unwrap();
    world.git_in(&work, &["add", "CHANGE"]).assert_ok();
    world
        .git_in(&work, &["commit", "-q", "-m", "change"])
        .assert_ok();
    world
        .git_in(&work, &["push", "-q", "origin", "main"])
        .assert_ok();
    world.git_in(&work, &["fetch", "-q"]).assert_ok();
    let stats = world.server.stats();
    assert_eq!(
        stats["rejected"], 0,
        "the server never refused a token: {stats}"
    );
    assert!(stats["accepted"].as_u64().unwrap() >= 3, "{stats}");

    // The hand-outs are audited as git's, without the token.
    let audit = std::fs::read_to_string(world.sandbox.data_dir().join("audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|line| line.contains("\"consumer\":\"git\"")),
        "{audit}"
    );

    world.stagepass(&["setup", "--undo", "git"]).assert_ok();
    let unset = world.git(&["ls-remote", &world.repo_url()]);
    assert_ne!(unset.code(), 0, "without the helper git has no credential");
}

#[test]
fn an_unmapped_host_gets_an_empty_answer() {
    let idp = Idp::start();
    let world = World::new(&idp, "e2e-git-unmapped");
    world.sandbox.login_browser();
    let output = helper_answer(
        &world,
        "get",
        "protocol=https\nhost=elsewhere.example.com\n\n",
    )
    .0;
    assert!(output.status.success());
    assert!(
        output.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn rejected_tokens_and_parallel_fetches_cost_one_refresh_each() {
    let idp = Idp::start_with(&[("IDP_ACCESS_TOKEN_TTL", "6")]);
    let world = World::new(&idp, "e2e-git-expiry");
    world.sandbox.login_browser();
    world.stagepass(&["setup", "git"]).assert_ok();
    world.stagepass(&["agent", "stop"]).assert_ok();
    // A new agent has no access token: twenty parallel ls-remote share one refresh.
    let before = idp.refresh_calls();
    let children: Vec<Child> = (0..20)
        .map(|_| {
            world
                .command(
                    "git",
                    world.sandbox.path(),
                    &["ls-remote", &world.repo_url()],
                )
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(
        idp.refresh_calls() - before,
        1,
        "one refresh for twenty fetches"
    );

    // git gets a valid token on the first try. (That one is refreshed after expiry, and
    // ahead of it, is tested in process on paused time: `session::tests`.)
    world.git(&["ls-remote", &world.repo_url()]).assert_ok();
    assert_eq!(world.server.stats()["rejected"], 0);

    // A server that rejects the current token: git erases it, the agent refreshes for the
    // next command, and the profile stays signed in.
    let calls = idp.refresh_calls();
    world.server.post("/test/reject-next?n=1");
    let refused = world.git(&["ls-remote", &world.repo_url()]);
    assert_ne!(refused.code(), 0);
    world.git(&["ls-remote", &world.repo_url()]).assert_ok();
    assert!(
        idp.refresh_calls() > calls,
        "the rejected token was replaced"
    );
    let status = world.stagepass(&["status", "--json"]).json();
    assert_eq!(status["profiles"][0]["state"], "signed_in", "{status}");
}

/// `(major, minor)` of the git on PATH.
fn git_version() -> Option<(u32, u32)> {
    let output = Command::new("git").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut parts = text.split_whitespace().nth(2)?.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Runs `stagepass git-credential ACTION` as git would, with `input` on stdin.
fn helper_answer(world: &World, action: &str, input: &str) -> support::Run {
    support::run_with_input(
        world.command(
            env!("CARGO_BIN_EXE_stagepass"),
            world.sandbox.path(),
            &["git-credential", action],
        ),
        input,
    )
}

/// The value of `key` in a credential helper's answer.
fn answer_value(answer: &str, key: &str) -> Option<String> {
    answer
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")))
        .map(String::from)
}

#[test]
fn a_bearer_host_gets_authorization_bearer_from_git_that_announces_authtype() {
    let idp = Idp::start();
    let world = World::new(&idp, "e2e-git-bearer");
    // The `[[git]]` table is the config's last one: this key belongs to it.
    let config = std::fs::read_to_string(world.sandbox.path().join("config.toml")).unwrap();
    world
        .sandbox
        .write_config(&format!("{config}auth = \"bearer\"\n"));
    world.sandbox.login_browser();
    let host = world.server.url.trim_start_matches("http://").to_string();

    // The protocol, whatever git is installed: bearer only to a caller announcing authtype.
    let bearer = helper_answer(
        &world,
        "get",
        &format!("capability[]=authtype\nprotocol=http\nhost={host}\n\n"),
    );
    bearer.assert_ok();
    let answer = bearer.stdout();
    assert_eq!(
        answer_value(&answer, "authtype").as_deref(),
        Some("Bearer"),
        "{answer}"
    );
    assert_eq!(
        answer_value(&answer, "ephemeral").as_deref(),
        Some("true"),
        "{answer}"
    );
    assert!(answer_value(&answer, "password").is_none(), "{answer}");
    let token = answer_value(&answer, "credential").expect("a credential");
    let refs = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!(
            "{}/info/refs?service=git-upload-pack",
            world.repo_url()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&refs.stdout),
        "200",
        "the server takes the token"
    );
    let old_git = helper_answer(&world, "get", &format!("protocol=http\nhost={host}\n\n"));
    old_git.assert_ok();
    let answer = old_git.stdout();
    assert!(answer_value(&answer, "authtype").is_none(), "{answer}");
    assert_eq!(
        answer_value(&answer, "username").as_deref(),
        Some("oauth2"),
        "git without authtype gets Basic: {answer}"
    );
    assert!(answer_value(&answer, "password").is_some(), "{answer}");

    match git_version() {
        Some(version) if version >= (2, 46) => {}
        other => {
            eprintln!(
                "skipping the real-git part of the bearer test: git {other:?} is older than 2.46 \
                 and does not announce capability[]=authtype"
            );
            return;
        }
    }
    world.stagepass(&["setup", "git"]).assert_ok();
    let before = world.server.stats();
    let work = world.sandbox.path().join("work");
    world
        .git(&["clone", "-q", &world.repo_url(), work.to_str().unwrap()])
        .assert_ok();
    world.git_in(&work, &["fetch", "-q"]).assert_ok();
    let after = world.server.stats();
    let count = |stats: &serde_json::Value, key: &str| stats[key].as_u64().unwrap();
    assert!(
        count(&after, "bearer") >= count(&before, "bearer") + 2,
        "git sent Authorization: Bearer: {before} -> {after}"
    );
    assert_eq!(
        count(&after, "basic"),
        count(&before, "basic"),
        "git never fell back to Basic: {after}"
    );
    assert_eq!(count(&after, "rejected"), 0, "{after}");

    // A rejected bearer token: git erases it (`credential=`, not `password=`), the agent
    // refreshes before the next command, and the profile stays signed in.
    let calls = idp.refresh_calls();
    world.server.post("/test/reject-next?n=1");
    let refused = world.git_in(&work, &["fetch", "-q"]);
    assert_ne!(refused.code(), 0, "the revoked token is refused");
    world.git_in(&work, &["fetch", "-q"]).assert_ok();
    assert!(
        idp.refresh_calls() > calls,
        "the rejected bearer token was replaced"
    );
    let status = world.stagepass(&["status", "--json"]).json();
    assert_eq!(status["profiles"][0]["state"], "signed_in", "{status}");
}
