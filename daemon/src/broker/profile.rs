use std::sync::Arc;

use tokenbroker::protocol::{GetProfile, Profile};

use super::ttl::MinTtl;
use super::{Broker, Error, Result, Session};
use crate::oidc::OidcError;

/// The userinfo claims, cached until the access token changes or `refresh` is asked.
pub async fn profile(broker: &Arc<Broker>, p: GetProfile) -> Result<Profile> {
    let account = &broker.account(p.account.as_deref())?;
    super::machine::refuse(account, "profile")?;
    let session = broker.fresh(account, |s, now| MinTtl::NONE.met_by(s.access.life, now)).await?;
    let cached = account.read(|s| s.profile.clone());
    if !p.refresh
        && let Some((issued_at, claims)) = cached
        && issued_at == session.access.life.issued_at
    {
        return Ok(Profile { account: account.name.clone(), claims: (*claims).clone() });
    }
    let idp = account.idp(&*broker.connect).await?;
    let userinfo =
        |s: Arc<Session>| async move { idp.userinfo(&s.access.secret, s.subject.as_deref(), s.dpop.as_deref()).await };
    let (session, claims) = match userinfo(session.clone()).await {
        // A refused access token (revoked, or bound to an API by the IdP) is not a dead
        // session: get a new one once and ask again. Only the token endpoint's
        // `invalid_grant` ends a session.
        // Without a refresh token, a refresh would only end the session: say what happened.
        Err(OidcError::TokenRefused(why)) if session.refresh_token.is_some() => {
            tracing::info!(account = %account.name, %why, "userinfo refused the access token; refreshing once");
            // Any session but this one (held here, so its address stays its own) will do;
            // no second copy of the token is needed to tell.
            let refused: &Session = &session;
            let renewed = broker.fresh(account, |s, _| !std::ptr::eq(s, refused)).await?;
            let claims = userinfo(renewed.clone()).await;
            (renewed, claims)
        }
        other => (session, other),
    };
    let claims = Arc::new(claims.map_err(|e| Error::from_oidc(&account.name, e))?);
    account.write(|s| s.profile = Some((session.access.life.issued_at, claims.clone())));
    Ok(Profile { account: account.name.clone(), claims: (*claims).clone() })
}
