//! `stagepass doctor` against the real test IdP, set up wrongly on purpose: each case asserts
//! on the named diagnosis (the check id, its status and its wording), not just on a failure.

use crate::support;

use std::net::TcpListener;

use support::doctor::{CHECKS_FAILED, Doctor, doctor, free_port};
use support::{AUDIENCE, CLIENT_ID, Idp, Run, Sandbox};

use support::oidc_profile as config;

const ALL_SCOPES: &str = r#""openid", "email", "profile", "groups", "offline_access""#;

#[test]
fn a_healthy_profile_passes_before_and_after_sign_in() {
    let idp = Idp::start();
    let sandbox = Sandbox::with_config(
        "doctor-healthy",
        &config("doctor-healthy", &idp.issuer, CLIENT_ID, ALL_SCOPES),
    );

    let before = doctor(&sandbox);
    before.run.assert_ok();
    assert_eq!(before.failing(), Vec::<&str>::new());
    for id in [
        "config.file",
        "idp.discovery",
        "idp.issuer",
        "idp.pkce",
        "idp.grants",
        "idp.device_flow",
        "idp.revocation",
        "idp.scopes",
        "idp.offline_access",
        "idp.redirect_uri",
        "idp.client",
        "idp.clock_skew",
        "agent",
        "keychain",
        "proxy.port",
    ] {
        assert_eq!(before.check(id)["status"], "ok", "{}", before.check(id));
    }
    before.assert("token.session", "warn", "sign in first");
    before.assert(
        "idp.client",
        "ok",
        "accepts `stagepass-test` as a public client",
    );
    before.assert_evidence("idp.redirect_uri", "http://127.0.0.1:");

    sandbox.login_browser();
    let after = doctor(&sandbox);
    after.run.assert_ok();
    after.assert("token.session", "ok", "signed in as alice@example.com");
    after.assert("token.audience", "ok", AUDIENCE);
    after.assert("token.scopes", "ok", "every requested scope was granted");
    after.assert("token.groups", "ok", "`groups` claim");
    after.assert_evidence("token.groups", "developers");
    after.assert("token.lifetimes", "ok", "a refresh token is held");
    after.assert_evidence("token.lifetimes", "access token: 1m 0s");
    after.assert_evidence("token.claims", "preferred_username=\"alice\"");
    // Claims, never tokens: nothing that looks like a compact JWS is printed.
    assert!(
        !after.run.stdout().contains("eyJ"),
        "{}",
        after.run.stdout()
    );

    let human = sandbox.run(&["doctor", "--proxy-port", &free_port()]);
    human.assert_ok();
    assert!(
        human.stdout().contains("failed") && human.stdout().contains("ok    idp.issuer"),
        "{}",
        human.stdout()
    );
}

#[test]
fn a_wrong_client_id_is_named_as_unknown_to_the_idp() {
    let idp = Idp::start();
    let sandbox = Sandbox::with_config(
        "doctor-client",
        &config("doctor-client", &idp.issuer, "no-such-client", ALL_SCOPES),
    );
    let report = doctor(&sandbox);
    report.run.assert_code(CHECKS_FAILED);
    report.assert(
        "idp.client",
        "fail",
        "the IdP does not know client_id `no-such-client` (invalid_client)",
    );
    assert!(
        report.check("idp.client")["fix"]
            .as_str()
            .unwrap()
            .contains("profiles.doctor-client.client_id")
    );
    report.assert("idp.redirect_uri", "skip", "refused the client");
    assert_eq!(report.failing(), vec!["idp.client"]);
}

#[test]
fn a_confidential_client_is_named_as_needing_a_secret() {
    let idp = Idp::start();
    let sandbox = Sandbox::with_config(
        "doctor-confidential",
        &config(
            "doctor-confidential",
            &idp.issuer,
            "oidc-agent-bench",
            ALL_SCOPES,
        ),
    );
    let report = doctor(&sandbox);
    report.run.assert_code(CHECKS_FAILED);
    report.assert(
        "idp.redirect_uri",
        "ok",
        "accepts the loopback redirect URI",
    );
    report.assert("idp.client", "fail", "it is a confidential client");
    report.assert_evidence("idp.client", "invalid_client");
    // Both ways out: a public client, or the secret kept.
    report.assert_fix("idp.client", &["public client", "client_auth = \"secret\""]);
}

#[test]
fn redirect_uris_registered_differently_are_each_named() {
    let idp = Idp::start();
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
        let sandbox = Sandbox::with_config(
            "doctor-redirect",
            &config("doctor-redirect", &idp.issuer, client, ALL_SCOPES),
        );
        let report = doctor(&sandbox);
        report.run.assert_code(CHECKS_FAILED);
        let check = report.assert("idp.redirect_uri", "fail", diagnosis);
        assert!(
            check["fix"]
                .as_str()
                .unwrap()
                .contains("register exactly http://127.0.0.1/callback"),
            "{check}"
        );
        report.assert_evidence("idp.redirect_uri", "invalid_redirect_uri");
        // The client itself is fine: only the redirect URI is wrong.
        report.assert("idp.client", "ok", "public client");
        assert_eq!(report.failing(), vec!["idp.redirect_uri"], "{client}");
    }
}

