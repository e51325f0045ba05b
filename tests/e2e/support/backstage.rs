//! The test Backstage backend (tests/backstage/server.js): a real backend with the auth
//! plugin's OAuth server and the catalog, started on a free port and stopped on drop.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::{Sandbox, repo_root};

pub fn backstage_dir() -> PathBuf {
    repo_root().join("tests/backstage")
}

/// The test Backstage backend, stopped on drop.
pub struct Backstage {
    child: Child,
    pub url: String,
    /// A static external-access token: a service principal for the harness, not a user.
    pub harness_token: String,
}

impl Backstage {
    /// `token_ttl`: lifetime of Backstage user tokens in seconds (see server.js).
    pub fn start(token_ttl: Option<u64>) -> Backstage {
        assert!(
            backstage_dir()
                .join("node_modules/@backstage/plugin-auth-backend")
                .is_dir(),
            "the test Backstage is not installed: run scripts/setup \
             (npm ci --prefix tests/backstage with npm_config_nodedir=/usr)"
        );
        let mut command = Command::new("node");
        command
            .arg(backstage_dir().join("server.js"))
            .env("NODE_ENV", "development")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if std::env::var_os("STAGEPASS_TEST_BACKSTAGE_LOG").is_some() {
            command.stderr(Stdio::inherit());
        }
        if let Some(ttl) = token_ttl {
            command.env("BACKSTAGE_TOKEN_TTL", ttl.to_string());
        }
        let mut child = command.spawn().expect("node runs the test Backstage");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the test Backstage prints its URL");
        let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|err| {
            panic!(
                "the test Backstage said {line:?} ({err}); rerun with \
                 STAGEPASS_TEST_BACKSTAGE_LOG=1 to see its log"
            )
        });
        Backstage {
            child,
            url: ready["url"].as_str().unwrap().to_string(),
            harness_token: ready["harness_token"].as_str().unwrap().to_string(),
        }
    }

    /// A sandbox whose one profile is a Backstage profile for this backend, signing in
    /// through the consent browser as `user`.
    pub fn sandbox(&self, profile: &str, user: &str) -> Sandbox {
        let mut sandbox = Sandbox::with_config(
            profile,
            &format!(
                "[profiles.{profile}]\nkind = \"backstage\"\nurl = \"{}\"\n",
                self.url
            ),
        );
        let browser = backstage_dir().join("browser");
        sandbox.set_env("BROWSER", browser.to_str().unwrap());
        sandbox.set_env("STAGEPASS_TEST_USER", user);
        sandbox
    }

    /// `(status, body)` of a request to the backend with `curl`.
    pub fn curl(&self, args: &[&str]) -> (u16, String) {
        let output = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}"])
            .args(args)
            .output()
            .expect("curl is installed");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        (status.trim().parse().unwrap_or(0), body.to_string())
    }

    pub fn get_as(&self, token: &str, path: &str) -> (u16, String) {
        let header = format!("Authorization: Bearer {token}");
        self.curl(&["-H", &header, &format!("{}{path}", self.url)])
    }

    pub fn stats(&self) -> serde_json::Value {
        let (_, body) = self.curl(&[&format!("{}/test/stats", self.url)]);
        serde_json::from_str(&body).unwrap()
    }

    pub fn token_calls(&self, grant: &str) -> u64 {
        self.stats()["token"][grant].as_u64().unwrap_or(0)
    }

    /// Presents `refresh_token` at Backstage's token endpoint as another party would.
    pub fn refresh_directly(&self, refresh_token: &str) -> (u16, serde_json::Value) {
        // Test-only refresh token of a throwaway backend; argv is acceptable here.
        let (status, body) = self.curl(&[
            "-d",
            "grant_type=refresh_token",
            "--data-urlencode",
            &format!("refresh_token={refresh_token}"),
            &format!("{}/api/auth/v1/token", self.url),
        ]);
        (status, serde_json::from_str(&body).unwrap_or_default())
    }
}

impl Drop for Backstage {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
