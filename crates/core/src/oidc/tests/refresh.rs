use super::*;

// ---------------------------------------------------------------------------------------------
// Refresh
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn hanging_token_endpoint_times_out_without_killing_the_login() {
    let idp = FakeIdp::standard().await;
    idp.route("/token", Reply::Hang);
    let provider = idp.provider().await;
    let started = Instant::now();
    let err = bounded(provider.refresh(&old_refresh_token(), None, &http_client(), now()))
        .await
        .unwrap_err();
    assert_timed_out(&err, started.elapsed());
    assert!(err.to_string().contains(&idp.url("/token")), "{err}");
    assert!(!err.login_is_dead());
}

#[tokio::test]
async fn token_endpoint_outage_is_unreachable_not_a_dead_login() {
    for status in [500, 503, 429] {
        let idp = FakeIdp::standard().await;
        idp.route(
            "/token",
            Reply::json(status, json!({ "error": "invalid_grant" })),
        );
        let err = refresh(&idp).await.unwrap_err();
        assert!(
            matches!(unreachable_source(&err), HttpError::Unavailable(code) if *code == status),
            "{status}: {err:?}"
        );
        assert!(!err.login_is_dead(), "{status}: an outage signs nobody out");
    }
}

#[tokio::test]
async fn streamed_token_response_over_the_limit_is_too_large() {
    let idp = FakeIdp::standard().await;
    idp.route(
        "/token",
        Reply::Chunked {
            total: 16 * MAX_BODY,
        },
    );
    let err = refresh(&idp).await.unwrap_err();
    assert!(
        matches!(unreachable_source(&err), HttpError::TooLarge(MAX_BODY)),
        "{err:?}"
    );
    assert!(!err.login_is_dead());
}

#[tokio::test]
async fn garbage_token_response_is_a_bad_response_not_a_dead_login() {
    for body in ["<html>Oops</html>", r#"{"access_token": "#, r#"{"foo": 1}"#] {
        let idp = FakeIdp::standard().await;
        idp.route("/token", Reply::json(200, body));
        let err = refresh(&idp).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::BadResponse {
                    during: "refresh",
                    ..
                }
            ),
            "{body}: {err:?}"
        );
        assert!(!err.login_is_dead(), "{body}");
    }
}

#[tokio::test]
async fn invalid_grant_kills_the_login_and_shows_the_description() {
    let idp = FakeIdp::standard().await;
    idp.route(
        "/token",
        Reply::json(
            400,
            json!({ "error": "invalid_grant", "error_description": "grant revoked" }),
        ),
    );
    let err = refresh(&idp).await.unwrap_err();
    assert!(
        matches!(&err, Error::OAuth { during: "refresh", source } if source.code == "invalid_grant"),
        "{err:?}"
    );
    assert_eq!(err.oauth_code(), Some("invalid_grant"));
    assert!(err.login_is_dead());
    assert!(
        err.to_string().contains("invalid_grant (grant revoked)"),
        "{err}"
    );
}

#[tokio::test]
async fn other_oauth_errors_do_not_kill_the_login() {
    let idp = FakeIdp::standard().await;
    idp.route(
        "/token",
        Reply::json(400, json!({ "error": "invalid_request" })),
    );
    let err = refresh(&idp).await.unwrap_err();
    assert_eq!(err.oauth_code(), Some("invalid_request"), "{err:?}");
    assert!(!err.login_is_dead());
}

#[tokio::test]
async fn refresh_without_rotation_keeps_the_old_tokens_and_honours_the_jwt_exp() {
    let idp = FakeIdp::standard().await;
    let exp = 1_700_000_060;
    let access_token = jwt(json!({ "sub": "alice", "exp": exp }));
    idp.route(
        "/token",
        Reply::json(
            200,
            json!({ "access_token": access_token, "token_type": "bearer", "expires_in": 3600 }),
        ),
    );
    let provider = idp.provider().await;
    let id_token = IdToken::new(jwt(json!({ "sub": "alice" })));
    let id_claims = json!({ "sub": "alice" });
    let tokens = provider
        .refresh(
            &old_refresh_token(),
            Some((&id_token, &id_claims)),
            &http_client(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose(), &access_token);
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_at, Some(from_unix_secs(exp)));
    assert_eq!(
        tokens.refresh_token.as_ref().map(RefreshToken::expose),
        Some(old_refresh_token().expose())
    );
    assert_eq!(
        tokens.id_token.as_ref().map(IdToken::expose),
        Some(id_token.expose())
    );
    assert_eq!(tokens.id_claims, Some(id_claims));
}

#[tokio::test]
async fn rotated_refresh_token_replaces_the_old_one() {
    let idp = FakeIdp::standard().await;
    idp.route(
        "/token",
        Reply::json(
            200,
            json!({
                "access_token": "opaque",
                "token_type": "Bearer",
                "expires_in": 60,
                "refresh_token": "new-refresh-token",
            }),
        ),
    );
    let tokens = refresh(&idp).await.unwrap();
    assert_eq!(
        tokens.refresh_token.as_ref().map(RefreshToken::expose),
        Some("new-refresh-token")
    );
    assert_eq!(tokens.expires_at, Some(now() + Duration::from_secs(60)));
}

#[tokio::test]
async fn redirect_from_the_token_endpoint_is_not_followed() {
    let idp = FakeIdp::standard().await;
    // Were the redirect followed, this would be a successful refresh.
    idp.route(
        "/elsewhere",
        Reply::json(
            200,
            json!({ "access_token": "stolen", "token_type": "Bearer" }),
        ),
    );
    idp.route("/token", Reply::redirect(302, &idp.url("/elsewhere")));
    let err = refresh(&idp).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadResponse {
                during: "refresh",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.login_is_dead());
    assert_eq!(idp.hits("/token"), 1);
    assert_eq!(idp.hits("/elsewhere"), 0, "the redirect was followed");
}

/// `refresh_token_expires_in` (Google, for refresh tokens of limited life) is read into the
/// token set; an answer without it states nothing.
#[tokio::test]
async fn a_stated_refresh_token_lifetime_is_kept_with_the_tokens() {
    let idp = FakeIdp::standard().await;
    idp.route(
        "/token",
        Reply::json(
            200,
            json!({ "access_token": "ya29.a", "token_type": "Bearer", "expires_in": 3599,
                    "refresh_token": "1//new", "refresh_token_expires_in": 604_799 }),
        ),
    );
    let provider = idp.provider().await;
    let tokens = provider
        .refresh(&old_refresh_token(), None, &http_client(), now())
        .await
        .unwrap();
    let start = crate::clock::unix_secs(now());
    assert_eq!(
        tokens.refresh_lifetime,
        Some(crate::tokens::RefreshLifetime {
            issued_at: start,
            expires_at: start + 604_799,
        })
    );
    assert!(refresh(&idp).await.unwrap().refresh_lifetime.is_some());
    idp.route(
        "/token",
        Reply::json(
            200,
            json!({ "access_token": "ya29.b", "token_type": "Bearer", "expires_in": 3599 }),
        ),
    );
    assert_eq!(refresh(&idp).await.unwrap().refresh_lifetime, None);
}
