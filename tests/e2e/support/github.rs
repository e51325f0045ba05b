//! The GitHub test server (tests/servers/github-server.mjs): GitHub's OAuth endpoints, its
//! REST API's `/user` and token revocation, and git over HTTPS, with test controls to approve
//! or deny a device code the way a user on github.com/login/device would.

use std::process::{Child, ChildStdout, Stdio};

use super::{Run, Sandbox, TestServer, start_device_sign_in};

/// The app's client_id the server knows (a GitHub App's start with `Iv1.`).
pub const GITHUB_CLIENT_ID: &str = "Iv1.stagepasstest";
/// The user the server signs everyone in as.
pub const GITHUB_LOGIN: &str = "octocat";
pub const GITHUB_USER_ID: u64 = 583231;

pub struct GitHub {
    pub server: TestServer,
}

impl GitHub {
    /// `env`: GITHUB_TOKEN_TTL, GITHUB_EXPIRING, GITHUB_CLIENT_SECRET... (see the server).
    /// Devices poll every second unless `env` says otherwise.
    pub fn start(env: &[(&str, &str)]) -> GitHub {
        let mut all: Vec<(&str, &std::ffi::OsStr)> = vec![("GITHUB_DEVICE_INTERVAL", "1".as_ref())];
        all.extend(env.iter().map(|(key, value)| (*key, value.as_ref())));
        GitHub {
            server: TestServer::start("github-server.mjs", &all),
        }
    }

    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// A `kind = "github"` profile for this server (GitHub Enterprise Server style `url`).
    pub fn profile(&self, name: &str, extra: &str) -> String {
        format!(
            "[profiles.{name}]\nkind = \"github\"\nurl = \"{}\"\nclient_id = \"{GITHUB_CLIENT_ID}\"\n{extra}",
            self.url()
        )
    }

    pub fn stats(&self) -> serde_json::Value {
        self.server.stats()
    }

    /// The user enters `user_code` and authorizes the app (`approve`), cancels (`deny`), or
    /// GitHub asks the next poll to slow down (`slow-down`).
    pub fn device(&self, decision: &str, user_code: &str) {
        self.server
            .post(&format!("/test/device/{decision}?user_code={user_code}"));
    }

    /// `login --device` in the background, with its first line (the code).
    pub fn start_sign_in(
        &self,
        sandbox: &Sandbox,
    ) -> (
        Child,
        std::io::Lines<std::io::BufReader<ChildStdout>>,
        String,
    ) {
        let (login, lines, first) = start_device_sign_in(sandbox);
        assert_eq!(
            first["verification_uri"],
            format!("{}/login/device", self.url()),
            "{first}"
        );
        let code = first["user_code"].as_str().unwrap().to_string();
        (login, lines, code)
    }

    /// A device sign-in the user approves at once; the login's last JSON line.
    pub fn sign_in(&self, sandbox: &Sandbox) -> serde_json::Value {
        let (login, lines, code) = self.start_sign_in(sandbox);
        self.device("approve", &code);
        let last = lines
            .map(|line| serde_json::from_str::<serde_json::Value>(&line.unwrap()).unwrap())
            .last()
            .unwrap();
        let output = login.wait_with_output().unwrap();
        assert!(output.status.success(), "{last}");
        last
    }

    /// A device sign-in that ends without tokens: the login's output.
    pub fn failed_sign_in(&self, sandbox: &Sandbox, decision: Option<&str>) -> Run {
        let (login, lines, code) = self.start_sign_in(sandbox);
        if let Some(decision) = decision {
            self.device(decision, &code);
        }
        // Read to the end: a closed pipe would end the login before its answer.
        lines.for_each(drop);
        let output = login.wait_with_output().unwrap();
        assert!(!output.status.success(), "the sign-in failed");
        Run(output)
    }

    /// Posts `form` to the token endpoint as another holder of the app's client_id would.
    pub fn token_request(&self, form: &[(&str, &str)]) -> serde_json::Value {
        let mut command = std::process::Command::new("curl");
        command
            .args(["-s", "-H", "Accept: application/json"])
            .arg(format!("{}/login/oauth/access_token", self.url()))
            .arg("-d")
            .arg(format!("client_id={GITHUB_CLIENT_ID}"));
        for (key, value) in form {
            // Test-only tokens of a throwaway server; argv is acceptable here.
            command
                .arg("--data-urlencode")
                .arg(format!("{key}={value}"));
        }
        let output = command.stdin(Stdio::null()).output().unwrap();
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// `GET /api/v3/user` with `token`: the HTTP status.
    pub fn user_status(&self, token: &str) -> u16 {
        let output = std::process::Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("{}/api/v3/user", self.url()))
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap().parse().unwrap()
    }
}
