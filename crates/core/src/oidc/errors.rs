use oauth2::{ErrorResponse, RequestTokenError};

use crate::http::HttpError;
use crate::{Error, OAuthError};

/// Maps a failed token-endpoint style call to the one error type of this crate.
///
/// `during` names the step ("refresh", "code exchange") for the user.
pub(crate) fn request_error<T>(
    during: &'static str,
    url: &str,
    err: RequestTokenError<HttpError, T>,
) -> Error
where
    T: ErrorResponse + Into<OAuthError> + 'static,
{
    match err {
        RequestTokenError::ServerResponse(response) => Error::OAuth {
            during,
            source: response.into(),
        },
        RequestTokenError::Request(source) => Error::Unreachable {
            url: url.to_string(),
            source,
        },
        RequestTokenError::Parse(err, body) => Error::BadResponse {
            during,
            reason: format!("{} bytes that are not a valid response: {err}", body.len()),
        },
        RequestTokenError::Other(reason) => Error::BadResponse { during, reason },
    }
}

impl<T> From<oauth2::StandardErrorResponse<T>> for OAuthError
where
    T: oauth2::ErrorResponseType + AsRef<str>,
{
    fn from(response: oauth2::StandardErrorResponse<T>) -> Self {
        OAuthError {
            code: response.error().as_ref().to_string(),
            description: response.error_description().cloned(),
        }
    }
}
