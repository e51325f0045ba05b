//! Remote access through a real OpenSSH reverse forward (tests/support/ssh.rs): the "far
//! side" is a `stagepass` with its own HOME, runtime dir and no config, no keychain and no
//! agent socket, that reaches the desktop agent only through the forwarded port. It gets
//! access tokens for the IdP's audience, git credentials and the proxy's routes in its key's
//! scope, and nothing once the key is revoked or expired.

use crate::support;

use support::jwt_claims as claims;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::proxy::{ProxySetup, curl, free_port, key_header};
use support::ssh::Sshd;
use support::{AUDIENCE, CLIENT_ID, Run, run_with_input, wait_until};

/// A signed-in sandbox whose proxy routes `api` and `other` to the test upstream, with a
/// second profile and a `[[git]]` mapping for git.test.
fn setup(profile: &str) -> ProxySetup {
    ProxySetup::start(profile, &[], |issuer, upstream| {
        let url = &upstream.url;
        format!(
            "[profiles.{profile}-other]\nissuer = \"{issuer}\"\nclient_id = \"{CLIENT_ID}\"\n\
             [[route]]\nname = \"api\"\npath = \"/api\"\nupstream = \"{url}\"\nprofile = \"{profile}\"\nidentity = \"bearer\"\n\
             [[route]]\nname = \"other\"\npath = \"/other\"\nupstream = \"{url}\"\nprofile = \"{profile}\"\nidentity = \"bearer\"\n\
             [[git]]\nurl = \"https://git.test/\"\nprofile = \"{profile}\"\n"
        )
    })
}

impl ProxySetup {
    /// `remote grant` of a key named `name` for route `api`, for a forward on `remote_port`.
    fn grant(&self, name: &str, ttl: &str, remote_port: u16) -> String {
        let run = self.sandbox.run(&[
            "remote",
            "grant",
            "--name",
            name,
            "--ttl",
            ttl,
            "--routes",
            "api",
            "--remote-port",
            &remote_port.to_string(),
            "--json",
        ]);
        run.assert_ok();
        let granted = run.json();
        assert_eq!(granted["routes"], serde_json::json!(["api"]));
        assert_eq!(
            granted["profiles"],
            serde_json::json!([self.sandbox.profile])
        );
        granted["key"].as_str().unwrap().to_string()
    }

    fn audit(&self) -> String {
        std::fs::read_to_string(self.sandbox.data_dir().join("audit.jsonl")).unwrap_or_default()
    }
}

/// The remote machine: only PATH is inherited; the key is in a file, as a Codespace secret
/// would be.
struct Far {
    dir: tempfile::TempDir,
    url: String,
}

