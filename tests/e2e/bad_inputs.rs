//! Bad input gets a clear error that says what to do next, an exit code that scripts can use,
//! and loses nothing.

use crate::support;

use support::{CLIENT_ID, Idp, Sandbox};

#[test]
fn broken_config_names_the_file_the_key_and_what_is_allowed() {
    let sandbox = Sandbox::with_config(
        "e2e-badconfig",
        "[profiles.e2e-badconfig]\nissuer = \"https://idp.example.com\"\nclientid = \"x\"\n",
    );
    let run = sandbox.run(&["token"]);
    run.assert_code(3)
        .assert_stderr_contains("config.toml")
        .assert_stderr_contains("clientid")
        .assert_stderr_contains("client_id");

    sandbox.write_config("[profiles.e2e-badconfig\nissuer = ");
    sandbox
        .run(&["status"])
        .assert_code(3)
        .assert_stderr_contains("line 1");

    sandbox.write_config(
        "[profiles.e2e-badconfig]\nissuer = \"https://idp.example.com\"\nclient_id = \"x\"\nflow = \"sometimes\"\n",
    );
    sandbox
        .run(&["login"])
        .assert_code(3)
        .assert_stderr_contains("flow")
        .assert_stderr_contains("device");
}

#[test]
fn unknown_and_ambiguous_profiles_list_the_known_ones() {
    let config = "[profiles.one]\nissuer = \"https://a.example\"\nclient_id = \"x\"\n\
                  [profiles.two]\nissuer = \"https://b.example\"\nclient_id = \"y\"\n";
    let sandbox = Sandbox::with_config("e2e-ambiguous", config);
    sandbox
        .run(&["token"])
        .assert_code(2)
        .assert_stderr_contains("one, two");
    sandbox
        .run(&["token", "three"])
        .assert_code(2)
        .assert_stderr_contains("three")
        .assert_stderr_contains("one, two");
}

#[test]
fn a_profile_never_signed_in_says_how_to_sign_in() {
    let idp = Idp::start();
    let sandbox = Sandbox::new("e2e-fresh", &idp.issuer);
    sandbox
        .run(&["token", "--no-interactive"])
        .assert_code(4)
        .assert_stderr_contains("run `stagepass login e2e-fresh`");
    let status = sandbox.run(&["status"]);
    status.assert_ok();
    assert!(
        status.stdout().contains("signed out"),
        "{}",
        status.stdout()
    );
}

#[test]
fn wrong_client_id_is_reported_before_any_browser_opens() {
    let idp = Idp::start();
    let sandbox = Sandbox::with_config(
        "e2e-badclient",
        &format!(
            "[profiles.e2e-badclient]\nissuer = \"{}\"\nclient_id = \"no-such-client\"\n",
            idp.issuer
        ),
    );
    let run = sandbox.run(&["login", "--browser"]);
    run.assert_code(5)
        .assert_stderr_contains("invalid_client")
        .assert_stderr_contains("profiles.e2e-badclient.client_id");
    assert!(
        !run.stderr().contains("browser was opened"),
        "{}",
        run.stderr()
    );

    // The device endpoint says the same in its own way.
    sandbox
        .run(&["login", "--device"])
        .assert_code(5)
        .assert_stderr_contains("invalid_client")
        .assert_stderr_contains("client_id");
}

#[test]
fn wrong_issuer_points_at_the_issuer_key() {
    let idp = Idp::start();
    let sandbox = Sandbox::new("e2e-badissuer", &format!("{}/realms/nope", idp.issuer));
    sandbox
        .run(&["login", "--browser"])
        .assert_code(5)
        .assert_stderr_contains("404")
        .assert_stderr_contains("profiles.e2e-badissuer.issuer");

    // A trailing slash is a different issuer for OpenID discovery.
    let sandbox = Sandbox::new("e2e-slash", &format!("{}/", idp.issuer));
    sandbox
        .run(&["login", "--browser"])
        .assert_code(5)
        .assert_stderr_contains("exactly");
}

#[test]
fn unreachable_idp_is_its_own_exit_code() {
    // Port 9 (discard) is closed on the test machine: the connection is refused.
    let sandbox = Sandbox::new("e2e-down", "http://127.0.0.1:9");
    sandbox
        .run(&["login", "--browser"])
        .assert_code(6)
        .assert_stderr_contains("cannot reach the IdP")
        .assert_stderr_contains("network");
}

