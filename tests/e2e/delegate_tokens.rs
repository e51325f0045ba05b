//! Down-scoped raw tokens for delegations: by token exchange (RFC 8693) at the real Keycloak
//! for a confidential client (`stagepass-exchange`, standard token exchange on), by a refresh
//! asking for fewer scopes (RFC 6749 §6) at the test IdP, which rotates refresh tokens, and
//! not at all where neither applies. The token comes from the remote endpoint's token path,
//! with the delegation key as `Authorization: Bearer`.

use crate::client_secret::{clear_secret, sandbox_files, set_secret};
use crate::keycloak::audiences;
use crate::support;

use std::time::Instant;

use support::jwt_claims as claims;
use support::keycloak::{self, REALM, SCOPES};
use support::proxy::{Answer, ProxySetup, curl, free_port};
use support::{Run, Sandbox};

const EXCHANGE_CLIENT: &str = "stagepass-exchange";
const EXCHANGE_SECRET: &str = "exchange-test-secret";
/// The client a delegated token is narrowed to (tests/keycloak/realm-stagepass.json).
const NARROW_AUDIENCE: &str = "backstage-api";

fn create(sandbox: &Sandbox, name: &str, args: &[&str]) -> Run {
    let mut all = vec!["delegate", "create", name, "--routes", "api"];
    all.extend_from_slice(args);
    all.push("--json");
    sandbox.run(&all)
}

/// POST /.stagepass/v1/token with the delegation key.
fn delegated_token(port: u16, key: &str) -> Answer {
    curl(
        &format!("http://127.0.0.1:{port}/.stagepass/v1/token"),
        &[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {key}"),
            "-H",
            "Content-Type: application/json",
            "--data",
            "{}",
        ],
    )
}

fn audit_of(sandbox: &Sandbox, name: &str) -> String {
    let run = sandbox.run(&["audit", "--delegation", name, "--json"]);
    run.assert_ok();
    run.stdout()
}

