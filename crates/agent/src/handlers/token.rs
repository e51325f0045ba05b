use std::sync::Arc;
use std::time::Duration;

use stagepass_proto::{AgentError, ErrorKind, Response, TokenGrant, TokenKind};

use super::login::{self, SignInRequest};
use crate::conn::Connection;
use crate::errors;
use crate::session::{self, resolve_profile};
use crate::sessions::Agent;

/// Serves a token from memory when it is valid for `min_valid`, otherwise refreshes first.
/// When the profile needs a sign-in and the caller can take part in one (`sign_in`), it
/// starts one or joins the one under way, then serves the fresh token.
pub(crate) async fn get_token(
    agent: &Agent,
    conn: &mut Connection,
    requested: Option<&str>,
    kind: TokenKind,
    min_valid: Duration,
    sign_in: Option<SignInRequest>,
) -> Result<TokenGrant, AgentError> {
    // In a block: what only the lookup needs is gone before the await below, rather than
    // carried in every connection's task.
    let (name, session) = {
        let (name, profile) = resolve_profile(agent, requested)?;
        if kind == TokenKind::Id && profile.backstage_url().is_some() {
            return Err(errors::reply(
                ErrorKind::BadRequest,
                format!(
                    "profile `{name}` is a Backstage profile: Backstage issues no OpenID Connect id_token"
                ),
                Some(
                    "its access token is the Backstage user token: drop --id-token (kube-credential: \
                     --access-token)"
                        .into(),
                ),
            ));
        }
        let session = agent.session(&name, &profile);
        (name, session)
    };
    // The hot path, with no await: a token in memory.
    if let Some(grant) = session::cached_token(agent, &session, kind, min_valid) {
        return Ok(grant);
    }
    // Boxed: a refresh's and a sign-in's state that every connection's task would otherwise
    // carry, and copy when it is spawned, for a cached hand-out (see `dispatch`).
    Box::pin(refreshed_or_signed_in(
        agent, conn, name, session, kind, min_valid, sign_in,
    ))
    .await
}

/// [`get_token`] for a profile whose token in memory is not valid for `min_valid`.
async fn refreshed_or_signed_in(
    agent: &Agent,
    conn: &mut Connection,
    name: String,
    session: Arc<session::Session>,
    kind: TokenKind,
    min_valid: Duration,
    sign_in: Option<SignInRequest>,
) -> Result<TokenGrant, AgentError> {
    match (
        session::token(agent, &session, kind, min_valid).await,
        sign_in,
    ) {
        (Err(err), Some(request)) if err.kind == ErrorKind::NeedsSignIn => {
            let signing_in = session::sign_in_profile(agent, &name);
            // Boxed: a sign-in's state (listeners, discovery, the IdP's answers) is ~13 KB
            // that every token request's future would otherwise carry (see `dispatch`).
            Box::pin(login::sign_in(agent, conn, &signing_in, request)).await?;
            if session.profile.via().is_some() {
                return session::token(agent, &session, kind, min_valid).await;
            }
            session::cached_token(agent, &session, kind, Duration::ZERO).ok_or(err)
        }
        (result, _) => result,
    }
}

/// [`get_token`], answered on the wire.
pub(crate) async fn answer(
    agent: &Agent,
    conn: &mut Connection,
    requested: Option<&str>,
    kind: TokenKind,
    min_valid: Duration,
    sign_in: Option<SignInRequest>,
) -> Result<Response, AgentError> {
    get_token(agent, conn, requested, kind, min_valid, sign_in)
        .await
        .map(Response::Token)
}
