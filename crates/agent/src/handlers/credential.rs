//! git and docker credentials over the local socket (see `crate::credentials`).

use std::time::Duration;

use stagepass_core::Secret;
use stagepass_proto::{AgentError, Response, TokenKind, Tool};

use super::login::SignInRequest;
use super::token;
use crate::conn::Connection;
use crate::credentials;
use crate::sessions::Agent;

/// A git push or a docker pull can take a while after the helper answers; the token should
/// outlive the start of it.
const HELPER_MIN_VALID: Duration = Duration::from_secs(60);

pub(crate) async fn credential(
    agent: &Agent,
    conn: &mut Connection,
    tool: Tool,
    url: &str,
    bearer_ok: bool,
    sign_in: Option<SignInRequest>,
) -> Result<Response, AgentError> {
    let fetch = async |profile: &str, kind: TokenKind| {
        token::get_token(agent, conn, Some(profile), kind, HELPER_MIN_VALID, sign_in).await
    };
    credentials::mapped(agent, tool, url, bearer_ok, fetch)
        .await
        .map(Response::Credential)
}

/// Marks `token` bad when it is the one the agent holds for the server's profile.
pub(crate) fn reject(
    agent: &Agent,
    tool: Tool,
    url: &str,
    token: &Secret<String>,
) -> Result<Response, AgentError> {
    let (profile, marked) = credentials::reject(agent, tool, url, token)?;
    Ok(Response::Rejected { profile, marked })
}
