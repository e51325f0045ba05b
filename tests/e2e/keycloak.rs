//! The real Keycloak 26 (tests/keycloak/: the realms, the admin client, the scripted browser
//! that fills Keycloak's own pages): both sign-in flows, what Keycloak says of the tokens,
//! rotation and reuse, kill -9 during refreshes, revocation, the preset, `doctor`'s diagnosis of
//! each Keycloak pitfall, and Backstage behind the real oauth2-proxy.
//! One Keycloak serves the whole binary; each test signs in its own user where Keycloak's
//! per-user state (offline sessions, revocation) could reach another test.

use crate::support;

use support::jwt_claims as claims;

use std::time::{Duration, Instant};

use support::backstage::Backstage;
use support::doctor::{CHECKS_FAILED, doctor};
use support::keycloak::{self, CLIENT, Keycloak, REALM, SCOPES, SHORT_CLIENT};
use support::oauth2_proxy::OAuth2Proxy;
use support::{AUDIENCE, Sandbox};

/// The binary's Keycloak, or `None` on a laptop without it (a message says why; under
/// `CI=true` a missing Keycloak fails the test instead).
fn keycloak() -> Option<&'static Keycloak> {
    keycloak::keycloak()
}

fn token(sandbox: &Sandbox) -> String {
    let run = sandbox.run(&["token", "--no-interactive"]);
    run.assert_ok();
    run.stdout().trim().to_string()
}

pub(crate) fn audiences(claims: &serde_json::Value) -> Vec<String> {
    match &claims["aud"] {
        serde_json::Value::String(one) => vec![one.clone()],
        serde_json::Value::Array(many) => many
            .iter()
            .map(|aud| aud.as_str().unwrap().to_string())
            .collect(),
        other => panic!("aud is {other}"),
    }
}

