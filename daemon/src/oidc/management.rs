//! User metadata through an Auth0-style Management API:
//! `GET {api}users/{id}?fields=user_metadata&include_fields=true` and
//! `PATCH {api}users/{id}` with `{"user_metadata": …}` (merged by the API; null deletes).

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use url::Url;

use std::sync::Arc;

use super::OidcError;
use super::dpop::{DpopKey, Sender};
use super::http::Http;
use super::idp_text::printable;

/// How a Management API call failed.
#[derive(Debug)]
pub enum ApiError {
    /// Unreachable, 5xx, a malformed answer: as with any IdP request.
    Idp(OidcError),
    /// A 4xx: the API will not serve this token or this URL, which is a matter of the
    /// account's config, not of the IdP's health. `reason` is the API's own `message`, made
    /// safe to show.
    Refused { status: u16, reason: String },
}

impl From<OidcError> for ApiError {
    fn from(e: OidcError) -> Self {
        ApiError::Idp(e)
    }
}

/// The API's `message`, made safe to show: it ends up in errors shown to the user.
fn reason(json: Option<&Value>) -> String {
    printable(json.and_then(|j| j.get("message")).and_then(Value::as_str).unwrap_or("no reason given"))
}

pub struct ManagementApi {
    http: Http,
    base: Url,
    /// The session's DPoP key: its management token is bound to it like every other token.
    dpop: Option<Arc<DpopKey>>,
}

impl ManagementApi {
    pub fn new(http: Http, base: &str) -> Result<Self, OidcError> {
        let mut base = Url::parse(base).map_err(|e| OidcError::Rejected(format!("management_api {base:?}: {e}")))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(ManagementApi { http, base, dpop: None })
    }

    /// Calls that prove possession of `key` (DPoP), as the token they carry demands.
    pub fn with_dpop(self, dpop: Option<Arc<DpopKey>>) -> Self {
        ManagementApi { dpop, ..self }
    }

    fn user_url(&self, user_id: &str) -> Url {
        // Auth0 ids look like "auth0|123": encode everything but the unreserved characters.
        const ID: &percent_encoding::AsciiSet =
            &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
        let mut url = self.base.clone();
        url.set_path(&format!("{}users/{}", self.base.path(), percent_encoding::utf8_percent_encode(user_id, ID)));
        url
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    pub async fn user_metadata(&self, user_id: &str, token: &SecretString) -> Result<Map<String, Value>, ApiError> {
        let mut url = self.user_url(user_id);
        url.query_pairs_mut().append_pair("fields", "user_metadata").append_pair("include_fields", "true");
        self.call(http::Method::GET, url, token, Vec::new()).await
    }

    pub async fn update_user_metadata(
        &self,
        user_id: &str,
        token: &SecretString,
        patch: &Map<String, Value>,
    ) -> Result<Map<String, Value>, ApiError> {
        let body = serde_json::to_vec(&serde_json::json!({ "user_metadata": patch })).expect("JSON encodes");
        self.call(http::Method::PATCH, self.user_url(user_id), token, body).await
    }

    async fn call(
        &self,
        method: http::Method,
        url: Url,
        token: &SecretString,
        body: Vec<u8>,
    ) -> Result<Map<String, Value>, ApiError> {
        let request = http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .header(http::header::AUTHORIZATION, format!("Bearer {}", token.expose_secret()))
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| OidcError::Rejected(e.to_string()))?;
        // With a key, the bearer header becomes `DPoP` with a proof (and any nonce retry).
        let sender = Sender { http: &self.http, dpop: self.dpop.as_deref() };
        let response = sender.execute(request).await.map_err(OidcError::from)?;
        let status = response.status().as_u16();
        let json: Option<Value> = serde_json::from_slice(response.body()).ok();
        if status != 200 {
            return Err(ApiError::Refused { status, reason: reason(json.as_ref()) });
        }
        match json.as_ref().and_then(|j| j.get("user_metadata")) {
            Some(Value::Object(m)) => Ok(m.clone()),
            None | Some(Value::Null) => Ok(Map::new()),
            Some(_) => Err(OidcError::unavailable("the management API's user_metadata is not an object").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::idp_text::MAX_CHARS;
    use super::*;

    #[test]
    fn user_ids_are_one_encoded_segment() {
        let api =
            ManagementApi::new(Http::new(Duration::from_secs(15)).unwrap(), "https://t.eu.auth0.com/api/v2/").unwrap();
        assert_eq!(api.user_url("auth0|12/3").as_str(), "https://t.eu.auth0.com/api/v2/users/auth0%7C12%2F3");
        let api =
            ManagementApi::new(Http::new(Duration::from_secs(15)).unwrap(), "https://t.eu.auth0.com/api/v2").unwrap();
        assert_eq!(api.user_url("x").as_str(), "https://t.eu.auth0.com/api/v2/users/x");
    }

    #[test]
    fn reasons_are_printable_and_short() {
        let long = serde_json::json!({"message": format!("Insufficient\nscope{}", "x".repeat(500))});
        let r = reason(Some(&long));
        assert!(r.starts_with("Insufficientscope") && r.ends_with('…'), "{r}");
        assert_eq!(r.chars().count(), MAX_CHARS + 1);
        assert_eq!(reason(None), "no reason given");
    }
}
