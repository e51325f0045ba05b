//! The remote endpoint's HTTP side (`stagepass_proto::remote`): reached through the proxy's
//! listener after its Host and Origin checks; the remote key comes as
//! `Authorization: Bearer`, and tokens come from the agent's one token path.

use std::borrow::Cow;
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use stagepass_proto::remote::{
    CREDENTIAL_PATH, CredentialAnswer, CredentialRequest, MAX_BODY, RemoteCredential, TOKEN_PATH,
    TokenAnswer, TokenRequest,
};
use stagepass_proto::{AgentError, DelegationKind, ErrorKind, TokenGrant, TokenKind, Tool};

use crate::audit::{Caller, Entry, fingerprint};
use crate::credentials;
use crate::delegation::{self, Accepted, Verdict, minted};
use crate::errors;
use crate::proxy::reply::{Body, full};
use crate::session::{self, resolve_profile};
use crate::sessions::Agent;

/// A remote caller may ask for a token that outlives its start by this much at most: more
/// would force refreshes for nothing.
const MAX_MIN_VALID: u64 = 600;
/// As the local git helper asks.
const HELPER_MIN_VALID: Duration = Duration::from_secs(60);

type Failure = (StatusCode, AgentError);

pub(crate) async fn serve(agent: &Agent, request: Request<Incoming>) -> Response<Body> {
    let (status, body) = match answer(agent, request).await {
        Ok(json) => (StatusCode::OK, json),
        Err((status, err)) => (status, serde_json::to_vec(&err).unwrap_or_default()),
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

async fn answer(agent: &Agent, request: Request<Incoming>) -> Result<Vec<u8>, Failure> {
    if request.method() != Method::POST {
        return Err(fail(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::BadRequest,
            "the remote endpoint takes POST".into(),
        ));
    }
    // A JSON content type cannot come from a plain HTML form: no cross-site POST gets here
    // without a CORS preflight, which this listener never answers.
    let json = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !json {
        return Err(fail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::BadRequest,
            "send Content-Type: application/json".into(),
        ));
    }
    let accepted = authenticate(agent, request.headers())?;
    let path = request.uri().path().to_string();
    let body = Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|_| {
            fail(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorKind::BadRequest,
                format!("the request body is unreadable or larger than {MAX_BODY} bytes"),
            )
        })?
        .to_bytes();
    let parse_error = |err: serde_json::Error| {
        fail(
            StatusCode::BAD_REQUEST,
            ErrorKind::BadRequest,
            format!("the request body is not the expected JSON: {err}"),
        )
    };
    let caller = Caller::delegation(&accepted.name, accepted.kind);
    match path.as_str() {
        TOKEN_PATH => {
            let asked: TokenRequest = serde_json::from_slice(&body).map_err(parse_error)?;
            let result = token(agent, &accepted, &asked).await;
            audit(agent, &caller, asked.profile.as_deref(), result.as_ref());
            let grant = result?;
            Ok(serde_json::to_vec(&token_answer(grant)).unwrap_or_default())
        }
        CREDENTIAL_PATH => {
            let asked: CredentialRequest = serde_json::from_slice(&body).map_err(parse_error)?;
            let result = credential(agent, &accepted, &asked).await;
            let grant = result
                .as_ref()
                .map(|answer| answer.as_ref().map(|(grant, _, _)| grant));
            match grant {
                // An unmapped URL: nothing was handed out.
                Ok(None) => {}
                Ok(Some(grant)) => audit(agent, &caller, None, Ok(grant)),
                Err(err) => audit(agent, &caller, None, Err(err)),
            }
            let credential = result?.map(|(grant, username, bearer)| RemoteCredential {
                username,
                bearer,
                token: token_answer(grant),
            });
            Ok(serde_json::to_vec(&CredentialAnswer { credential }).unwrap_or_default())
        }
        _ => Err(fail(
            StatusCode::NOT_FOUND,
            ErrorKind::BadRequest,
            format!(
                "no remote endpoint {path}; this agent serves {TOKEN_PATH} and {CREDENTIAL_PATH}"
            ),
        )),
    }
}

/// The remote key from `Authorization: Bearer`; refusals are audited (with the key's name
/// when it was a real, expired one).
fn authenticate(agent: &Agent, headers: &http::HeaderMap) -> Result<Accepted, Failure> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or_default();
    let refusal = match agent.delegations.verify(presented, delegation::now(agent)) {
        Verdict::Valid(accepted) => return Ok(accepted),
        Verdict::Expired { name } => (
            Caller::remote(&name),
            format!("remote key `{name}` has expired"),
        ),
        Verdict::Unknown => (
            Caller::remote(""),
            "unknown or revoked remote key".to_string(),
        ),
    };
    let (caller, message) = refusal;
    let err = errors::reply(
        ErrorKind::RemoteKey,
        message,
        Some(
            "on the desktop: `stagepass remote grant` a new key, and set STAGEPASS_REMOTE_KEY here"
                .into(),
        ),
    );
    audit(
        agent,
        &caller,
        None,
        Err(&(StatusCode::UNAUTHORIZED, err.clone())),
    );
    Err((StatusCode::UNAUTHORIZED, err))
}

