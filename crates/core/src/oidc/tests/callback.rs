use super::*;

// ---------------------------------------------------------------------------------------------
// Authorization callback
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn callback_with_another_state_is_foreign() {
    let provider = FakeIdp::standard().await.provider().await;
    let (pending, _) = pending_authorization(&provider);
    let result = pending.check_callback(
        &query(&[("state", "not-the-state"), ("code", "abc")]),
        &provider,
    );
    assert!(
        matches!(result, Err(CallbackError::Foreign(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn callback_without_state_is_foreign_even_with_an_error() {
    let provider = FakeIdp::standard().await.provider().await;
    let (pending, _) = pending_authorization(&provider);
    for callback in [
        query(&[("code", "abc")]),
        query(&[("error", "access_denied")]),
        // Another local user who saw the port: a forged error must not end the sign-in.
        query(&[("state", "forged"), ("error", "access_denied")]),
        String::new(),
    ] {
        let result = pending.check_callback(&callback, &provider);
        assert!(
            matches!(result, Err(CallbackError::Foreign(_))),
            "{callback}: {result:?}"
        );
    }
}

#[tokio::test]
async fn callback_error_with_the_state_ends_the_sign_in() {
    let provider = FakeIdp::standard().await.provider().await;
    let (pending, state) = pending_authorization(&provider);
    let err = final_error(pending.check_callback(
        &query(&[
            ("state", &state),
            ("error", "access_denied"),
            ("error_description", "the user said no"),
        ]),
        &provider,
    ));
    assert!(
        matches!(&err, Error::OAuth { source, .. } if source.code == "access_denied"),
        "{err:?}"
    );
    assert!(err.to_string().contains("the user said no"), "{err}");
}

#[tokio::test]
async fn callback_from_another_issuer_is_a_mix_up() {
    let provider = FakeIdp::standard().await.provider().await;
    let (pending, state) = pending_authorization(&provider);
    let err = final_error(pending.check_callback(
        &query(&[
            ("state", &state),
            ("code", "abc"),
            ("iss", "https://evil.example"),
        ]),
        &provider,
    ));
    assert!(matches!(err, Error::Callback(_)), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("mix-up"), "{message}");
    assert!(message.contains("https://evil.example"), "{message}");
}

#[tokio::test]
async fn callback_without_iss_is_refused_when_the_idp_promises_it() {
    let idp = FakeIdp::with_discovery(|doc| {
        doc["authorization_response_iss_parameter_supported"] = json!(true);
    })
    .await;
    let provider = idp.provider().await;
    assert!(provider.capabilities().iss_parameter);
    let (pending, state) = pending_authorization(&provider);
    let err = final_error(
        pending.check_callback(&query(&[("state", &state), ("code", "abc")]), &provider),
    );
    assert!(matches!(err, Error::Callback(_)), "{err:?}");
    assert!(err.to_string().contains("RFC 9207"), "{err}");

    let code = pending
        .check_callback(
            &query(&[("state", &state), ("code", "abc"), ("iss", &idp.base)]),
            &provider,
        )
        .unwrap();
    assert_eq!(code.secret(), "abc");
}

#[tokio::test]
async fn callback_with_state_code_and_issuer_yields_the_code() {
    let idp = FakeIdp::standard().await;
    let provider = idp.provider().await;
    let (pending, state) = pending_authorization(&provider);
    for callback in [
        query(&[("state", &state), ("code", "abc"), ("iss", &idp.base)]),
        // Without RFC 9207 advertised, `iss` is optional.
        query(&[("code", "abc"), ("state", &state)]),
    ] {
        let code = pending.check_callback(&callback, &provider).unwrap();
        assert_eq!(code.secret(), "abc", "{callback}");
    }
}

#[tokio::test]
async fn callback_with_the_state_but_no_code_ends_the_sign_in() {
    let provider = FakeIdp::standard().await.provider().await;
    let (pending, state) = pending_authorization(&provider);
    for callback in [
        query(&[("state", &state)]),
        query(&[("state", &state), ("code", "")]),
    ] {
        let err = final_error(pending.check_callback(&callback, &provider));
        assert!(matches!(err, Error::Callback(_)), "{callback}: {err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Authorization probe
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn probe_reports_an_error_page_naming_the_error() {
    let idp = FakeIdp::standard().await;
    idp.route(
        "/authorize",
        Reply::html(
            400,
            "<html><h1>Error</h1><p>invalid_client: unknown client</p></html>",
        ),
    );
    let provider = idp.provider().await;
    let (pending, _) = pending_authorization(&provider);
    let err = provider
        .probe_authorization(&pending, &http_client())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::AuthorizationRefused { status: 400, code: Some(code) } if code == "invalid_client"
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("HTTP 400, invalid_client"),
        "{err}"
    );
    assert_eq!(idp.hits("/authorize"), 1);
}

#[tokio::test]
async fn probe_accepts_a_redirect_to_the_login_page() {
    let idp = FakeIdp::standard().await;
    idp.route("/authorize", Reply::redirect(303, &idp.url("/login")));
    let provider = idp.provider().await;
    let (pending, _) = pending_authorization(&provider);
    provider
        .probe_authorization(&pending, &http_client())
        .await
        .unwrap();
    assert_eq!(idp.hits("/login"), 0, "the probe follows no redirect");
}

#[tokio::test]
async fn probe_reports_an_error_sent_back_to_the_redirect_uri() {
    let idp = FakeIdp::standard().await;
    let provider = idp.provider().await;
    let (pending, state) = pending_authorization(&provider);
    let location = format!(
        "{REDIRECT_URI}?{}",
        query(&[("error", "invalid_scope"), ("state", &state)])
    );
    idp.route("/authorize", Reply::redirect(302, &location));
    let err = provider
        .probe_authorization(&pending, &http_client())
        .await
        .unwrap_err();
    assert_eq!(err.oauth_code(), Some("invalid_scope"), "{err:?}");
}

#[tokio::test]
async fn probe_ignores_a_redirect_to_the_redirect_uri_with_another_state() {
    let idp = FakeIdp::standard().await;
    let provider = idp.provider().await;
    let (pending, _) = pending_authorization(&provider);
    let location = format!(
        "{REDIRECT_URI}?{}",
        query(&[("error", "invalid_scope"), ("state", "forged")])
    );
    idp.route("/authorize", Reply::redirect(302, &location));
    provider
        .probe_authorization(&pending, &http_client())
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// HttpClient
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn plain_http_to_a_remote_host_is_refused_before_any_network() {
    let request = http::Request::get("http://example.invalid/token")
        .body(Vec::new())
        .unwrap();
    let err = http_client().execute(request).await.unwrap_err();
    assert!(
        matches!(&err, HttpError::Insecure(url) if url == "http://example.invalid/token"),
        "{err:?}"
    );
}
