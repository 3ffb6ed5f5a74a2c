//! A logged-in session: what the keyring holds for an account, and how it is renewed.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokenbroker::Secret;
use zeroize::Zeroizing;

use super::ttl;
use crate::oidc::{TokenSet, VerifiedIdToken};

/// `Debug` is safe: secrecy's types print `[REDACTED]`.
#[derive(Debug)]
pub struct Session {
    pub refresh_token: Option<SecretString>,
    pub access_token: SecretString,
    pub token_type: String,
    /// Wall-clock unix seconds, computed from `expires_in` at receipt, so time spent asleep
    /// counts against the token.
    pub expires_at: i64,
    pub issued_at: i64,
    /// When the scheduler renews it: three quarters into its life, less a little jitter so
    /// that many daemons behind one IdP do not refresh in step. Not stored.
    pub refresh_at: i64,
    pub id_token: Option<SecretString>,
    pub id_expires_at: Option<i64>,
    /// The ID token's `iat`: with `id_expires_at`, the lifetime the IdP grants ID tokens.
    pub id_issued_at: Option<i64>,
    /// Whether the ID token came with the access token held, rather than being carried over
    /// from an earlier response (the refresh's own was refused or missing). Not stored.
    pub id_current: bool,
    pub subject: Option<String>,
    pub scopes: Vec<String>,
    /// The `GetAccessToken` answer for this session, encoded once: the hot path copies bytes
    /// instead of building and serializing the answer (and its kilobyte of JWT) per request.
    pub(super) encoded: std::sync::OnceLock<Zeroizing<Vec<u8>>>,
}

