//! OpenID Connect: discovery, the two interactive sign-in flows, refresh and revocation.
//!
//! `openidconnect`'s typestate client is kept behind [`Provider`], one concrete type built
//! from the discovery document; the rest of stagepass never sees its generics.

mod authorization;
mod device;
mod errors;
mod provider;
mod token_response;

#[cfg(test)]
mod tests;

pub use authorization::{CallbackError, PendingAuthorization};
pub use device::DeviceAuthorization;
pub use openidconnect::AuthorizationCode;
pub use provider::{Capabilities, Provider};
