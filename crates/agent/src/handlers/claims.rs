use stagepass_core::clock::unix_secs;
use stagepass_core::jwt;
use stagepass_proto::{AgentError, ClaimSet, ClaimsReport, RefreshTokenState, Response};

use crate::errors;
use crate::session::{self, SessionData, resolve_profile};
use crate::sessions::Agent;

/// The claims of the profile's id_token and access token, saying which were verified.
pub(crate) async fn claims(agent: &Agent, requested: Option<&str>) -> Result<Response, AgentError> {
    let (name, profile) = resolve_profile(agent, requested)?;
    let session = agent.session(&name, &profile);
    session::load_unless_busy(agent, &session)
        .await
        .map_err(|err| errors::keychain(&err))?;
    let github = profile.github_url().is_some();
    session.read(|data| report(name, data, github))
}

/// For GitHub, `GET /user` as read at sign-in; it has no id_token.
fn github_user(data: &SessionData) -> Option<ClaimSet> {
    let claims = data
        .tokens()
        .and_then(|tokens| tokens.id_claims.clone())
        .or_else(|| data.stored()?.identity.clone())?;
    Some(ClaimSet {
        verified: false,
        note: "GitHub's GET /user, read by the agent with the access token at sign-in".into(),
        verified_at: None,
        claims,
    })
}

fn report(name: String, data: &SessionData, github: bool) -> Result<Response, AgentError> {
    let user = github.then(|| github_user(data)).flatten();
    let id_token = match (data.tokens(), data.stored()) {
        _ if github => None,
        (Some(tokens), _) if tokens.id_claims.is_some() => Some(ClaimSet {
            verified: true,
            note: "signature, iss, aud, exp and nonce checked by the agent on receipt".into(),
            verified_at: Some(unix_secs(tokens.received_at)),
            claims: tokens.id_claims.clone().unwrap_or_default(),
        }),
        (_, Some(stored)) => stored.id_token.as_ref().and_then(|token| {
            Some(ClaimSet {
                verified: false,
                note: "restored from the keychain; verified again at the next refresh".into(),
                verified_at: None,
                claims: jwt::unverified_claims(token.expose())?,
            })
        }),
        _ => None,
    };
    let access_token = data.tokens().and_then(|tokens| {
        Some(ClaimSet {
            verified: false,
            note: "decoded only: the resource server verifies access tokens".into(),
            verified_at: None,
            claims: jwt::unverified_claims(tokens.access_token.expose())?,
        })
    });
    if id_token.is_none() && access_token.is_none() && user.is_none() {
        return Err(errors::not_signed_in(&name));
    }
    let refresh_token = data
        .tokens()
        .and_then(|tokens| tokens.refresh_token.as_ref())
        .or(data
            .stored()
            .and_then(|stored| stored.refresh_token.as_ref()));
    // Only the lifetime leaves the agent, for `stagepass doctor`; never the token. A JWT
    // refresh token says it itself; for an opaque one, what the IdP stated on receipt.
    let refresh_token = match refresh_token {
        None => RefreshTokenState::None,
        Some(token) => {
            let claims = jwt::unverified_claims(token.expose());
            let claim = |name: &str| claims.as_ref()?.get(name)?.as_u64();
            let stated = data.refresh_lifetime();
            RefreshTokenState::Held {
                issued_at: claim("iat").or(stated.map(|life| life.issued_at)),
                expires_at: claim("exp").or(stated.map(|life| life.expires_at)),
            }
        }
    };
    Ok(Response::Claims(ClaimsReport {
        profile: name,
        id_token,
        access_token,
        user,
        refresh_token,
    }))
}
