//! GitHub's device flow when the network, not GitHub, fails a poll.

use super::*;
use crate::oidc::DeviceAuthorization;

const TOKEN_PATH: &str = "/login/oauth/access_token";

/// A GitHub profile on the fake server, as a user's config would name it.
fn github_provider(idp: &FakeIdp) -> Provider {
    let text = format!(
        "[profiles.gh]\nkind = \"github\"\nurl = \"{}\"\nclient_id = \"Iv1.stagepasstest\"\n",
        idp.base
    );
    let mut config =
        crate::config::Config::parse(std::path::Path::new("/test/stagepass.toml"), &text).unwrap();
    Provider::github(&config.profiles.remove("gh").unwrap(), &idp.base).unwrap()
}

/// GitHub's "Device flow", step 1, with a one-second interval and `expires_in` seconds.
async fn device_server(expires_in: u64) -> FakeIdp {
    let idp = FakeIdp::start().await;
    idp.route(
        "/login/device/code",
        Reply::json(
            200,
            json!({
                "device_code": "3584d83530557fdd1f46af8289938c8ef79f9dc5",
                "user_code": "WDJB-MJHT",
                "verification_uri": idp.url("/login/device"),
                "expires_in": expires_in,
                "interval": 1,
            }),
        ),
    );
    idp.route(TOKEN_PATH, Reply::Drop);
    idp.route(
        "/api/v3/user",
        Reply::json(200, json!({ "id": 1, "login": "octocat", "name": null })),
    );
    idp
}

/// A device sign-in started on [`device_server`]: the server, the provider, the client, and
/// what the user is to approve.
async fn device_sign_in(expires_in: u64) -> (FakeIdp, Provider, HttpClient, DeviceAuthorization) {
    let idp = device_server(expires_in).await;
    let provider = github_provider(&idp);
    let http = http_client();
    let authorization = provider.start_device_authorization(&http).await.unwrap();
    (idp, provider, http, authorization)
}

#[tokio::test]
async fn a_poll_the_connection_drops_is_sent_again_after_twice_the_interval() {
    let (idp, provider, http, authorization) = device_sign_in(900).await;
    let started = Instant::now();
    let approve = async {
        while idp.hits(TOKEN_PATH) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        idp.route(
            TOKEN_PATH,
            Reply::json(
                200,
                json!({ "access_token": "ghu_16C7e42F292c6912E7710c838347Ae178B4a", "token_type": "bearer", "scope": "" }),
            ),
        );
    };
    let (tokens, ()) = tokio::join!(
        provider.finish_device_authorization(&authorization, &http, SystemTime::now),
        approve
    );
    let tokens = tokens.expect("the sign-in survives a dropped poll");
    assert_eq!(
        tokens.access_token.expose(),
        "ghu_16C7e42F292c6912E7710c838347Ae178B4a"
    );
    assert_eq!(idp.hits(TOKEN_PATH), 2);
    // RFC 8628 §3.5: after a failed connection the client polls less often; one interval for
    // the first poll, then twice that before the second.
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn polls_that_never_get_through_end_when_the_code_expires() {
    let (_idp, provider, http, authorization) = device_sign_in(2).await;
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        provider.finish_device_authorization(&authorization, &http, SystemTime::now),
    )
    .await
    .expect("the poll loop ends");
    assert!(
        matches!(outcome, Err(Error::DeviceCodeExpired)),
        "{outcome:?}"
    );
}
