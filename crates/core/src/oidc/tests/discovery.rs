use super::*;

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn discovery_against_the_fake_idp_works() {
    let idp = FakeIdp::standard().await;
    let provider = idp.provider().await;
    assert_eq!(provider.issuer(), idp.base);
    assert_eq!((idp.hits(DISCOVERY_PATH), idp.hits("/jwks")), (1, 1));
}

#[tokio::test]
async fn hanging_discovery_times_out_as_unreachable() {
    let idp = FakeIdp::start().await;
    idp.route(DISCOVERY_PATH, Reply::Hang);
    let started = Instant::now();
    let err = bounded(idp.discover()).await.unwrap_err();
    assert_timed_out(&err, started.elapsed());
    assert_eq!(
        idp.hits(DISCOVERY_PATH),
        1,
        "the request did reach the server"
    );
}

#[tokio::test]
async fn garbage_discovery_document_is_not_valid() {
    for body in ["<html><body>Welcome</body></html>", r#"{"issuer": "#, "{}"] {
        let idp = FakeIdp::start().await;
        idp.route(DISCOVERY_PATH, Reply::json(200, body));
        let err = idp.discover().await.unwrap_err();
        let reason = discovery_reason(&err);
        assert!(
            reason.contains("the discovery document is not valid"),
            "{body}: {err}"
        );
    }
}

#[tokio::test]
async fn discovery_document_served_as_html_is_refused() {
    let idp = FakeIdp::start().await;
    let document = idp.discovery_document().to_string();
    idp.route(DISCOVERY_PATH, Reply::html(200, &document));
    let err = idp.discover().await.unwrap_err();
    assert!(discovery_reason(&err).contains("Content-Type"), "{err}");
}

#[tokio::test]
async fn issuer_with_a_trailing_slash_does_not_match() {
    let idp = FakeIdp::with_discovery(|doc| {
        doc["issuer"] = json!(format!("{}/", doc["issuer"].as_str().unwrap()));
    })
    .await;
    let err = idp.discover().await.unwrap_err();
    let reason = discovery_reason(&err);
    assert!(
        reason.contains("must match the IdP's exactly, trailing slash included"),
        "{err}"
    );
    assert!(reason.contains(&format!("`{}/`", idp.base)), "{err}");
    assert_eq!(idp.hits("/jwks"), 0, "nothing is fetched from an impostor");
}

#[tokio::test]
async fn missing_discovery_document_points_at_the_issuer() {
    let idp = FakeIdp::start().await;
    let err = idp.discover().await.unwrap_err();
    let reason = discovery_reason(&err);
    assert!(reason.contains("404"), "{err}");
    assert!(reason.contains("check the profile's `issuer`"), "{err}");
}

#[tokio::test]
async fn discovery_outage_is_unreachable() {
    let idp = FakeIdp::start().await;
    idp.route(DISCOVERY_PATH, Reply::html(503, "maintenance"));
    let err = idp.discover().await.unwrap_err();
    assert!(
        matches!(unreachable_source(&err), HttpError::Unavailable(503)),
        "{err:?}"
    );
}

#[tokio::test]
async fn discovery_body_over_the_limit_is_too_large() {
    let idp = FakeIdp::start().await;
    idp.route(DISCOVERY_PATH, Reply::json(200, " ".repeat(16 * MAX_BODY)));
    let err = idp.discover().await.unwrap_err();
    assert!(
        matches!(unreachable_source(&err), HttpError::TooLarge(MAX_BODY)),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_content_length_is_refused_before_the_body_arrives() {
    let idp = FakeIdp::start().await;
    idp.route(
        DISCOVERY_PATH,
        Reply::Announced {
            length: 16 * MAX_BODY,
        },
    );
    let started = Instant::now();
    let err = bounded(idp.discover()).await.unwrap_err();
    assert!(started.elapsed() < REQUEST_TIMEOUT, "waited for the body");
    assert!(
        matches!(unreachable_source(&err), HttpError::TooLarge(MAX_BODY)),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("larger than {MAX_BODY} bytes")),
        "{err}"
    );
}

#[tokio::test]
async fn streamed_discovery_body_over_the_limit_is_too_large() {
    let idp = FakeIdp::start().await;
    idp.route(
        DISCOVERY_PATH,
        Reply::Chunked {
            total: 16 * MAX_BODY,
        },
    );
    let err = idp.discover().await.unwrap_err();
    assert!(
        matches!(unreachable_source(&err), HttpError::TooLarge(MAX_BODY)),
        "{err:?}"
    );
}

#[tokio::test]
async fn jwks_failures_name_the_jwks_uri_not_the_issuer() {
    for reply in [Reply::html(404, "not here"), Reply::json(200, "<html>")] {
        let idp = FakeIdp::standard().await;
        idp.route("/jwks", reply.clone());
        let err = idp.discover().await.unwrap_err();
        let reason = discovery_reason(&err);
        assert!(reason.contains(&idp.url("/jwks")), "{reply:?}: {err}");
        assert!(!reason.contains("`issuer`"), "{reply:?}: {err}");
        assert!(!reason.contains("discovery document"), "{reply:?}: {err}");
    }
}

#[tokio::test]
async fn hanging_jwks_is_unreachable_at_the_jwks_uri() {
    let idp = FakeIdp::standard().await;
    idp.route("/jwks", Reply::Hang);
    let started = Instant::now();
    let err = bounded(idp.discover()).await.unwrap_err();
    assert_timed_out(&err, started.elapsed());
    assert!(
        matches!(&err, Error::Unreachable { url, .. } if *url == idp.url("/jwks")),
        "{err:?}"
    );
}
