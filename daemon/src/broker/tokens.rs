//! GetAccessToken and GetIdToken.

use std::sync::Arc;

use secrecy::ExposeSecret;
use tokenbroker::Secret;
use tokenbroker::protocol::{AccessToken, GetAccessToken, GetIdToken, IdToken};

use super::{Broker, Error, Result};

impl Broker {
    pub async fn access_token(self: &Arc<Self>, p: GetAccessToken) -> Result<AccessToken> {
        let account = self.account(p.account.as_deref())?;
        let c = &account.config;
        if let Some(aud) = p.audience.as_deref().filter(|a| Some(*a) != c.audience.as_deref()) {
            let known = c.audiences.iter().any(|a| a == aud) || c.management_api.as_deref() == Some(aud);
            if !known {
                return Err(Error::invalid_params(format!(
                    "account {:?} is not configured for audience {aud:?}; add it to `audiences` in the config",
                    account.name
                )));
            }
            return Err(Error::new(
                tokenbroker::ErrorKind::NotSupported,
                format!("tokens for the extra audience {aud:?} are not supported yet; ask without an audience"),
            ));
        }
        let min_ttl = p.min_ttl.unwrap_or(0) as i64;
        if let Some(current) = account.session()
            && min_ttl > current.lifetime()
        {
            return Err(large_min_ttl(min_ttl, current.lifetime()));
        }
        let session = self.fresh(account, |s, now| s.remaining(now) >= min_ttl.max(1)).await?;
        if session.remaining(super::session::now()) < min_ttl {
            return Err(large_min_ttl(min_ttl, session.lifetime()));
        }
        if let Some(scope) = &p.scope {
            let missing: Vec<&str> =
                scope.split_whitespace().filter(|s| !session.scopes.iter().any(|g| g == s)).collect();
            if !missing.is_empty() {
                return Err(Error::invalid_params(format!(
                    "scope {} was not granted at login (granted: {})",
                    missing.join(" "),
                    session.scopes.join(" ")
                )));
            }
        }
        Ok(AccessToken {
            account: account.name.clone(),
            access_token: Secret::new(session.access_token.expose_secret()),
            token_type: session.token_type.clone(),
            expires_at: session.expires_at,
            scope: Some(session.scopes.join(" ")),
        })
    }

    pub async fn id_token(self: &Arc<Self>, p: GetIdToken) -> Result<IdToken> {
        let account = self.account(p.account.as_deref())?;
        let min_ttl = p.min_ttl.unwrap_or(0) as i64;
        let session = self.fresh(account, |s, now| s.id_expires_at.is_none_or(|e| e - now >= min_ttl.max(1))).await?;
        match (&session.id_token, session.id_expires_at) {
            (Some(token), Some(expires_at)) if expires_at - super::session::now() >= min_ttl => {
                Ok(IdToken { account: account.name.clone(), id_token: Secret::new(token.expose_secret()), expires_at })
            }
            (Some(_), Some(expires_at)) => Err(large_min_ttl(min_ttl, expires_at - session.issued_at)),
            _ => Err(Error::new(
                tokenbroker::ErrorKind::NotSupported,
                "the identity provider issued no ID token for this session (is \"openid\" among the scopes?)",
            )),
        }
    }
}

/// Auth0's `largeMinTTL`: no refresh can satisfy the request.
fn large_min_ttl(min_ttl: i64, lifetime: i64) -> Error {
    Error::invalid_params(format!(
        "min_ttl {min_ttl}s is longer than the token lifetime of {lifetime}s that the identity provider grants; ask for less"
    ))
}
