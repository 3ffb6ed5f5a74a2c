//! GetAccessToken and GetIdToken.

use std::sync::Arc;

use secrecy::ExposeSecret;
use tokenbroker::Secret;
use tokenbroker::protocol::{AccessToken, GetAccessToken, GetIdToken, IdToken};

use zeroize::Zeroizing;

use super::audience::AudienceKey;
use super::session::now;
use super::{Account, Broker, Error, Result, Session};

/// What `GetAccessToken` grants: the session's own token, or a token for another audience.
enum Granted {
    Session(Arc<Account>, Arc<Session>),
    Audience(AccessToken),
}

/// An answer already encoded as JSON. A session's `GetAccessToken` answer is encoded once and
/// shared by every request it serves; everything is wiped from memory when dropped.
pub enum Encoded {
    Session(Arc<Session>),
    Owned(Zeroizing<Vec<u8>>),
}

impl Encoded {
    /// Any answer, encoded from its type directly (no JSON tree in between).
    pub fn json(answer: &impl serde::Serialize) -> Result<Self> {
        serde_json::to_vec(answer)
            .map(|bytes| Encoded::Owned(Zeroizing::new(bytes)))
            .map_err(|e| Error::internal(format!("encoding the answer: {e}")))
    }

    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Encoded::Session(s) => s.encoded.get().expect("encoded before it is handed out"),
            Encoded::Owned(bytes) => bytes,
        }
    }
}

fn session_answer(account: &Account, session: &Session) -> AccessToken {
    AccessToken {
        account: account.name.clone(),
        access_token: Secret::new(session.access_token.expose_secret()),
        token_type: session.token_type.clone(),
        expires_at: session.expires_at,
        scope: Some(session.scopes.join(" ")),
    }
}

impl Broker {
    pub async fn access_token(self: &Arc<Self>, p: GetAccessToken) -> Result<AccessToken> {
        Ok(match self.grant_access(p).await? {
            Granted::Session(account, session) => session_answer(&account, &session),
            Granted::Audience(token) => token,
        })
    }

    /// The same answer, as JSON.
    pub async fn access_token_json(self: &Arc<Self>, p: GetAccessToken) -> Result<Encoded> {
        match self.grant_access(p).await? {
            Granted::Session(account, session) => {
                session.encoded.get_or_init(|| {
                    let answer = session_answer(&account, &session);
                    Zeroizing::new(serde_json::to_vec(&answer).expect("an access token answer always serializes"))
                });
                Ok(Encoded::Session(session))
            }
            Granted::Audience(token) => Encoded::json(&token),
        }
    }

    async fn grant_access(self: &Arc<Self>, p: GetAccessToken) -> Result<Granted> {
        let account = self.account(p.account.as_deref())?;
        if let Some(audience) = &p.audience {
            let token = self.audience_access_token(&account, audience, p.scope.as_deref(), p.min_ttl).await?;
            return Ok(Granted::Audience(token));
        }
        let min_ttl = p.min_ttl.unwrap_or(0) as i64;
        // Judged on the session at hand before any refresh: a refresh would not change the
        // lifetime the IdP grants or the scopes of the login.
        if (min_ttl > 0 || p.scope.is_some())
            && let Some(current) = account.session()
        {
            if min_ttl > current.lifetime() {
                return Err(large_min_ttl(min_ttl, current.lifetime()));
            }
            check_granted(p.scope.as_deref(), &current.scopes)?;
        }
        let session = self.fresh(&account, |s, now| s.remaining(now) >= min_ttl.max(1)).await?;
        // Against the lifetime, not what is left now: a token refreshed for this caller may
        // already be a second into its life when the clock ticks, and none could be fresher.
        if min_ttl > session.lifetime() {
            return Err(large_min_ttl(min_ttl, session.lifetime()));
        }
        check_granted(p.scope.as_deref(), &session.scopes)?;
        Ok(Granted::Session(account, session))
    }

    /// A token for one of the account's APIs, got with the refresh token and cached per
    /// (audience, scope). Only APIs the login asked for qualify: IdPs refuse others, and with
    /// rotation a refused refresh can cost the whole session.
    async fn audience_access_token(
        self: &Arc<Self>,
        account: &Arc<Account>,
        audience: &str,
        scope: Option<&str>,
        min_ttl: Option<u64>,
    ) -> Result<AccessToken> {
        let allowed = account.login_audiences().values;
        if !allowed.iter().any(|a| a == audience) {
            return Err(Error::invalid_params(format!(
                "account {:?} is not configured for audience {audience:?} (configured: {}); add it to `audiences` in the config and log in again",
                account.name,
                if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") }
            )));
        }
        let requested = &account.login_scopes();
        let missing: Vec<&str> =
            scope.iter().flat_map(|s| s.split_whitespace()).filter(|s| !requested.iter().any(|r| r == s)).collect();
        if !missing.is_empty() {
            return Err(Error::invalid_params(format!(
                "scope {} was not requested at login (the account's scopes: {})",
                missing.join(" "),
                requested.join(" ")
            )));
        }
        let key = AudienceKey::new(audience, scope);
        let min_ttl = min_ttl.unwrap_or(0) as i64;
        if let Some(current) = account.read(|s| s.audience_tokens.get(&key).cloned())
            && min_ttl > current.lifetime()
        {
            return Err(large_min_ttl(min_ttl, current.lifetime()));
        }
        let token = self.fresh_audience(account, &key, |t, now| t.remaining(now) >= min_ttl.max(1)).await?;
        if min_ttl > token.lifetime() {
            return Err(large_min_ttl(min_ttl, token.lifetime()));
        }
        Ok(AccessToken {
            account: account.name.clone(),
            access_token: Secret::new(token.access_token.expose_secret()),
            token_type: token.token_type.clone(),
            expires_at: token.expires_at,
            scope: Some(token.scopes.join(" ")),
        })
    }

    pub async fn id_token(self: &Arc<Self>, p: GetIdToken) -> Result<IdToken> {
        let account = &self.account(p.account.as_deref())?;
        let min_ttl = p.min_ttl.unwrap_or(0) as i64;
        let session = self.fresh(account, |s, now| s.id_expires_at.is_none_or(|e| e - now >= min_ttl.max(1))).await?;
        match (&session.id_token, session.id_expires_at) {
            (Some(token), Some(expires_at)) if expires_at - now() >= min_ttl => {
                Ok(IdToken { account: account.name.clone(), id_token: Secret::new(token.expose_secret()), expires_at })
            }
            (Some(_), Some(expires_at)) => Err(large_min_ttl(min_ttl, expires_at - session.issued_at)),
            _ => Err(Error::new(
                tokenbroker::ErrorKind::NotSupported,
                "the identity provider issued no ID token for this login (some issue none in the device flow; \
                 is \"openid\" among the scopes?); `brokerctl profile` says who is logged in",
            )),
        }
    }
}

fn check_granted(scope: Option<&str>, granted: &[String]) -> Result<()> {
    let missing: Vec<&str> =
        scope.iter().flat_map(|s| s.split_whitespace()).filter(|s| !granted.iter().any(|g| g == s)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::invalid_params(format!(
        "scope {} was not granted at login (granted: {})",
        missing.join(" "),
        granted.join(" ")
    )))
}

/// Auth0's `largeMinTTL`: no refresh can satisfy the request.
fn large_min_ttl(min_ttl: i64, lifetime: i64) -> Error {
    Error::invalid_params(format!(
        "min_ttl {min_ttl}s is longer than the token lifetime of {lifetime}s that the identity provider grants; ask for less"
    ))
}