#[test]
fn an_issuer_with_an_extra_slash_is_named_and_the_rest_still_checked() {
    let idp = Idp::start();
    let configured = format!("{}/", idp.issuer);
    let sandbox = Sandbox::with_config(
        "doctor-issuer",
        &config("doctor-issuer", &configured, CLIENT_ID, ALL_SCOPES),
    );
    let report = doctor(&sandbox);
    report.run.assert_code(CHECKS_FAILED);
    let check = report.assert(
        "idp.issuer",
        "fail",
        "the configured issuer has a trailing slash the IdP's has not",
    );
    report.assert_evidence("idp.issuer", &format!("advertised: \"{}\"", idp.issuer));
    assert!(
        check["fix"].as_str().unwrap().contains(&format!(
            "profiles.doctor-issuer.issuer = \"{}\"",
            idp.issuer
        )),
        "{check}"
    );
    report.assert("idp.client", "ok", "public client");
    assert_eq!(report.failing(), vec!["idp.issuer"]);
}

#[test]
fn missing_offline_access_is_named_where_the_idp_needs_it_for_refresh_tokens() {
    let idp = Idp::start();
    let sandbox = Sandbox::with_config(
        "doctor-offline",
        &config(
            "doctor-offline",
            &idp.issuer,
            CLIENT_ID,
            r#""openid", "email", "profile", "groups""#,
        ),
    );
    let report = doctor(&sandbox);
    report.run.assert_code(CHECKS_FAILED);
    let check = report.assert(
        "idp.offline_access",
        "fail",
        "offline_access is not requested, but this IdP uses it to issue refresh tokens",
    );
    assert!(
        check["fix"]
            .as_str()
            .unwrap()
            .contains("add \"offline_access\" to `profiles.doctor-offline.scopes`"),
        "{check}"
    );
    assert_eq!(report.failing(), vec!["idp.offline_access"]);
}

#[test]
fn an_access_token_for_another_audience_is_named() {
    // Like an IdP that ignores the RFC 8707 resource parameter.
    let idp = Idp::start_with(&[("IDP_ISSUED_AUDIENCE", "https://elsewhere.test")]);
    let sandbox = Sandbox::with_config(
        "doctor-audience",
        &config("doctor-audience", &idp.issuer, CLIENT_ID, ALL_SCOPES),
    );
    sandbox.login_browser();
    let report = doctor(&sandbox);
    report.run.assert_code(CHECKS_FAILED);
    report.assert(
        "token.audience",
        "fail",
        &format!("the access token is not issued for the configured audience {AUDIENCE}"),
    );
    report.assert_evidence("token.audience", "https://elsewhere.test");
    assert_eq!(report.failing(), vec!["token.audience"]);
}

#[test]
fn a_skewed_clock_is_a_warning_with_its_size() {
    // The IdP's Date header runs 10 minutes behind: the local clock is 10 minutes ahead.
    let idp = Idp::start_with(&[("IDP_DATE_SKEW_SECS", "-600")]);
    let sandbox = Sandbox::with_config(
        "doctor-skew",
        &config("doctor-skew", &idp.issuer, CLIENT_ID, ALL_SCOPES),
    );
    let report = doctor(&sandbox);
    // A warning is not a failure.
    report.run.assert_ok();
    report.assert(
        "idp.clock_skew",
        "warn",
        "the local clock is 10m 0s ahead of the IdP's",
    );
    report.assert_evidence("idp.clock_skew", "+600s");
}

