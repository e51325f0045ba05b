//! GitHub profiles (`kind = "github"`) against the GitHub test server
//! (tests/servers/github-server.mjs): the device flow, who signed in from `/user`, rotating
//! GitHub App refresh tokens, tokens that never expire, revocation, and a real `git clone`
//! through the credential helper from a server that takes only the current token with
//! username `x-access-token`.

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::github::{GITHUB_LOGIN, GITHUB_USER_ID, GitHub};
use support::{Run, Sandbox, run_with_input, unique_profile};

fn sandbox(github: &GitHub, stem: &str, extra: &str) -> Sandbox {
    let name = unique_profile(stem);
    Sandbox::with_config(&name, &github.profile(&name, extra))
}

fn token(sandbox: &Sandbox) -> String {
    let run = sandbox.run(&["token", "--min-valid", "0"]);
    run.assert_ok();
    run.stdout().trim().to_string()
}

#[test]
fn device_sign_in_shows_the_github_user_everywhere() {
    // A display name with a terminal escape: GitHub lets users write anything there.
    let github = GitHub::start(&[("GITHUB_USER_NAME", "Mona \u{1b}[2JLisa")]);
    let sandbox = sandbox(&github, "gh-device", "");
    let last = github.sign_in(&sandbox);
    assert_eq!(last["step"], "signed_in", "{last}");

    let access = token(&sandbox);
    assert!(access.starts_with("ghu_"), "a GitHub App user token");
    assert_eq!(github.user_status(&access), 200);

    let status = sandbox.run(&["status", "--json"]);
    status.assert_ok();
    let profile = &status.json()["profiles"][0];
    assert_eq!(profile["state"], "signed_in");
    assert_eq!(profile["subject"], GITHUB_USER_ID.to_string());
    let user = profile["user"].as_str().unwrap();
    assert_eq!(
        user,
        format!("{GITHUB_LOGIN} (Mona \\u001b[2JLisa, id {GITHUB_USER_ID})")
    );
    assert_eq!(profile["never_expires"], false);
    let text = sandbox.run(&["status"]);
    text.assert_stdout_contains(&format!("signed in as {GITHUB_LOGIN} (Mona"));
    assert!(!text.stdout().contains('\u{1b}'), "the escape is escaped");

    let claims = sandbox.run(&["claims"]);
    claims.assert_ok();
    claims.assert_stdout_contains("user [UNVERIFIED: GitHub's GET /user");
    claims.assert_stdout_contains(&format!("login  {GITHUB_LOGIN}"));
    claims.assert_stdout_contains(&format!("id     {GITHUB_USER_ID}"));
    claims.assert_stdout_contains("id_token: none");
    assert!(!claims.stdout().contains('\u{1b}'));

    // The keychain keeps the rotating refresh token and who signed in; no id_token anywhere.
    let entry = sandbox.keychain_entry().unwrap();
    assert!(entry["refresh_token"].as_str().unwrap().starts_with("ghr_"));
    assert_eq!(entry["identity"]["login"], GITHUB_LOGIN);
    assert!(entry["id_token"].is_null());
    assert!(sandbox.run(&["token", "--id-token"]).code() != 0);

    // A restarted agent knows who signed in without asking GitHub again.
    sandbox.run(&["agent", "stop"]).assert_ok();
    let calls = github.stats()["user_calls"].as_u64().unwrap();
    let status = sandbox.run(&["status", "--json"]);
    assert_eq!(status.json()["profiles"][0]["user"], user);
    assert_eq!(github.stats()["user_calls"].as_u64().unwrap(), calls);
}

