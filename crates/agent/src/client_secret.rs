//! Confidential clients (`client_auth = "secret"`): the secret is kept in the keychain beside
//! the login and joins the provider when the provider is built, so every exchange, refresh
//! and revocation carries it.

use stagepass_core::config::Profile;
use stagepass_core::oidc::Provider;
use stagepass_core::profile::ClientAuth;
use stagepass_core::store::KeychainError;
use stagepass_core::{ClientSecret, Error};
use stagepass_proto::{AgentError, ClientSecretReport, ErrorKind, Response};

use crate::errors;
use crate::session::resolve_profile;
use crate::sessions::Agent;

/// `provider` as the profile's client: with its secret from the keychain when it is a
/// confidential one.
pub(crate) async fn attach(
    agent: &Agent,
    name: &str,
    profile: &Profile,
    provider: Provider,
) -> stagepass_core::Result<Provider> {
    if profile.client_auth() == ClientAuth::None {
        return Ok(provider);
    }
    let logins = agent.deps.logins.clone();
    let account = name.to_string();
    let secret = tokio::task::spawn_blocking(move || logins.load_client_secret(&account))
        .await
        .unwrap_or_else(|err| Err(KeychainError::Other(format!("keychain task failed: {err}"))))?
        .ok_or_else(|| Error::MissingClientSecret {
            profile: name.to_string(),
        })?;
    provider.with_client_secret(secret)
}

/// Stores (or, with `None`, deletes) the client secret of `requested`. The provider is
/// discovered again on its next use, so the new secret is the one sent.
pub(crate) async fn set(
    agent: &Agent,
    requested: &str,
    secret: Option<ClientSecret>,
) -> Result<Response, AgentError> {
    let (name, profile) = resolve_profile(agent, Some(requested))?;
    if profile.backstage_url().is_some() {
        return Err(errors::reply(
            ErrorKind::BadRequest,
            format!(
                "profile `{name}` is a Backstage profile: Backstage's auth server has public \
                 clients only, so there is no client secret to keep"
            ),
            None,
        ));
    }
    let logins = agent.deps.logins.clone();
    let account = name.clone();
    let changed = tokio::task::spawn_blocking(move || match secret {
        Some(secret) => logins.save_client_secret(&account, &secret).map(|()| true),
        None => logins.delete_client_secret(&account),
    })
    .await
    .unwrap_or_else(|err| Err(KeychainError::Other(format!("keychain task failed: {err}"))))
    .map_err(|err| errors::keychain(&err))?;
    agent.forget_provider(&name).await;
    Ok(Response::ClientSecret(ClientSecretReport {
        profile: name,
        changed,
        in_use: profile.client_auth() == ClientAuth::Secret,
    }))
}
