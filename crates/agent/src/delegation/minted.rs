//! Raw tokens for local delegations, narrower than the developer's: by OAuth 2.0 Token
//! Exchange (RFC 8693) where the IdP offers it to the profile's (confidential) client, else by
//! a refresh asking for fewer scopes (RFC 6749 §6), else none (proxy access only). Which one
//! applies is decided when the delegation is created ([`decide`]) and stored with it.
//!
//! A minted token lives only here, in the agent's memory, under its delegation's name: it is
//! served until the earliest of its own expiry, the developer's token's expiry and the
//! delegation's, and dropped (and revoked at the IdP where it can, RFC 7009) when the
//! delegation is revoked.
//!
//! Why the fewer-scopes refresh is safe for the developer's login: it runs as the same
//! transaction as every refresh (the refresh worker writes a rotated refresh token to the
//! keychain before it answers), the session takes the new refresh token, and RFC 6749 §6
//! keeps that token's scope the grant's whole one. The developer's access token stays theirs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use stagepass_core::clock::unix_secs;
use stagepass_core::config::Profile;
use stagepass_core::oidc::Minted;
use stagepass_core::profile::ProfileKindTag;
use stagepass_proto::{AgentError, DelegatedTokens, ErrorKind, TokenGrant, TokenKind, TokenMethod};

use super::Accepted;
use crate::audit::{Caller, Entry, fingerprint};
use crate::errors;
use crate::session::{self, resolve_profile};
use crate::sessions::Agent;
use crate::sync::lock;

/// A minted token is served again while it stays valid this long; else a new one is minted.
const REUSE_MARGIN_SECS: u64 = 10;

/// The minted tokens, by delegation name. Never written anywhere.
#[derive(Default)]
pub(crate) struct MintedTokens(Mutex<HashMap<String, TokenGrant>>);

impl MintedTokens {
    fn get(&self, name: &str, valid_until: u64) -> Option<TokenGrant> {
        lock(&self.0)
            .get(name)
            .filter(|grant| grant.expires_at.is_some_and(|at| at >= valid_until))
            .cloned()
    }

    fn put(&self, name: &str, grant: TokenGrant) {
        lock(&self.0).insert(name.to_string(), grant);
    }

    /// Drops the token of `name`: it is served no more.
    pub(crate) fn forget(&self, name: &str) -> Option<TokenGrant> {
        lock(&self.0).remove(name)
    }
}

fn refuse(message: String, hint: Option<String>) -> AgentError {
    errors::reply(ErrorKind::RemoteKey, message, hint)
}

/// Which method narrows tokens of `profile` for a delegation asking for `scopes` and
/// `audience`; an error when the ask is wider than the developer's own sign-in.
pub(crate) async fn decide(
    agent: &Agent,
    name: &str,
    profile: &Profile,
    scopes: &[String],
    audience: Option<&str>,
) -> Result<DelegatedTokens, AgentError> {
    let bad = |message: String| errors::reply(ErrorKind::BadRequest, message, None);
    if scopes.is_empty() {
        return Err(bad(
            "name the scopes a delegated token may carry: --token-scopes S1,S2".into(),
        ));
    }
    // Narrower, never wider: RFC 6749 §6 forbids asking for scopes not granted, and an
    // exchange must not turn a delegation into more than the developer.
    if let Some(extra) = scopes
        .iter()
        .find(|scope| !profile.scopes().contains(scope))
    {
        return Err(bad(format!(
            "scope `{}` is not among profile `{name}`'s scopes ({}): a delegated token gets a subset of them",
            stagepass_core::text::one_line(extra),
            profile.scopes().join(", ")
        )));
    }
    let tokens = |method, why: &str| DelegatedTokens {
        profile: name.to_string(),
        scopes: scopes.to_vec(),
        audience: audience.map(str::to_string),
        method,
        why: why.to_string(),
    };
    if profile.tag() != ProfileKindTag::Oidc {
        return Ok(tokens(
            TokenMethod::ProxyOnly,
            "this kind of profile's tokens cannot be narrowed",
        ));
    }
    let provider = agent
        .provider(name, profile)
        .await
        .map_err(|err| errors::from_core(&err, Some(name)))?;
    if provider.offers_token_exchange() {
        return Ok(tokens(
            TokenMethod::Exchange,
            "the IdP offers token exchange (RFC 8693) to this confidential client",
        ));
    }
    let why_not = if provider.client_secret().is_none() {
        "no token exchange: it needs a confidential client (client_auth = \"secret\")"
    } else {
        "no token exchange: the IdP does not list the token-exchange grant"
    };
    if audience.is_some() {
        return Ok(tokens(
            TokenMethod::ProxyOnly,
            &format!("{why_not}, and a refresh cannot narrow the audience"),
        ));
    }
    Ok(tokens(
        TokenMethod::FewerScopes,
        &format!("{why_not}; a refresh asks for fewer scopes (RFC 6749 §6)"),
    ))
}

