use std::time::Duration;

use openidconnect::core::CoreErrorResponseType;
use openidconnect::{DeviceCodeErrorResponseType, RequestTokenError, StandardErrorResponse};

use super::http::HttpError;
use super::idp_text::printable;

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
    /// A scope (`invalid_scope`) the client may not have or the grant does not cover.
    #[error("the identity provider refused the scope: {0}")]
    InvalidScope(String),
    /// An audience or resource (`invalid_target`, RFC 8707) the grant does not cover.
    #[error("the identity provider refused the audience: {0}")]
    InvalidTarget(String),
    /// `unauthorized_client`: this client may not use this grant at this IdP.
    #[error("the identity provider does not let this client use the {grant} grant: {message}")]
    UnauthorizedClient { grant: Grant, message: String },
    /// `invalid_client`: the IdP does not accept the client's credentials (its secret or key).
    #[error("the identity provider refused the client's credentials: {0}")]
    InvalidClient(String),
    /// `use_dpop_nonce` (RFC 9449 §8) that was not answered by resending: a request whose
    /// client assertion is single-use, which its caller signs anew (the nonce is remembered).
    #[error("the identity provider asks for a DPoP nonce: {0}")]
    UseDpopNonce(String),
    /// Any other refusal: a configuration problem.
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

/// Which grant a token request used: what to change differs for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Device,
    Code,
    Refresh,
    ClientCredentials,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Grant::Device => "device code",
            Grant::Code => "authorization code",
            Grant::Refresh => "refresh token",
            Grant::ClientCredentials => "client credentials",
        })
    }
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
            // Both are the IdP's words (an unknown `error` code included): shown, never trusted.
            let text = match r.error_description() {
                Some(d) => format!("{}: {}", printable(&r.error().to_string()), printable(d)),
                None => printable(&r.error().to_string()),
            };
            refusal(r.error(), text)
        }
        RequestTokenError::Request(http) => http.into(),
        RequestTokenError::Parse(e, _body) => OidcError::unavailable(format!("malformed answer at {}", e.path())),
        RequestTokenError::Other(m) => OidcError::unavailable(m),
    }
}

/// The refusals of a token or device-authorization request, for `grant`.
pub(super) fn token_error(
    grant: Grant,
) -> impl FnOnce(RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>) -> OidcError {
    move |e| request_error(e, |kind, text| refusal(grant, kind.as_ref(), text))
}

/// A refusal by its RFC 6749 error code; also for the code flow's redirect, which carries one.
pub(super) fn refusal(grant: Grant, error: &str, text: String) -> OidcError {
    match error {
        "invalid_grant" => OidcError::InvalidGrant(text),
        "access_denied" => OidcError::AccessDenied,
        "invalid_scope" => OidcError::InvalidScope(text),
        "invalid_target" => OidcError::InvalidTarget(text),
        "unauthorized_client" => OidcError::UnauthorizedClient { grant, message: text },
        "invalid_client" => OidcError::InvalidClient(text),
        "use_dpop_nonce" => OidcError::UseDpopNonce(text),
        _ => OidcError::Rejected(text),
    }
}

pub(super) fn device_error(
    e: RequestTokenError<HttpError, StandardErrorResponse<DeviceCodeErrorResponseType>>,
) -> OidcError {
    request_error(e, |kind, text| match kind {
        DeviceCodeErrorResponseType::AccessDenied => OidcError::AccessDenied,
        DeviceCodeErrorResponseType::ExpiredToken => OidcError::Expired,
        DeviceCodeErrorResponseType::Basic(basic) => refusal(Grant::Device, basic.as_ref(), text),
        _ => OidcError::Rejected(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_sorted_by_their_error_code() {
        let text = || "why".to_owned();
        assert!(matches!(refusal(Grant::Refresh, "invalid_grant", text()), OidcError::InvalidGrant(_)));
        assert!(matches!(refusal(Grant::Device, "invalid_scope", text()), OidcError::InvalidScope(_)));
        assert!(matches!(refusal(Grant::Refresh, "invalid_target", text()), OidcError::InvalidTarget(_)));
        assert!(matches!(
            refusal(Grant::Code, "unauthorized_client", text()),
            OidcError::UnauthorizedClient { grant: Grant::Code, .. }
        ));
        assert!(matches!(refusal(Grant::Code, "invalid_client", text()), OidcError::InvalidClient(_)));
        assert!(matches!(refusal(Grant::Code, "invalid_request", text()), OidcError::Rejected(_)));
    }

    #[test]
    fn a_device_request_refused_for_this_client_says_which_grant() {
        let body = br#"{"error":"unauthorized_client","error_description":"device_code is not allowed"}"#;
        let response: StandardErrorResponse<DeviceCodeErrorResponseType> = serde_json::from_slice(body).unwrap();
        let e = device_error(RequestTokenError::ServerResponse(response));
        assert!(matches!(e, OidcError::UnauthorizedClient { grant: Grant::Device, .. }), "{e:?}");
    }

    #[test]
    fn the_idps_error_text_is_printable_and_short() {
        let body = serde_json::json!({
            "error": "invalid_grant",
            "error_description": format!("revoked\nINFO forged\u{1b}[2J{}", "x".repeat(10_000)),
        });
        let response: StandardErrorResponse<CoreErrorResponseType> = serde_json::from_value(body).unwrap();
        let e = token_error(Grant::Refresh)(RequestTokenError::ServerResponse(response)).to_string();
        assert!(e.contains("invalid_grant: revokedINFO forged[2Jxxx"), "{e}");
        assert!(!e.chars().any(char::is_control), "{e:?}");
        assert!(e.len() < 400, "{} bytes", e.len());
    }
}
