//! OpenID Connect: discovery, the two interactive sign-in flows, refresh and revocation.
//!
//! `openidconnect`'s typestate client is kept behind [`Provider`], one concrete type built
//! from the discovery document; the rest of stagepass never sees its generics.

mod authorization;
mod device;
mod errors;
mod exchange;
mod github;
mod probe;
mod provider;
mod token_response;

#[cfg(test)]
mod tests;

pub use authorization::{CallbackError, PendingAuthorization};
pub use device::DeviceAuthorization;
pub use exchange::{ACCESS_TOKEN_TYPE, Minted, TOKEN_EXCHANGE_GRANT, granted_scopes};
pub use github::github_revoke_page;
pub use openidconnect::AuthorizationCode;
pub use probe::TokenEndpointProbe;
pub use provider::{Capabilities, Provider, SecretMethod};

/// The path of the loopback redirect URI (RFC 8252 §7.3). Clients are registered with
/// `http://127.0.0.1/callback`; the IdP must accept any port on it.
pub const LOOPBACK_CALLBACK_PATH: &str = "/callback";
