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
