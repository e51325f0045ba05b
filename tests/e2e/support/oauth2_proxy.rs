//! The real oauth2-proxy (`go install github.com/oauth2-proxy/oauth2-proxy/v7`, built by
//! scripts/setup into its cache) in front of an upstream, signing users in with the real
//! Keycloak's `oauth2-proxy` client and accepting Keycloak's JWTs as bearer tokens, as a
//! Keycloak shop runs it before Backstage.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::keycloak::{Keycloak, REALM, cache_dir, pinned_version};
use super::proxy::free_port;
use super::{AUDIENCE, missing_part};

pub struct OAuth2Proxy {
    child: Child,
    pub url: String,
}

impl OAuth2Proxy {
    /// oauth2-proxy on a free port before `upstream`; `None` where it is not installed and the
    /// test may skip (never under `CI=true`).
    pub fn start(keycloak: &Keycloak, upstream: &str) -> Option<OAuth2Proxy> {
        let version = pinned_version("OAUTH2_PROXY_VERSION");
        let binary = cache_dir().join(format!("oauth2-proxy-{version}/oauth2-proxy"));
        if !binary.is_file() {
            missing_part(
                &format!("oauth2-proxy ({})", binary.display()),
                "run scripts/setup, which builds github.com/oauth2-proxy/oauth2-proxy/v7 with go install",
            );
            return None;
        }
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(binary)
            .args([
                "--provider=keycloak-oidc",
                "--client-id=oauth2-proxy",
                &format!("--oidc-issuer-url={}", keycloak.issuer(REALM)),
                &format!("--http-address=127.0.0.1:{port}"),
                &format!("--redirect-url={url}/oauth2/callback"),
                &format!("--upstream={upstream}"),
                "--email-domain=*",
                "--code-challenge-method=S256",
                // API clients: Keycloak's JWT as a bearer, for the stagepass audience too.
                "--skip-jwt-bearer-tokens",
                &format!("--oidc-extra-audience={AUDIENCE}"),
                "--bearer-token-login-fallback=false",
            ])
            // Secrets of a throwaway proxy, kept out of argv all the same.
            .env("OAUTH2_PROXY_CLIENT_SECRET", "oauth2-proxy-test-secret")
            .env(
                "OAUTH2_PROXY_COOKIE_SECRET",
                "0123456789abcdef0123456789abcdef",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("oauth2-proxy starts");
        let proxy = OAuth2Proxy { child, url };
        let started = Instant::now();
        while !proxy.answers() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "oauth2-proxy did not answer /ping within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(proxy)
    }

    fn answers(&self) -> bool {
        Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "--max-time", "2"])
            .arg(format!("{}/ping", self.url))
            .status()
            .is_ok_and(|status| status.success())
    }
}

impl Drop for OAuth2Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
