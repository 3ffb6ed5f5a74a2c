//! What an account's config adds to the client that discovery built: a client secret for
//! IdPs that issue one even to installed apps, and extra authorization-request parameters.

use std::collections::BTreeMap;

use openidconnect::{AuthType, ClientSecret};
use secrecy::{ExposeSecret, SecretString};

use super::Provider;

impl Provider {
    /// Authenticate at the token and revocation endpoints with this secret, by HTTP Basic
    /// authentication, the method every server that issues secrets must accept (RFC 6749
    /// §2.3.1).
    pub fn with_client_secret(mut self, secret: Option<&str>) -> Self {
        if let Some(secret) = secret {
            self.client =
                self.client.set_client_secret(ClientSecret::new(secret.to_owned())).set_auth_type(AuthType::BasicAuth);
            self.client_secret = Some(SecretString::from(secret));
        }
        self
    }

    pub fn with_auth_params(mut self, params: &BTreeMap<String, String>) -> Self {
        self.auth_params = params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        self
    }

    /// The `Authorization` header value for our own requests to the IdP (revocation), when
    /// the client has a secret: both parts form-encoded first, as RFC 6749 §2.3.1 says.
    pub(super) fn basic_auth(&self) -> Option<String> {
        use base64::Engine;
        let secret = self.client_secret.as_ref()?;
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = zeroize::Zeroizing::new(format!("{}:{}", encode(&self.client_id), encode(secret.expose_secret())));
        Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair.as_bytes())))
    }
}