impl Far {
    fn new(remote_port: u16, key: &str) -> Far {
        let dir = tempfile::Builder::new().prefix("far").tempdir().unwrap();
        std::fs::write(dir.path().join("key"), format!("{key}\n")).unwrap();
        Far {
            dir,
            url: format!("http://127.0.0.1:{remote_port}"),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let path = |name: &str| -> PathBuf { self.dir.path().join(name) };
        let mut command = Command::new(env!("CARGO_BIN_EXE_stagepass"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_RUNTIME_DIR", path("xdg"))
            .env("STAGEPASS_RUNTIME_DIR", path("run"))
            .env("STAGEPASS_DATA_DIR", path("data"))
            .env("STAGEPASS_CONFIG", path("no-config.toml"))
            .env("STAGEPASS_REMOTE", &self.url)
            .env("STAGEPASS_REMOTE_KEY_FILE", path("key"));
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        Run(self.command(args).stdin(Stdio::null()).output().unwrap())
    }

    fn git_get(&self) -> Run {
        run_with_input(
            self.command(&["git-credential", "get"]),
            "protocol=https\nhost=git.test\npath=team/repo.git\n\n",
        )
    }

    /// GET through the forwarded proxy port with the remote key as the proxy key.
    fn proxy_get(&self, path: &str) -> support::proxy::Answer {
        let key = std::fs::read_to_string(self.dir.path().join("key")).unwrap();
        curl(
            &format!("{}{path}", self.url),
            &["-H", &key_header(key.trim())],
        )
    }

    /// Nothing of the desktop's: no socket, no agent started, no config.
    fn assert_untouched(&self) {
        let run = self.dir.path().join("run");
        assert!(!run.join("agent.sock").exists() && !Path::new(&run).join("agent.log").exists());
    }
}

#[test]
fn through_ssh_a_remote_stagepass_gets_tokens_git_credentials_and_the_proxy_until_revoked() {
    let setup = setup("e2e-remote-ssh");
    let sshd = Sshd::start();
    let remote_port = free_port();
    let key = setup.grant("devbox", "1h", remote_port);
    let _forward = sshd.reverse_forward(remote_port, setup.port);
    let far = Far::new(remote_port, &key);

    // A token the IdP's audience accepts: the desktop agent's own current one.
    let run = far.run(&["token"]);
    run.assert_ok();
    let token = run.stdout().trim().to_string();
    assert_eq!(token, setup.token());
    let claims = claims(&token);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["sub"], "alice");
    let json = far.run(&["token", "--json"]);
    json.assert_ok();
    assert_eq!(json.json()["profile"], setup.sandbox.profile.as_str());

    // git through the agent's [[git]] mapping.
    let git = far.git_get();
    git.assert_ok();
    assert!(
        git.stdout().contains(&format!("password={token}")),
        "{}",
        git.stdout()
    );

    // exec: the token, and the forwarded proxy with the remote key as its key.
    let script = "printf 'Proxy-Authorization: Bearer %s\\n' \"$STAGEPASS_PROXY_KEY\" | \
                  curl -s -H @- -H 'X-Forwarded-Email: mallory@example.com' \
                  \"$STAGEPASS_PROXY/api/echo\"; echo; echo \"$STAGEPASS_TOKEN\"";
    let exec = far.run(&["exec", "--", "sh", "-c", script]);
    exec.assert_ok();
    let stdout = exec.stdout();
    let mut lines = stdout.lines().filter(|line| !line.is_empty());
    let echo: serde_json::Value = serde_json::from_str(lines.next().unwrap())
        .unwrap_or_else(|err| panic!("{err}: {stdout} {}", exec.stderr()));
    assert_eq!(echo["headers"]["authorization"], format!("Bearer {token}"));
    assert!(echo["headers"].get("x-forwarded-email").is_none(), "{echo}");
    assert!(
        echo["headers"].get("proxy-authorization").is_none(),
        "{echo}"
    );
    assert_eq!(lines.next(), Some(token.as_str()));

    // Outside the key's scope: another route, another profile, an id_token.
    let other = far.proxy_get("/other/echo");
    assert_eq!(other.status, 403, "{}", other.body);
    assert!(
        other.body.contains("not scoped to route `other`"),
        "{}",
        other.body
    );
    let profile = far.run(&["token", "e2e-remote-ssh-other"]);
    profile.assert_code(11);
    profile.assert_stderr_contains("does not cover profile `e2e-remote-ssh-other`");
    far.run(&["token", "--id-token"])
        .assert_code(11)
        .assert_stderr_contains("access tokens only");
    far.assert_untouched();

    // The key works across an agent restart: the agent keeps its digest on disk, not the key.
    let file = setup.sandbox.data_dir().join("remote-keys.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&key) && text.contains("devbox"), "{text}");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    setup.sandbox.run(&["agent", "stop"]).assert_ok();
    // The stopped agent flushed the proxy's counts: the remote use is there, by key name.
    let audit = setup.audit();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let remote = |event: &str| {
        lines
            .iter()
            .filter(|line| line["consumer"] == "remote" && line["event"] == event)
            .cloned()
            .collect::<Vec<_>>()
    };
    let tokens = remote("token");
    assert!(
        tokens.iter().any(|line| line["remote_key"] == "devbox"
            && line["outcome"] == "ok"
            && line["audience"] == AUDIENCE),
        "{audit}"
    );
    assert!(
        tokens
            .iter()
            .any(|line| line["outcome"].as_str().unwrap().contains("does not cover")),
        "{audit}"
    );
    let proxied = remote("proxy");
    assert!(
        proxied.iter().any(|line| line["route"] == "api"
            && line["remote_key"] == "devbox"
            && line["requests"].as_u64() >= Some(1)),
        "{audit}"
    );
    assert!(
        proxied
            .iter()
            .any(|line| line["route"] == "other" && line["refused"] == 1),
        "{audit}"
    );
    assert!(!audit.contains(&key) && !audit.contains(&token));

    setup.sandbox.run(&["status"]).assert_ok();
    wait_until(
        "the restarted agent's proxy",
        Duration::from_secs(10),
        || far.run(&["token"]).code() == 0,
    );
    let listed = setup.sandbox.run(&["remote", "list", "--json"]);
    listed.assert_ok();
    assert!(!listed.stdout().contains(&key));
    let listed = listed.json();
    assert_eq!(listed[0]["name"], "devbox");
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");

    // Revoked: refused at once, with a clear error, on every path.
    setup
        .sandbox
        .run(&["remote", "revoke", "devbox"])
        .assert_ok();
    let refused = far.run(&["token"]);
    refused.assert_code(11);
    refused.assert_stderr_contains("unknown or revoked remote key");
    assert!(refused.stdout().is_empty());
    far.git_get().assert_code(11);
    let proxied = far.proxy_get("/api/echo");
    assert_eq!(proxied.status, 403, "{}", proxied.body);
    assert!(proxied.body.contains("revoked"), "{}", proxied.body);
    setup
        .sandbox
        .run(&["remote", "revoke", "devbox"])
        .assert_code(2)
        .assert_stderr_contains("no remote key `devbox`");
}

#[test]
fn a_remote_key_stops_working_when_its_ttl_ends() {
    let setup = setup("e2e-remote-ttl");
    let sshd = Sshd::start();
    let remote_port = free_port();
    let granted = Instant::now();
    let key = setup.grant("brief", "2s", remote_port);
    let _forward = sshd.reverse_forward(remote_port, setup.port);
    let far = Far::new(remote_port, &key);
    // Checked only while the key is surely live; the machine may be slow.
    let token = far.run(&["token"]);
    if granted.elapsed() < Duration::from_millis(1500) {
        token.assert_ok();
        assert_eq!(far.proxy_get("/api/echo").status, 200);
    }
    std::thread::sleep(
        Duration::from_secs(2).saturating_sub(granted.elapsed()) + Duration::from_millis(1100),
    );
    let expired = far.run(&["token"]);
    expired.assert_code(11);
    expired.assert_stderr_contains("remote key `brief` has expired");
    let proxied = far.proxy_get("/api/echo");
    assert_eq!(proxied.status, 403, "{}", proxied.body);
    assert!(proxied.body.contains("expired"), "{}", proxied.body);
    // A TTL beyond a week is refused up front.
    setup
        .sandbox
        .run(&["remote", "grant", "--ttl", "8d"])
        .assert_code(2)
        .assert_stderr_contains("7 days");
    drop(sshd);
}

#[test]
fn remote_ssh_prints_the_forward_and_puts_the_key_only_in_the_env_lines() {
    let setup = setup("e2e-remote-print");
    let port = setup.port;
    let run = setup
        .sandbox
        .run(&["remote", "ssh", "devbox.example", "--remote-port", "9001"]);
    run.assert_ok();
    let out = run.stdout();
    assert!(
        out.lines().any(|line| line
            == format!("ssh -N -o ExitOnForwardFailure=yes -R 127.0.0.1:9001:127.0.0.1:{port} devbox.example")),
        "{out}"
    );
    assert!(
        out.contains("export STAGEPASS_REMOTE=http://127.0.0.1:9001\n"),
        "{out}"
    );

    let run = setup.sandbox.run(&[
        "remote",
        "ssh",
        "--codespace",
        "cs-abc",
        "--grant",
        "--name",
        "cs",
        "--routes",
        "api",
    ]);
    run.assert_ok();
    let out = run.stdout();
    let forward = format!(
        "gh codespace ssh -c cs-abc -- -N -o ExitOnForwardFailure=yes -R 127.0.0.1:{port}:127.0.0.1:{port}"
    );
    let key = out
        .lines()
        .find_map(|line| line.strip_prefix("export STAGEPASS_REMOTE_KEY="))
        .unwrap_or_else(|| panic!("no key line: {out}"))
        .to_string();
    assert_eq!(key.len(), 43, "{out}");
    let command = out.lines().find(|line| line.starts_with("gh ")).unwrap();
    assert_eq!(command, forward);
    assert_eq!(
        out.matches(&key).count(),
        1,
        "the key is only in its env line: {out}"
    );
    // The key works: the listener takes it as a proxy key for route api.
    let answer = curl(
        &format!("http://127.0.0.1:{port}/api/echo"),
        &["-H", &key_header(&key)],
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// Sends `count` token requests for `profile` with `key` over one kept-alive connection to
/// the remote endpoint on `port`; the HTTP statuses.
fn flood(port: u16, key: &str, profile: &str, count: usize) -> Vec<u16> {
    use std::io::{BufRead, BufReader, Read, Write};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let body = serde_json::json!({ "profile": profile, "kind": "access" }).to_string();
    let request = format!(
        "POST /.stagepass/v1/token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Authorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut statuses = Vec::with_capacity(count);
    for _ in 0..count {
        writer.write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        statuses.push(line.split(' ').nth(1).unwrap_or("0").parse().unwrap_or(0));
        let mut length = 0;
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        reader
            .by_ref()
            .take(length)
            .read_to_end(&mut Vec::new())
            .unwrap();
    }
    statuses
}

#[test]
fn a_flood_of_refused_remote_requests_leaves_the_earlier_history_readable() {
    let setup = setup("e2e-remote-flood");
    let key = setup.grant("flood", "1h", setup.port);
    // History worth keeping: the sign-in (done by setup) and a token hand-out.
    setup.token();

    // Oversized profile names the key does not cover, and keys the agent never issued.
    let huge = "x".repeat(15 * 1024);
    let refused = flood(setup.port, &key, &huge, 2000);
    assert!(refused.iter().all(|&status| status == 403), "{refused:?}");
    let unknown = flood(setup.port, "not-a-key", &huge, 1000);
    assert!(unknown.iter().all(|&status| status == 401), "{unknown:?}");
    // The agent writes the counted rest when it stops.
    setup.sandbox.run(&["agent", "stop"]).assert_ok();

    let audit = setup.sandbox.run(&["audit", "--json"]);
    audit.assert_ok();
    let lines: Vec<serde_json::Value> = audit
        .stdout()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let profile = &setup.sandbox.profile;
    assert!(
        lines
            .iter()
            .any(|line| line["event"] == "sign_in" && line["profile"] == profile.as_str()),
        "the sign-in is still there"
    );
    assert!(
        lines.iter().any(|line| line["event"] == "token"
            && line["consumer"] == "cli"
            && line["outcome"] == "ok"),
        "the token hand-out is still there"
    );
    let remote: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["consumer"] == "remote" && line["event"] == "token")
        .collect();
    assert!(remote.len() < 50, "{} remote lines", remote.len());
    assert!(
        remote
            .iter()
            .all(|line| line.to_string().len() < 1024 && !line.to_string().contains(&huge)),
        "a refusal line is bounded"
    );
    // One summary per key and minute: together they count every refusal.
    for (name, expected) in [("flood", 2000), ("", 1000)] {
        let counted: u64 = remote
            .iter()
            .filter(|line| line["remote_key"].as_str().unwrap_or_default() == name)
            .filter_map(|line| {
                let outcome = line["outcome"].as_str()?;
                let (_, all) = outcome.rsplit_once('(')?;
                all.strip_suffix(" in all)")?.parse::<u64>().ok()
            })
            .sum();
        assert_eq!(counted, expected, "refusals of key {name:?}: {remote:?}");
    }
}

#[test]
fn remote_ssh_says_when_ssh_itself_fails_and_is_no_agent_error() {
    let sandbox = support::Sandbox::with_config(
        "e2e-remote-ssh-fails",
        &format!(
            "[profiles.e2e-remote-ssh-fails]\nissuer = \"https://idp.example.com\"\n\
             client_id = \"{CLIENT_ID}\"\n"
        ),
    );
    // An `ssh` that fails as OpenSSH does when the host is unreachable: a message, exit 255.
    let bin = sandbox.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake_ssh = bin.join("ssh");
    std::fs::write(
        &fake_ssh,
        "#!/bin/sh\necho 'ssh: connect to host devbox.example port 22: Connection refused' >&2\nexit 255\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &fake_ssh,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let run = Run(sandbox
        .command(&["remote", "ssh", "devbox.example", "--run"])
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap());
    assert_ne!(
        run.code(),
        8,
        "ssh failing is no agent error: {}",
        run.stderr()
    );
    run.assert_code(12)
        .assert_stderr_contains("Connection refused")
        .assert_stderr_contains("ssh failed")
        .assert_stderr_contains("hint: ");
}