async fn token(
    agent: &Agent,
    accepted: &Accepted,
    asked: &TokenRequest,
) -> Result<TokenGrant, Failure> {
    let min_valid = Duration::from_secs(asked.min_valid_secs.min(MAX_MIN_VALID));
    if accepted.kind != DelegationKind::Remote {
        // A local delegation gets its own narrower token, never the developer's.
        if asked.kind != TokenKind::Access {
            return Err(fail(
                StatusCode::FORBIDDEN,
                ErrorKind::RemoteKey,
                "delegations get access tokens only, never an id_token".into(),
            ));
        }
        return minted::token(agent, accepted, min_valid)
            .await
            .map_err(failure);
    }
    if asked.kind != TokenKind::Access {
        return Err(fail(
            StatusCode::FORBIDDEN,
            ErrorKind::RemoteKey,
            "remote keys get access tokens only, never an id_token".into(),
        ));
    }
    let default = agent
        .config()
        .ok()
        .and_then(|config| Some(config.profile(None).ok()?.0.to_string()));
    let profile = accepted
        .scope
        .profile_for(asked.profile.as_deref(), default.as_deref())
        .map_err(|message| fail(StatusCode::FORBIDDEN, ErrorKind::RemoteKey, message))?;
    served(agent, &profile, min_valid).await.map_err(failure)
}

/// The agent's token path, for a profile already checked against the key's scope; never a
/// sign-in (the user is not on the remote side's terminal).
async fn served(
    agent: &Agent,
    profile: &str,
    min_valid: Duration,
) -> Result<TokenGrant, AgentError> {
    let (name, settings) = resolve_profile(agent, Some(profile))?;
    let session = agent.session(&name, &settings);
    session::token(agent, &session, TokenKind::Access, min_valid).await
}

/// git's credential through the agent's `[[git]]` mapping, inside the key's profiles.
async fn credential(
    agent: &Agent,
    accepted: &Accepted,
    asked: &CredentialRequest,
) -> Result<Option<(TokenGrant, String, bool)>, Failure> {
    if accepted.kind != DelegationKind::Remote {
        // git's credential would be the developer's own token.
        return Err(fail(
            StatusCode::FORBIDDEN,
            ErrorKind::RemoteKey,
            format!(
                "delegation `{}` gets no git credential: it reaches git through the proxy",
                accepted.name
            ),
        ));
    }
    let fetch = async |profile: &str, kind: TokenKind| {
        if kind != TokenKind::Access {
            return Err(errors::reply(
                ErrorKind::RemoteKey,
                "this git server is mapped to id_tokens; remote keys get access tokens only",
                None,
            ));
        }
        accepted
            .scope
            .profile_for(Some(profile), None)
            .map_err(|message| errors::reply(ErrorKind::RemoteKey, message, None))?;
        served(agent, profile, HELPER_MIN_VALID).await
    };
    let answer = credentials::mapped(agent, Tool::Git, &asked.url, asked.bearer_ok, fetch)
        .await
        .map_err(failure)?;
    Ok(answer.map(|credential| (credential.grant, credential.username, credential.bearer)))
}

fn token_answer(grant: TokenGrant) -> TokenAnswer {
    TokenAnswer {
        profile: grant.profile,
        token: grant.token,
        token_type: grant.token_type,
        expires_at: grant.expires_at,
        audience: grant.audience,
    }
}

fn audit(
    agent: &Agent,
    caller: &Caller,
    requested: Option<&str>,
    result: Result<&TokenGrant, &Failure>,
) {
    let (profile, audience, fingerprint, outcome) = match result {
        Ok(grant) => (
            grant.profile.as_str(),
            grant.audience.as_deref(),
            Some(fingerprint(grant.token.expose())),
            Cow::Borrowed("ok"),
        ),
        Err((_, err)) => {
            let key = caller.delegation.as_deref().unwrap_or_default();
            if !agent.proxy.stats.admit_refusal(key) {
                return;
            }
            let requested = requested.unwrap_or_default();
            // The name asked for is in `profile` already; once is enough of what the
            // caller chose.
            let outcome = match requested.is_empty() {
                true => Cow::Borrowed(err.message.as_str()),
                false => Cow::Owned(err.message.replace(requested, "…")),
            };
            (requested, None, None, outcome)
        }
    };
    agent.record(&Entry {
        event: "token",
        caller,
        profile,
        audience,
        kind: Some("access"),
        fingerprint,
        outcome: &outcome,
    });
}

fn fail(status: StatusCode, kind: ErrorKind, message: String) -> Failure {
    (status, errors::reply(kind, message, None))
}

/// The HTTP status of an error of the token path.
fn failure(err: AgentError) -> Failure {
    let status = match err.kind {
        ErrorKind::BadRequest | ErrorKind::ProtocolMismatch => StatusCode::BAD_REQUEST,
        ErrorKind::RemoteKey => StatusCode::FORBIDDEN,
        ErrorKind::Idp => StatusCode::BAD_GATEWAY,
        // The user must act on the desktop (sign in, unlock the keychain) or wait.
        ErrorKind::NeedsSignIn
        | ErrorKind::IdpUnreachable
        | ErrorKind::Keychain
        | ErrorKind::SignInAborted => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Config | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (status, err)
}