/// A raw token for the delegation `accepted`, narrowed as its record says.
pub(crate) async fn token(
    agent: &Agent,
    accepted: &Accepted,
    min_valid: Duration,
) -> Result<TokenGrant, AgentError> {
    let Some(tokens) = &accepted.scope.tokens else {
        return Err(refuse(
            format!(
                "delegation `{}` gets proxy access only, never a raw token",
                accepted.name
            ),
            Some(
                "create it with --token-scopes (and --token-audience) to allow narrowed tokens"
                    .into(),
            ),
        ));
    };
    if tokens.method == TokenMethod::ProxyOnly {
        return Err(refuse(
            format!(
                "delegation `{}` gets proxy access only: {}",
                accepted.name, tokens.why
            ),
            None,
        ));
    }
    let now = unix_secs(agent.now());
    let min_valid_until = now + min_valid.as_secs().max(REUSE_MARGIN_SECS);
    if let Some(grant) = agent
        .delegations
        .minted
        .get(&accepted.name, min_valid_until)
    {
        return Ok(grant);
    }
    let (name, profile) = resolve_profile(agent, Some(&tokens.profile))?;
    let session = agent.session(&name, &profile);
    // The developer's token: the subject of an exchange, and the bound of any delegated one.
    let min_valid = min_valid.max(Duration::from_secs(REUSE_MARGIN_SECS));
    let developer = session::token(agent, &session, TokenKind::Access, min_valid).await?;
    let minted = match tokens.method {
        TokenMethod::Exchange => {
            let provider = agent
                .provider(&name, &profile)
                .await
                .map_err(|err| errors::from_core(&err, Some(&name)))?;
            let subject = stagepass_core::AccessToken::new(developer.token.expose().to_string());
            provider
                .exchange(
                    &subject,
                    tokens.audience.as_deref(),
                    &tokens.scopes,
                    &agent.deps.http,
                    agent.now(),
                )
                .await
                .map_err(|err| errors::from_core(&err, Some(&name)))?
        }
        _ => {
            let (narrowed, granted) =
                session::narrowed_refresh(agent, &session, &tokens.scopes.join(" ")).await?;
            Minted::from_tokens(&narrowed, granted.as_deref())
        }
    };
    if !minted.within(&tokens.scopes) {
        return Err(errors::reply(
            ErrorKind::Idp,
            format!(
                "the IdP did not narrow the token for delegation `{}` to {}: it is not handed out",
                accepted.name,
                tokens.scopes.join(" ")
            ),
            Some("this IdP does not honour narrower scopes; use the proxy, or a confidential client with token exchange".into()),
        ));
    }
    // Never longer-lived than the developer's token or the delegation.
    let expires_at = [
        minted.expires_at.map(unix_secs),
        developer.expires_at,
        Some(accepted.expires_at),
    ]
    .into_iter()
    .flatten()
    .min();
    if expires_at.is_none_or(|at| at <= now) {
        return Err(errors::reply(
            ErrorKind::Idp,
            "the delegated token would expire at once".to_string(),
            None,
        ));
    }
    let grant = TokenGrant {
        profile: name.clone(),
        token: stagepass_proto::Secret::new(minted.access_token.expose().to_string()),
        token_type: minted.token_type,
        expires_at,
        // A refresh keeps the profile's audience; an exchange narrows it.
        audience: tokens
            .audience
            .clone()
            .or_else(|| profile.audience().map(str::to_string)),
        kind: TokenKind::Access,
    };
    record_mint(agent, accepted, &grant, tokens.method);
    agent.delegations.minted.put(&accepted.name, grant.clone());
    Ok(grant)
}

/// One audit line per token minted, with the delegation's name and the token's fingerprint.
fn record_mint(agent: &Agent, accepted: &Accepted, grant: &TokenGrant, method: TokenMethod) {
    let outcome = match method {
        TokenMethod::Exchange => "minted by token exchange",
        _ => "minted by a fewer-scopes refresh",
    };
    agent.record(&Entry {
        event: "delegated_token",
        caller: &Caller::delegation(&accepted.name, accepted.kind),
        profile: &grant.profile,
        audience: grant.audience.as_deref(),
        kind: Some("access"),
        fingerprint: Some(fingerprint(grant.token.expose())),
        outcome,
    });
}

/// Forgets the token minted for `name` and revokes it at the IdP where the IdP revokes
/// access tokens (RFC 7009; Keycloak does): a resource server that introspects then refuses
/// it, one that only checks the JWT's signature accepts it until it expires.
pub(crate) async fn revoked(agent: &Agent, name: &str) {
    let Some(grant) = agent.delegations.minted.forget(name) else {
        return;
    };
    let Ok((profile_name, profile)) = resolve_profile(agent, Some(&grant.profile)) else {
        return;
    };
    let Ok(provider) = agent.provider(&profile_name, &profile).await else {
        return;
    };
    let token = stagepass_core::AccessToken::new(grant.token.expose().to_string());
    if let Err(err) = provider.revoke_delegated(&token, &agent.deps.http).await {
        tracing::warn!(delegation = name, "the IdP did not revoke its token: {err}");
    }
}
