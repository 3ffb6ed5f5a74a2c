use std::sync::Arc;

use tokenbroker::protocol::{AccountOnly, LogoutDone, Revocation};

use super::{Broker, Error, Event, Result};

/// Revoke the refresh token at the IdP (RFC 7009) when it has an endpoint for it, delete the
/// stored session, and drop every cached token and profile of the account.
///
/// The session is forgotten here even when the IdP cannot be reached to revoke it: the person
/// asked that this machine stop holding and using it, and a refresh token kept back for a
/// later try would be a live credential that no account uses, with no promise that a later
/// try comes (the daemon may not run again). The result says the revocation failed, so the
/// person knows the token stays valid at the IdP until it expires (`brokerctl logout` exits 4),
/// and offers the IdP's end-session page when it has one.
pub async fn logout(broker: &Arc<Broker>, p: AccountOnly) -> Result<LogoutDone> {
    let account = &broker.account(p.account.as_deref())?;
    let turn = account.turn().await;
    if account.config.is_machine() {
        return Ok(super::machine::forget(broker, account));
    }
    let session = account.write(|s| s.log_out());
    let mut revocation = None;
    let mut revocation_error = None;
    let mut end_session_url = None;
    if let Some(session) = &session {
        match account.idp(&*broker.connect).await {
            Ok(idp) => {
                end_session_url = idp.end_session_url();
                revocation = Some(match &session.refresh_token {
                    None => Revocation::NoRefreshToken,
                    Some(refresh_token) => match idp.revoke(refresh_token).await {
                        Ok(true) => Revocation::Revoked,
                        Ok(false) => Revocation::Unsupported,
                        Err(e) => {
                            tracing::warn!(account = %account.name, error = %e, "could not revoke the refresh token");
                            revocation_error = Some(e.to_string());
                            Revocation::Failed
                        }
                    },
                });
            }
            Err(e) => {
                tracing::warn!(account = %account.name, error = %e, "could not reach the identity provider to revoke");
                revocation = Some(if session.refresh_token.is_some() {
                    revocation_error = Some(e.to_string());
                    Revocation::Failed
                } else {
                    Revocation::NoRefreshToken
                });
            }
        }
    }
    broker.unstore(&turn, account).await.map_err(|e| Error::from_store(&account.name, e))?;
    account.wake.notify_one();
    let revoked = revocation == Some(Revocation::Revoked);
    tracing::info!(account = %account.name, revoked, was_logged_in = session.is_some(), "logged out");
    broker.emit(Event::LoggedOut { account: account.name.clone() });
    Ok(LogoutDone {
        account: account.name.clone(),
        revoked,
        end_session_url,
        was_logged_in: Some(session.is_some()),
        revocation,
        revocation_error,
    })
}
