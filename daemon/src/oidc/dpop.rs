//! DPoP (RFC 9449): an account's ES256 key, the proofs it signs, and the HTTP layer that puts
//! a proof on every request to the IdP and answers a server's demand for a nonce (§8, §9).
//!
//! The key never leaves this type but as the sealed session record; `Debug` shows only its
//! thumbprint, and the scalar is wiped when the key is dropped (p256's `SigningKey`; AWS-LC
//! cleanses what it frees).
//!
//! p256 holds the key (made, stored, its JWK); AWS-LC (aws-lc-rs, already in the tree for
//! rustls) signs: a proof is made per request, and its P-256 signatures are three to five times
//! faster than p256's (about 15 µs against 50–90 µs here), which is most of a proof's cost.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::SigningKey;
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroizing;

use super::http::{Http, HttpError, copy};
use openidconnect::{HttpRequest, HttpResponse};

/// One account's proof-of-possession key.
pub struct DpopKey {
    key: SigningKey,
    /// The same key in AWS-LC, which signs.
    signer: EcdsaKeyPair,
    /// The public key as the proof header's `jwk` (members in RFC 7638 order).
    jwk: String,
    /// RFC 7638 thumbprint: the `jkt` the IdP binds tokens to.
    jkt: String,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey").field("jkt", &self.jkt).finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A new random key.
    pub fn generate() -> DpopKey {
        loop {
            // From the OS-seeded CSPRNG; a scalar out of range (about 2^-32) is drawn again.
            let bytes = Zeroizing::new(rand::random::<[u8; 32]>());
            if let Ok(key) = SigningKey::from_slice(&bytes[..]).map_err(|_| String::new()).and_then(DpopKey::new) {
                return key;
            }
        }
    }

    /// The key from its stored form ([`Self::secret`]).
    pub fn from_secret(text: &str) -> Result<DpopKey, String> {
        let bytes = Zeroizing::new(B64.decode(text).map_err(|_| "the stored DPoP key is not base64url".to_owned())?);
        let key = SigningKey::from_slice(&bytes).map_err(|_| "the stored DPoP key is not a P-256 key".to_owned())?;
        DpopKey::new(key)
    }

    fn new(key: SigningKey) -> Result<DpopKey, String> {
        let point = key.verifying_key().to_sec1_point(false);
        let xy = point.as_bytes();
        let scalar = Zeroizing::new(key.to_bytes());
        let signer = EcdsaKeyPair::from_private_key_and_public_key(&ECDSA_P256_SHA256_FIXED_SIGNING, &scalar[..], xy)
            .map_err(|_| "AWS-LC refused the DPoP key".to_owned())?;
        let (x, y) = (B64.encode(&xy[1..33]), B64.encode(&xy[33..65]));
        // RFC 7638 §3: the required members only, in lexicographic order, no whitespace.
        let jwk = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let jkt = B64.encode(Sha256::digest(jwk.as_bytes()));
        Ok(DpopKey { key, signer, jwk, jkt })
    }

    /// The private scalar, base64url: only for the session record, which the store seals.
    pub fn secret(&self) -> Zeroizing<String> {
        let bytes = Zeroizing::new(self.key.to_bytes());
        Zeroizing::new(B64.encode(&bytes[..]))
    }

    /// The JWK SHA-256 thumbprint (RFC 7638), as the IdP puts it in a token's `cnf.jkt`.
    pub fn thumbprint(&self) -> &str {
        &self.jkt
    }

    /// A proof for one request (RFC 9449 §4.2): `htm` and `htu` as given (the caller has
    /// normalised `htu`), the server's `nonce` if it gave one, and with `access_token` its
    /// hash (`ath`) for a request to a resource server.
    pub fn proof(&self, htm: &str, htu: &str, nonce: Option<&str>, access_token: Option<&str>) -> String {
        let header = format!(r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{}}}"#, self.jwk);
        let mut claims = serde_json::Map::new();
        claims.insert("jti".into(), B64.encode(rand::random::<[u8; 16]>()).into());
        claims.insert("htm".into(), htm.into());
        claims.insert("htu".into(), htu.into());
        claims.insert("iat".into(), now().into());
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), nonce.into());
        }
        if let Some(token) = access_token {
            claims.insert("ath".into(), ath(token).into());
        }
        let claims = serde_json::Value::Object(claims).to_string();
        let input = format!("{}.{}", B64.encode(header), B64.encode(claims));
        // r || s, 32 bytes each, as JWS's ES256 wants (RFC 7518 §3.4). Signing fails only when
        // the system's random source does: then no proof, rather than a broken one.
        let signature = self
            .signer
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .expect("AWS-LC signs with a valid key unless the system has no randomness");
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }
}

/// `ath`: base64url(SHA-256(the access token)).
pub fn ath(access_token: &str) -> String {
    B64.encode(Sha256::digest(access_token.as_bytes()))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// A request's `htu` (RFC 9449 §4.2): the URL without query and fragment. Only https, or
/// http to this machine, is proven for: a proof for a plain-http URL elsewhere would travel
/// in the clear with its token.
pub fn htu(url: &str) -> Result<String, String> {
    let mut url = Url::parse(url).map_err(|e| format!("htu {url:?} is not an absolute URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if super::is_loopback(&url) => {}
        other => return Err(format!("htu must be an https URL (http only to this machine), not {other:?}")),
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err("htu must name a host and no user".into());
    }
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.into())
}

/// A request's `htm`: an HTTP method token, upper case as methods are (RFC 9110 §9.1).
pub fn htm(method: &str) -> Result<&str, String> {
    if method.is_empty() || method.len() > 32 || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("htm {method:?} is not an HTTP method (upper-case letters, such as GET or POST)"));
    }
    Ok(method)
}

