//! Login and AwaitLogin: the device flow runs in the background, callers wait on its result.

use std::sync::Arc;
use std::time::Duration;

use tokenbroker::ErrorKind;
use tokenbroker::protocol::{Flow, Login, LoginChallenge, LoginDone};
use tokio::sync::watch;

use super::{Account, Broker, Error, Event, Result, Session};
use crate::oidc::TokenSet;

/// How long a finished login's result stays available to `AwaitLogin`.
const LINGER: Duration = Duration::from_secs(600);

pub(super) struct PendingLogin {
    account: String,
    challenge: LoginChallenge,
    done: watch::Sender<Option<Result<()>>>,
}

impl Broker {
    pub async fn login(self: &Arc<Self>, p: Login) -> Result<LoginChallenge> {
        let account = self.account(p.account.as_deref())?.clone();
        let flow = p.flow.unwrap_or(account.config.flow);
        if flow == Flow::Code {
            return Err(Error::new(
                ErrorKind::NotSupported,
                "the browser (code) flow is not available yet; use --flow device",
            ));
        }
        // One pending login per account: a second request joins the first.
        if let Some(pending) = self.pending_for(&account.name) {
            return Ok(pending.challenge.clone());
        }
        let provider = account.provider(&self.http).await?.clone();
        let (challenge, device) = provider
            .start_device(&account.config.scopes, &account.login_audiences())
            .await
            .map_err(|e| Error::from_oidc(&account.name, e))?;
        let login_id = format!("{:032x}", rand::random::<u128>());
        let pending = Arc::new(PendingLogin {
            account: account.name.clone(),
            challenge: LoginChallenge {
                login_id: login_id.clone(),
                flow: Flow::Device,
                expires_in: challenge.expires_in.as_secs(),
                verification_uri: Some(challenge.verification_uri),
                verification_uri_complete: challenge.verification_uri_complete,
                user_code: Some(challenge.user_code),
                authorization_url: None,
            },
            done: watch::channel(None).0,
        });
        self.logins.lock().unwrap_or_else(|e| e.into_inner()).insert(login_id.clone(), pending.clone());
        tracing::info!(account = %account.name, "device login started");

        let broker = self.clone();
        let challenge = pending.challenge.clone();
        tokio::spawn(async move {
            let result = tokio::select! {
                r = provider.finish_device(&device) => match r {
                    Ok(tokens) => broker.install(&account, tokens).await,
                    Err(e) => Err(Error::from_oidc(&account.name, e)),
                },
                _ = broker.shutdown.cancelled() => Err(Error::internal("the daemon is shutting down")),
            };
            match &result {
                Ok(()) => tracing::info!(account = %account.name, "logged in"),
                Err(e) => tracing::warn!(account = %account.name, error = %e, "login failed"),
            }
            broker.emit(Event::LoginFinished {
                account: account.name.clone(),
                error: result.as_ref().err().map(|e| e.message.clone()),
            });
            pending.done.send_replace(Some(result));
            tokio::time::sleep(LINGER).await;
            broker.logins.lock().unwrap_or_else(|e| e.into_inner()).remove(&login_id);
        });
        Ok(challenge)
    }

    pub async fn await_login(&self, login_id: &str) -> Result<LoginDone> {
        let pending =
            self.logins.lock().unwrap_or_else(|e| e.into_inner()).get(login_id).cloned().ok_or_else(|| {
                Error::invalid_params("no login with that login_id (finished logins are kept for 10 minutes)")
            })?;
        let mut done = pending.done.subscribe();
        let result = done
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::internal("the login was abandoned"))?
            .clone()
            .expect("waited for Some");
        result.map(|()| LoginDone { account: pending.account.clone(), status: "logged_in".into() })
    }

    fn pending_for(&self, account: &str) -> Option<Arc<PendingLogin>> {
        let logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        logins.values().find(|p| p.account == account && p.done.borrow().is_none()).cloned()
    }

    /// A login's tokens become the account's session: stored first, then served.
    async fn install(&self, account: &Account, tokens: TokenSet) -> Result<()> {
        let _flight = account.refresh_lock.lock().await;
        let session = Session::from_login(tokens, &account.config.scopes);
        if session.refresh_token.is_none() {
            tracing::warn!(account = %account.name, "the identity provider issued no refresh token; the session ends when the access token expires (add offline_access to the scopes)");
        }
        self.persist(account, &session).await;
        account.write(|s| {
            s.clear();
            s.session = Some(Arc::new(session));
        });
        account.wake.notify_one();
        Ok(())
    }
}