#[test]
fn refresh_across_expiry_rotates_and_keeps_the_new_refresh_token_first() {
    let github = GitHub::start(&[("GITHUB_TOKEN_TTL", "4")]);
    let sandbox = sandbox(&github, "gh-rotate", "");
    github.sign_in(&sandbox);
    let first = token(&sandbox);
    let first_refresh = sandbox.stored_refresh_token();

    // Nobody asks: the agent refreshes ahead of the 4 s expiry by itself.
    support::wait_until("a proactive refresh", Duration::from_secs(10), || {
        github.stats()["refreshes"].as_u64().unwrap() >= 1
    });
    assert_eq!(github.stats()["refreshes"], 1, "before anyone asked");
    let mut second = token(&sandbox);
    support::wait_until("the refreshed token", Duration::from_secs(5), || {
        second = token(&sandbox);
        second != first
    });
    assert!(second.starts_with("ghu_"));
    let second_refresh = sandbox.stored_refresh_token();
    assert_ne!(
        first_refresh, second_refresh,
        "the rotated token is in the keychain"
    );
    assert_eq!(github.stats()["refresh_refused"], 0);
    // GitHub: the used refresh token and the old access token no longer work.
    assert_eq!(github.user_status(&first), 401);
    let reuse = github.token_request(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &first_refresh),
    ]);
    assert_eq!(reuse["error"], "bad_refresh_token", "{reuse}");
    // Who signed in survives the refresh, which does not say.
    let status = sandbox.run(&["status", "--json"]);
    assert!(
        status.json()["profiles"][0]["user"]
            .as_str()
            .unwrap()
            .starts_with(GITHUB_LOGIN)
    );

    // A fresh agent holds only the refresh token: twelve callers at once cost one refresh.
    sandbox.run(&["agent", "stop"]).assert_ok();
    let before = github.stats()["refreshes"].as_u64().unwrap();
    let children: Vec<_> = (0..12)
        .map(|_| {
            sandbox
                .command(&["token", "--min-valid", "0"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let tokens: Vec<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).unwrap()
        })
        .collect();
    assert!(tokens.iter().all(|token| token == &tokens[0]));
    let stats = github.stats();
    assert_eq!(
        stats["refreshes"].as_u64().unwrap(),
        before + 1,
        "one refresh: {stats}"
    );
    assert_eq!(
        stats["refresh_refused"], 1,
        "only the test's own reuse: {stats}"
    );
    assert_ne!(sandbox.stored_refresh_token(), second_refresh);
}

