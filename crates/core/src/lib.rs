//! The headless heart of stagepass: config and profiles, OIDC discovery and sign-in flows,
//! token sets, and the keychain store. No IPC, no GUI: the agent and the tray build on this.

pub mod backstage;
pub mod clock;
pub mod config;
pub mod credential_map;
pub mod doctor;
pub mod endpoint;
mod error;
pub mod git_credential;
pub mod hex;
pub mod html;
pub mod http;
pub mod jwt;
pub mod oidc;
pub mod paths;
pub mod platform;
pub mod presets;
pub mod profile;
pub mod proxy_config;
pub mod refresh;
pub mod store;
pub mod store_chunks;
#[cfg(any(test, feature = "testing"))]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test support (the fake IdP), built only for tests: a panic there is a failed test"
)]
pub mod testing;
pub mod text;
pub mod tokens;
pub mod tool_files;
pub mod url_policy;

pub use error::{Error, OAuthError};
pub use stagepass_proto::{AccessToken, ClientSecret, IdToken, RefreshToken, RemoteKey, Secret};

pub type Result<T, E = Error> = std::result::Result<T, E>;