#[test]
fn denied_consent_ends_the_sign_in_with_the_reason() {
    let idp = Idp::start();
    let mut sandbox = Sandbox::new("e2e-deny", &idp.issuer);
    sandbox.set_env("STAGEPASS_TEST_CONSENT", "deny");
    let run = sandbox.run(&["login", "--browser"]);
    run.assert_code(9)
        .assert_stderr_contains("access_denied")
        .assert_stderr_contains("stagepass login e2e-deny");
    assert!(sandbox.keychain_entry().is_none());
}

#[test]
fn no_secret_service_fails_before_the_sign_in_and_says_what_to_start() {
    let idp = Idp::start();
    let mut sandbox = Sandbox::new("e2e-nokeychain", &idp.issuer);
    sandbox.set_env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus");
    let run = sandbox.run(&["login", "--browser"]);
    run.assert_code(7)
        .assert_stderr_contains("Secret Service")
        .assert_stderr_contains("gnome-keyring");
    assert!(
        !run.stderr().contains("browser was opened"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_config_edit_to_another_client_does_not_reuse_the_login() {
    let idp = Idp::start();
    let sandbox = Sandbox::new("e2e-switch", &idp.issuer);
    sandbox.login_browser();
    sandbox.run(&["token"]).assert_ok();
    // Same profile name, another client: the stored refresh token must not be sent to it.
    sandbox.write_config(&format!(
        "[profiles.e2e-switch]\nissuer = \"{}\"\nclient_id = \"stagepass-other\"\n",
        idp.issuer
    ));
    sandbox
        .run(&["token", "--no-interactive"])
        .assert_code(4)
        .assert_stderr_contains("stagepass login e2e-switch");
    // Switching back finds the login untouched in the keychain.
    sandbox.write_config(&format!(
        "[profiles.e2e-switch]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\naudience = \"{}\"\nscopes = [\"openid\", \"email\", \"profile\", \"groups\", \"offline_access\"]\n",
        idp.issuer,
        support::AUDIENCE
    ));
    sandbox.run(&["token"]).assert_ok();
}

#[test]
fn help_teaches_commands_and_exit_codes() {
    let sandbox = Sandbox::with_config("e2e-help", "");
    let run = sandbox.run(&["--help"]);
    run.assert_ok();
    for needle in [
        "login",
        "token",
        "Exit codes",
        "STAGEPASS_CONFIG",
        "run `stagepass login PROFILE`",
    ] {
        assert!(
            run.stdout().contains(needle),
            "{needle} missing from --help:\n{}",
            run.stdout()
        );
    }
    sandbox.run(&["token", "--no-such-flag"]).assert_code(2);
}

/// `stagepass status | grep -q signed_in` closes the pipe before stagepass is done writing:
/// that ends it quietly and successfully, never with a panic.
#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    let config = "[profiles.one]\nissuer = \"https://a.example\"\nclient_id = \"x\"\n";
    let sandbox = Sandbox::with_config("e2e-closed-pipe", config);
    for args in [
        &["status"][..],
        &["status", "--json"],
        &[
            "config",
            "init",
            "--preset",
            "keycloak",
            "--domain",
            "sso.example.com",
            "--realm",
            "eng",
            "--client-id",
            "x",
            "--print",
        ],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = sandbox
            .command(args)
            .stdout(writer)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    }
    sandbox.run(&["agent", "stop"]);
}

#[test]
fn status_of_ten_thousand_profiles_is_answered_in_full() {
    let mut config = String::new();
    for n in 0..10_000 {
        config.push_str(&format!(
            "[profiles.e2e-many-{n:05}]\nissuer = \"https://idp{n}.example.com/realms/a-long-realm-name\"\n\
             client_id = \"stagepass-{n}\"\n"
        ));
    }
    let sandbox = Sandbox::with_config("e2e-many-00000", &config);
    let run = sandbox.run(&["status", "--json"]);
    run.assert_ok();
    let status = run.json();
    let profiles = status["profiles"].as_array().expect("a list of profiles");
    assert_eq!(profiles.len(), 10_000);
    assert_eq!(profiles[9_999]["name"], "e2e-many-09999");
    let run = sandbox.run(&["status"]);
    run.assert_ok();
    assert!(run.stdout().contains("e2e-many-09999"));
}
