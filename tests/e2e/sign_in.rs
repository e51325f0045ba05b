//! Both sign-in flows against a real OpenID provider, with the real keychain.

use crate::support;

use support::jwt_claims as stagepass_claims;

use std::process::Stdio;

use support::{AUDIENCE, Idp, Sandbox, approve_device_code, start_device_sign_in};

#[test]
fn browser_sign_in_keeps_the_login_in_the_keychain_and_logout_removes_it() {
    let idp = Idp::start();
    let sandbox = Sandbox::new("e2e-browser", &idp.issuer);

    let run = sandbox.login_browser();
    assert!(
        run.stdout()
            .contains("Signed in to e2e-browser as alice@example.com"),
        "{}",
        run.stdout()
    );

    let entry = sandbox
        .keychain_entry()
        .expect("the login is in the keychain");
    assert_eq!(entry["issuer"], idp.issuer.as_str());
    assert_eq!(entry["client_id"], support::CLIENT_ID);
    assert!(
        entry["refresh_token"]
            .as_str()
            .is_some_and(|rt| !rt.is_empty())
    );
    assert!(
        entry.get("access_token").is_none(),
        "access tokens stay in memory: {entry}"
    );

    let grant = sandbox.run(&["token", "--json"]);
    grant.assert_ok();
    let grant = grant.json();
    assert_eq!(grant["profile"], "e2e-browser");
    assert_eq!(grant["token_type"], "Bearer");
    assert!(grant["expires_at"].as_str().unwrap().ends_with('Z'));
    let token = grant["token"].as_str().unwrap();
    // A JWT access token for the configured audience (RFC 8707 resource).
    let claims = stagepass_claims(token);
    assert_eq!(claims["aud"], AUDIENCE);
    assert_eq!(claims["sub"], "alice");

    let plain = sandbox.run(&["token"]);
    plain.assert_ok();
    assert_eq!(
        plain.stdout().trim(),
        token,
        "a cached token is served as is"
    );

    let id_token = sandbox.run(&["token", "--id-token"]);
    id_token.assert_ok();
    let id_claims = stagepass_claims(id_token.stdout().trim());
    assert_eq!(id_claims["aud"], support::CLIENT_ID);
    assert_eq!(id_claims["email"], "alice@example.com");

    let claims = sandbox.run(&["claims", "--json"]);
    claims.assert_ok();
    let claims = claims.json();
    assert_eq!(claims["id_token"]["verified"], true);
    assert_eq!(
        claims["id_token"]["claims"]["groups"],
        serde_json::json!(["developers", "platform"])
    );
    assert_eq!(claims["access_token"]["verified"], false);
    assert_eq!(claims["access_token"]["claims"]["aud"], AUDIENCE);

    let status = sandbox.run(&["status", "--json"]);
    status.assert_ok();
    let status = status.json();
    assert_eq!(status["agent"]["running"], true);
    let profile = &status["profiles"][0];
    assert_eq!(profile["name"], "e2e-browser");
    assert_eq!(profile["state"], "signed_in");
    assert_eq!(profile["email"], "alice@example.com");

    let refresh_token = sandbox.stored_refresh_token();
    let logout = sandbox.run(&["logout"]);
    logout.assert_ok();
    assert!(logout.stdout().contains("revoked"), "{}", logout.stdout());
    assert!(
        sandbox.keychain_entry().is_none(),
        "logout deletes the keychain entry"
    );
    let (status_code, body) = idp.refresh_directly(&refresh_token);
    assert_eq!(
        (status_code, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "revoked at the IdP"
    );

    let after = sandbox.run(&["token", "--no-interactive"]);
    after
        .assert_code(4)
        .assert_stderr_contains("stagepass login e2e-browser");
    let status = sandbox.run(&["status", "--json"]).json();
    assert_eq!(status["profiles"][0]["state"], "signed_out");
}

#[test]
fn device_sign_in_prints_the_code_and_polls_until_approved() {
    let idp = Idp::start();
    let sandbox = Sandbox::new("e2e-device", &idp.issuer);

    let (mut login, lines, first) = start_device_sign_in(&sandbox);
    assert!(
        first["user_code"]
            .as_str()
            .is_some_and(|code| !code.is_empty())
    );
    assert!(
        first["verification_uri"]
            .as_str()
            .unwrap()
            .starts_with(&idp.issuer)
    );
    let complete = first["verification_uri_complete"]
        .as_str()
        .unwrap()
        .to_string();

    // While the sign-in waits for the user, the agent still answers everyone else at once.
    let asked = std::time::Instant::now();
    let status = sandbox.run(&["status", "--json"]);
    status.assert_ok();
    assert_eq!(status.json()["profiles"][0]["state"], "signed_out");
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(10),
        "status waited {:?} behind the sign-in",
        asked.elapsed()
    );

    let browser = approve_device_code(&complete, &[]);
    assert!(
        browser.status.success(),
        "{}",
        String::from_utf8_lossy(&browser.stderr)
    );

    let last = lines
        .map(|line| serde_json::from_str::<serde_json::Value>(&line.unwrap()).unwrap())
        .inspect(|step| assert_ne!(step["step"], "device_code"))
        .last()
        .unwrap();
    assert!(login.wait().unwrap().success());
    assert_eq!(last["step"], "signed_in");
    assert_eq!(last["email"], "alice@example.com");
    assert!(sandbox.keychain_entry().is_some());
    sandbox.run(&["token"]).assert_ok();
}