fn scopes_of(claims: &serde_json::Value) -> Vec<String> {
    let mut scopes: Vec<String> = claims["scope"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    scopes.sort();
    scopes
}

fn userinfo_status(issuer: &str, token: &str) -> u16 {
    curl(
        &format!("{issuer}/protocol/openid-connect/userinfo"),
        &["-H", &format!("Authorization: Bearer {token}")],
    )
    .status
}

/// A Keycloak profile of `client` (with `extra` lines) and a route `api` for delegations to
/// name; nothing is proxied, so its upstream is a closed port.
fn keycloak_config(
    kc: &keycloak::Keycloak,
    profile: &str,
    client: &str,
    extra: &str,
    port: u16,
) -> String {
    format!(
        "{}{extra}[proxy]\nport = {port}\n\
         [[route]]\nname = \"api\"\npath = \"/api\"\nupstream = \"http://127.0.0.1:9\"\nprofile = \"{profile}\"\nidentity = \"bearer\"\n",
        kc.profile(profile, REALM, client, SCOPES)
    )
}

#[test]
fn keycloak_exchanges_a_narrower_token_that_dies_with_the_delegation() {
    let Some(kc) = keycloak::keycloak() else {
        return;
    };
    let profile = "kc-exchange";
    let port = free_port();
    let config = keycloak_config(
        kc,
        profile,
        EXCHANGE_CLIENT,
        "client_auth = \"secret\"\n",
        port,
    );
    clear_secret(profile);
    let sandbox = kc.sandbox_with(profile, "heidi", &config);
    set_secret(&sandbox, EXCHANGE_SECRET).assert_ok();
    sandbox.run(&["login", profile, "--browser"]).assert_ok();
    let developer = sandbox.run(&["token", "--no-interactive"]);
    developer.assert_ok();
    let developer = claims(&developer.stdout());
    assert!(audiences(&developer).contains(&EXCHANGE_CLIENT.to_string()));
    assert!(scopes_of(&developer).contains(&"profile".to_string()));

    let created = create(
        &sandbox,
        "bot",
        &[
            "--token-scopes",
            "openid,email",
            "--token-audience",
            NARROW_AUDIENCE,
        ],
    );
    created.assert_ok();
    let created = created.json();
    assert_eq!(created["token_method"], "exchange", "{created}");
    assert_eq!(created["tokens"]["audience"], NARROW_AUDIENCE);
    let key = created["key"].as_str().unwrap().to_string();

    let answer = delegated_token(port, &key);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = answer.json();
    let token = answer["token"].as_str().unwrap().to_string();
    let narrowed = claims(&token);
    assert_eq!(audiences(&narrowed), [NARROW_AUDIENCE], "{narrowed}");
    assert_eq!(scopes_of(&narrowed), ["email", "openid"], "{narrowed}");
    assert_eq!(
        narrowed["sub"], developer["sub"],
        "the developer's identity"
    );
    assert_eq!(narrowed["azp"], EXCHANGE_CLIENT);
    // Never served longer than the developer's token lives.
    let developer_now = claims(&sandbox.run(&["token", "--no-interactive"]).stdout());
    assert!(
        answer["expires_at"].as_u64().unwrap() <= developer_now["exp"].as_u64().unwrap(),
        "{answer} outlives the developer's token"
    );
    // Keycloak accepts it for the user.
    assert_eq!(userinfo_status(&kc.issuer(REALM), &token), 200);
    // Served again from memory, and nowhere on disk.
    let again = delegated_token(port, &key).json();
    assert_eq!(again["token"], answer["token"]);
    assert!(!sandbox_files(&sandbox).contains(&token), "written to disk");
    let audit = audit_of(&sandbox, "bot");
    assert!(
        audit.contains("\"delegated_token\"") && audit.contains("minted by token exchange"),
        "{audit}"
    );
    assert!(!audit.contains(&token), "the token is in the audit");

    // The time to mint one by exchange, over HTTP from the delegation's side.
    let mut took = Vec::new();
    for round in 0..7 {
        let name = format!("bench-{round}");
        let created = create(
            &sandbox,
            &name,
            &[
                "--token-scopes",
                "openid,email",
                "--token-audience",
                NARROW_AUDIENCE,
            ],
        );
        created.assert_ok();
        let key = created.json()["key"].as_str().unwrap().to_string();
        let started = Instant::now();
        let answer = delegated_token(port, &key);
        took.push(started.elapsed());
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    took.sort();
    let mut cached = Vec::new();
    for _ in 0..7 {
        let started = Instant::now();
        assert_eq!(delegated_token(port, &key).status, 200);
        cached.push(started.elapsed());
    }
    cached.sort();
    eprintln!(
        "delegate_tokens: mint by exchange, whole request: median {:?} (min {:?}, max {:?}); \
         the same request served from memory: median {:?}",
        took[took.len() / 2],
        took[0],
        took[took.len() - 1],
        cached[cached.len() / 2],
    );

    // Revoked: the agent serves it no more, and Keycloak no longer accepts it.
    sandbox.run(&["delegate", "revoke", "bot"]).assert_ok();
    assert_eq!(delegated_token(port, &key).status, 401);
    assert_eq!(userinfo_status(&kc.issuer(REALM), &token), 401);
    // The developer's own token is untouched.
    let developer_after = sandbox.run(&["token", "--no-interactive"]);
    developer_after.assert_ok();
    assert_eq!(
        userinfo_status(&kc.issuer(REALM), developer_after.stdout().trim()),
        200
    );
    clear_secret(profile);
}

/// Keycloak's public client adds its default client scopes (`profile`, `email`) to every
/// token, whatever a refresh asks for: the narrowed token is wider than asked and is not
/// handed out, while the refresh token Keycloak rotated on the way is saved all the same.
#[test]
fn keycloak_public_client_does_not_narrow_below_its_default_scopes_so_nothing_is_handed_out() {
    let Some(kc) = keycloak::keycloak() else {
        return;
    };
    let profile = "kc-fewer";
    let port = free_port();
    let config = keycloak_config(kc, profile, keycloak::CLIENT, "", port);
    let sandbox = kc.sandbox_with(profile, "dave", &config);
    sandbox.run(&["login", profile, "--browser"]).assert_ok();
    let stored_before = sandbox.stored_refresh_token();
    let created = create(&sandbox, "openid-only", &["--token-scopes", "openid"]);
    created.assert_ok();
    let created = created.json();
    assert_eq!(created["token_method"], "fewer_scopes", "{created}");
    let refused = delegated_token(port, created["key"].as_str().unwrap());
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert!(refused.body.contains("did not narrow"), "{}", refused.body);
    // Keycloak rotated the refresh token (this realm revokes reused ones): the new one is in
    // the keychain and works.
    let stored_after = sandbox.stored_refresh_token();
    assert_ne!(stored_before, stored_after);
    let (status, body) = kc.refresh_directly(keycloak::CLIENT, &stored_after);
    assert_eq!(status, 200, "{body}");
}

/// A signed-in sandbox of the test IdP (public client, rotating refresh tokens) with a route.
fn test_idp_setup(profile: &str) -> ProxySetup {
    ProxySetup::start(profile, &[], |_, upstream| {
        format!(
            "[[route]]\nname = \"api\"\npath = \"/api\"\nupstream = \"{}\"\nprofile = \"{profile}\"\nidentity = \"bearer\"\n",
            upstream.url
        )
    })
}

#[test]
fn a_public_client_gets_a_fewer_scopes_refresh_that_keeps_the_developers_login() {
    let setup = test_idp_setup(&support::unique_profile("fewer"));
    let sandbox = &setup.sandbox;
    let developer = claims(&setup.token());
    let stored_before = sandbox.stored_refresh_token();

    let created = create(sandbox, "narrow", &["--token-scopes", "openid,email"]);
    created.assert_ok();
    let created = created.json();
    assert_eq!(created["token_method"], "fewer_scopes", "{created}");
    let key = created["key"].as_str().unwrap().to_string();

    let answer = delegated_token(setup.port, &key);
    assert_eq!(answer.status, 200, "{}", answer.body);
    let token = answer.json()["token"].as_str().unwrap().to_string();
    let narrowed = claims(&token);
    assert_eq!(scopes_of(&narrowed), ["email", "openid"], "{narrowed}");
    assert!(
        scopes_of(&developer).contains(&"profile".to_string()),
        "{developer}"
    );
    assert_eq!(narrowed["sub"], developer["sub"]);

    // The IdP rotated the refresh token on that refresh: the new one is in the keychain, and
    // the developer keeps their own, wider token and a login that still refreshes.
    let stored_after = sandbox.stored_refresh_token();
    assert_ne!(
        stored_before, stored_after,
        "the rotated token was not saved"
    );
    let own = claims(&setup.token());
    assert_eq!(
        scopes_of(&own),
        scopes_of(&developer),
        "the developer's token was narrowed"
    );
    let audit = audit_of(sandbox, "narrow");
    assert!(
        audit.contains("minted by a fewer-scopes refresh"),
        "{audit}"
    );
    assert!(!audit.contains(&token));
    // Never served beyond the delegation's own expiry, and not at all after it.
    let short = create(
        sandbox,
        "short",
        &["--token-scopes", "openid", "--ttl", "3s"],
    );
    short.assert_ok();
    let short = short.json();
    let short_key = short["key"].as_str().unwrap().to_string();
    let answer = delegated_token(setup.port, &short_key);
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Created before now, with a 3 s life.
    let ends = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3;
    assert!(
        answer.json()["expires_at"].as_u64().unwrap() <= ends,
        "{} outlives the delegation ({})",
        answer.body,
        short["expires_at"]
    );
    std::thread::sleep(std::time::Duration::from_secs(4));
    let expired = delegated_token(setup.port, &short_key);
    assert_eq!(expired.status, 401, "{}", expired.body);
    assert!(expired.body.contains("expired"), "{}", expired.body);

    // The keychain's refresh token is the live one, with the grant's whole scope.
    // (Read again: the mint of `short` rotated it once more.)
    let (status, body) = setup.idp.refresh_directly(&sandbox.stored_refresh_token());
    assert_eq!(status, 200, "{body}");
    assert!(
        body["scope"]
            .as_str()
            .unwrap_or_default()
            .contains("profile"),
        "{body}"
    );
}

#[test]
fn where_neither_applies_the_delegation_is_proxy_only_and_wider_scopes_are_refused() {
    let setup = test_idp_setup(&support::unique_profile("proxyonly"));
    let sandbox = &setup.sandbox;

    // A public client and an audience: no exchange, and a refresh cannot narrow audiences.
    let created = create(
        sandbox,
        "aud",
        &["--token-scopes", "openid", "--token-audience", "some-api"],
    );
    created.assert_ok();
    let json = created.json();
    assert_eq!(json["token_method"], "proxy_only", "{json}");
    assert!(
        json["tokens"]["why"]
            .as_str()
            .unwrap()
            .contains("confidential client"),
        "{json}"
    );
    let refused = delegated_token(setup.port, json["key"].as_str().unwrap());
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(
        refused.body.contains("proxy access only"),
        "{}",
        refused.body
    );
    let text = sandbox.run(&[
        "delegate",
        "create",
        "aud-text",
        "--routes",
        "api",
        "--token-scopes",
        "openid",
        "--token-audience",
        "some-api",
    ]);
    text.assert_ok()
        .assert_stdout_contains("Raw tokens: none, proxy access only");

    // Nor git's credential: that would be the developer's own token.
    let credential = curl(
        &format!("http://127.0.0.1:{}/.stagepass/v1/credential", setup.port),
        &[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {}", json["key"].as_str().unwrap()),
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"url": "https://git.example.com/a.git", "bearer_ok": true}"#,
        ],
    );
    assert_eq!(credential.status, 403, "{}", credential.body);
    assert!(
        credential.body.contains("no git credential"),
        "{}",
        credential.body
    );

    // No token scopes asked: proxy only, and said so.
    let plain = create(sandbox, "plain", &[]);
    plain.assert_ok();
    let plain = plain.json();
    assert_eq!(plain["token_method"], "proxy_only");
    assert!(plain["tokens"].is_null());
    let refused = delegated_token(setup.port, plain["key"].as_str().unwrap());
    assert_eq!(refused.status, 403, "{}", refused.body);

    // Wider than the developer's sign-in: refused at creation.
    let wider = create(sandbox, "wide", &["--token-scopes", "openid,admin"]);
    assert_ne!(wider.code(), 0);
    wider.assert_stderr_contains("scope `admin` is not among profile");
}

/// What `exec --agent --token-scopes` runs: its key (in a header file, never in argv) buys a
/// token at `$STAGEPASS_TOKEN_URL`, printed to stdout.
const TOKEN_CHILD: &str = r#"cd "$(mktemp -d)" || exit 3
printf 'Authorization: Bearer %s\n' "$STAGEPASS_PROXY_KEY" > header
curl -s -X POST -H @header -H 'Content-Type: application/json' --data '{}' "$STAGEPASS_TOKEN_URL""#;

#[test]
fn exec_agent_with_token_scopes_gives_the_child_a_url_where_its_key_buys_a_narrowed_token() {
    let setup = test_idp_setup(&support::unique_profile("exec-token"));
    let sandbox = &setup.sandbox;
    let developer = setup.token();
    let run = sandbox.run(&[
        "exec",
        "--agent",
        "tokens",
        "--routes",
        "api",
        "--token-scopes",
        "openid,email",
        "--",
        "sh",
        "-c",
        TOKEN_CHILD,
    ]);
    run.assert_ok();
    let answer: serde_json::Value = serde_json::from_str(run.stdout().trim())
        .unwrap_or_else(|err| panic!("{err}: {}", run.stdout()));
    let token = answer["token"].as_str().expect("a token");
    assert_ne!(token, developer.as_str());
    assert_eq!(scopes_of(&claims(token)), ["email", "openid"]);
    assert!(audit_of(sandbox, "tokens").contains("minted by a fewer-scopes refresh"));

    // Without --token-scopes there is nothing to buy, and no URL: not even one an outer
    // `exec --agent` left in this environment.
    let plain = Run(sandbox
        .command(&[
            "exec",
            "--agent",
            "plain",
            "--routes",
            "api",
            "--",
            "sh",
            "-c",
            "printf '%s' \"${STAGEPASS_TOKEN_URL-unset}\"",
        ])
        .env("STAGEPASS_TOKEN_URL", "http://127.0.0.1:1/outer")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap());
    plain.assert_ok();
    assert_eq!(plain.stdout(), "unset");
}
