//! OAuth 2.0 Authorization Server Metadata (RFC 8414): where some IdPs list the device and
//! revocation endpoints that their OIDC discovery document leaves out.

use openidconnect::{DeviceAuthorizationUrl, RevocationUrl};
use serde::Deserialize;
use url::Url;

use super::OidcError;
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

/// Why RFC 8414 metadata could not be had.
#[derive(Debug)]
pub(super) enum Problem {
    /// Unreachable, a timeout, 5xx or 429: it may be there next time, so discovery must fail
    /// (and be tried again) rather than remember an IdP without the endpoints it lists.
    Unavailable(OidcError),
    /// Refused (a 4xx other than 404 at every place) or unusable: there is nothing to wait for.
    Unusable(String),
}

/// The issuer's RFC 8414 metadata; `Ok(None)` when it publishes none (404 at every place).
/// Every place is tried while the answer is not 200: a server may refuse the first one (400,
/// 401, 403) and serve the other. A document whose `issuer` is not exactly ours must not be
/// used (RFC 8414 §3.3).
pub(super) async fn fetch(http: &Http, issuer: &str) -> Result<Option<ServerMetadata>, Problem> {
    let parsed = Url::parse(issuer).map_err(|e| Problem::Unusable(format!("issuer {issuer:?}: {e}")))?;
    let mut refused = None;
    for url in metadata_urls(&parsed) {
        let request = http::Request::get(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| Problem::Unusable(e.to_string()))?;
        let response = match http.execute(request).await {
            Ok(response) => response,
            Err(HttpError::TooLarge) => return Err(Problem::Unusable(format!("{url}: {}", HttpError::TooLarge))),
            Err(e @ (HttpError::Transport(_) | HttpError::Unavailable { .. })) => {
                let retry_after = match e {
                    HttpError::Unavailable { retry_after, .. } => retry_after,
                    _ => None,
                };
                let message = format!("RFC 8414 metadata at {url}: {e}");
                return Err(Problem::Unavailable(OidcError::Unavailable { message, retry_after }));
            }
        };
        match response.status().as_u16() {
            200 => {}
            404 => continue,
            status => {
                refused = Some(format!("{url} answered HTTP {status}"));
                continue;
            }
        }
        let document: ServerMetadata = serde_json::from_slice(response.body())
            .map_err(|e| Problem::Unusable(format!("{url} is not RFC 8414 metadata ({})", shape(&e))))?;
        return accept(document, issuer).map(Some).map_err(|why| Problem::Unusable(format!("{url}: {why}")));
    }
    refused.map_or(Ok(None), |why| Err(Problem::Unusable(why)))
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
    use std::collections::HashMap;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::super::{EndpointOverrides, Provider};
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

    /// An IdP on its own thread: each path gets its (status, body) from `routes`, 404 if
    /// absent; `asked` records the paths in order.
    struct Server {
        base: String,
        routes: Arc<Mutex<HashMap<String, (u16, String)>>>,
        asked: Arc<Mutex<Vec<String>>>,
    }

    impl Server {
        fn start() -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let (routes, asked) = (Arc::default(), Arc::default());
            let (r, a): (Arc<Mutex<HashMap<_, _>>>, Arc<Mutex<Vec<_>>>) = (Arc::clone(&routes), Arc::clone(&asked));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let mut stream = stream.unwrap();
                    let mut buf = [0u8; 8192];
                    let n = stream.read(&mut buf).unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]);
                    let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                    let (status, body) = r.lock().unwrap().get(&path).cloned().unwrap_or((404, String::new()));
                    a.lock().unwrap().push(path);
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes());
                }
            });
            Server { base, routes, asked }
        }

        fn route(&self, path: &str, status: u16, body: String) {
            self.routes.lock().unwrap().insert(path.to_owned(), (status, body));
        }

        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    const INSERTED: &str = "/.well-known/oauth-authorization-server/t1";
    const APPENDED: &str = "/t1/.well-known/oauth-authorization-server";

    fn http() -> Http {
        Http::new(Duration::from_secs(5)).unwrap()
    }

    fn metadata(issuer: &str) -> String {
        serde_json::json!({"issuer": issuer, "device_authorization_endpoint": format!("{issuer}/device")}).to_string()
    }

    #[tokio::test]
    async fn a_refusal_at_the_first_place_does_not_end_the_search() {
        let server = Server::start();
        let issuer = format!("{}/t1", server.base);
        for status in [400, 401, 403] {
            server.route(INSERTED, status, r#"{"error":"unauthorized"}"#.into());
            server.route(APPENDED, 200, metadata(&issuer));
            let document = fetch(&http(), &issuer).await.unwrap_or_else(|e| panic!("{status}: {e:?}")).unwrap();
            assert!(document.device_authorization_endpoint.is_some(), "{status}");
        }
        // Refused everywhere: nothing to use, and doctor can say why.
        server.route(APPENDED, 401, String::new());
        match fetch(&http(), &issuer).await {
            Err(Problem::Unusable(why)) => assert!(why.contains("HTTP 401"), "{why}"),
            other => panic!("{other:?}"),
        }
        server.routes.lock().unwrap().clear();
        assert!(fetch(&http(), &issuer).await.unwrap().is_none(), "404 everywhere: none published");
    }

    #[tokio::test]
    async fn an_unavailable_server_fails_the_fetch_without_trying_further() {
        let server = Server::start();
        let issuer = format!("{}/t1", server.base);
        server.route(INSERTED, 503, String::new());
        server.route(APPENDED, 200, metadata(&issuer));
        match fetch(&http(), &issuer).await {
            Err(Problem::Unavailable(OidcError::Unavailable { message, .. })) => assert!(message.contains("503")),
            other => panic!("{other:?}"),
        }
        assert_eq!(server.asked(), [INSERTED], "a server that is down now is not asked elsewhere");

        let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let unreachable = format!("http://{closed}/t1");
        assert!(matches!(fetch(&http(), &unreachable).await, Err(Problem::Unavailable(_))), "connection refused");
    }

    #[tokio::test]
    async fn discovery_fails_while_rfc8414_metadata_is_unavailable_and_works_once_it_is_back() {
        let server = Server::start();
        let issuer = format!("{}/t1", server.base);
        let discovery = serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        server.route("/t1/.well-known/openid-configuration", 200, discovery.to_string());
        server.route("/t1/jwks", 200, r#"{"keys":[]}"#.into());
        server.route(INSERTED, 503, String::new());
        let overrides = EndpointOverrides::default();
        let discover = || Provider::discover(http(), &issuer, "client", &overrides);
        let err = discover().await.err().expect("an IdP without its device endpoint would be remembered");
        assert!(matches!(err, OidcError::Unavailable { .. }), "{err}");

        server.route(INSERTED, 200, metadata(&issuer));
        assert!(discover().await.unwrap().offers.device_flow);

        // Refused (4xx) at both places: discovery works without it, and doctor can say why.
        server.route(INSERTED, 401, String::new());
        server.route(APPENDED, 403, String::new());
        let provider = discover().await.expect("a refused document leaves discovery working");
        assert!(!provider.offers.device_flow);
        let problem = provider.offers.server_metadata_problem.expect("the refusal is kept for doctor");
        assert!(problem.contains("HTTP 403") || problem.contains("HTTP 401"), "{problem}");
    }
}