#[test]
fn an_unreachable_keychain_is_named() {
    let idp = Idp::start();
    let sandbox = Sandbox::with_config(
        "doctor-keychain",
        &config("doctor-keychain", &idp.issuer, CLIENT_ID, ALL_SCOPES),
    );
    let no_bus = tempfile::tempdir().unwrap();
    let output = sandbox
        .command(&["doctor", "--json", "--proxy-port", &free_port()])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        // zbus would otherwise find the session bus at $XDG_RUNTIME_DIR/bus.
        .env("XDG_RUNTIME_DIR", no_bus.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let report = Doctor::new(Run(output));
    report.run.assert_code(CHECKS_FAILED);
    let check = report.assert("keychain", "fail", "no keychain service is reachable");
    assert!(
        check["fix"].as_str().unwrap().contains("Secret Service"),
        "{check}"
    );
    assert_eq!(report.failing(), vec!["keychain"]);
}

#[test]
fn a_port_in_use_is_named_with_its_owner() {
    let idp = Idp::start();
    let sandbox = Sandbox::with_config(
        "doctor-port",
        &config("doctor-port", &idp.issuer, CLIENT_ID, ALL_SCOPES),
    );
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let report = Doctor::new(sandbox.run(&["doctor", "--json", "--proxy-port", &port]));
    report.run.assert_ok();
    report.assert("proxy.port", "warn", &format!("port {port} is in use by"));
    // This test process holds it, and /proc says so.
    report.assert(
        "proxy.port",
        "warn",
        &format!("(pid {})", std::process::id()),
    );
    drop(busy);
}

#[test]
fn config_mistakes_are_named_without_an_idp() {
    let sandbox = Sandbox::with_config(
        "doctor-config",
        "[profiles.doctor-config]\nissuer = \"https://idp.example\"\nclientid = \"x\"\n",
    );
    let report = doctor(&sandbox);
    report.run.assert_code(CHECKS_FAILED);
    report.assert("config.file", "fail", "the config file does not parse");
    report.assert_evidence("config.file", "clientid");
    report.assert("config.profile", "skip", "needs a config file that parses");
    // The checks that need no config still run.
    report.assert("keychain", "ok", "a write, read and delete worked");

    sandbox.write_config(&config(
        "doctor-config",
        "https://idp.example",
        "x",
        ALL_SCOPES,
    ));
    let unknown =
        Doctor::new(sandbox.run(&["doctor", "nope", "--json", "--proxy-port", &free_port()]));
    unknown.run.assert_code(CHECKS_FAILED);
    unknown.assert("config.profile", "fail", "no profile named `nope`");
}

#[test]
fn mapped_hosts_that_git_and_docker_do_not_send_to_stagepass_are_named() {
    let idp = Idp::start();
    let mut sandbox = Sandbox::with_config(
        "doctor-helpers",
        &format!(
            "{}\n[[git]]\nurl = \"https://git.example.com/\"\nprofile = \"doctor-helpers\"\n\n\
             [[docker]]\nregistry = \"registry.example.com\"\nprofile = \"doctor-helpers\"\n",
            config("doctor-helpers", &idp.issuer, CLIENT_ID, ALL_SCOPES)
        ),
    );
    let home = sandbox.path().to_path_buf();
    let bin = home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_stagepass"),
        bin.join("docker-credential-stagepass"),
    )
    .unwrap();
    for (name, value) in [
        ("HOME", home.display().to_string()),
        (
            "GIT_CONFIG_GLOBAL",
            home.join("gitconfig").display().to_string(),
        ),
        ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ("DOCKER_CONFIG", home.join("docker").display().to_string()),
        (
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        ),
    ] {
        sandbox.set_env(name, &value);
    }

    let before = doctor(&sandbox);
    before.assert(
        "helper.git",
        "warn",
        "git does not ask stagepass for https://git.example.com",
    );
    before.assert(
        "helper.docker",
        "warn",
        "docker does not ask stagepass for registry.example.com",
    );
    assert_eq!(before.check("helper.git")["fix"], "stagepass setup git");

    sandbox.run(&["setup", "git"]).assert_ok();
    sandbox.run(&["setup", "docker"]).assert_ok();
    let after = doctor(&sandbox);
    after.assert(
        "helper.git",
        "ok",
        "git uses stagepass for https://git.example.com",
    );
    after.assert(
        "helper.docker",
        "ok",
        "docker uses stagepass for registry.example.com",
    );
}

#[test]
fn path_routes_sharing_a_browser_origin_are_named() {
    let profile = "doctor-routes";
    let route = |name: &str, local: &str| {
        format!(
            "[[route]]\nname = \"{name}\"\n{local}\nupstream = \"https://{name}.example.com\"\n\
             profile = \"{profile}\"\nidentity = \"bearer\"\n"
        )
    };
    let base = config(profile, "https://idp.example", CLIENT_ID, ALL_SCOPES);
    let sandbox = Sandbox::with_config(
        profile,
        &format!(
            "{base}{}{}",
            route("one", "path = \"/one\""),
            route("two", "host = \"two.localhost\"")
        ),
    );
    doctor(&sandbox).assert("proxy.routes", "ok", "a browser origin of its own");
    sandbox.write_config(&format!(
        "{base}{}{}{}",
        route("one", "path = \"/one\""),
        route("two", "host = \"two.localhost\""),
        route("three", "path = \"/three\"")
    ));
    let report = doctor(&sandbox);
    report.assert(
        "proxy.routes",
        "warn",
        "one, three share one browser origin",
    );
    assert!(
        report.check("proxy.routes")["fix"]
            .as_str()
            .unwrap()
            .contains("NAME.localhost"),
        "{}",
        report.run.stdout()
    );
}
