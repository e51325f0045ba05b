use super::*;
use crate::ClientSecret;
use crate::oidc::SecretMethod;

fn secret(value: &str) -> ClientSecret {
    ClientSecret::parse(value).unwrap()
}

async fn confidential(methods: Option<Value>) -> Result<Provider, Error> {
    let idp = FakeIdp::with_discovery(|document| {
        if let Some(methods) = methods {
            document["token_endpoint_auth_methods_supported"] = methods;
        }
    })
    .await;
    idp.provider().await.with_client_secret(secret("s3cr:t /+"))
}

#[tokio::test]
async fn the_secret_goes_as_the_discovery_document_allows_basic_first() {
    // OpenID Connect Discovery 1.0 §3: no list means client_secret_basic.
    let basic = confidential(None).await.unwrap();
    assert_eq!(basic.secret_method(), Some(SecretMethod::Basic));
    let both = confidential(Some(json!(["client_secret_post", "client_secret_basic"])))
        .await
        .unwrap();
    assert_eq!(both.secret_method(), Some(SecretMethod::Basic));
    let post = confidential(Some(json!(["none", "client_secret_post"])))
        .await
        .unwrap();
    assert_eq!(post.secret_method(), Some(SecretMethod::Post));
    let neither = confidential(Some(json!(["private_key_jwt", "none"])))
        .await
        .unwrap_err();
    assert!(
        neither
            .to_string()
            .contains("neither client_secret_basic nor client_secret_post"),
        "{neither}"
    );
    assert_eq!(
        FakeIdp::standard().await.provider().await.secret_method(),
        None
    );
}

#[tokio::test]
async fn hand_made_forms_carry_the_client_as_its_method_says() {
    let public = FakeIdp::standard().await.provider().await;
    let (body, authorization) = public.client_form(&[("token", "t")]);
    assert_eq!(body, "token=t&client_id=stagepass-test");
    assert_eq!(authorization, None);

    let post = confidential(Some(json!(["client_secret_post"])))
        .await
        .unwrap();
    let (body, authorization) = post.client_form(&[("token", "t")]);
    assert_eq!(
        body,
        "token=t&client_id=stagepass-test&client_secret=s3cr%3At+%2F%2B"
    );
    assert_eq!(authorization, None);

    // RFC 6749 §2.3.1: id and secret form-encoded, then joined with `:` and base64-encoded;
    // one authentication method per request, so no client_id in the body.
    let basic = confidential(None).await.unwrap();
    let (body, authorization) = basic.client_form(&[("token", "t")]);
    assert_eq!(body, "token=t");
    let encoded = authorization.unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(decoded, b"stagepass-test:s3cr%3At+%2F%2B");
}

#[test]
fn a_provider_never_shows_its_secret() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let provider = runtime.block_on(confidential(None)).unwrap();
    assert!(!format!("{provider:?}").contains("s3cr"));
}

/// A Google-style profile (`offline = "access_type"`) asks for a refresh token with
/// `access_type=offline`, adds `prompt=consent` only while none is held, and never sends the
/// `offline_access` scope, which Google refuses.
#[tokio::test]
async fn access_type_offline_asks_for_consent_only_without_a_refresh_token() {
    let idp = FakeIdp::with_discovery(|_| {}).await;
    let text = format!(
        "[profiles.g]\nissuer = \"{}\"\nclient_id = \"c\"\noffline = \"access_type\"\n",
        idp.profile().issuer()
    );
    let config = crate::config::Config::parse(std::path::Path::new("/t.toml"), &text).unwrap();
    let provider = Provider::discover(&config.profiles["g"], &http_client())
        .await
        .unwrap();
    let params = |holds: bool| -> Vec<(String, String)> {
        let pending = provider
            .authorization_request(&Url::parse(REDIRECT_URI).unwrap(), holds)
            .unwrap();
        pending.url.query_pairs().into_owned().collect()
    };
    let param = |pairs: &[(String, String)], name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let first = params(false);
    assert_eq!(param(&first, "access_type").as_deref(), Some("offline"));
    assert_eq!(param(&first, "prompt").as_deref(), Some("consent"));
    assert_eq!(
        param(&first, "scope").as_deref(),
        Some("openid email profile")
    );
    let again = params(true);
    assert_eq!(param(&again, "access_type").as_deref(), Some("offline"));
    assert_eq!(param(&again, "prompt"), None);

    // The standard profile sends neither.
    let standard = idp.provider().await;
    let pending = standard
        .authorization_request(&Url::parse(REDIRECT_URI).unwrap(), false)
        .unwrap();
    let pairs: Vec<(String, String)> = pending.url.query_pairs().into_owned().collect();
    assert_eq!(param(&pairs, "access_type"), None);
    assert_eq!(param(&pairs, "prompt"), None);
}
