use std::time::Duration;

use openidconnect::core::CoreErrorResponseType;
use openidconnect::{DeviceCodeErrorResponseType, RequestTokenError, StandardErrorResponse};

use super::http::HttpError;

/// How a conversation with the IdP failed, sorted by what the broker must do about it.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The grant (refresh token, device code) was refused: the user must log in again.
    #[error("the identity provider refused the session ({0})")]
    InvalidGrant(String),
    #[error("the user denied the login")]
    AccessDenied,
    #[error("the login code expired before it was approved")]
    Expired,
    /// Unreachable, 5xx, 429, timeouts, malformed answers: worth retrying later.
    #[error("the identity provider is unavailable: {message}")]
    Unavailable { message: String, retry_after: Option<Duration> },
    /// A scope or audience (`invalid_scope`, `invalid_target`) the grant does not cover.
    #[error("the identity provider refused the scope or audience: {0}")]
    InvalidScope(String),
    /// Any other refusal (invalid_client, unauthorized_client, …): a configuration problem.
    #[error("the identity provider refused the request: {0}")]
    Rejected(String),
    #[error("the ID token failed verification: {0}")]
    InvalidIdToken(String),
    /// A resource server (userinfo) refused the access token (HTTP 401). Not a dead session:
    /// the token may have been revoked or bound to another audience; a refresh may cure it.
    #[error("the access token was refused: {0}")]
    TokenRefused(String),
    #[error("{0}")]
    NotSupported(String),
}

impl OidcError {
    pub fn unavailable(message: impl Into<String>) -> Self {
        OidcError::Unavailable { message: message.into(), retry_after: None }
    }
}

impl From<HttpError> for OidcError {
    fn from(e: HttpError) -> Self {
        let retry_after = match &e {
            HttpError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        };
        OidcError::Unavailable { message: e.to_string(), retry_after }
    }
}

/// An oauth2 error response, described without its body: a malformed 200 may hold tokens.
fn request_error<T>(
    e: RequestTokenError<HttpError, StandardErrorResponse<T>>,
    refusal: impl FnOnce(&T, String) -> OidcError,
) -> OidcError
where
    T: openidconnect::ErrorResponseType + std::fmt::Display,
{
    match e {
        RequestTokenError::ServerResponse(r) => {
            let text = match r.error_description() {
                Some(d) => format!("{}: {d}", r.error()),
                None => r.error().to_string(),
            };
            refusal(r.error(), text)
        }
        RequestTokenError::Request(http) => http.into(),
        RequestTokenError::Parse(e, _body) => OidcError::unavailable(format!("malformed answer at {}", e.path())),
        RequestTokenError::Other(m) => OidcError::unavailable(m),
    }
}

pub(super) fn token_error(e: RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>) -> OidcError {
    request_error(e, |kind, text| match kind {
        CoreErrorResponseType::InvalidGrant => OidcError::InvalidGrant(text),
        CoreErrorResponseType::InvalidScope => OidcError::InvalidScope(text),
        CoreErrorResponseType::Extension(e) if e == "invalid_target" => OidcError::InvalidScope(text),
        _ => OidcError::Rejected(text),
    })
}

pub(super) fn device_error(
    e: RequestTokenError<HttpError, StandardErrorResponse<DeviceCodeErrorResponseType>>,
) -> OidcError {
    request_error(e, |kind, text| match kind {
        DeviceCodeErrorResponseType::AccessDenied => OidcError::AccessDenied,
        DeviceCodeErrorResponseType::ExpiredToken => OidcError::Expired,
        DeviceCodeErrorResponseType::Basic(openidconnect::core::CoreErrorResponseType::InvalidGrant) => {
            OidcError::InvalidGrant(text)
        }
        _ => OidcError::Rejected(text),
    })
}
