//! GetAccessToken and GetIdToken: the one rule for every kind of token is `MinTtl`'s.

use std::sync::Arc;

use secrecy::ExposeSecret;
use tokenbroker::Secret;
use tokenbroker::protocol::{AccessToken, GetAccessToken, GetIdToken, IdToken};

use super::audience::AudienceKey;
use super::session::now;
use super::token::Token;
use super::ttl::MinTtl;
use super::{Account, Broker, Error, Result, Session};

/// What `GetAccessToken` grants: the session's own token or another audience's, shared with
/// the session or cache it came from, never copied.
pub struct Grant {
    pub account: Arc<Account>,
    pub token: Arc<Token>,
}

impl Grant {
    /// The contract's answer (a copy of the token, wiped when dropped).
    pub fn answer(&self) -> AccessToken {
        let t = &self.token;
        AccessToken {
            account: self.account.name.clone(),
            access_token: Secret::new(t.secret.expose_secret()),
            token_type: t.token_type.clone(),
            expires_at: t.life.expires_at,
            scope: Some(t.scopes.join(" ")),
        }
    }
}

/// As the contract's `GetAccessToken` result.
impl serde::Serialize for Grant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.answer().serialize(s)
    }
}

impl Broker {
    /// A token for one of the account's APIs, got with the refresh token and cached per
    /// (audience, scope). Only APIs the login asked for qualify: IdPs refuse others, and with
    /// rotation a refused refresh can cost the whole session.
    async fn audience_access_token(
        self: &Arc<Self>,
        account: &Arc<Account>,
        audience: &str,
        scope: Option<&str>,
        min_ttl: MinTtl,
    ) -> Result<Arc<Token>> {
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
            min_ttl.fits(current.life)?;
        }
        let good = |t: &Token, now| min_ttl.met_by(t.life, now) && !t.rejected();
        let token = self.fresh_audience(account, &key, good).await?;
        min_ttl.fits(token.life)?;
        Ok(token)
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

pub async fn access_token(broker: &Arc<Broker>, p: GetAccessToken) -> Result<Grant> {
    let account = broker.account(p.account.as_deref())?;
    let min_ttl = MinTtl::new(p.min_ttl);
    let token = match &p.audience {
        // Boxed, as the rare path: see `single_flight`.
        Some(audience) => {
            Box::pin(broker.audience_access_token(&account, audience, p.scope.as_deref(), min_ttl)).await?
        }
        None => {
            // Judged on the session at hand before any refresh: a refresh would not change
            // the lifetime the IdP grants or the scopes of the login. (A machine account's
            // session before its first token says nothing of either.)
            if (min_ttl.asked() || p.scope.is_some())
                && let Some(current) = account.session().filter(|s| super::machine::has_token(s))
            {
                min_ttl.fits(current.access.life)?;
                check_granted(p.scope.as_deref(), &current.access.scopes)?;
            }
            let good = |s: &Session, now| min_ttl.met_by(s.access.life, now) && !s.access.rejected();
            let session = broker.fresh(&account, good).await?;
            min_ttl.fits(session.access.life)?;
            check_granted(p.scope.as_deref(), &session.access.scopes)?;
            session.access.clone()
        }
    };
    Ok(Grant { account, token })
}

pub async fn id_token(broker: &Arc<Broker>, p: GetIdToken) -> Result<IdToken> {
    let account = &broker.account(p.account.as_deref())?;
    super::machine::refuse(account, "ID token")?;
    let min_ttl = MinTtl::new(p.min_ttl);
    if let Some(id) = account.session().and_then(|s| s.id.clone()) {
        min_ttl.fits(id.life)?;
    }
    // A session whose last refresh brought no good ID token is not refreshed again for one:
    // IdPs that renew ID tokens only at login (Google) would be asked on every call.
    let good = |s: &Session, now| !s.id_current || s.id.as_ref().is_none_or(|id| min_ttl.met_by(id.life, now));
    let session = broker.fresh(account, good).await?;
    let Some(id) = &session.id else {
        return Err(Error::new(
            tokenbroker::ErrorKind::NotSupported,
            "the identity provider issued no ID token for this login (some issue none in the device flow; \
             is \"openid\" among the scopes?); `brokerctl profile` says who is logged in",
        ));
    };
    // The refresh keeps the last verified ID token when its own was refused or missing:
    // that one may not last as long as asked.
    if !min_ttl.served_by(id.life, now(), session.id_current)? {
        return Err(Error::new(
            tokenbroker::ErrorKind::NotSupported,
            format!(
                "account {name:?}'s identity provider sent no new valid ID token with the last refresh (some \
                 renew ID tokens only at login; a refused one is in the daemon's log), and the one kept lasts \
                 {left}s more; log in again for a new one: `brokerctl login --account {name}`",
                name = account.name,
                left = id.life.remaining(now()).max(0),
            ),
        ));
    }
    let (id_token, expires_at) = (Secret::new(id.token.expose_secret()), id.life.expires_at);
    Ok(IdToken { account: account.name.clone(), id_token, expires_at })
}
