//! OAuth 2.0 Authorization Server Metadata (RFC 8414): where some IdPs list the device and
//! revocation endpoints that their OIDC discovery document leaves out.

use openidconnect::{DeviceAuthorizationUrl, RevocationUrl};
use serde::Deserialize;
use url::Url;

use super::discovery::insecure;
use super::http::{Http, HttpError};

const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

/// The part of the document we use.
#[derive(Debug, Deserialize)]
pub(super) struct ServerMetadata {
    pub issuer: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
    #[serde(default)]
    pub revocation_endpoint: Option<RevocationUrl>,
}

/// Where the metadata of `issuer` lives. RFC 8414 §3.1 puts the well-known part between the
/// host and the issuer's path (`https://h/t1` → `https://h/.well-known/oauth-authorization-server/t1`);
/// some servers (Keycloak, Okta) serve it appended to the path instead, as OIDC discovery
/// does: that place is the second candidate, for issuers with a path.
pub(super) fn metadata_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let mut inserted = issuer.clone();
    inserted.set_path(&format!("{WELL_KNOWN}{path}"));
    inserted.set_query(None);
    inserted.set_fragment(None);
    let mut urls = vec![inserted];
    if !path.is_empty() {
        let mut appended = urls[0].clone();
        appended.set_path(&format!("{path}{WELL_KNOWN}"));
        urls.push(appended);
    }
    urls
}

/// The issuer's RFC 8414 metadata; `Ok(None)` when it publishes none (404 at every place).
/// A document whose `issuer` is not exactly ours must not be used (RFC 8414 §3.3).
pub(super) async fn fetch(http: &Http, issuer: &str) -> Result<Option<ServerMetadata>, String> {
    let parsed = Url::parse(issuer).map_err(|e| format!("issuer {issuer:?}: {e}"))?;
    for url in metadata_urls(&parsed) {
        let request = http::Request::get(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| e.to_string())?;
        let response = http.execute(request).await.map_err(|e: HttpError| format!("{url}: {e}"))?;
        match response.status().as_u16() {
            200 => {}
            404 => continue,
            status => return Err(format!("{url} answered HTTP {status}")),
        }
        let document: ServerMetadata = serde_json::from_slice(response.body())
            .map_err(|e| format!("{url} is not RFC 8414 metadata ({})", shape(&e)))?;
        return accept(document, issuer).map(Some).map_err(|why| format!("{url}: {why}"));
    }
    Ok(None)
}

/// RFC 8414 §3.3: a document for another issuer must not be used. Its endpoints are held to
/// the discovery document's rule: credentials only over https (plain http on loopback).
fn accept(document: ServerMetadata, issuer: &str) -> Result<ServerMetadata, String> {
    if document.issuer != issuer {
        // Not quoted: the document is the IdP's, of any size.
        return Err("it names another issuer".into());
    }
    let endpoints = [
        ("device_authorization_endpoint", document.device_authorization_endpoint.as_ref().map(|u| u.url())),
        ("revocation_endpoint", document.revocation_endpoint.as_ref().map(|u| u.url())),
    ];
    match insecure(endpoints) {
        Some((name, url)) => Err(format!("its {name} is not https ({url})")),
        None => Ok(document),
    }
}

/// serde_json's category of failure, without its text (which may quote the hostile body).
fn shape(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "not JSON",
        serde_json::error::Category::Data => "JSON of the wrong shape",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(issuer: &str) -> Vec<String> {
        metadata_urls(&Url::parse(issuer).unwrap()).into_iter().map(String::from).collect()
    }

    #[test]
    fn the_well_known_part_goes_between_host_and_path() {
        assert_eq!(
            urls("https://h/t1"),
            [
                "https://h/.well-known/oauth-authorization-server/t1",
                "https://h/t1/.well-known/oauth-authorization-server"
            ]
        );
        assert_eq!(urls("https://h/t1/"), urls("https://h/t1"), "a terminating / is removed first");
        assert_eq!(
            urls("https://h:8443/realms/r/"),
            [
                "https://h:8443/.well-known/oauth-authorization-server/realms/r",
                "https://h:8443/realms/r/.well-known/oauth-authorization-server"
            ]
        );
    }

    fn document(issuer: &str, device: &str) -> ServerMetadata {
        let json = serde_json::json!({"issuer": issuer, "device_authorization_endpoint": device});
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_document_for_another_issuer_or_with_endpoints_in_the_clear_is_not_used() {
        let ours = "https://h/t1";
        assert!(accept(document(ours, "https://h/device"), ours).is_ok());
        assert!(accept(document("http://127.0.0.1:1", "http://127.0.0.1:1/device"), "http://127.0.0.1:1").is_ok());
        let err = accept(document("https://h/t1/", "https://h/device"), ours).unwrap_err();
        assert!(err.contains("another issuer"), "{err}");
        let err = accept(document("https://evil/", "https://evil/device"), ours).unwrap_err();
        assert!(err.contains("another issuer"), "{err}");
        let err = accept(document(ours, "http://h/device"), ours).unwrap_err();
        assert!(err.contains("device_authorization_endpoint is not https"), "{err}");
    }

    #[test]
    fn an_issuer_without_a_path_has_one_place() {
        assert_eq!(urls("https://h"), ["https://h/.well-known/oauth-authorization-server"]);
        assert_eq!(
            urls("https://tenant.eu.auth0.com/"),
            ["https://tenant.eu.auth0.com/.well-known/oauth-authorization-server"]
        );
        assert_eq!(urls("http://127.0.0.1:8080"), ["http://127.0.0.1:8080/.well-known/oauth-authorization-server"]);
    }
}
