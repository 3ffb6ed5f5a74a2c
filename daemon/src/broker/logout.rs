use std::sync::Arc;

use tokenbroker::protocol::{AccountOnly, LogoutDone};

use super::{Broker, Error, Event, Result};

impl Broker {
    /// Revoke the refresh token at the IdP (RFC 7009) when it has an endpoint for it, delete
    /// the keyring entry, and drop every cached token and profile of the account.
    pub async fn logout(self: &Arc<Self>, p: AccountOnly) -> Result<LogoutDone> {
        let account = self.account(p.account.as_deref())?;
        let _flight = account.refresh_lock.lock().await;
        let session = account.write(|s| {
            s.login_required = false;
            s.profile = None;
            s.last_failure = None;
            s.retry_at = None;
            s.session.take()
        });
        let mut revoked = false;
        if let Some(refresh_token) = session.as_ref().and_then(|s| s.refresh_token.as_ref()) {
            match account.provider(&self.http).await {
                Ok(provider) => match provider.revoke(refresh_token).await {
                    Ok(done) => revoked = done,
                    Err(e) => {
                        tracing::warn!(account = %account.name, error = %e, "could not revoke the refresh token")
                    }
                },
                Err(e) => {
                    tracing::warn!(account = %account.name, error = %e, "could not reach the identity provider to revoke")
                }
            }
        }
        self.store.delete(&account.name).await.map_err(|e| Error::from_store(&account.name, e))?;
        account.wake.notify_one();
        tracing::info!(account = %account.name, revoked, "logged out");
        self.emit(Event::LoggedOut { account: account.name.clone() });
        Ok(LogoutDone { account: account.name.clone(), revoked })
    }
}
