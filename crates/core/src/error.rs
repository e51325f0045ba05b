use std::path::PathBuf;

use crate::http::HttpError;
use crate::store::KeychainError;

/// Everything that can go wrong below the agent. Each variant carries enough context for the
/// agent to tell the user what to do next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },

    #[error("no profile named `{name}` in {}; known profiles: {known}", path.display())]
    UnknownProfile {
        name: String,
        path: PathBuf,
        known: String,
    },

    #[error("{} defines several profiles ({known}); name one", path.display())]
    AmbiguousProfile { path: PathBuf, known: String },

    #[error("cannot reach the IdP at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: HttpError,
    },

    #[error("OpenID discovery for {issuer} failed: {reason}")]
    Discovery { issuer: String, reason: String },

    /// The IdP answered with an OAuth error (RFC 6749 §5.2).
    #[error("the IdP refused the {during}: {source}")]
    OAuth {
        during: &'static str,
        #[source]
        source: OAuthError,
    },

    #[error("the IdP sent a response stagepass cannot use during the {during}: {reason}")]
    BadResponse {
        during: &'static str,
        reason: String,
    },

    /// The authorization endpoint showed an error page instead of a sign-in page: the IdP
    /// does not know the client or refuses its redirect URI.
    #[error("the IdP refused the authorization request (HTTP {status}{})", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    AuthorizationRefused { status: u16, code: Option<String> },

    #[error("the id_token failed verification: {0}")]
    IdToken(String),

    #[error("the sign-in callback was rejected: {0}")]
    Callback(String),

    #[error("the device code expired before the sign-in was completed")]
    DeviceCodeExpired,

    #[error(
        "profile `{profile}` is a confidential client (client_auth = \"secret\") and the keychain \
         holds no client secret for it"
    )]
    MissingClientSecret { profile: String },

    #[error("{0}")]
    Keychain(#[from] KeychainError),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// An OAuth error response: `error`, plus `error_description` when the IdP sent one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct OAuthError {
    pub code: String,
    pub description: Option<String>,
}

impl Error {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The OAuth error code when the IdP refused a request.
    pub fn oauth_code(&self) -> Option<&str> {
        match self {
            Error::OAuth { source, .. } => Some(&source.code),
            _ => None,
        }
    }

    /// Whether the stored login is dead: only a definitive answer of the IdP counts, never a
    /// network failure, so an outage can't sign anyone out.
    pub fn login_is_dead(&self) -> bool {
        // GitHub answers a used or expired refresh token with `bad_refresh_token`:
        // <https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens>
        matches!(
            self.oauth_code(),
            Some("invalid_grant" | "bad_refresh_token")
        )
    }
}