#[test]
fn browser_sign_in_on_keycloaks_login_page_gives_a_token_keycloak_accepts() {
    let Some(kc) = keycloak() else { return };
    let sandbox = kc.sandbox("kc-browser", CLIENT, "alice");

    let started = Instant::now();
    let run = sandbox.run(&["login", "kc-browser", "--browser"]);
    run.assert_ok();
    eprintln!("keycloak: browser sign-in took {:?}", started.elapsed());
    assert!(
        run.stdout()
            .contains("Signed in to kc-browser as alice@example.com"),
        "{}",
        run.stdout()
    );
    let entry = sandbox
        .keychain_entry()
        .expect("the login is in the keychain");
    assert_eq!(entry["issuer"], kc.issuer(REALM).as_str());
    assert_eq!(entry["client_id"], CLIENT);

    let access = token(&sandbox);
    let access_claims = claims(&access);
    assert_eq!(access_claims["iss"], kc.issuer(REALM).as_str());
    assert!(
        audiences(&access_claims).contains(&AUDIENCE.to_string()),
        "the audience mapper's audience: {access_claims}"
    );
    assert_eq!(
        access_claims["groups"],
        serde_json::json!(["admins", "developers"]),
        "the group mapper's claim: {access_claims}"
    );
    assert!(
        access_claims["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|scope| scope == "offline_access"),
        "{access_claims}"
    );

    // Keycloak itself says the token is live and whose it is.
    let verdict = kc.introspect(&access);
    assert_eq!(verdict["active"], true, "{verdict}");
    assert_eq!(verdict["username"], "alice", "{verdict}");
    assert_eq!(verdict["client_id"], CLIENT, "{verdict}");

    let status = sandbox.run(&["status", "--json"]).json();
    assert_eq!(status["profiles"][0]["state"], "signed_in", "{status}");
    assert_eq!(
        status["profiles"][0]["email"], "alice@example.com",
        "{status}"
    );
    let shown = sandbox.run(&["claims", "kc-browser"]);
    shown.assert_ok();
    assert!(shown.stdout().contains("developers"), "{}", shown.stdout());
}

#[test]
fn device_sign_in_on_keycloaks_verification_page() {
    let Some(kc) = keycloak() else { return };
    let sandbox = kc.sandbox("kc-device", CLIENT, "bob");
    let started = Instant::now();
    let (mut login, lines, first) = support::start_device_sign_in(&sandbox);
    assert!(
        first["verification_uri"]
            .as_str()
            .unwrap()
            .starts_with(&kc.issuer(REALM)),
        "{first}"
    );
    let browser =
        keycloak::approve_device_code(first["verification_uri_complete"].as_str().unwrap(), "bob");
    assert!(
        browser.status.success(),
        "{}",
        String::from_utf8_lossy(&browser.stderr)
    );
    let last = lines
        .map(|line| serde_json::from_str::<serde_json::Value>(&line.unwrap()).unwrap())
        .last()
        .unwrap();
    assert!(login.wait().unwrap().success());
    eprintln!("keycloak: device sign-in took {:?}", started.elapsed());
    assert_eq!(last["step"], "signed_in", "{last}");
    assert_eq!(last["email"], "bob@example.com");
    assert_eq!(claims(&token(&sandbox))["preferred_username"], "bob");
}

/// Keycloak rotates refresh tokens and refuses a used one (Revoke Refresh Token on, maximum
/// reuse 0): stagepass keeps the rotated one, and the old one is dead at Keycloak.
#[test]
fn a_refresh_after_expiry_rotates_and_keycloak_refuses_the_old_refresh_token() {
    let Some(kc) = keycloak() else { return };
    let sandbox = kc.sandbox("kc-refresh", SHORT_CLIENT, "carol");
    sandbox.login_browser();
    let first_refresh_token = sandbox.stored_refresh_token();
    let first = token(&sandbox);
    let expires = claims(&first)["exp"].as_u64().unwrap();
    assert_eq!(expires - claims(&first)["iat"].as_u64().unwrap(), 10);

    // Past the access token's expiry; the agent refreshes ahead of it or on this request.
    std::thread::sleep(Duration::from_secs(11));
    let started = Instant::now();
    let second = token(&sandbox);
    eprintln!("keycloak: token after expiry took {:?}", started.elapsed());
    assert_ne!(second, first);
    assert!(claims(&second)["exp"].as_u64().unwrap() > expires);
    assert_eq!(kc.introspect(&second)["active"], true);
    let rotated = sandbox.stored_refresh_token();
    assert_ne!(
        rotated, first_refresh_token,
        "the rotated refresh token is in the keychain"
    );
    assert!(kc.events("REFRESH_TOKEN", SHORT_CLIENT) >= 1);

    let (status, body) = kc.refresh_directly(SHORT_CLIENT, &first_refresh_token);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

#[test]
fn killing_the_agent_during_refreshes_never_signs_out_of_keycloak() {
    let Some(kc) = keycloak() else { return };
    // As tests/e2e/crash.rs: the kills are timed, nothing else may run.
    let _alone = support::alone();
    let sandbox = kc.sandbox("kc-crash", SHORT_CLIENT, "frank");
    sandbox.login_browser();
    let before = kc.events("REFRESH_TOKEN", SHORT_CLIENT);
    let kills = 100;
    let span = support::crash::kill_the_agent_during_refreshes(&sandbox, kills);
    let refreshes = kc.events("REFRESH_TOKEN", SHORT_CLIENT) - before;
    eprintln!("keycloak: {kills} kills over {span:?} each, {refreshes} refreshes at Keycloak");
    assert!(
        refreshes >= kills as u64 / 4,
        "the kills should hit refreshes: {refreshes}"
    );

    sandbox.run(&["token", "--no-interactive"]).assert_ok();
    let status = sandbox.run(&["status", "--json"]).json();
    assert_eq!(status["profiles"][0]["state"], "signed_in", "{status}");
    assert_eq!(kc.introspect(&token(&sandbox))["active"], true);
}

#[test]
fn logout_revokes_the_refresh_token_at_keycloak() {
    let Some(kc) = keycloak() else { return };
    let sandbox = kc.sandbox("kc-logout", CLIENT, "erin");
    sandbox.login_browser();
    let refresh_token = sandbox.stored_refresh_token();
    sandbox.run(&["logout", "kc-logout"]).assert_ok();
    assert!(sandbox.keychain_entry().is_none());
    let (status, body) = kc.refresh_directly(CLIENT, &refresh_token);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

/// `config init --preset keycloak` pointed at the live server writes a profile that signs in
/// with no hand edits.
#[test]
fn the_keycloak_preset_signs_in_to_the_live_server_as_written() {
    let Some(kc) = keycloak() else { return };
    let sandbox = kc.sandbox_with("unused", "grace", "");
    let written = sandbox.run(&[
        "config",
        "init",
        "--preset",
        "keycloak",
        "--domain",
        &kc.url,
        "--realm",
        REALM,
        "--client-id",
        CLIENT,
    ]);
    written.assert_ok();
    let run = sandbox.run(&["login", "keycloak", "--browser"]);
    run.assert_ok();
    assert!(
        run.stdout().contains("as grace@example.com"),
        "{}",
        run.stdout()
    );
    let access = claims(&token(&sandbox));
    assert_eq!(
        access["groups"],
        serde_json::json!(["developers"]),
        "{access}"
    );
    sandbox.run(&["logout", "keycloak"]).assert_ok();
}

/// Backstage behind the real oauth2-proxy, whose OIDC provider is Keycloak: the Keycloak
/// profile's access token passes oauth2-proxy as a JWT bearer, Backstage's oauth2Proxy
/// provider issues the user's Backstage token, and a caller's own identity headers never
/// reach Backstage (oauth2-proxy strips them).
#[test]
fn backstage_behind_the_real_oauth2_proxy_gives_the_keycloak_users_backstage_token() {
    let Some(kc) = keycloak() else { return };
    let backstage = Backstage::start(None);
    let Some(proxy) = OAuth2Proxy::start(kc, &backstage.url) else {
        return;
    };
    let idp_profile = kc.profile("corp", REALM, CLIENT, SCOPES);
    let sandbox = kc.sandbox_with(
        "corp",
        "alice",
        &format!(
            "{idp_profile}\n[profiles.portal]\nkind = \"backstage\"\nurl = \"{}\"\nvia_profile = \"corp\"\n",
            proxy.url
        ),
    );
    sandbox
        .run(&["token", "portal", "--no-interactive"])
        .assert_code(4)
        .assert_stderr_contains("stagepass login corp");
    sandbox.run(&["login", "portal", "--browser"]).assert_ok();
    let status = sandbox.run(&["status", "--json"]).json();
    let portal = &status["profiles"][1];
    assert_eq!(portal["name"], "portal");
    assert_eq!(portal["state"], "signed_in", "{status}");
    assert!(
        portal["notes"][0]
            .as_str()
            .is_some_and(|note| note.contains("through `corp`")),
        "{status}"
    );
    let backstage_token = token_of(&sandbox, "portal");
    assert_eq!(claims(&backstage_token)["sub"], "user:default/alice");
    let (status, body) = backstage.get_as(&backstage_token, "/api/auth/v1/userinfo");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("user:default/alice"), "{body}");
    let (status, body) = backstage.get_as(&backstage_token, "/api/catalog/entities");
    assert_eq!(status, 200, "{body}");
    // Served from memory until it nears expiry.
    assert_eq!(token_of(&sandbox, "portal"), backstage_token);

    // Without a bearer, oauth2-proxy stops the request; with alice's and a spoofed identity,
    // Backstage still sees alice.
    let corp_token = token_of(&sandbox, "corp");
    let refresh = format!("{}/api/auth/oauth2Proxy/refresh", proxy.url);
    let anonymous = curl(&["-H", "X-Forwarded-User: bob", &refresh]);
    assert!(anonymous.0 == 401 || anonymous.0 == 403, "{anonymous:?}");
    let spoofed = curl(&[
        "-H",
        &format!("Authorization: Bearer {corp_token}"),
        "-H",
        "X-Forwarded-User: bob",
        "-H",
        "X-Forwarded-Email: bob@example.com",
        "-H",
        "X-Forwarded-Preferred-Username: bob",
        &refresh,
    ]);
    assert_eq!(spoofed.0, 200, "{spoofed:?}");
    let answer: serde_json::Value = serde_json::from_str(&spoofed.1).unwrap();
    assert_eq!(
        answer["backstageIdentity"]["identity"]["userEntityRef"], "user:default/alice",
        "{answer}"
    );

    // Signing out of the portal forgets its token only; the IdP profile stays signed in.
    sandbox
        .run(&["logout", "portal"])
        .assert_ok()
        .assert_stderr_contains("`corp` stays signed in");
    let status = sandbox.run(&["status", "--json"]).json();
    assert_eq!(status["profiles"][0]["state"], "signed_in", "{status}");
}

fn token_of(sandbox: &Sandbox, profile: &str) -> String {
    let run = sandbox.run(&["token", profile, "--no-interactive"]);
    run.assert_ok();
    run.stdout().trim().to_string()
}

/// `(status, body)` of `curl ARGS` (the last argument is the URL).
fn curl(args: &[&str]) -> (u16, String) {
    let output = std::process::Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_string())
}

// ---------------------------------------------------------------- doctor, per Keycloak pitfall

fn doctor_for(
    kc: &Keycloak,
    profile: &str,
    issuer: &str,
    client: &str,
    scopes: &str,
) -> (Sandbox, support::doctor::Doctor) {
    let config = support::oidc_profile(profile, issuer, client, scopes);
    let sandbox = kc.sandbox_with(profile, "alice", &config);
    let report = doctor(&sandbox);
    (sandbox, report)
}

#[test]
fn doctor_passes_the_healthy_keycloak_client_before_and_after_sign_in() {
    let Some(kc) = keycloak() else { return };
    let (sandbox, before) = doctor_for(kc, "kc-doc-ok", &kc.issuer(REALM), CLIENT, SCOPES);
    before.run.assert_ok();
    assert_eq!(before.failing(), Vec::<&str>::new());
    before.assert("idp.client", "ok", "public client");
    before.assert(
        "idp.redirect_uri",
        "ok",
        "accepts the loopback redirect URI",
    );
    sandbox.login_browser();
    let after = doctor(&sandbox);
    after.run.assert_ok();
    after.assert("token.audience", "ok", AUDIENCE);
    after.assert("token.groups", "ok", "`groups` claim");
    after.assert("token.lifetimes", "ok", "a refresh token is held");
    sandbox.run(&["logout"]).assert_ok();
}

#[test]
fn doctor_names_an_unknown_client_id_as_keycloak_reports_it() {
    let Some(kc) = keycloak() else { return };
    let (_sandbox, report) = doctor_for(
        kc,
        "kc-doc-client",
        &kc.issuer(REALM),
        "no-such-client",
        SCOPES,
    );
    report.run.assert_code(CHECKS_FAILED);
    report.assert(
        "idp.client",
        "fail",
        "the IdP does not know client_id `no-such-client`",
    );
    assert_eq!(report.failing(), vec!["idp.client"]);
}

#[test]
fn doctor_names_each_redirect_uri_keycloak_does_not_accept() {
    let Some(kc) = keycloak() else { return };
    for (client, diagnosis) in [
        (
            "stagepass-wrong-path",
            "the redirect URI stagepass uses is not registered for the client",
        ),
        (
            "stagepass-slash",
            "the registered redirect URI has a trailing slash",
        ),
        (
            "stagepass-localhost",
            "the registered redirect URI uses localhost",
        ),
    ] {
        let (_sandbox, report) =
            doctor_for(kc, "kc-doc-redirect", &kc.issuer(REALM), client, SCOPES);
        report.run.assert_code(CHECKS_FAILED);
        let check = report.assert("idp.redirect_uri", "fail", diagnosis);
        assert!(
            check["fix"]
                .as_str()
                .unwrap()
                .contains("register exactly http://127.0.0.1/callback"),
            "{check}"
        );
        report.assert_evidence("idp.redirect_uri", "http://127.0.0.1:");
        assert_eq!(report.failing(), vec!["idp.redirect_uri"], "{client}");
    }
}

#[test]
fn doctor_names_an_issuer_with_a_trailing_slash() {
    let Some(kc) = keycloak() else { return };
    let configured = format!("{}/", kc.issuer(REALM));
    let (_sandbox, report) = doctor_for(kc, "kc-doc-issuer", &configured, CLIENT, SCOPES);
    report.run.assert_code(CHECKS_FAILED);
    report.assert(
        "idp.issuer",
        "fail",
        "the configured issuer has a trailing slash the IdP's has not",
    );
    assert_eq!(report.failing(), vec!["idp.issuer"]);
}

#[test]
fn doctor_names_a_confidential_client_used_as_a_public_one() {
    let Some(kc) = keycloak() else { return };
    let (_sandbox, report) = doctor_for(
        kc,
        "kc-doc-confidential",
        &kc.issuer(REALM),
        "stagepass-confidential",
        SCOPES,
    );
    report.run.assert_code(CHECKS_FAILED);
    report.assert("idp.client", "fail", "it is a confidential client");
    // Both ways out: a public client, or the secret kept.
    report.assert_fix("idp.client", &["public client", "client_auth = \"secret\""]);
}

#[test]
fn doctor_names_a_missing_audience_mapper() {
    let Some(kc) = keycloak() else { return };
    let (sandbox, _) = doctor_for(
        kc,
        "kc-doc-aud",
        &kc.issuer(REALM),
        "stagepass-no-audience",
        SCOPES,
    );
    sandbox.login_browser();
    let report = doctor(&sandbox);
    report.run.assert_code(CHECKS_FAILED);
    report.assert(
        "token.audience",
        "fail",
        &format!("the access token is not issued for the configured audience {AUDIENCE}"),
    );
    sandbox.run(&["logout"]).assert_ok();
}

#[test]
fn doctor_names_a_missing_group_mapper() {
    let Some(kc) = keycloak() else { return };
    let (sandbox, _) = doctor_for(
        kc,
        "kc-doc-groups",
        &kc.issuer(REALM),
        "stagepass-no-groups",
        SCOPES,
    );
    sandbox.login_browser();
    let report = doctor(&sandbox);
    report.run.assert_code(CHECKS_FAILED);
    report.assert("token.groups", "fail", "`groups`");
    sandbox.run(&["logout"]).assert_ok();
}

/// Keycloak answers a request for a scope the client does not have with invalid_scope (and
/// lists every requested scope in its description, not the refused one).
#[test]
fn doctor_names_offline_access_not_allowed_for_the_client() {
    let Some(kc) = keycloak() else { return };
    let (_sandbox, report) = doctor_for(
        kc,
        "kc-doc-offline",
        &kc.issuer(REALM),
        "stagepass-no-offline",
        SCOPES,
    );
    report.run.assert_code(CHECKS_FAILED);
    let check = report.assert("idp.authorize", "fail", "invalid_scope");
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("allow offline_access for the client"),
        "{check}"
    );
    assert_eq!(report.failing(), vec!["idp.authorize"]);
}