#[test]
fn git_clone_through_the_helper_with_x_access_token() {
    let dir = tempfile::tempdir().unwrap();
    let repos = dir.path().join("repos");
    std::fs::create_dir_all(&repos).unwrap();
    let github = GitHub::start(&[("GIT_PROJECT_ROOT", repos.to_str().unwrap())]);
    let sandbox = sandbox(&github, "gh-git", "");
    seed_repository(&sandbox, &repos.join("app.git"));
    github.sign_in(&sandbox);

    // No [[git]] table: the GitHub profile's host is mapped by the profile itself.
    let mut setup = git_command(&sandbox, env!("CARGO_BIN_EXE_stagepass"), &["setup", "git"]);
    let setup = Run(setup.output().unwrap());
    setup.assert_ok();
    setup.assert_stdout_contains(&format!("+ credential.{}.helper", github.url()));

    let work = sandbox.path().join("work");
    let url = format!("{}/app.git", github.url());
    let mut clone = git_command(
        &sandbox,
        "git",
        &["clone", "-q", &url, work.to_str().unwrap()],
    );
    Run(clone.output().unwrap()).assert_ok();
    assert_eq!(
        std::fs::read_to_string(work.join("README")).unwrap(),
        "hello\n"
    );
    let stats = github.stats();
    assert!(stats["git"]["accepted"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["git"]["rejected"], 0, "{stats}");

    // What git's helper protocol answers, exactly.
    let answer = run_with_input(
        git_command(
            &sandbox,
            env!("CARGO_BIN_EXE_stagepass"),
            &["git-credential", "get"],
        ),
        &format!(
            "protocol=http\nhost={}\n\n",
            github.url().trim_start_matches("http://")
        ),
    );
    answer.assert_ok();
    answer.assert_stdout_contains("username=x-access-token\n");
    answer.assert_stdout_contains("password=ghu_");
}

#[test]
fn tokens_that_never_expire_are_served_as_such() {
    let github = GitHub::start(&[("GITHUB_EXPIRING", "0")]);
    let sandbox = sandbox(&github, "gh-forever", "");
    github.sign_in(&sandbox);
    let access = token(&sandbox);
    assert!(access.starts_with("gho_"), "an OAuth App token");
    let status = sandbox.run(&["status"]);
    status.assert_stdout_contains("access token does not expire");
    let json = sandbox.run(&["status", "--json"]).json();
    assert_eq!(json["profiles"][0]["never_expires"], true);
    assert!(json["profiles"][0]["access_token_expires_at"].is_null());

    // The token is the login: kept in the keychain, served again after a restart.
    let entry = sandbox.keychain_entry().unwrap();
    assert!(entry["refresh_token"].is_null());
    sandbox.run(&["agent", "stop"]).assert_ok();
    assert_eq!(token(&sandbox), access);
    sandbox
        .run(&["status"])
        .assert_stdout_contains("does not expire");
    assert_eq!(github.stats()["refreshes"], 0);
}

#[test]
fn logout_revokes_with_the_client_secret() {
    let github = GitHub::start(&[("GITHUB_CLIENT_SECRET", "app-secret-1")]);
    let sandbox = sandbox(&github, "gh-revoke", "client_auth = \"secret\"\n");
    run_with_input(
        sandbox.command(&["config", "set-secret", &sandbox.profile]),
        "app-secret-1\n",
    )
    .assert_ok();
    github.sign_in(&sandbox);
    let access = token(&sandbox);
    let logout = sandbox.run(&["logout"]);
    logout.assert_ok();
    assert!(
        !logout.stdout().contains("settings/connections"),
        "{}",
        logout.stdout()
    );
    assert_eq!(github.stats()["revoked"], 1);
    assert_eq!(github.user_status(&access), 401);
    assert!(sandbox.keychain_entry().is_none());
}

#[test]
fn logout_without_a_secret_says_where_to_revoke() {
    let github = GitHub::start(&[]);
    let sandbox = sandbox(&github, "gh-norevoke", "");
    github.sign_in(&sandbox);
    let logout = sandbox.run(&["logout"]);
    logout.assert_ok();
    let said = format!("{}{}", logout.stdout(), logout.stderr());
    assert!(
        said.contains(&format!(
            "{}/settings/connections/applications/{}",
            github.url(),
            support::github::GITHUB_CLIENT_ID
        )),
        "{said}"
    );
    assert!(sandbox.keychain_entry().is_none(), "forgotten locally");
    assert_eq!(github.stats()["revoked"], 0);
}

#[test]
fn device_flow_errors_are_clear() {
    let github = GitHub::start(&[]);
    let sandbox = sandbox(&github, "gh-denied", "");
    let denied = github.failed_sign_in(&sandbox, Some("deny"));
    denied.assert_stderr_contains("access_denied");
    assert!(sandbox.keychain_entry().is_none());

    let github = GitHub::start(&[("GITHUB_DEVICE_TTL", "2")]);
    let sandbox = self::sandbox(&github, "gh-expired", "");
    let expired = github.failed_sign_in(&sandbox, None);
    expired.assert_stderr_contains("device code expired");

    let github = GitHub::start(&[("GITHUB_DEVICE_FLOW", "0")]);
    let sandbox = self::sandbox(&github, "gh-disabled", "");
    let disabled = sandbox.run(&["login", "--device"]);
    assert_ne!(disabled.code(), 0);
    disabled.assert_stderr_contains("device_flow_disabled");
}

#[test]
fn slow_down_adds_five_seconds_to_the_interval() {
    let github = GitHub::start(&[]);
    let sandbox = sandbox(&github, "gh-slow", "");
    let (mut login, lines, code) = github.start_sign_in(&sandbox);
    github.device("slow-down", &code);
    // Generous: each look at the stats starts a node process, slow on a loaded machine.
    support::wait_until("the slow_down answer", Duration::from_secs(20), || {
        github.stats()["polls"]["slow_down"] == 1
    });
    github.device("approve", &code);
    // Bounded: a client that ignores slow_down gets slow_down again on every poll.
    let mut exited = None;
    support::wait_until("the sign-in to end", Duration::from_secs(30), || {
        exited = login.try_wait().unwrap();
        exited.is_some()
    });
    let output: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(exited.unwrap().success(), "{output:#?}");
    // The interval was 1 s; after slow_down it is 6 s: the next poll waited that long. The
    // server's clock measures it: the test's own sees the slow_down late on a loaded machine.
    let gaps = github.stats()["poll_gaps_ms"].clone();
    let last_gap = gaps.as_array().unwrap().last().unwrap().as_u64().unwrap();
    assert!(last_gap >= 6000, "poll gaps {gaps}");
    assert_eq!(
        github.stats()["polls"]["slow_down"],
        1,
        "no second slow_down"
    );
}

/// A bare repository `bare` with one commit (README "hello").
fn seed_repository(sandbox: &Sandbox, bare: &Path) {
    let seed = sandbox.path().join("seed");
    let git = |dir: &Path, args: &[&str]| {
        let mut command = git_command(sandbox, "git", args);
        command.current_dir(dir);
        Run(command.output().unwrap()).assert_ok();
    };
    git(
        sandbox.path(),
        &["init", "-q", "-b", "main", seed.to_str().unwrap()],
    );
    std::fs::write(seed.join("README"), "hello\n").unwrap();
    git(&seed, &["add", "README"]);
    git(&seed, &["commit", "-q", "-m", "first"]);
    git(
        sandbox.path(),
        &[
            "clone",
            "-q",
            "--bare",
            seed.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
}

/// `program` in the sandbox with its own global git config and the helper on PATH.
fn git_command(sandbox: &Sandbox, program: &str, args: &[&str]) -> Command {
    let bin = sandbox.path().join("bin");
    if !bin.exists() {
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_stagepass"),
            bin.join("git-credential-stagepass"),
        )
        .unwrap();
    }
    let mut command = sandbox.tool(program);
    command
        .args(args)
        .current_dir(sandbox.path())
        .env("GIT_CONFIG_GLOBAL", sandbox.path().join("gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .stdin(Stdio::null());
    command
}

#[test]
fn the_preset_signs_in_and_gh_token_reaches_a_command() {
    let github = GitHub::start(&[]);
    let name = unique_profile("gh-preset");
    let sandbox = Sandbox::with_config(&name, "");
    sandbox
        .run(&[
            "config",
            "init",
            "--preset",
            "github",
            "--name",
            &name,
            "--client-id",
            support::github::GITHUB_CLIENT_ID,
            "--domain",
            github.url(),
        ])
        .assert_ok();
    github.sign_in(&sandbox);
    // What `gh` would do with GH_TOKEN: call the API as the user.
    let script = format!(
        "curl -s -H \"Authorization: Bearer $GH_TOKEN\" {}/api/v3/user",
        github.url()
    );
    let exec = sandbox.run(&["exec", "--env-var", "GH_TOKEN", "--", "sh", "-c", &script]);
    exec.assert_ok();
    exec.assert_stdout_contains(&format!("\"login\":\"{GITHUB_LOGIN}\""));
}

#[test]
fn with_the_client_secret_the_browser_signs_in_with_pkce() {
    let github = GitHub::start(&[("GITHUB_CLIENT_SECRET", "app-secret-2")]);
    let without = sandbox(&github, "gh-nobrowser", "");
    let refused = without.run(&["login", "--browser"]);
    assert_ne!(refused.code(), 0);
    refused.assert_stderr_contains("needs the app's client secret");

    let sandbox = sandbox(&github, "gh-browser", "client_auth = \"secret\"\n");
    run_with_input(
        sandbox.command(&["config", "set-secret", &sandbox.profile]),
        "app-secret-2\n",
    )
    .assert_ok();
    sandbox.login_browser();
    assert!(token(&sandbox).starts_with("ghu_"));
    let status = sandbox.run(&["status", "--json"]).json();
    assert!(
        status["profiles"][0]["user"]
            .as_str()
            .unwrap()
            .starts_with(GITHUB_LOGIN)
    );
}

#[test]
fn the_proxy_adds_the_github_token_as_bearer() {
    use support::proxy::{curl, free_port, key_header};
    let github = GitHub::start(&[]);
    let name = unique_profile("gh-proxy");
    let port = free_port();
    let config = format!(
        "{}[proxy]\nport = {port}\n[[route]]\nname = \"api\"\npath = \"/gh\"\nupstream = \"{}/api/v3\"\n\
         profile = \"{name}\"\nidentity = \"bearer\"\n",
        github.profile(&name, ""),
        github.url()
    );
    let sandbox = Sandbox::with_config(&name, &config);
    github.sign_in(&sandbox);
    let key = std::fs::read_to_string(sandbox.runtime_dir().join("proxy.key")).unwrap();
    let answer = curl(
        &format!("http://127.0.0.1:{port}/gh/user"),
        &["-H", &key_header(key.trim())],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["login"], GITHUB_LOGIN);
}

#[test]
fn doctor_does_not_look_for_a_discovery_document() {
    let github = GitHub::start(&[]);
    let sandbox = sandbox(&github, "gh-doctor", "");
    github.sign_in(&sandbox);
    let doctor = sandbox.run(&["doctor"]);
    doctor.assert_stdout_contains("GitHub has fixed OAuth endpoints");
    doctor.assert_stdout_contains(&format!("signed in as {GITHUB_LOGIN}"));
    assert!(
        !doctor.stdout().contains("openid-configuration"),
        "{}",
        doctor.stdout()
    );
}
