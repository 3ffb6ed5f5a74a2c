//! Token revocation (RFC 7009).
//!
//! Written out rather than through oauth2's `revoke_token`, which refuses any non-https
//! endpoint, loopback included; the config already allows plain http only on loopback.

use secrecy::{ExposeSecret, SecretString};

use super::{OidcError, Provider};

impl Provider {
    /// Revoke a refresh token. `Ok(false)` when the IdP has no revocation endpoint.
    pub async fn revoke(&self, refresh_token: &SecretString) -> Result<bool, OidcError> {
        let Some(url) = &self.extra.revocation_endpoint else {
            return Ok(false);
        };
        let form = [
            ("token", refresh_token.expose_secret()),
            ("token_type_hint", "refresh_token"),
            ("client_id", self.client_id.as_str()),
        ];
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut request = http::Request::post(url.as_str());
        if let Some(basic) = self.basic_auth() {
            request = request.header(http::header::AUTHORIZATION, basic);
        }
        let request = request
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(http::header::ACCEPT, "application/json")
            .body(body.into_bytes())
            .map_err(|e| OidcError::Rejected(e.to_string()))?;
        let response = self.http.execute(request).await?;
        // RFC 7009 §2.2: 200 whether or not the token was valid.
        match response.status().as_u16() {
            200 => Ok(true),
            status => Err(OidcError::Rejected(format!("revocation answered HTTP {status}"))),
        }
    }
}
