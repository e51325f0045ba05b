use stagepass_proto::{AgentError, EventKind, Response, SignOutReport};

use super::{login, resolve_profile};
use crate::errors;
use crate::sessions::{Agent, SessionData};

/// Revokes the refresh token at the IdP (when it offers revocation), deletes the keychain
/// entry and forgets the tokens. A failed revocation does not keep the user signed in
/// locally; the report says what happened at the IdP.
pub(crate) async fn logout(agent: &Agent, requested: Option<&str>) -> Result<Response, AgentError> {
    let (name, profile) = resolve_profile(agent, requested)?;
    let session = agent.session(&name, &profile);
    if let Some(via) = profile.via() {
        // Nothing of its own to revoke or delete: forget the Backstage token; the IdP
        // profile keeps the sign-in.
        let _exclusive = session.exclusive.lock().await;
        *session.data() = SessionData {
            loaded: true,
            ..SessionData::default()
        };
        agent.announce(EventKind::SignedOut, &name, &session);
        return Ok(Response::SignedOut(SignOutReport {
            profile: name,
            revoked: false,
            note: Some(format!(
                "forgot the Backstage token; `{via}` stays signed in (`stagepass logout {via}` signs out of the IdP)",
                via = via.profile
            )),
        }));
    }
    // A sign-in under way holds the session until the user finishes it, which may be never.
    if login::cancel_pending(agent, &name) {
        tracing::info!(profile = %name, "logout cancels the sign-in under way");
    }
    let _exclusive = session.exclusive.lock().await;
    agent
        .load_session(&name, &session)
        .await
        .map_err(|err| errors::keychain(&err))?;
    let refresh_token = {
        let data = session.data();
        data.tokens
            .as_ref()
            .and_then(|tokens| tokens.refresh_token.clone())
            .or_else(|| {
                data.stored
                    .as_ref()
                    .map(|stored| stored.refresh_token.clone())
            })
    };
    let (revoked, note) = match refresh_token {
        None => (false, Some("there was no refresh token to revoke".to_string())),
        Some(refresh_token) => match agent.provider(&name, &profile).await {
            Err(err) => (false, Some(format!("not revoked at the IdP: {err}"))),
            Ok(provider) => match provider.revoke(&refresh_token, &agent.deps.http).await {
                Ok(true) => (true, None),
                Ok(false) => (
                    false,
                    Some("the IdP offers no revocation endpoint; the refresh token stays valid there until it expires".into()),
                ),
                Err(err) => (false, Some(format!("not revoked at the IdP: {err}"))),
            },
        },
    };
    agent
        .delete_login(&name)
        .await
        .map_err(|err| errors::keychain(&err))?;
    *session.data() = SessionData {
        loaded: true,
        ..SessionData::default()
    };
    agent.announce(EventKind::SignedOut, &name, &session);
    Ok(Response::SignedOut(SignOutReport {
        profile: name,
        revoked,
        note,
    }))
}
