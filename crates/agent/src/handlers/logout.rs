use stagepass_proto::{AgentError, Response, SignOutReport};

use super::login;
use crate::session::{self, resolve_profile};
use crate::sessions::Agent;

pub(crate) async fn logout(agent: &Agent, requested: Option<&str>) -> Result<Response, AgentError> {
    let (name, profile) = resolve_profile(agent, requested)?;
    let session = agent.session(&name, &profile);
    if let Some(via) = profile.via() {
        // Nothing of its own to revoke or delete: forget the Backstage token; the IdP
        // profile keeps the sign-in.
        session::forget_tokens(agent, &session).await;
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
    let session::SignedOut { revoked, note } = session::sign_out(agent, &session).await?;
    Ok(Response::SignedOut(SignOutReport {
        profile: name,
        revoked,
        note,
    }))
}
