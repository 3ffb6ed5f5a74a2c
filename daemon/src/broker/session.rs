//! A logged-in session: what the keyring holds for an account, and how it is renewed.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokenbroker::Secret;
use zeroize::Zeroizing;

use std::sync::Arc;

use super::token::{Life, Token};
use super::ttl;
use crate::oidc::dpop::DpopKey;
use crate::oidc::{TokenSet, VerifiedIdToken};

/// `Debug` is safe: secrecy's types print `[REDACTED]`.
#[derive(Debug)]
pub struct Session {
    pub refresh_token: Option<SecretString>,
    /// The access token the login or the last refresh returned (scopes, lifetime and all).
    pub access: Arc<Token>,
    /// The last verified ID token.
    pub id: Option<IdToken>,
    /// Whether the ID token came with the access token held, rather than being carried over
    /// from an earlier response (the refresh's own was refused or missing). Not stored.
    pub id_current: bool,
    pub subject: Option<String>,
    /// The key the session's tokens are bound to (DPoP, RFC 9449), made at its login and kept
    /// with it: the refresh token is bound to it too. `Debug` shows its thumbprint only.
    pub dpop: Option<Arc<DpopKey>>,
}

#[derive(Debug, Clone)]
pub struct IdToken {
    pub token: SecretString,
    /// From the IdP's `iat` to its `exp`, cut to a year after receipt.
    pub life: Life,
}

/// Unix seconds of the core's clock.
pub fn now() -> i64 {
    now_ms() / 1000
}

