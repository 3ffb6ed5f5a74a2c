//! `GetDpopProof` (RFC 9449): an access token and a fresh DPoP proof for one request.

use serde::{Deserialize, Serialize};

use crate::Secret;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetDpopProof {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The request's HTTP method (`GET`, `POST`…).
    pub htm: String,
    /// The request's URL; its query and fragment are left out of the proof.
    pub htu: String,
    /// The resource server's `DPoP-Nonce`, when it demanded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DpopProof {
    pub account: String,
    pub access_token: Secret,
    /// Always `DPoP`.
    pub token_type: String,
    /// The `DPoP` header's value: a proof for that method and URL, bound to this token (`ath`).
    pub proof: Secret,
    pub expires_at: i64,
}

impl DpopProof {
    /// The two request headers, as (name, value) pairs: `Authorization: DPoP <token>` and
    /// `DPoP: <proof>`.
    pub fn headers(&self) -> [(&'static str, String); 2] {
        [("Authorization", format!("DPoP {}", self.access_token.expose())), ("DPoP", self.proof.expose().to_owned())]
    }
}

/// Whether a `WWW-Authenticate` value carries RFC 9449 §9's nonce challenge: an `error`
/// parameter `use_dpop_nonce` (quoted or not, any case), wherever its DPoP challenge stands
/// among the others (`Bearer realm="x", DPoP error="use_dpop_nonce"`), when the value has a
/// DPoP challenge at all. Both the daemon (at the IdP's resources) and the client crate (at
/// the caller's) read challenges with this.
pub fn asks_for_nonce(www_authenticate: &str) -> bool {
    let w = www_authenticate.trim_start().to_ascii_lowercase();
    let dpop = w.starts_with("dpop ") || w.split(',').any(|part| part.trim_start().starts_with("dpop "));
    dpop && w.match_indices("error").any(|(i, _)| {
        let value = w[i + "error".len()..].trim_start().strip_prefix('=').map(|v| v.trim_start());
        value.is_some_and(|v| v.strip_prefix('"').unwrap_or(v).starts_with("use_dpop_nonce"))
    })
}

#[cfg(test)]
mod tests {
    use super::asks_for_nonce;

    #[test]
    fn nonce_challenges_are_found_wherever_and_however_written() {
        for yes in [
            r#"DPoP error="use_dpop_nonce", error_description="Resource server requires nonce""#,
            r#"Bearer realm="api", DPoP algs="ES256", error="use_dpop_nonce""#,
            "dpop error=use_dpop_nonce",
            r#"DPoP ERROR = "use_dpop_nonce""#,
        ] {
            assert!(asks_for_nonce(yes), "{yes}");
        }
        for no in [
            r#"DPoP error="invalid_dpop_proof""#,
            r#"Bearer error="invalid_token", error_description="use_dpop_nonce is not it""#,
            r#"Bearer error="use_dpop_nonce""#,
            "",
        ] {
            assert!(!asks_for_nonce(no), "{no}");
        }
    }
}