/// A user who walks away from a sign-in and runs `logout` is not kept waiting for it.
#[test]
fn logout_cancels_a_pending_sign_in() {
    let idp = Idp::start();
    let sandbox = Sandbox::new("e2e-device-logout", &idp.issuer);
    let (mut login, _lines, _first) = start_device_sign_in(&sandbox);

    let asked = std::time::Instant::now();
    sandbox.run(&["logout"]).assert_ok();
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(10),
        "logout waited {:?} for the sign-in",
        asked.elapsed()
    );
    let status = login.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut login.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(9), "{stderr}");
    assert!(
        stderr.contains("cancelled by `stagepass logout`"),
        "{stderr}"
    );
    assert!(sandbox.keychain_entry().is_none());
    let status = sandbox.run(&["status", "--json"]);
    assert_eq!(status.json()["profiles"][0]["state"], "signed_out");
}

#[test]
fn device_sign_in_without_json_tells_the_user_what_to_do() {
    let idp = Idp::start_with(&[("IDP_DEVICE_CODE_TTL", "3")]);
    let sandbox = Sandbox::new("e2e-device-text", &idp.issuer);
    // Nobody approves: the code expires, the user is told how to retry.
    let run = sandbox.run(&["login", "--device"]);
    run.assert_code(9);
    let stderr = run.stderr();
    assert!(stderr.contains("To sign in, open"), "{stderr}");
    assert!(stderr.contains("enter the code"), "{stderr}");
    assert!(stderr.contains("expired"), "{stderr}");
    assert!(
        stderr.contains("stagepass login e2e-device-text --device"),
        "{stderr}"
    );
    assert!(sandbox.keychain_entry().is_none());
}

