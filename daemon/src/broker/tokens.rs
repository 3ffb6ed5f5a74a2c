//! GetAccessToken and GetIdToken.

use std::sync::Arc;

use secrecy::ExposeSecret;
use tokenbroker::Secret;
use tokenbroker::protocol::{AccessToken, GetAccessToken, GetIdToken, IdToken};

use zeroize::Zeroizing;

use super::audience::AudienceKey;
use super::session::now;
use super::ttl::MinTtl;
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
        let min_ttl = MinTtl::new(p.min_ttl);
        if let Some(audience) = &p.audience {
            let token = self.audience_access_token(&account, audience, p.scope.as_deref(), min_ttl).await?;
            return Ok(Granted::Audience(token));
        }
        // Judged on the session at hand before any refresh: a refresh would not change the
        // lifetime the IdP grants or the scopes of the login.
        if (min_ttl.asked() || p.scope.is_some())
            && let Some(current) = account.session()
        {
            min_ttl.fits(current.lifetime())?;
            check_granted(p.scope.as_deref(), &current.scopes)?;
        }
        let session = self.fresh(&account, |s, now| min_ttl.met_by(s.remaining(now))).await?;
        min_ttl.fits(session.lifetime())?;
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
        min_ttl: MinTtl,
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
        if let Some(current) = account.read(|s| s.audience_tokens.get(&key).cloned()) {
            min_ttl.fits(current.lifetime())?;
        }
        let token = self.fresh_audience(account, &key, |t, now| min_ttl.met_by(t.remaining(now))).await?;
        min_ttl.fits(token.lifetime())?;
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
        let min_ttl = MinTtl::new(p.min_ttl);
        if let Some(lifetime) = account.session().and_then(|s| s.id_lifetime()) {
            min_ttl.fits(lifetime)?;
        }
        // A session whose last refresh brought no good ID token is not refreshed again for one:
        // IdPs that renew ID tokens only at login (Google) would be asked on every call.
        let good = |s: &Session, now| !s.id_current || s.id_expires_at.is_none_or(|e| min_ttl.met_by(e - now));
        let session = self.fresh(account, good).await?;
        let (Some(token), Some(expires_at), Some(lifetime)) =
            (&session.id_token, session.id_expires_at, session.id_lifetime())
        else {
            return Err(Error::new(
                tokenbroker::ErrorKind::NotSupported,
                "the identity provider issued no ID token for this login (some issue none in the device flow; \
                 is \"openid\" among the scopes?); `brokerctl profile` says who is logged in",
            ));
        };
        // The refresh keeps the last verified ID token when its own was refused or missing:
        // that one may not last as long as asked.
        if !min_ttl.served_by(lifetime, expires_at - now(), session.id_current)? {
            return Err(Error::new(
                tokenbroker::ErrorKind::NotSupported,
                format!(
                    "account {name:?}'s identity provider sent no new valid ID token with the last refresh (some \
                     renew ID tokens only at login; a refused one is in the daemon's log), and the one kept lasts \
                     {left}s more; log in again for a new one: `brokerctl login --account {name}`",
                    name = account.name,
                    left = (expires_at - now()).max(0),
                ),
            ));
        }
        Ok(IdToken { account: account.name.clone(), id_token: Secret::new(token.expose_secret()), expires_at })
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
