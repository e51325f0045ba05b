//! Edge cases of discovery, refresh and the authorization code flow that a real IdP does not
//! produce on demand: hangs, outages, garbage, oversized bodies, redirects, hostile callbacks.
//!
//! [`FakeIdp`] is a real TCP listener on loopback that answers canned HTTP/1.1 responses per
//! path, so the whole stack (reqwest, [`HttpClient`]'s limits, `oauth2`/`openidconnect`
//! parsing, and the error mapping of this crate) runs as in production.

use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use url::Url;

use super::{CallbackError, PendingAuthorization, Provider};
use crate::clock::from_unix_secs;
use crate::http::{HttpClient, HttpError, HttpLimits};
use crate::{Error, IdToken, RefreshToken};

const REQUEST_TIMEOUT: Duration = Duration::from_millis(300);
const MAX_BODY: usize = 4096;
/// Comfortably above [`REQUEST_TIMEOUT`], well under a second.
const GIVE_UP_WITHIN: Duration = Duration::from_millis(800);

const REDIRECT_URI: &str = "http://127.0.0.1:1/callback";

mod backstage;
mod callback;
mod client_secret;
mod discovery;
mod github;
mod refresh;

use crate::testing::{DISCOVERY_PATH, FakeIdp, Reply};

/// Discovery of the fake IdP with this module's short limits.
trait Discover {
    async fn discover(&self) -> Result<Provider, Error>;
    async fn provider(&self) -> Provider;
}

impl Discover for FakeIdp {
    async fn discover(&self) -> Result<Provider, Error> {
        Provider::discover(&self.profile(), &http_client()).await
    }

    async fn provider(&self) -> Provider {
        self.discover().await.expect("discovery of the fake IdP")
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn http_client() -> HttpClient {
    HttpClient::new(HttpLimits {
        connect_timeout: REQUEST_TIMEOUT,
        request_timeout: REQUEST_TIMEOUT,
        max_body: MAX_BODY,
    })
    .unwrap()
}

fn now() -> SystemTime {
    from_unix_secs(1_700_000_000)
}

fn old_refresh_token() -> RefreshToken {
    RefreshToken::new("old-refresh-token".into())
}

async fn refresh(idp: &FakeIdp) -> Result<crate::tokens::TokenSet, Error> {
    let provider = idp.provider().await;
    provider
        .refresh(&old_refresh_token(), None, &http_client(), now())
        .await
}

/// An unsigned compact JWT with `claims` as its payload.
fn jwt(claims: Value) -> String {
    format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// The transport error inside an [`Error::Unreachable`].
#[track_caller]
fn unreachable_source(err: &Error) -> &HttpError {
    match err {
        Error::Unreachable { source, .. } => source,
        other => panic!("expected Error::Unreachable, got {other:?}"),
    }
}

/// The reason of an [`Error::Discovery`].
#[track_caller]
fn discovery_reason(err: &Error) -> &str {
    match err {
        Error::Discovery { reason, .. } => reason,
        other => panic!("expected Error::Discovery, got {other:?}"),
    }
}

/// Runs `future`, failing the test instead of hanging it when no timeout fires.
async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(2), future)
        .await
        .expect("still waiting after 2 s: no timeout fired")
}

#[track_caller]
fn assert_timed_out(err: &Error, elapsed: Duration) {
    assert!(
        matches!(unreachable_source(err), HttpError::Timeout(limit) if *limit == REQUEST_TIMEOUT),
        "{err:?}"
    );
    assert!(err.to_string().contains("no answer within"), "{err}");
    assert!(
        elapsed >= REQUEST_TIMEOUT && elapsed < GIVE_UP_WITHIN,
        "gave up after {elapsed:?}"
    );
}

fn pending_authorization(provider: &Provider) -> (PendingAuthorization, String) {
    let pending = provider
        .authorization_request(&Url::parse(REDIRECT_URI).unwrap(), false)
        .unwrap();
    let state = pending
        .url
        .query_pairs()
        .find(|(name, _)| name == "state")
        .map(|(_, value)| value.into_owned())
        .expect("a state in the authorization URL");
    (pending, state)
}

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The error that ends the sign-in, for a callback that must be final.
#[track_caller]
fn final_error(result: Result<super::AuthorizationCode, CallbackError>) -> Error {
    match result {
        Err(CallbackError::Final(err)) => err,
        other => panic!("expected CallbackError::Final, got {other:?}"),
    }
}
