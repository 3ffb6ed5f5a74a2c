use std::sync::Arc;

use tokenbroker::protocol::{AccountOnly, LogoutDone};

use super::{Broker, Error, Event, Result};

/// Revoke the refresh token at the IdP (RFC 7009) when it has an endpoint for it, delete
/// the keyring entry, and drop every cached token and profile of the account.
pub async fn logout(broker: &Arc<Broker>, p: AccountOnly) -> Result<LogoutDone> {
    let account = &broker.account(p.account.as_deref())?;
    let turn = account.turn().await;
    let session = account.write(|s| s.log_out());
    let mut revoked = false;
    let mut end_session_url = None;
    if let Some(session) = &session {
        match account.idp(&*broker.connect).await {
            Ok(idp) => {
                end_session_url = idp.end_session_url();
                if let Some(refresh_token) = &session.refresh_token {
                    match idp.revoke(refresh_token).await {
                        Ok(done) => revoked = done,
                        Err(e) => {
                            tracing::warn!(account = %account.name, error = %e, "could not revoke the refresh token")
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(account = %account.name, error = %e, "could not reach the identity provider to revoke")
            }
        }
    }
    broker.unstore(&turn, account).await.map_err(|e| Error::from_store(&account.name, e))?;
    account.wake.notify_one();
    tracing::info!(account = %account.name, revoked, "logged out");
    broker.emit(Event::LoggedOut { account: account.name.clone() });
    Ok(LogoutDone { account: account.name.clone(), revoked, end_session_url })
}
