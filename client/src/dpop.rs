//! DPoP (RFC 9449) for callers of an account with `dpop = true`: the broker keeps the key and
//! signs a proof for each request; the caller sends the token with it.
//!
//! ```no_run
//! # async fn demo() -> tokenbroker::Result<()> {
//! let client = tokenbroker::Client::connect().await?;
//! let url = "https://api.example.com/things";
//! let mut d = client.dpop_headers("GET", url).await?;
//! // Send the request with d.headers(): `Authorization: DPoP …` and `DPoP: …`. If the server
//! // answers 401 with a nonce challenge (RFC 9449 §9), ask once more with its nonce:
//! # let (status, www_authenticate, dpop_nonce) = (401, Some(""), Some(""));
//! if let Some(nonce) = tokenbroker::dpop::nonce_challenge(status, www_authenticate, dpop_nonce) {
//!     d = client.dpop_headers_with_nonce("GET", url, Some(nonce)).await?;
//!     // … and send the request again with these headers, once.
//! }
//! # Ok(()) }
//! ```
//!
//! A proof is good for one request: ask for a new one every time (a server refuses a proof
//! it has seen, RFC 9449 §11.1).

use crate::protocol::{DpopProof, GetDpopProof};

/// The params of a proof for `method` and `url` of the default account.
pub fn params(method: &str, url: &str, nonce: Option<&str>) -> GetDpopProof {
    GetDpopProof { htm: method.into(), htu: url.into(), nonce: nonce.map(Into::into), ..Default::default() }
}

/// The nonce a resource server demands, if its answer is RFC 9449 §9's challenge: a 401 whose
/// `WWW-Authenticate` says `DPoP error="use_dpop_nonce"`, with a `DPoP-Nonce` header. Pass
/// the two headers' values (or `None` when absent); ask the broker once more with this nonce,
/// and send the request again, once.
pub fn nonce_challenge<'a>(
    status: u16,
    www_authenticate: Option<&str>,
    dpop_nonce: Option<&'a str>,
) -> Option<&'a str> {
    let challenged = www_authenticate.is_some_and(crate::protocol::asks_for_nonce);
    let nonce = dpop_nonce.map(str::trim).filter(|n| !n.is_empty())?;
    (status == 401 && challenged).then_some(nonce)
}

impl crate::Client {
    /// A DPoP-bound token of the default account and a fresh proof for one `method` request
    /// to `url`; send [`DpopProof::headers`] with it.
    pub async fn dpop_headers(&self, method: &str, url: &str) -> crate::Result<DpopProof> {
        self.get_dpop_proof(params(method, url, None)).await
    }

    /// As [`Self::dpop_headers`], with the server's `DPoP-Nonce` (see [`nonce_challenge`]).
    pub async fn dpop_headers_with_nonce(
        &self,
        method: &str,
        url: &str,
        nonce: Option<&str>,
    ) -> crate::Result<DpopProof> {
        self.get_dpop_proof(params(method, url, nonce)).await
    }
}

impl crate::blocking::Client {
    /// A DPoP-bound token and a fresh proof for one request: see [`crate::Client::dpop_headers`].
    pub fn dpop_headers(&self, method: &str, url: &str) -> crate::Result<DpopProof> {
        self.get_dpop_proof(params(method, url, None))
    }

    /// With the server's `DPoP-Nonce`: see [`nonce_challenge`].
    pub fn dpop_headers_with_nonce(&self, method: &str, url: &str, nonce: Option<&str>) -> crate::Result<DpopProof> {
        self.get_dpop_proof(params(method, url, nonce))
    }
}

#[cfg(feature = "dbus")]
impl crate::dbus::Client {
    /// A DPoP-bound token and a fresh proof for one request, over the session bus.
    pub async fn dpop_headers(&self, method: &str, url: &str) -> crate::Result<DpopProof> {
        self.get_dpop_proof(params(method, url, None)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_401_with_the_dpop_nonce_challenge_and_a_nonce_is_one() {
        let www = Some(r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce""#);
        assert_eq!(nonce_challenge(401, www, Some("eyJ7S_zG")), Some("eyJ7S_zG"));
        assert_eq!(nonce_challenge(401, Some(r#"dpop algs="ES256", error="use_dpop_nonce""#), Some("n")), Some("n"));
        assert_eq!(nonce_challenge(401, www, None), None, "no nonce to use");
        assert_eq!(nonce_challenge(403, www, Some("n")), None);
        assert_eq!(nonce_challenge(401, Some(r#"DPoP error="invalid_token""#), Some("n")), None);
        assert_eq!(nonce_challenge(401, Some(r#"Bearer error="use_dpop_nonce""#), Some("n")), None);
        assert_eq!(nonce_challenge(401, None, Some("n")), None);
    }
}