/// Decodes a JWT payload (test-side, independent of stagepass's own decoder).
#[test]
fn parallel_commands_that_need_a_sign_in_share_one() {
    let idp = Idp::start();
    let mut sandbox = Sandbox::new("e2e-shared", &idp.issuer);
    // A browser that notes each time it is opened, then signs in like the scripted one.
    let opened = tempfile::NamedTempFile::new().unwrap();
    let wrapper = tempfile::Builder::new().suffix(".sh").tempfile().unwrap();
    std::fs::write(
        wrapper.path(),
        format!(
            "#!/bin/sh\necho opened >> '{}'\nexec '{}' \"$@\"\n",
            opened.path().display(),
            support::repo_root().join("tests/idp/browser").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(wrapper.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    sandbox.set_env("BROWSER", wrapper.path().to_str().unwrap());
    let wrapper = wrapper.into_temp_path();

    let callers: Vec<_> = (0..6)
        .map(|_| {
            sandbox
                .command(&["token"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = callers
        .into_iter()
        .map(|caller| caller.wait_with_output().unwrap())
        .collect();
    for output in &outputs {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let tokens: Vec<_> = outputs.iter().map(|output| output.stdout.clone()).collect();
    assert!(
        tokens.iter().all(|token| token == &tokens[0]),
        "one sign-in, one token"
    );
    let opens = std::fs::read_to_string(opened.path()).unwrap();
    assert_eq!(opens.lines().count(), 1, "one browser tab for six commands");
    let joined = outputs
        .iter()
        .filter(|output| String::from_utf8_lossy(&output.stderr).contains("already under way"))
        .count();
    assert_eq!(joined, 5, "the other five waited for the first sign-in");
    drop(wrapper);
}

#[test]
fn non_interactive_callers_are_told_at_once() {
    let idp = Idp::start();
    let mut sandbox = Sandbox::new("e2e-noprompt", &idp.issuer);
    sandbox.set_env("GIT_TERMINAL_PROMPT", "0");
    sandbox
        .run(&["token"])
        .assert_code(4)
        .assert_stderr_contains("run `stagepass login e2e-noprompt`");
    assert!(sandbox.keychain_entry().is_none(), "no sign-in was started");
}

/// Fails when `output` holds a character that could drive a terminal.
fn assert_terminal_safe(what: &str, output: &str) {
    let raw = output.chars().find(|&c| {
        (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}')
    });
    assert!(raw.is_none(), "{what} printed {raw:?} raw: {output:?}");
}

#[test]
fn claims_that_would_drive_the_terminal_are_printed_escaped() {
    let idp = Idp::start();
    let mut sandbox = Sandbox::new("e2e-mallory", &idp.issuer);
    sandbox.set_env("STAGEPASS_TEST_USER", "mallory");
    let login = sandbox.login_browser();
    assert_terminal_safe("login", &login.stdout());
    assert!(
        login
            .stdout()
            .contains("mallory\\u001b]0;pwned\\u0007@example.com"),
        "{}",
        login.stdout()
    );
    let status = sandbox.run(&["status"]);
    status.assert_ok();
    assert_terminal_safe("status", &status.stdout());
    assert!(status.stdout().contains("\\u001b"), "{}", status.stdout());
    let claims = sandbox.run(&["claims"]);
    claims.assert_ok();
    assert_terminal_safe("claims", &claims.stdout());
    for shown in [
        "Mallory \\u001b[2J\\u001b[31mRED\\u202e",
        "mallory\\u009b31m",
    ] {
        assert!(claims.stdout().contains(shown), "{}", claims.stdout());
    }
    // --json keeps the values themselves.
    let json = sandbox.run(&["claims", "--json"]);
    json.assert_ok();
    assert_terminal_safe("claims --json", &json.stdout());
    assert_eq!(
        json.json()["id_token"]["claims"]["preferred_username"],
        "mallory\u{9b}31m"
    );
}

#[test]
fn a_forged_error_description_on_the_callback_is_printed_escaped() {
    let idp = Idp::start();
    let mut sandbox = Sandbox::new("e2e-forged", &idp.issuer);
    // A "browser" that answers the sign-in at once with an error of its own making.
    let forger = tempfile::Builder::new().suffix(".mjs").tempfile().unwrap();
    std::fs::write(
        forger.path(),
        format!(
            "import {{ startUrl }} from '{}';\n\
             let url = await startUrl(process.argv[2]);\n\
             if (!url.searchParams.has('redirect_uri')) {{\n\
               url = new URL((await fetch(url, {{ redirect: 'manual' }})).headers.get('location'));\n\
             }}\n\
             const back = new URL(url.searchParams.get('redirect_uri'));\n\
             back.searchParams.set('error', 'access_denied');\n\
             back.searchParams.set('error_description', '\\u001b]0;pwned\\u0007\\u001b[2Jforged\\u202e');\n\
             back.searchParams.set('state', url.searchParams.get('state'));\n\
             back.searchParams.set('iss', '{}');\n\
             await fetch(back);\n",
            support::repo_root()
                .join("tests/idp/browser-kit.mjs")
                .display(),
            idp.issuer
        ),
    )
    .unwrap();
    let wrapper = tempfile::Builder::new().suffix(".sh").tempfile().unwrap();
    std::fs::write(
        wrapper.path(),
        format!(
            "#!/bin/sh\nexec node '{}' \"$@\"\n",
            forger.path().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(wrapper.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    sandbox.set_env("BROWSER", wrapper.path().to_str().unwrap());
    let wrapper = wrapper.into_temp_path();

    let login = sandbox.run(&["login", "e2e-forged", "--browser"]);
    assert_ne!(login.code(), 0);
    assert_terminal_safe("login", &login.stderr());
    assert!(
        login
            .stderr()
            .contains("\\u001b]0;pwned\\u0007\\u001b[2Jforged\\u202e"),
        "{}",
        login.stderr()
    );
    drop(wrapper);
}
