//! The OAuth 2.0 Device Authorization Grant (RFC 8628).

use std::time::Duration;

use openidconnect::Scope;
use openidconnect::core::CoreDeviceAuthorizationResponse;

use super::error::{Grant, device_error, token_error};
use super::{Audiences, OidcError, Provider, TokenSet};

/// What the user is shown.
pub struct DeviceChallenge {
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub user_code: String,
    pub expires_in: Duration,
}

/// A started device login: holds the device code, which only the token endpoint may see.
pub struct DeviceLogin {
    details: CoreDeviceAuthorizationResponse,
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
        for s in scopes {
            request = request.add_scope(Scope::new(s.clone()));
        }
        for value in &audiences.values {
            request = request.add_extra_param(audiences.param, value.clone());
        }
        let details: CoreDeviceAuthorizationResponse =
            request.request_async(&self.http).await.map_err(token_error(Grant::Device))?;
        let challenge = DeviceChallenge {
            verification_uri: details.verification_uri().to_string(),
            verification_uri_complete: details.verification_uri_complete().map(|u| u.secret().to_string()),
            user_code: details.user_code().secret().to_string(),
            expires_in: details.expires_in(),
        };
        Ok((challenge, DeviceLogin { details }))
    }

    /// Poll the token endpoint until the user approves, honouring `interval` and `slow_down`.
    pub async fn finish_device(&self, login: &DeviceLogin) -> Result<TokenSet, OidcError> {
        let response = self
            .client
            .exchange_device_access_token(&login.details)
            .map_err(|e| OidcError::NotSupported(e.to_string()))?
            .request_async(&self.http, tokio::time::sleep, None)
            .await
            .map_err(device_error)?;
        self.token_set(response, None).await
    }
}