/// A nonce is an opaque NQCHAR string (§8.1): printable ASCII, no quotes or backslashes.
pub fn is_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= 1024
        && nonce.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

/// The last nonce each server (by origin) gave us, so the next proof to it carries it (§8.2).
fn nonces() -> &'static Mutex<HashMap<String, String>> {
    static NONCES: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    NONCES.get_or_init(Mutex::default)
}

fn origin(uri: &http::Uri) -> String {
    format!("{}://{}", uri.scheme_str().unwrap_or(""), uri.authority().map(|a| a.as_str()).unwrap_or(""))
}

/// The nonce last given by `url`'s server.
fn nonce_for(origin: &str) -> Option<String> {
    nonces().lock().unwrap_or_else(|e| e.into_inner()).get(origin).cloned()
}

/// Keep the `DPoP-Nonce` of any answer (§8.2: a server may send a new one at any time).
fn remember(origin: &str, response: &HttpResponse) -> Option<String> {
    let nonce = response.headers().get("dpop-nonce")?.to_str().ok()?.trim();
    if !is_nonce(nonce) {
        return None;
    }
    nonces().lock().unwrap_or_else(|e| e.into_inner()).insert(origin.to_owned(), nonce.to_owned());
    Some(nonce.to_owned())
}

/// Whether the answer demands a nonce: the token endpoint's `400 {"error":"use_dpop_nonce"}`
/// (§8) or a resource's `401` with `WWW-Authenticate: DPoP error="use_dpop_nonce"` (§9).
fn wants_nonce(response: &HttpResponse) -> bool {
    match response.status().as_u16() {
        400 => serde_json::from_slice::<serde_json::Value>(response.body())
            .is_ok_and(|v| v.get("error").and_then(|e| e.as_str()) == Some("use_dpop_nonce")),
        401 => response
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .any(|v| v.to_str().is_ok_and(tokenbroker::protocol::asks_for_nonce)),
        _ => false,
    }
}

/// Our HTTP client with, for a DPoP account, a proof on every request: the one every
/// request to an IdP goes through (openidconnect's `AsyncHttpClient`).
#[derive(Clone, Copy)]
pub struct Sender<'a> {
    pub http: &'a Http,
    pub dpop: Option<&'a DpopKey>,
}

impl Sender<'_> {
    pub async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let Some(key) = self.dpop else { return self.http.execute(request).await };
        let origin = origin(request.uri());
        let sent = nonce_for(&origin);
        let again = copy(&request);
        let response = self.http.execute(prove(key, request, sent.as_deref())?).await?;
        let fresh = remember(&origin, &response);
        // One retry, with the nonce the server just gave (§8.2); a refused request was not
        // acted on, so even a refresh token may be sent again. Not a client assertion: the IdP
        // has seen its `jti` (RFC 7523 §3: single use) before it judged the proof, so the caller
        // signs a new one and asks again, with the nonce remembered here.
        match fresh {
            Some(nonce)
                if wants_nonce(&response)
                    && sent.as_deref() != Some(nonce.as_str())
                    && !carries_client_assertion(again.body()) =>
            {
                tracing::debug!("the server asked for a DPoP nonce; sending the request again with it");
                let response = self.http.execute(prove(key, again, Some(&nonce))?).await?;
                remember(&origin, &response);
                Ok(response)
            }
            _ => Ok(response),
        }
    }
}

/// Whether a form body has a `client_assertion` parameter (private_key_jwt).
fn carries_client_assertion(body: &[u8]) -> bool {
    body.split(|&b| b == b'&').any(|pair| pair.starts_with(b"client_assertion="))
}

/// The request with its proof; a bearer `Authorization` becomes `DPoP` with `ath` (§7.1).
fn prove(key: &DpopKey, mut request: HttpRequest, nonce: Option<&str>) -> Result<HttpRequest, HttpError> {
    let mut uri = Url::parse(&request.uri().to_string()).map_err(|e| HttpError::Transport(e.to_string()))?;
    uri.set_query(None);
    uri.set_fragment(None);
    let token = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| Zeroizing::new(t.to_owned()));
    let proof = key.proof(request.method().as_str(), uri.as_str(), nonce, token.as_deref().map(String::as_str));
    let headers = request.headers_mut();
    if let Some(token) = &token {
        let value = Zeroizing::new(format!("DPoP {}", token.as_str()));
        let mut value = http::HeaderValue::from_str(&value).map_err(|e| HttpError::Transport(e.to_string()))?;
        value.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, value);
    }
    headers.insert("dpop", http::HeaderValue::from_str(&proof).map_err(|e| HttpError::Transport(e.to_string()))?);
    Ok(request)
}

impl<'c> openidconnect::AsyncHttpClient<'c> for Sender<'_> {
    type Error = HttpError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}

/// Whether a token response for a DPoP account is what it must be: the IdP bound the token
/// (`token_type` DPoP, RFC 9449 §5). A bearer token would work for anyone who copies it.
pub fn check_bound(token_type: &str) -> Result<(), super::OidcError> {
    if token_type.eq_ignore_ascii_case("DPoP") {
        return Ok(());
    }
    Err(super::OidcError::NotSupported(format!(
        "the account has dpop = true but the identity provider issued a {token_type:?} token, not a DPoP-bound one; \
         enable DPoP for this client at the identity provider, or set dpop = false"
    )))
}

#[cfg(test)]
#[path = "dpop_tests.rs"]
mod tests;
