//! Backstage's token responses: `expires_in` is always 3600 and `id_token` is the access token
//! again (aud `backstage`, no nonce, typ `vnd.backstage.user`).

use super::*;
use crate::clock::unix_secs;
use crate::profile::ProfileKindTag;

/// A token shaped like Backstage's (unsigned: nothing here may verify it).
fn backstage_token(exp: u64) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"typ":"vnd.backstage.user","alg":"ES256","kid":"k"}"#);
    let payload = URL_SAFE_NO_PAD.encode(
        json!({"iss": "http://127.0.0.1/api/auth", "sub": "user:default/alice", "aud": "backstage", "iat": exp - 7200, "exp": exp})
            .to_string(),
    );
    format!("{header}.{payload}.c2ln")
}

async fn refreshed_as(kind: ProfileKindTag) -> Result<crate::tokens::TokenSet, Error> {
    let idp = FakeIdp::standard().await;
    // auth.backstageTokenExpiration = 2 h: the token outlives the `expires_in` answered.
    let exp = unix_secs(now()) + 7200;
    let token = backstage_token(exp);
    idp.route(
        "/token",
        Reply::json(
            200,
            json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600,
                   "id_token": token, "refresh_token": "rotated"}),
        ),
    );
    // The fake IdP serves at its root, not under a Backstage `url`: only the token handling
    // of the kind is under test.
    let mut provider = idp.provider().await;
    provider.kind = kind;
    provider
        .refresh(&old_refresh_token(), None, &http_client(), now())
        .await
}

#[tokio::test]
async fn backstage_expiry_is_the_jwt_exp_and_its_id_token_is_not_an_oidc_one() {
    let tokens = refreshed_as(ProfileKindTag::Backstage).await.unwrap();
    assert_eq!(
        tokens.expires_at_unix(),
        Some(unix_secs(now()) + 7200),
        "exp, not expires_in"
    );
    assert!(tokens.id_token.is_none() && tokens.id_claims.is_none());
    assert_eq!(tokens.refresh_token.unwrap().expose(), "rotated");
    // The same answer for an OIDC profile: that id_token fails verification.
    let err = refreshed_as(ProfileKindTag::Oidc).await.unwrap_err();
    assert!(matches!(err, Error::IdToken(_)), "{err:?}");
}
