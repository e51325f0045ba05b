//! Google as a "Desktop app" client, against tests/servers/google-server.mjs (Google itself
//! cannot be reached; the server cites the Google documentation of each behaviour): the
//! preset, `set-secret`, the browser sign-in with the secret on the code exchange and on
//! refresh, `access_type=offline` with `prompt=consent` only while no refresh token is held,
//! the refresh token kept when an answer has none, the stale-secret diagnosis after the
//! server's secret changed, and doctor's 7-day warning for apps in Testing status.

use crate::client_secret::{clear_secret, sandbox_files, set_secret, stored_secret};
use crate::support;

use std::time::Duration;

use serde_json::Value;
use support::doctor::{CHECKS_FAILED, doctor};
use support::{Sandbox, TestServer};

const CLIENT: &str = "1234-desktop.apps.googleusercontent.com";
const SECRET: &str = "GOCSPX-desktop-test-secret";
/// A Google API scope besides the sign-in ones: Testing apps' refresh tokens are limited to
/// 7 days only when something beyond openid, email and profile is asked for.
const API_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform.read-only";

fn google(env: &[(&str, &str)]) -> TestServer {
    let mut all = vec![
        ("GOOGLE_CLIENT_ID", CLIENT),
        ("GOOGLE_CLIENT_SECRET", SECRET),
    ];
    all.extend_from_slice(env);
    let env: Vec<(&str, &std::ffi::OsStr)> = all
        .iter()
        .map(|(name, value)| (*name, std::ffi::OsStr::new(*value)))
        .collect();
    TestServer::start("google-server.mjs", &env)
}

/// A sandbox whose profile `profile` was written by `config init --preset google` (pointed at
/// the test server) and whose secret is in the keychain.
fn preset_sandbox(profile: &str, server: &TestServer) -> Sandbox {
    let sandbox = Sandbox::with_config(profile, "");
    clear_secret(profile);
    let init = sandbox.run(&[
        "config",
        "init",
        "--preset",
        "google",
        "--client-id",
        CLIENT,
        "--issuer",
        &server.url,
        "--name",
        profile,
    ]);
    init.assert_ok();
    init.assert_stderr_contains(&format!("stagepass config set-secret {profile}"));
    let config = std::fs::read_to_string(sandbox.path().join("config.toml")).unwrap();
    assert!(config.contains("client_auth = \"secret\""), "{config}");
    assert!(config.contains("offline = \"access_type\""), "{config}");
    assert!(!config.contains(SECRET));
    set_secret(&sandbox, SECRET).assert_ok();
    sandbox
}