#[test]
fn doctor_names_sso_session_limits_that_force_a_sign_in_within_a_working_day() {
    let Some(kc) = keycloak() else { return };
    let scopes = r#""openid", "email", "profile""#;
    let (sandbox, _) = doctor_for(
        kc,
        "kc-doc-session",
        &kc.issuer("shortsession"),
        CLIENT,
        scopes,
    );
    sandbox.login_browser();
    let report = doctor(&sandbox);
    let check = report.check("token.lifetimes");
    assert!(
        check["status"] == "warn" || check["status"] == "fail",
        "{check}"
    );
    report.assert_evidence("token.lifetimes", "refresh token: 30m");
    sandbox.run(&["logout"]).assert_ok();
}

#[test]
fn a_confidential_keycloak_client_signs_in_and_revokes_with_its_stored_secret() {
    let Some(kc) = keycloak() else { return };
    let profile = "kc-confidential";
    let config = format!(
        "{}client_auth = \"secret\"\n",
        kc.profile(profile, REALM, "stagepass-confidential", SCOPES)
    );
    let sandbox = kc.sandbox_with(profile, "alice", &config);
    support::run_with_input(
        sandbox.command(&["config", "set-secret", profile]),
        "confidential-test-secret\n",
    )
    .assert_ok();

    let report = doctor(&sandbox);
    report.assert(
        "idp.client",
        "ok",
        "accepts `stagepass-confidential` with its client secret",
    );
    sandbox.login_browser();
    let access = token(&sandbox);
    assert_eq!(claims(&access)["azp"], "stagepass-confidential");
    let refresh_token = sandbox.stored_refresh_token();
    // What the stored secret is for: Keycloak refuses this client's refresh without it.
    let (status, body) = kc.refresh_directly("stagepass-confidential", &refresh_token);
    assert!(
        status == 400 || status == 401,
        "no secret, no refresh: {status} {body}"
    );
    assert!(
        matches!(
            body["error"].as_str(),
            Some("unauthorized_client" | "invalid_client")
        ),
        "{body}"
    );
    let logout = sandbox.run(&["logout", profile]);
    logout
        .assert_ok()
        .assert_stdout_contains("the IdP revoked the refresh token");
    sandbox
        .run(&["config", "set-secret", profile, "--delete"])
        .assert_ok();
}
