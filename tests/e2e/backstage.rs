//! `kind = "backstage"` profiles against a real Backstage backend (tests/backstage: the auth
//! plugin's OAuth server with client-ID metadata documents and rotating refresh tokens, the
//! catalog), signed in through the scripted consent browser tests/backstage/browser.

use crate::support;

use support::jwt_claims as claims;

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::backstage::Backstage;
use support::{Run, Sandbox, wait_until};

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(sandbox: &Sandbox, extra: &[&str]) -> String {
    let mut args = vec!["token", sandbox.profile.as_str(), "--no-interactive"];
    args.extend_from_slice(extra);
    let run = sandbox.run(&args);
    run.assert_ok();
    run.stdout().trim().to_string()
}

#[test]
fn login_then_the_token_reaches_the_catalog_as_the_user() {
    let backstage = Backstage::start(None);
    let sandbox = backstage.sandbox("e2e-bs-login", "alice");
    sandbox.login_browser();
    assert_eq!(backstage.token_calls("authorization_code"), 1);

    let token = token(&sandbox, &[]);
    let (status, body) = backstage.get_as(&token, "/api/catalog/entities");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("service-a"), "{body}");
    // The catalog is not open to anyone: the token is what let us in.
    let (anonymous, _) = backstage.curl(&[&format!("{}/api/catalog/entities", backstage.url)]);
    assert_eq!(anonymous, 401);
    let (status, body) = backstage.get_as(&token, "/api/auth/v1/userinfo");
    assert_eq!(status, 200, "{body}");
    let userinfo: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(userinfo["claims"]["sub"], "user:default/alice");

    // The expiry is the JWT's 10 minutes, not Backstage's constant `expires_in: 3600`.
    let json = sandbox
        .run(&["token", "e2e-bs-login", "--json", "--no-interactive"])
        .json();
    let exp = claims(json["token"].as_str().unwrap())["exp"]
        .as_u64()
        .unwrap();
    let expires_at = time::OffsetDateTime::parse(
        json["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp() as u64;
    assert!(expires_at.abs_diff(exp) <= 2, "{expires_at} vs exp {exp}");
    assert!(exp <= now_unix() + 600, "a 10-minute token");
    assert_eq!(json["token_type"], "Bearer");

    // The refresh token is in the keychain, for the Backstage issuer and the CLI client.
    let entry = sandbox.keychain_entry().expect("a keychain entry");
    assert_eq!(entry["issuer"], format!("{}/api/auth", backstage.url));
    assert_eq!(
        entry["client_id"],
        format!(
            "{}/api/auth/.well-known/oauth-client/cli.json",
            backstage.url
        )
    );
    assert!(
        entry["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    // status names the user and warns about the client_id shared with backstage-cli.
    let status = sandbox.run(&["status", "--json"]).json();
    let profile = &status["profiles"][0];
    assert_eq!(profile["state"], "signed_in");
    assert_eq!(profile["subject"], "user:default/alice");
    assert!(
        profile["notes"][0]
            .as_str()
            .unwrap()
            .contains("one refresh token per user and client_id"),
        "{profile}"
    );
    let text = sandbox.run(&["status"]);
    assert!(
        text.stdout().contains("allowedClientIdPatterns"),
        "{}",
        text.stdout()
    );

    // Backstage has no OIDC id_token to give.
    sandbox
        .run(&["token", "e2e-bs-login", "--id-token", "--no-interactive"])
        .assert_code(2)
        .assert_stderr_contains("drop --id-token");

    // Every hand-out is audited.
    let audit = sandbox.run(&["audit", "--json"]);
    audit.assert_ok();
    assert!(
        audit
            .stdout()
            .lines()
            .filter(|line| line.contains("\"event\":\"token\""))
            .count()
            >= 2,
        "{}",
        audit.stdout()
    );
}

#[test]
fn the_token_served_is_never_expired() {
    // 20-second tokens (Backstage still answers expires_in 3600).
    let backstage = Backstage::start(Some(20));
    let sandbox = backstage.sandbox("e2e-bs-expiry", "alice");
    sandbox.login_browser();
    let first_refresh_token = sandbox.stored_refresh_token();
    let mut seen = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    while std::time::Instant::now() < deadline {
        let token = token(&sandbox, &["--min-valid", "0"]);
        let exp = claims(&token)["exp"].as_u64().unwrap();
        assert!(exp > now_unix(), "served a token that expired at {exp}");
        let (status, body) = backstage.get_as(&token, "/api/auth/v1/userinfo");
        assert_eq!(status, 200, "Backstage refused a served token: {body}");
        seen.insert(token);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        seen.len() >= 2,
        "45 s of 20 s tokens needs refreshes; saw {} token(s)",
        seen.len()
    );
    assert!(backstage.token_calls("refresh_token") >= 2);
    assert_ne!(
        sandbox.stored_refresh_token(),
        first_refresh_token,
        "the rotated refresh token is in the keychain"
    );
}

#[test]
fn fifty_parallel_tokens_at_refresh_time_make_one_refresh() {
    // 30-second tokens: a token is refreshed on demand once less than 15 s remain (half its
    // life), and by the agent's scheduler only after about 21 s.
    let backstage = Backstage::start(Some(30));
    let sandbox = backstage.sandbox("e2e-bs-burst", "alice");
    sandbox.login_browser();
    let old = token(&sandbox, &[]);
    let issued_at = claims(&old)["iat"].as_u64().unwrap();
    wait_until(
        "the token to pass half its life",
        Duration::from_secs(40),
        || now_unix() >= issued_at + 16,
    );
    let before = backstage.token_calls("refresh_token");
    let children: Vec<_> = (0..50)
        .map(|_| {
            sandbox
                .command(&[
                    "token",
                    "e2e-bs-burst",
                    "--no-interactive",
                    "--min-valid",
                    "30",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|child| Run(child.wait_with_output().unwrap()))
        .collect();
    let after = backstage.token_calls("refresh_token");
    for run in &runs {
        run.assert_ok();
    }
    let tokens: std::collections::BTreeSet<_> = runs.iter().map(|run| run.stdout()).collect();
    assert_eq!(tokens.len(), 1, "all 50 got the same, refreshed token");
    assert_ne!(tokens.first().unwrap().trim(), old);
    assert_eq!(after - before, 1, "exactly one refresh reached Backstage");
}

#[test]
fn logout_revokes_the_refresh_token_at_backstage() {
    let backstage = Backstage::start(None);
    let sandbox = backstage.sandbox("e2e-bs-logout", "alice");
    sandbox.login_browser();
    let refresh_token = sandbox.stored_refresh_token();
    let logout = sandbox.run(&["logout", "e2e-bs-logout"]);
    logout.assert_ok();
    assert_eq!(backstage.stats()["revoke"], 1);
    assert!(sandbox.keychain_entry().is_none());
    let (status, body) = backstage.refresh_directly(&refresh_token);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[test]
fn whoami_shows_each_users_ownership() {
    let backstage = Backstage::start(None);
    for (user, team, other) in [("alice", "team-a", "team-b"), ("bob", "team-b", "team-a")] {
        let sandbox = backstage.sandbox(&format!("e2e-bs-who-{user}"), user);
        sandbox.login_browser();
        let run = sandbox.run(&["backstage", "whoami", "--json"]);
        run.assert_ok();
        let who = run.json();
        assert_eq!(who["user_entity_ref"], format!("user:default/{user}"));
        let ownership: Vec<&str> = who["ownership_entity_refs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(
            ownership.contains(&format!("group:default/{team}").as_str()),
            "{who}"
        );
        assert!(
            !ownership.contains(&format!("group:default/{other}").as_str()),
            "{who}"
        );
        assert_eq!(who["entity"]["metadata"]["name"], user);
        assert!(who["display_name"].as_str().unwrap().contains("Example"));
        // The token stays in the agent.
        let token = token(&sandbox, &[]);
        assert!(!run.stdout().contains(&token));
        let text = sandbox.run(&["backstage", "whoami"]);
        text.assert_ok();
        assert!(text.stdout().contains(&format!("group:default/{team}")));
    }
}

#[test]
fn a_user_who_left_the_catalog_needs_a_new_sign_in() {
    let backstage = Backstage::start(Some(20));
    let sandbox = backstage.sandbox("e2e-bs-left", "carol");
    sandbox.login_browser();
    let old = token(&sandbox, &[]);

    // Carol leaves: her User entity is removed from the catalog.
    let (status, body) = backstage.curl(&[
        "-X",
        "POST",
        &format!("{}/test/leave?user=carol", backstage.url),
    ]);
    assert_eq!(status, 204, "{body}");
    let header = format!("Authorization: Bearer {}", backstage.harness_token);
    let (status, _) = backstage.curl(&[
        "-H",
        &header,
        &format!(
            "{}/api/catalog/entities/by-name/user/default/carol",
            backstage.url
        ),
    ]);
    assert_eq!(status, 404, "carol is gone from the catalog");

    // The next refresh is refused: a sign-in is needed, and the reason says why.
    let issued_at = claims(&old)["iat"].as_u64().unwrap();
    wait_until(
        "the token to pass half its life",
        Duration::from_secs(30),
        || now_unix() >= issued_at + 11,
    );
    sandbox
        .run(&[
            "token",
            "e2e-bs-left",
            "--no-interactive",
            "--min-valid",
            "20",
        ])
        .assert_code(4)
        .assert_stderr_contains("stagepass login e2e-bs-left");
    let status = sandbox.run(&["status", "--json"]).json();
    let profile = &status["profiles"][0];
    assert_eq!(profile["state"], "needs_sign_in");
    assert!(
        profile["reason"]
            .as_str()
            .unwrap()
            .contains("no longer exists in the catalog"),
        "{profile}"
    );
}
