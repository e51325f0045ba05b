//! What a session looks like from outside: the status the CLI, the tray and the events show.

use stagepass_core::config::{Profile, ViaProfile};
use stagepass_proto::{ProfileStatus, SessionState};

use super::{Session, resolve_profile};
use crate::sessions::Agent;

/// What a profile's session looks like right now.
pub(crate) fn profile_status(
    agent: &Agent,
    session: &Session,
    load_error: Option<String>,
) -> ProfileStatus {
    let upstream = via_state(agent, session);
    let data = session.data();
    let claims = data
        .tokens
        .as_ref()
        .and_then(|tokens| tokens.id_claims.clone())
        .or_else(|| {
            let id_token = data.stored.as_ref()?.id_token.as_ref()?;
            stagepass_core::jwt::unverified_claims(id_token.expose())
        })
        .or_else(|| data.stored.as_ref()?.identity.clone())
        .or_else(|| {
            // Backstage issues no OIDC id_token: its user token names the user itself
            // (`sub` = user entity ref). For display only.
            session.profile.backstage_url()?;
            let tokens = data.tokens.as_ref()?;
            stagepass_core::jwt::unverified_claims(tokens.access_token.expose())
        });
    let claim = |key: &str| {
        claims
            .as_ref()
            .and_then(|claims| claims.get(key)?.as_str().map(String::from))
    };
    let (signed_in, needs_sign_in) = match (upstream, &data.tokens) {
        (Some(upstream), None) => upstream,
        _ => (
            data.tokens.is_some() || data.stored.is_some(),
            data.needs_sign_in.clone(),
        ),
    };
    let (state, reason) = match (&needs_sign_in, signed_in, load_error) {
        (_, _, Some(err)) => (SessionState::SignedOut, Some(err)),
        (Some(reason), _, None) => (SessionState::NeedsSignIn, Some(reason.clone())),
        (None, true, None) => (SessionState::SignedIn, None),
        (None, false, None) => (SessionState::SignedOut, None),
    };
    let now = agent.now();
    ProfileStatus {
        name: session.name().to_string(),
        issuer: session.profile.issuer().into_owned(),
        state,
        subject: claim("sub"),
        email: claim("email"),
        access_token_expires_at: data
            .tokens
            .as_ref()
            .filter(|tokens| tokens.access_valid_for(now, std::time::Duration::ZERO))
            .and_then(|tokens| tokens.expires_at_unix()),
        reason,
        notes: profile_notes(&session.profile),
        user: session
            .profile
            .github_url()
            .and(claims.as_ref())
            .and_then(github_user),
        never_expires: data
            .tokens
            .as_ref()
            .is_some_and(|tokens| tokens.expires_at.is_none() && tokens.refresh_token.is_none()),
    }
}

/// `login (name, id N)` from GitHub's `/user` claims, one line, escaped: GitHub lets users
/// put anything in their name.
fn github_user(claims: &serde_json::Value) -> Option<String> {
    let login = claims.get("login")?.as_str()?;
    let id = claims.get("id").and_then(serde_json::Value::as_u64);
    let shown = match (claims.get("name").and_then(|name| name.as_str()), id) {
        (Some(name), Some(id)) => format!("{login} ({name}, id {id})"),
        (None, Some(id)) => format!("{login} (id {id})"),
        (Some(name), None) => format!("{login} ({name})"),
        (None, None) => login.to_string(),
    };
    Some(stagepass_core::text::one_line(&shown).into_owned())
}

/// For a Backstage profile behind a proxy: whether its IdP profile is signed in, and why it
/// needs a sign-in. Read before the profile's own data is locked, never while.
fn via_state(agent: &Agent, session: &Session) -> Option<(bool, Option<String>)> {
    let via = session.profile.via()?;
    let (via, profile) = resolve_profile(agent, Some(&via.profile)).ok()?;
    let upstream = agent.sessions.get(&via, &profile);
    let data = upstream.data();
    Some((
        data.tokens.is_some() || data.stored.is_some(),
        data.needs_sign_in
            .as_ref()
            .map(|reason| format!("`{via}`: {reason}")),
    ))
}

fn profile_notes(profile: &Profile) -> Vec<String> {
    let mut notes = Vec::new();
    if profile.uses_backstage_cli_client() {
        notes.push(stagepass_core::config::BACKSTAGE_SHARED_CLIENT_NOTE.to_string());
    }
    if let Some(ViaProfile {
        profile: via,
        auth_provider: provider,
    }) = profile.via()
    {
        notes.push(format!(
            "signs in through `{via}`: Backstage's `{provider}` provider behind an \
             identity-aware proxy gives the Backstage token for `{via}`'s access token"
        ));
    }
    notes
}
