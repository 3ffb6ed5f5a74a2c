//! The OIDC userinfo endpoint.
//!
//! Fetched as plain JSON rather than through openidconnect's typed `UserInfoClaims`, which
//! drops claims it does not know; callers get every claim the IdP sends.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::dpop::DpopKey;
use super::{OidcError, Provider};

impl Provider {
    /// The claims for the access token's user. `subject` is the ID token's `sub`; a different
    /// one means the answer is about someone else and is refused (OIDC Core §5.3.2).
    pub async fn userinfo(
        &self,
        access_token: &SecretString,
        subject: Option<&str>,
        dpop: Option<&DpopKey>,
    ) -> Result<Map<String, Value>, OidcError> {
        let url = self
            .userinfo_url
            .as_deref()
            .ok_or_else(|| OidcError::NotSupported("the identity provider has no userinfo endpoint".into()))?;
        let request = http::Request::get(url)
            .header(http::header::AUTHORIZATION, format!("Bearer {}", access_token.expose_secret()))
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| OidcError::Rejected(e.to_string()))?;
        // With a key, the sender makes the bearer header a DPoP one and adds the proof.
        let response = self.sender(dpop).execute(request).await?;
        match response.status().as_u16() {
            200 => {}
            // Only the token endpoint can say a session is over; this token alone was refused.
            401 => return Err(OidcError::TokenRefused("userinfo answered HTTP 401".into())),
            status => {
                return Err(OidcError::Rejected(format!("userinfo answered HTTP {status}")));
            }
        }
        let claims: Map<String, Value> = serde_json::from_slice(response.body())
            .map_err(|_| OidcError::unavailable("userinfo answered with something other than a JSON object"))?;
        let sub = claims.get("sub").and_then(Value::as_str);
        match (sub, subject) {
            (None, _) => Err(OidcError::unavailable("userinfo answer has no sub")),
            (Some(got), Some(want)) if got != want => {
                Err(OidcError::Rejected("userinfo answered for another subject".into()))
            }
            _ => Ok(claims),
        }
    }
}
