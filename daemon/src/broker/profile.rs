use std::sync::Arc;

use tokenbroker::protocol::{GetProfile, Profile};

use super::{Broker, Error, Result};

impl Broker {
    /// The userinfo claims, cached until the access token changes or `refresh` is asked.
    pub async fn profile(self: &Arc<Self>, p: GetProfile) -> Result<Profile> {
        let account = &self.account(p.account.as_deref())?;
        let session = self.fresh(account, |s, now| s.remaining(now) >= 1).await?;
        let cached = account.read(|s| s.profile.clone());
        if !p.refresh
            && let Some((issued_at, claims)) = cached
            && issued_at == session.issued_at
        {
            return Ok(Profile { account: account.name.clone(), claims: (*claims).clone() });
        }
        let provider = account.provider(&self.http).await?;
        let claims = provider
            .userinfo(&session.access_token, session.subject.as_deref())
            .await
            .map_err(|e| Error::from_oidc(&account.name, e))?;
        let claims = Arc::new(claims);
        account.write(|s| s.profile = Some((session.issued_at, claims.clone())));
        Ok(Profile { account: account.name.clone(), claims: (*claims).clone() })
    }
}