pub fn now() -> i64 {
    now_ms() / 1000
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub(super) fn refresh_at(issued_at: i64, lifetime: i64) -> i64 {
    let jitter = rand::random_range(0..=(lifetime / 20).max(0));
    issued_at + lifetime * 3 / 4 - jitter
}

impl Session {
    /// A session from a login's tokens.
    pub fn from_login(tokens: TokenSet, requested_scopes: &[String]) -> Session {
        Session::build(None, tokens, requested_scopes)
    }

    /// The session after a refresh: what the IdP did not resend (a refresh token without
    /// rotation, the ID token, the scopes) carries over.
    pub fn renewed(&self, tokens: TokenSet) -> Session {
        Session::build(Some(self), tokens, &self.scopes)
    }

    fn build(prev: Option<&Session>, t: TokenSet, requested_scopes: &[String]) -> Session {
        let issued_at = now();
        let lifetime = ttl::lifetime(t.expires_in);
        let id = match (t.id_token, prev) {
            (Some(id), _) => IdentityParts::received(id, issued_at),
            (None, Some(p)) => IdentityParts::kept(p, false),
            (None, None) => IdentityParts::default(),
        };
        Session {
            refresh_token: t.refresh_token.or_else(|| prev.and_then(|p| p.refresh_token.clone())),
            access_token: t.access_token,
            token_type: t.token_type,
            expires_at: issued_at + lifetime,
            issued_at,
            refresh_at: refresh_at(issued_at, lifetime),
            id_token: id.token,
            id_expires_at: id.expires_at,
            id_issued_at: id.issued_at,
            id_current: id.current,
            subject: id.subject,
            scopes: t.scopes.unwrap_or_else(|| requested_scopes.to_vec()),
            encoded: Default::default(),
        }
    }

    /// The session after a refresh for another audience: the refresh token rotates (and an ID
    /// token may come along), while the default access token stays what it was.
    pub fn rotated(&self, refresh_token: Option<SecretString>, id_token: Option<VerifiedIdToken>) -> Session {
        let id = match id_token {
            Some(id) => IdentityParts::received(id, now()),
            None => IdentityParts::kept(self, self.id_current),
        };
        Session {
            refresh_token: refresh_token.or_else(|| self.refresh_token.clone()),
            access_token: self.access_token.clone(),
            token_type: self.token_type.clone(),
            expires_at: self.expires_at,
            issued_at: self.issued_at,
            refresh_at: self.refresh_at,
            id_token: id.token,
            id_expires_at: id.expires_at,
            id_issued_at: id.issued_at,
            id_current: id.current,
            subject: id.subject,
            scopes: self.scopes.clone(),
            encoded: Default::default(),
        }
    }

    pub fn lifetime(&self) -> i64 {
        self.expires_at - self.issued_at
    }

    pub fn remaining(&self, now: i64) -> i64 {
        self.expires_at - now
    }

    /// The lifetime the IdP grants the ID token (records older than `id_issued_at`: counted
    /// from the access token's receipt).
    pub fn id_lifetime(&self) -> Option<i64> {
        let lifetime = self.id_expires_at? - self.id_issued_at.unwrap_or(self.issued_at);
        Some(lifetime.clamp(0, ttl::MAX_LIFETIME))
    }

    /// The keyring record: JSON, wiped from memory once written.
    pub fn to_record(&self, issuer: &str, client_id: &str) -> Zeroizing<String> {
        let record = Record {
            version: 1,
            issuer: issuer.into(),
            client_id: client_id.into(),
            refresh_token: self.refresh_token.as_ref().map(|s| Secret::new(s.expose_secret())),
            access_token: Secret::new(self.access_token.expose_secret()),
            token_type: self.token_type.clone(),
            expires_at: self.expires_at,
            issued_at: self.issued_at,
            id_token: self.id_token.as_ref().map(|s| Secret::new(s.expose_secret())),
            id_expires_at: self.id_expires_at,
            id_issued_at: self.id_issued_at,
            subject: self.subject.clone(),
            scopes: self.scopes.clone(),
        };
        Zeroizing::new(serde_json::to_string(&record).expect("a record always serializes"))
    }

    /// Read a record back; `None` if it was written for another issuer or client (the config
    /// changed under it), in which case its tokens are of no use to this account.
    pub fn from_record(text: &str, issuer: &str, client_id: &str) -> Result<Option<Session>, String> {
        let r: Record = serde_json::from_str(text)
            .map_err(|e| format!("unreadable record: {}", crate::store::json_error_kind(&e)))?;
        if r.issuer != issuer || r.client_id != client_id {
            return Ok(None);
        }
        Ok(Some(Session {
            refresh_token: r.refresh_token.as_ref().map(reveal),
            access_token: reveal(&r.access_token),
            token_type: r.token_type,
            expires_at: r.expires_at,
            issued_at: r.issued_at,
            refresh_at: refresh_at(r.issued_at, r.expires_at - r.issued_at),
            id_token: r.id_token.as_ref().map(reveal),
            id_expires_at: r.id_expires_at,
            id_issued_at: r.id_issued_at,
            id_current: true,
            subject: r.subject,
            scopes: r.scopes,
            encoded: Default::default(),
        }))
    }
}

/// The last verified identity: an ID token with its subject and times.
#[derive(Default)]
struct IdentityParts {
    token: Option<SecretString>,
    expires_at: Option<i64>,
    issued_at: Option<i64>,
    subject: Option<String>,
    current: bool,
}

impl IdentityParts {
    /// A verified ID token received at `at` (our clock).
    fn received(id: VerifiedIdToken, at: i64) -> Self {
        IdentityParts {
            token: Some(id.token),
            expires_at: Some(ttl::capped_expiry(at, id.expires_at)),
            issued_at: Some(id.issued_at),
            subject: Some(id.subject),
            current: true,
        }
    }

    fn kept(s: &Session, current: bool) -> Self {
        IdentityParts {
            token: s.id_token.clone(),
            expires_at: s.id_expires_at,
            issued_at: s.id_issued_at,
            subject: s.subject.clone(),
            current,
        }
    }
}

/// The record's secrets pass through serde as `Secret`s, wiped when the record is dropped; the
/// session keeps its own copy.
fn reveal(s: &Secret) -> SecretString {
    SecretString::from(s.expose())
}

/// serde_json's messages can quote the input; say only what kind of problem it was.
#[derive(Serialize, Deserialize)]
struct Record {
    version: u32,
    issuer: String,
    client_id: String,
    refresh_token: Option<Secret>,
    access_token: Secret,
    token_type: String,
    expires_at: i64,
    issued_at: i64,
    id_token: Option<Secret>,
    id_expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id_issued_at: Option<i64>,
    subject: Option<String>,
    scopes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::TokenSet;
    use std::time::Duration;

    fn tokens(access: &str, refresh: Option<&str>) -> TokenSet {
        TokenSet {
            access_token: SecretString::from(access),
            token_type: "Bearer".into(),
            expires_in: Some(Duration::from_secs(60)),
            refresh_token: refresh.map(SecretString::from),
            id_token: None,
            id_token_refused: None,
            scopes: None,
        }
    }

    #[test]
    fn record_round_trips_and_is_bound_to_issuer_and_client() {
        let s = Session::from_login(tokens("at1", Some("rt1")), &["openid".into()]);
        let rec = s.to_record("https://idp/", "cid");
        let back = Session::from_record(&rec, "https://idp/", "cid").unwrap().unwrap();
        assert_eq!(back.access_token.expose_secret(), "at1");
        assert_eq!(back.refresh_token.unwrap().expose_secret(), "rt1");
        assert_eq!(back.expires_at, s.expires_at);
        assert!(Session::from_record(&rec, "https://other/", "cid").unwrap().is_none());
        assert!(Session::from_record(&rec, "https://idp/", "other").unwrap().is_none());
        let err = Session::from_record("{\"access_token\": \"leak-me\"", "i", "c").unwrap_err();
        assert!(!err.contains("leak-me"));
    }

    #[test]
    fn renewal_keeps_what_the_idp_did_not_resend() {
        let s = Session::from_login(tokens("at1", Some("rt1")), &["openid".into(), "email".into()]);
        let rotated = s.renewed(tokens("at2", Some("rt2")));
        assert_eq!(rotated.refresh_token.as_ref().unwrap().expose_secret(), "rt2");
        let kept = rotated.renewed(tokens("at3", None));
        assert_eq!(kept.refresh_token.as_ref().unwrap().expose_secret(), "rt2");
        assert_eq!(kept.scopes, vec!["openid", "email"]);
        assert_eq!(kept.lifetime(), 60);
    }
}
