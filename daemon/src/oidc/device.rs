//! The OAuth 2.0 Device Authorization Grant (RFC 8628).

use std::time::Duration;

use url::Url;

use openidconnect::Scope;
use openidconnect::core::CoreDeviceAuthorizationResponse;

use super::dpop::DpopKey;
use super::error::{Grant, device_error, token_error};
use super::{Audiences, OidcError, Provider, TokenSet};

/// What the user is shown.
pub struct DeviceChallenge {
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
    pub expires_in: Duration,
}

/// The longest a device login waits for approval, whatever the IdP says: RFC 8628 codes
/// live minutes, and a huge `expires_in` must neither keep a login pending for ever nor
/// overflow anyone's clock arithmetic.
pub const MAX_DEVICE_LIFETIME: Duration = Duration::from_secs(3600);

/// A started device login: holds the device code, which only the token endpoint may see.
pub struct DeviceLogin {
    details: CoreDeviceAuthorizationResponse,
    /// The IdP's `expires_in`, capped.
    expires_in: Duration,
}

impl Provider {
    pub async fn start_device(
        &self,
        scopes: &[String],
        audiences: &Audiences,
    ) -> Result<(DeviceChallenge, DeviceLogin), OidcError> {
        let url = self.extra.device_authorization_endpoint.clone().ok_or_else(|| {
            OidcError::NotSupported("the identity provider offers no device flow; log in with the code flow".into())
        })?;
        let client = self.client.clone().set_device_authorization_url(url);
        let mut request = client.exchange_device_code();
        // openidconnect asks for "openid" itself; naming it again sent it twice.
        for s in scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(s.clone()));
        }
        for value in &audiences.values {
            request = request.add_extra_param(audiences.param, value.clone());
        }
        let details: CoreDeviceAuthorizationResponse =
            request.request_async(&self.http).await.map_err(token_error(Grant::Device))?;
        let challenge = DeviceChallenge {
            verification_uri: browser_url("verification_uri", details.verification_uri().as_str())?,
            verification_uri_complete: details
                .verification_uri_complete()
                .map(|u| browser_url("verification_uri_complete", u.secret()))
                .transpose()?,
            user_code: printable_user_code(details.user_code().secret())?,
            expires_in: details.expires_in().min(MAX_DEVICE_LIFETIME),
        };
        let expires_in = challenge.expires_in;
        Ok((challenge, DeviceLogin { details, expires_in }))
    }

    /// Poll the token endpoint until the user approves, honouring `interval` and `slow_down`.
    pub async fn finish_device(&self, login: &DeviceLogin, dpop: Option<&DpopKey>) -> Result<TokenSet, OidcError> {
        let response = self
            .client
            .exchange_device_access_token(&login.details)
            .map_err(|e| OidcError::NotSupported(e.to_string()))?
            // Instead of the IdP's own `expires_in`, which oauth2 would use (and fail on
            // when it is too large for its clock arithmetic).
            .request_async(&self.sender(dpop), tokio::time::sleep, Some(login.expires_in))
            .await
            .map_err(device_error)?;
        self.token_set(response, None, dpop).await
    }
}

/// The longest user code we show; RFC 8628 codes are about 8 characters.
const MAX_USER_CODE: usize = 64;

/// A URL the user is told to open (and brokerctl opens): https, or http on this machine only.
/// Anything else (`file:`, `javascript:`, plain http across the network) is refused before it
/// is shown to anyone.
fn browser_url(field: &str, text: &str) -> Result<String, OidcError> {
    let refuse = |why: String| {
        OidcError::NotSupported(format!(
            "the identity provider's device flow answered with a {field} {why}; refusing to show or open it"
        ))
    };
    let url = Url::parse(text).map_err(|_| refuse("that is not a URL".into()))?;
    match url.scheme() {
        "https" => Ok(url.into()),
        "http" if super::is_loopback(&url) => Ok(url.into()),
        "http" => Err(refuse("in plain http to another machine".into())),
        other => Err(refuse(format!("with the scheme {other:?} (only https is allowed)"))),
    }
}

/// A user code fit for a terminal: no control characters (escape sequences), no
/// bidirectional overrides, and short.
fn printable_user_code(code: &str) -> Result<String, OidcError> {
    let bidi = |c: char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    let count = code.chars().count();
    if count == 0 || count > MAX_USER_CODE || code.chars().any(|c| c.is_control() || bidi(c)) {
        return Err(OidcError::NotSupported(
            "the identity provider's device flow answered with a user code that cannot be shown safely \
             (empty, too long, or with control characters); refusing it"
                .into(),
        ));
    }
    Ok(code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_shown() {
        assert_eq!(browser_url("u", "https://idp.example.com/device").unwrap(), "https://idp.example.com/device");
        assert!(browser_url("u", "http://127.0.0.1:8080/device").is_ok());
        assert!(browser_url("u", "http://localhost/device").is_ok());
        for bad in ["file:///etc/passwd", "http://idp.example.com/device", "javascript:alert(1)", "not a url", ""] {
            let err = browser_url("verification_uri", bad).unwrap_err().to_string();
            assert!(err.contains("verification_uri") && err.contains("refusing"), "{bad}: {err}");
        }
    }

    #[test]
    fn only_printable_user_codes_are_shown() {
        assert_eq!(printable_user_code("WDJB-MJHT").unwrap(), "WDJB-MJHT");
        assert!(printable_user_code("123 456").is_ok());
        for bad in ["", "AB\u{1b}[2J", "AB\nCD", "AB\u{202e}CD", &"A".repeat(65)] {
            assert!(printable_user_code(bad).is_err(), "{bad:?}");
        }
    }
}
