//! Single-flight refresh: any number of callers that need a fresher session share one
//! token-endpoint request per account.

use std::sync::Arc;

use super::session::now;
use super::{Account, Broker, Error, Event, Result, Session};
use crate::oidc::{Audiences, OidcError};

impl Broker {
    /// A session for which `good` holds, refreshed first if the current one fails it.
    pub(super) async fn fresh(
        self: &Arc<Self>,
        account: &Arc<Account>,
        good: impl Fn(&Session, i64) -> bool,
    ) -> Result<Arc<Session>> {
        let (session, attempts) = account.read(|s| (s.session.clone(), s.attempts));
        let session = session.ok_or_else(|| account.no_session_error())?;
        if good(&session, now()) {
            return Ok(session);
        }
        self.refresh(account, attempts, good).await
    }

    /// Refresh unless, by the time this caller's turn comes, someone else already has.
    /// `seen_attempts` is the attempt count the caller saw before queueing: if an attempt
    /// finished since and failed, the caller gets that failure instead of trying again, so a
    /// crowd behind a failing IdP makes one request, not one each.
    pub(super) async fn refresh(
        self: &Arc<Self>,
        account: &Arc<Account>,
        seen_attempts: u64,
        good: impl Fn(&Session, i64) -> bool,
    ) -> Result<Arc<Session>> {
        let _flight = account.refresh_lock.lock().await;
        let (session, attempts, failure) = account.read(|s| (s.session.clone(), s.attempts, s.last_failure.clone()));
        let session = session.ok_or_else(|| account.no_session_error())?;
        if good(&session, now()) {
            return Ok(session);
        }
        if attempts != seen_attempts
            && let Some(e) = failure
        {
            return Err(e);
        }
        // In a task of its own: once the IdP has rotated the refresh token, no caller going
        // away may cancel the write of the new one.
        let task = tokio::spawn(self.clone().run_refresh(account.clone(), session));
        task.await.map_err(|e| Error::internal(format!("refresh task failed: {e}")))?
    }

    async fn run_refresh(self: Arc<Self>, account: Arc<Account>, session: Arc<Session>) -> Result<Arc<Session>> {
        account.write(|s| s.refreshing = true);
        let result = self.exchange(&account, &session).await;
        account.write(|s| {
            s.refreshing = false;
            s.attempts += 1;
            match &result {
                Ok(new) => {
                    s.session = Some(new.clone());
                    s.last_failure = None;
                    s.retry_at = None;
                }
                Err(e) => s.last_failure = Some(e.clone()),
            }
        });
        if let Ok(new) = &result {
            account.wake.notify_one();
            self.emit(Event::TokenRefreshed { account: account.name.clone(), expires_at: new.expires_at });
        }
        result
    }

    async fn exchange(&self, account: &Account, session: &Session) -> Result<Arc<Session>> {
        let Some(refresh_token) = &session.refresh_token else {
            tracing::warn!(account = %account.name, "the access token expired and there is no refresh token (is offline_access among the scopes?)");
            self.end_session(account).await;
            return Err(Error::login_required(&account.name));
        };
        let provider = account.provider(&self.http).await?;
        tracing::debug!(account = %account.name, "refreshing");
        match provider.refresh(refresh_token, &Audiences::default()).await {
            Ok(tokens) => {
                let new = Arc::new(session.renewed(tokens));
                self.persist(account, &new).await;
                tracing::info!(account = %account.name, expires_at = new.expires_at, "refreshed");
                Ok(new)
            }
            Err(OidcError::InvalidGrant(why)) => {
                tracing::warn!(account = %account.name, %why, "the identity provider refused the refresh token; login required");
                self.end_session(account).await;
                Err(Error::login_required(&account.name))
            }
            Err(e) => {
                tracing::warn!(account = %account.name, error = %e, "refresh failed");
                Err(Error::from_oidc(&account.name, e))
            }
        }
    }

    /// The IdP refused the session: forget it everywhere until the user logs in again.
    async fn end_session(&self, account: &Account) {
        account.write(|s| {
            s.session = None;
            s.login_required = true;
            s.profile = None;
        });
        if let Err(e) = self.store.delete(&account.name).await {
            tracing::error!(account = %account.name, error = %e, "could not delete the refused session from the keyring");
        }
        self.emit(Event::LoginRequired { account: account.name.clone() });
    }
}