/// Unix milliseconds of the core's clock: wall-clock time, deliberately, so that time spent
/// asleep counts against a token (Tokio's clock stops in suspend).
#[cfg(not(test))]
pub fn now_ms() -> i64 {
    wall_ms()
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// In unit tests, the wall clock as Tokio's clock moves it, so that a test under a paused
/// clock (`start_paused`) moves both: the wall time at first use, plus how far Tokio's clock
/// is from that moment (either way: a runtime paused earlier is behind it), plus the time a
/// test said the machine slept ([`suspend`]).
#[cfg(test)]
pub fn now_ms() -> i64 {
    use std::time::Instant;
    static ORIGIN: std::sync::OnceLock<(i64, Instant)> = std::sync::OnceLock::new();
    let (wall, at) = *ORIGIN.get_or_init(|| (wall_ms(), Instant::now()));
    let now = tokio::time::Instant::now().into_std();
    let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let offset = ms(now.saturating_duration_since(at)).saturating_sub(ms(at.saturating_duration_since(now)));
    wall.saturating_add(offset).saturating_add(SLEPT.get())
}

#[cfg(test)]
thread_local! {
    static SLEPT: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// In unit tests: the machine sleeps for `d`. The wall clock jumps ahead while Tokio's clock
/// and timers stand still, as in a real suspend. Per thread: for current-thread runtimes
/// (`#[tokio::test]`'s default).
#[cfg(test)]
pub fn suspend(d: std::time::Duration) {
    SLEPT.set(SLEPT.get().saturating_add(d.as_millis() as i64));
}

impl Session {
    /// A session from a login's tokens, bound to `dpop` if the login proved possession of it.
    pub fn from_login(tokens: TokenSet, requested_scopes: &[String], dpop: Option<Arc<DpopKey>>) -> Session {
        Session { dpop, ..Session::build(None, tokens, requested_scopes) }
    }

    /// The session after a refresh: what the IdP did not resend (a refresh token without
    /// rotation, the ID token, the scopes) carries over.
    pub fn renewed(&self, tokens: TokenSet) -> Session {
        Session::build(Some(self), tokens, &self.access.scopes)
    }

    fn build(prev: Option<&Session>, t: TokenSet, requested_scopes: &[String]) -> Session {
        let now = now();
        let access = Arc::new(Token::received(&t, now, || requested_scopes.to_vec()));
        let (id, id_current, subject) = match (t.id_token, prev) {
            (Some(id), _) => received(id, now),
            (None, Some(p)) => (p.id.clone(), false, p.subject.clone()),
            (None, None) => (None, false, None),
        };
        Session {
            refresh_token: t.refresh_token.or_else(|| prev.and_then(|p| p.refresh_token.clone())),
            access,
            id,
            id_current,
            subject,
            dpop: prev.and_then(|p| p.dpop.clone()),
        }
    }

    /// The session after a refresh for another audience: the refresh token rotates (and an ID
    /// token may come along), while the default access token stays what it was.
    pub fn rotated(&self, refresh_token: Option<SecretString>, id_token: Option<VerifiedIdToken>) -> Session {
        let (id, id_current, subject) = match id_token {
            Some(id) => received(id, now()),
            None => (self.id.clone(), self.id_current, self.subject.clone()),
        };
        Session {
            refresh_token: refresh_token.or_else(|| self.refresh_token.clone()),
            access: self.access.clone(),
            id,
            id_current,
            subject,
            dpop: self.dpop.clone(),
        }
    }

    /// The keyring record: JSON, wiped from memory once written.
    pub fn to_record(&self, issuer: &str, client_id: &str) -> Zeroizing<String> {
        let a = &self.access;
        let record = Record {
            version: 1,
            issuer: issuer.into(),
            client_id: client_id.into(),
            refresh_token: self.refresh_token.as_ref().map(|s| Secret::new(s.expose_secret())),
            access_token: Secret::new(a.secret.expose_secret()),
            token_type: a.token_type.clone(),
            expires_at: a.life.expires_at,
            issued_at: a.life.issued_at,
            id_token: self.id.as_ref().map(|id| Secret::new(id.token.expose_secret())),
            id_expires_at: self.id.as_ref().map(|id| id.life.expires_at),
            id_issued_at: self.id.as_ref().map(|id| id.life.issued_at),
            subject: self.subject.clone(),
            scopes: a.scopes.clone(),
            dpop_key: self.dpop.as_ref().map(|k| Secret::new(k.secret().as_str())),
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
        let life = Life { issued_at: r.issued_at, expires_at: r.expires_at };
        // Records older than `id_issued_at` count the ID token's life from the access token's.
        let id = r.id_token.as_ref().map(|token| IdToken {
            token: reveal(token),
            life: Life {
                issued_at: r.id_issued_at.unwrap_or(r.issued_at),
                expires_at: r.id_expires_at.unwrap_or(r.expires_at),
            },
        });
        let dpop = r.dpop_key.as_ref().map(|k| DpopKey::from_secret(k.expose())).transpose()?.map(Arc::new);
        Ok(Some(Session {
            dpop,
            refresh_token: r.refresh_token.as_ref().map(reveal),
            access: Arc::new(Token::new(reveal(&r.access_token), r.token_type, r.scopes, life)),
            id,
            id_current: true,
            subject: r.subject,
        }))
    }
}

/// A verified ID token received at `at` (our clock): the token, current, and its subject.
fn received(id: VerifiedIdToken, at: i64) -> (Option<IdToken>, bool, Option<String>) {
    let life = Life { issued_at: id.issued_at, expires_at: ttl::capped_expiry(at, id.expires_at) };
    (Some(IdToken { token: id.token, life }), true, Some(id.subject))
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
    /// The DPoP key's private scalar (base64url), for `dpop = true` accounts; records from
    /// before DPoP have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dpop_key: Option<Secret>,
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
        let s = Session::from_login(tokens("at1", Some("rt1")), &["openid".into()], None);
        let rec = s.to_record("https://idp/", "cid");
        let back = Session::from_record(&rec, "https://idp/", "cid").unwrap().unwrap();
        assert_eq!(back.access.secret.expose_secret(), "at1");
        assert_eq!(back.refresh_token.unwrap().expose_secret(), "rt1");
        assert_eq!(back.access.life, s.access.life);
        assert!(Session::from_record(&rec, "https://other/", "cid").unwrap().is_none());
        assert!(Session::from_record(&rec, "https://idp/", "other").unwrap().is_none());
        let err = Session::from_record("{\"access_token\": \"leak-me\"", "i", "c").unwrap_err();
        assert!(!err.contains("leak-me"));
    }

    #[test]
    fn the_dpop_key_is_kept_with_the_session_and_old_records_still_load() {
        let key = Arc::new(DpopKey::generate());
        let s = Session::from_login(tokens("at1", Some("rt1")), &[], Some(key.clone()));
        let renewed = s.renewed(tokens("at2", Some("rt2"))).rotated(None, None);
        assert_eq!(renewed.dpop.as_ref().unwrap().thumbprint(), key.thumbprint());
        let rec = renewed.to_record("https://idp/", "cid");
        let back = Session::from_record(&rec, "https://idp/", "cid").unwrap().unwrap();
        assert_eq!(back.dpop.unwrap().thumbprint(), key.thumbprint(), "the same key after a restart");
        assert!(!format!("{renewed:?}").contains(key.secret().as_str()), "Debug shows no key");
        // A record written before DPoP: no key, still a session.
        let old = Session::from_login(tokens("at1", Some("rt1")), &[], None).to_record("https://idp/", "cid");
        assert!(!old.contains("dpop_key"));
        assert!(Session::from_record(&old, "https://idp/", "cid").unwrap().unwrap().dpop.is_none());
    }

    #[test]
    fn renewal_keeps_what_the_idp_did_not_resend() {
        let s = Session::from_login(tokens("at1", Some("rt1")), &["openid".into(), "email".into()], None);
        let rotated = s.renewed(tokens("at2", Some("rt2")));
        assert_eq!(rotated.refresh_token.as_ref().unwrap().expose_secret(), "rt2");
        let kept = rotated.renewed(tokens("at3", None));
        assert_eq!(kept.refresh_token.as_ref().unwrap().expose_secret(), "rt2");
        assert_eq!(kept.access.scopes, vec!["openid", "email"]);
        assert_eq!(kept.access.life.lifetime(), 60);
    }
}
