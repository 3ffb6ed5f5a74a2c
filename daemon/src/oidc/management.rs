//! User metadata through an Auth0-style Management API:
//! `GET {api}users/{id}?fields=user_metadata&include_fields=true` and
//! `PATCH {api}users/{id}` with `{"user_metadata": …}` (merged by the API; null deletes).

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use url::Url;

use super::OidcError;
use super::http::Http;

pub struct ManagementApi {
    http: Http,
    base: Url,
}

impl ManagementApi {
    pub fn new(http: Http, base: &str) -> Result<Self, OidcError> {
        let mut base = Url::parse(base).map_err(|e| OidcError::Rejected(format!("management_api {base:?}: {e}")))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        Ok(ManagementApi { http, base })
    }

    fn user_url(&self, user_id: &str) -> Url {
        // Auth0 ids look like "auth0|123": encode everything but the unreserved characters.
        const ID: &percent_encoding::AsciiSet =
            &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
        let mut url = self.base.clone();
        url.set_path(&format!("{}users/{}", self.base.path(), percent_encoding::utf8_percent_encode(user_id, ID)));
        url
    }

    pub async fn user_metadata(&self, user_id: &str, token: &SecretString) -> Result<Map<String, Value>, OidcError> {
        let mut url = self.user_url(user_id);
        url.query_pairs_mut().append_pair("fields", "user_metadata").append_pair("include_fields", "true");
        self.call(http::Method::GET, url, token, Vec::new()).await
    }

    pub async fn update_user_metadata(
        &self,
        user_id: &str,
        token: &SecretString,
        patch: &Map<String, Value>,
    ) -> Result<Map<String, Value>, OidcError> {
        let body = serde_json::to_vec(&serde_json::json!({ "user_metadata": patch })).expect("JSON encodes");
        self.call(http::Method::PATCH, self.user_url(user_id), token, body).await
    }

    async fn call(
        &self,
        method: http::Method,
        url: Url,
        token: &SecretString,
        body: Vec<u8>,
    ) -> Result<Map<String, Value>, OidcError> {
        let request = http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .header(http::header::AUTHORIZATION, format!("Bearer {}", token.expose_secret()))
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| OidcError::Rejected(e.to_string()))?;
        let response = self.http.execute(request).await?;
        let status = response.status().as_u16();
        let json: Option<Value> = serde_json::from_slice(response.body()).ok();
        if status != 200 {
            let why = json.as_ref().and_then(|j| j.get("message")).and_then(Value::as_str).unwrap_or("no reason given");
            return Err(OidcError::Rejected(format!("the management API answered HTTP {status}: {why}")));
        }
        match json.as_ref().and_then(|j| j.get("user_metadata")) {
            Some(Value::Object(m)) => Ok(m.clone()),
            None | Some(Value::Null) => Ok(Map::new()),
            Some(_) => Err(OidcError::unavailable("the management API's user_metadata is not an object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
}