/// The parameters of the last authorization request the server saw.
fn last_authorization(server: &TestServer) -> Value {
    server.stats()["authorizations"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .expect("an authorization request")
}

fn refreshes(server: &TestServer) -> usize {
    server.stats()["token_requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|request| request["outcome"] == "refreshed")
        .count()
}

#[test]
fn a_desktop_client_signs_in_with_its_secret_keeps_its_refresh_token_and_asks_consent_only_without_one()
 {
    // 4 s access tokens: the agent refreshes by itself at about 3 s.
    let server = google(&[("GOOGLE_ACCESS_TOKEN_TTL", "4")]);
    let sandbox = preset_sandbox("google-flow", &server);

    let login = sandbox.login_browser();
    login.assert_stdout_contains("Signed in to google-flow as alice@example.com");
    // First sign-in: a refresh token is asked for Google's way, never with offline_access.
    let first = last_authorization(&server);
    assert_eq!(first["access_type"], "offline", "{first}");
    assert_eq!(first["prompt"], "consent", "{first}");
    assert_eq!(first["scope"], "openid email profile", "{first}");
    assert_eq!(server.stats()["refresh_tokens_issued"], 1);
    let refresh_token = sandbox.stored_refresh_token();
    // Who signed in, as `status` (and the tray, which shows what it reports) says.
    let status = sandbox.run(&["status", "--json"]).json();
    let profile = &status["profiles"][0];
    assert_eq!(profile["state"], "signed_in", "{profile}");
    assert_eq!(profile["email"], "alice@example.com", "{profile}");
    // The secret went on the code exchange, as the discovery document allows (Basic first).
    let exchange = &server.stats()["token_requests"][0];
    assert_eq!(exchange["client_auth"], "basic", "{exchange}");
    assert_eq!(exchange["outcome"], "tokens with a refresh token");

    // A refresh answer carries no refresh token: the old one is kept, and works again.
    let before = sandbox.run(&["token", "google-flow", "--min-valid", "0"]);
    before.assert_ok();
    support::wait_until("two refreshes", Duration::from_secs(20), || {
        refreshes(&server) >= 2
    });
    let after = sandbox.run(&["token", "google-flow", "--min-valid", "0"]);
    after.assert_ok();
    assert_ne!(after.stdout(), before.stdout(), "a new access token");
    assert_eq!(sandbox.stored_refresh_token(), refresh_token, "kept");

    // Signing in again while a refresh token is held: no prompt=consent, so Google shows no
    // consent screen and issues no new refresh token; the held one stays.
    sandbox.login_browser();
    let again = last_authorization(&server);
    assert_eq!(again["access_type"], "offline", "{again}");
    assert_eq!(again["prompt"], Value::Null, "{again}");
    assert_eq!(server.stats()["refresh_tokens_issued"], 1);
    assert_eq!(sandbox.stored_refresh_token(), refresh_token);
    let refreshed = refreshes(&server);
    support::wait_until(
        "a refresh after the sign-in",
        Duration::from_secs(20),
        || refreshes(&server) > refreshed,
    );
    sandbox
        .run(&["token", "google-flow", "--min-valid", "0"])
        .assert_ok();

    // Signed out (the refresh token revoked), a sign-in has none: it asks for consent again
    // and gets a new one.
    sandbox.run(&["logout", "google-flow"]).assert_ok();
    sandbox.login_browser();
    let fresh = last_authorization(&server);
    assert_eq!(fresh["prompt"], "consent", "{fresh}");
    assert_eq!(server.stats()["refresh_tokens_issued"], 2);
    assert_ne!(sandbox.stored_refresh_token(), refresh_token);

    // The secret is in the keychain and nowhere in the sandbox: config, log, audit.
    assert_eq!(stored_secret("google-flow").as_deref(), Some(SECRET));
    assert!(
        !sandbox_files(&sandbox).contains(SECRET),
        "the secret leaked into the sandbox"
    );
    clear_secret("google-flow");
}

#[test]
fn google_refuses_a_refresh_without_the_secret_and_doctor_spots_a_rotated_one() {
    let server = google(&[("GOOGLE_ACCESS_TOKEN_TTL", "4")]);
    let sandbox = preset_sandbox("google-stale", &server);
    sandbox.login_browser();
    let config = std::fs::read_to_string(sandbox.path().join("config.toml")).unwrap();

    // The profile made public by mistake: the refresh goes without the secret, Google refuses
    // it, and the error says what to do.
    sandbox.write_config(&config.replace("client_auth = \"secret\"\n", ""));
    // The access token (4 s) has expired: the next hand-out needs a refresh.
    std::thread::sleep(Duration::from_secs(5));
    let token = sandbox.run(&["token", "google-stale", "--min-valid", "0"]);
    assert_ne!(token.code(), 0, "{}", token.stdout());
    token.assert_stderr_contains("client_secret is missing");
    token.assert_stderr_contains("stagepass config set-secret google-stale");
    let refused = server.stats()["token_requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|request| {
            request["grant_type"] == "refresh_token" && request["client_auth"] == "none"
        })
        .cloned()
        .expect("a refresh without the secret reached the server");
    assert_eq!(refused["outcome"], "invalid_request", "{refused}");

    // Back to the secret; then the server's secret is rotated: doctor names the stale one.
    sandbox.write_config(&config);
    let good = doctor(&sandbox);
    good.assert(
        "idp.client",
        "ok",
        "with its client secret (client_secret_basic)",
    );
    good.assert("idp.offline_access", "ok", "access_type=offline");
    server.post("/test/client-secret?value=GOCSPX-rotated");
    let stale = doctor(&sandbox);
    stale.run.assert_code(CHECKS_FAILED);
    stale.assert("idp.client", "fail", "refuses the stored client secret");
    stale.assert_evidence("idp.client", "invalid_client");
    stale.assert_fix("idp.client", &["stagepass config set-secret google-stale"]);
    assert!(!stale.run.stdout().contains(SECRET));
    set_secret(&sandbox, "GOCSPX-rotated").assert_ok();
    doctor(&sandbox).assert("idp.client", "ok", "with its client secret");

    // A Desktop app client may not use the device flow: the error says what to do instead.
    let device = sandbox.run(&["login", "google-stale", "--device"]);
    assert_ne!(device.code(), 0, "{}", device.stdout());
    device.assert_stderr_contains("Invalid client type");
    device.assert_stderr_contains("TVs and Limited Input devices");
    clear_secret("google-stale");
}

#[test]
fn doctor_flags_a_seven_day_refresh_token_in_testing_status_and_not_in_production() {
    let server = google(&[("GOOGLE_PUBLISHING_STATUS", "testing")]);
    let sandbox = preset_sandbox("google-testing", &server);
    // An app that calls a Google API: the 7-day limit applies beyond openid, email, profile.
    let config = std::fs::read_to_string(sandbox.path().join("config.toml")).unwrap();
    sandbox.write_config(&config.replace(
        "scopes = [\"openid\", \"email\", \"profile\"]",
        &format!("scopes = [\"openid\", \"email\", \"profile\", \"{API_SCOPE}\"]"),
    ));
    sandbox.login_browser();
    // What the server stated is kept with the login, in the keychain.
    let life = &sandbox.keychain_entry().unwrap()["refresh_lifetime"];
    assert_eq!(
        life["expires_at"].as_u64().unwrap() - life["issued_at"].as_u64().unwrap(),
        7 * 24 * 3600 - 1,
        "{life}"
    );
    let testing = doctor(&sandbox);
    testing.assert("token.lifetimes", "warn", "dies within 7 days");
    testing.assert_fix("token.lifetimes", &["Testing status", "In production"]);
    // From the keychain alone: a restarted agent holds no tokens in memory.
    sandbox.run(&["agent", "stop"]).assert_ok();
    doctor(&sandbox).assert("token.lifetimes", "warn", "dies within 7 days");

    // Published: a new sign-in (none held after the logout, so consent again) brings a
    // refresh token without that limit, and doctor is content.
    server.post("/test/publishing-status?value=production");
    sandbox.run(&["logout", "google-testing"]).assert_ok();
    sandbox.login_browser();
    assert_eq!(last_authorization(&server)["prompt"], "consent");
    assert!(
        sandbox
            .keychain_entry()
            .unwrap()
            .get("refresh_lifetime")
            .is_none()
    );
    let production = doctor(&sandbox);
    production.assert("token.lifetimes", "ok", "a refresh token is held");
    clear_secret("google-testing");
}
