//! Login, AwaitLogin and CancelLogin: the flow (device code or browser code) runs in the
//! background, callers wait on its result. One pending login per account: a second Login with
//! the same flow joins it; one with the other flow replaces it (a browser login nobody can
//! finish must not hold the account until it times out).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use tokenbroker::ErrorKind;
use tokenbroker::protocol::{Flow, Login, LoginCancelled, LoginChallenge, LoginDone};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Account, Broker, Error, Event, Result, Session};
use crate::oidc::dpop::DpopKey;
use crate::oidc::{Approval, Loopback, OidcError, TokenSet, printable};

/// How long a finished login's result stays available to `AwaitLogin`.
const LINGER: Duration = Duration::from_secs(600);
/// How long the browser has to come back in the code flow.
const CODE_FLOW_TIMEOUT: Duration = Duration::from_secs(600);

/// Who a login logged in, to be said to the user: the IdP's words, printable and short.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub subject: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
}

impl Identity {
    fn new(subject: Option<&str>, email: Option<&str>, name: Option<&str>) -> Identity {
        let clean = |text: Option<&str>| text.map(printable).filter(|t| !t.is_empty());
        Identity { subject: clean(subject), email: clean(email), name: clean(name) }
    }

    /// From the login's verified ID token, its email and name from userinfo where the token
    /// has neither (many IdPs put them in userinfo only); without an ID token, from userinfo.
    fn of_login(tokens: &TokenSet, userinfo: Option<&Map<String, Value>>) -> Identity {
        let text = |k: &str| userinfo.and_then(|c| c.get(k)).and_then(Value::as_str);
        match &tokens.id_token {
            Some(id) if id.email.is_some() || id.name.is_some() => {
                Identity::new(Some(&id.subject), id.email.as_deref(), id.name.as_deref())
            }
            Some(id) => Identity::new(Some(&id.subject), text("email"), text("name")),
            None => Identity::new(text("sub"), text("email"), text("name")),
        }
    }
}

pub(super) struct PendingLogin {
    account: String,
    challenge: LoginChallenge,
    done: watch::Sender<Option<Result<Identity>>>,
    /// Stops the flow (and frees a code flow's loopback listener) once the login is ended
    /// from outside: cancelled or replaced.
    cancel: CancellationToken,
    /// The flow has brought tokens and they are being installed: too late to end the login
    /// from outside. Only read and written under `done`'s lock, so cancel and install cannot
    /// both win.
    installing: AtomicBool,
}

impl PendingLogin {
    /// End the login with `result` unless it has ended already, or (`from_outside`) its
    /// tokens are being installed; whether this call ended it.
    fn end(&self, result: Result<Identity>, from_outside: bool) -> bool {
        let ended = self.done.send_if_modified(|done| {
            if done.is_some() || (from_outside && self.installing.load(Ordering::Relaxed)) {
                return false;
            }
            *done = Some(result);
            true
        });
        if ended {
            self.cancel.cancel();
        }
        ended
    }

    /// Claim the login for installing its tokens, unless it has been ended (cancelled,
    /// replaced) already; from then on it can no longer be ended from outside.
    fn claim(&self) -> bool {
        let mut claimed = false;
        self.done.send_if_modified(|done| {
            claimed = done.is_none() && !self.installing.swap(true, Ordering::Relaxed);
            false
        });
        claimed
    }
}

impl Broker {
    async fn start_device(
        &self,
        account: &Account,
        login_id: String,
        dpop: Option<Arc<DpopKey>>,
    ) -> Result<(LoginChallenge, Approval)> {
        let idp = account.idp(&*self.connect).await?.clone();
        let (challenge, approval) = idp
            .start_device(&account.login_scopes(), &account.login_audiences(), dpop)
            .await
            .map_err(|e| Error::from_oidc(&account.name, e))?;
        let challenge = LoginChallenge {
            login_id,
            flow: Flow::Device,
            expires_in: challenge.expires_in.as_secs(),
            verification_uri: Some(challenge.verification_uri),
            verification_uri_complete: challenge.verification_uri_complete,
            user_code: Some(challenge.user_code),
            authorization_url: None,
        };
        Ok((challenge, approval))
    }

    async fn start_code(
        &self,
        account: &Account,
        login_id: String,
        dpop: Option<Arc<DpopKey>>,
    ) -> Result<(LoginChallenge, Approval)> {
        let idp = account.idp(&*self.connect).await?.clone();
        let loopback = Loopback::bind()
            .await
            .map_err(|e| Error::internal(format!("cannot listen on 127.0.0.1 for the login's redirect: {e}")))?;
        let started = idp
            .start_code(&loopback.redirect_uri(), &account.login_scopes(), &account.login_audiences(), dpop)
            .map_err(|e| Error::from_oidc(&account.name, e))?;
        let challenge = LoginChallenge {
            login_id,
            flow: Flow::Code,
            expires_in: CODE_FLOW_TIMEOUT.as_secs(),
            verification_uri: None,
            verification_uri_complete: None,
            user_code: None,
            authorization_url: Some(started.url),
        };
        let approval = async move {
            let wait = loopback.wait(&started.state);
            let code = tokio::time::timeout(CODE_FLOW_TIMEOUT, wait).await.map_err(|_| OidcError::Expired)??;
            (started.exchange)(code).await
        };
        Ok((challenge, Box::pin(approval)))
    }

    async fn finish_login(
        self: Arc<Self>,
        account: Arc<Account>,
        login_id: String,
        pending: Arc<PendingLogin>,
        approval: Approval,
        dpop: Option<Arc<DpopKey>>,
    ) {
        let approved = tokio::select! {
            r = approval => Some(r.map_err(|e| Error::from_oidc(&account.name, e))),
            // Ended from outside (cancelled, replaced): that already told everyone. Dropping
            // the flow here closes a code flow's loopback listener.
            _ = pending.cancel.cancelled() => None,
            _ = self.shutdown.cancelled() => Some(Err(Error::internal("the daemon is shutting down"))),
        };
        if let Some(approved) = approved {
            let result = match approved {
                // Cancelled or replaced just as the tokens came: the login stays ended (this
                // result goes nowhere, the cancellation told everyone already).
                Ok(_) if !pending.claim() => Err(Error::internal("the login was cancelled")),
                Ok(tokens) => self.install(&account, tokens, dpop).await,
                Err(e) => Err(e),
            };
            self.end_login(&pending, result, false);
        }
        // Only waiting: a stop must not wait for it.
        tokio::select! {
            _ = tokio::time::sleep(LINGER) => {}
            _ = self.shutdown.cancelled() => return,
        }
        self.logins.lock().unwrap_or_else(|e| e.into_inner()).remove(&login_id);
    }

    /// End a pending login: its `AwaitLogin` callers get `result`, its flow stops. Whether it
    /// was still pending (and, `from_outside`, not already installing its tokens).
    fn end_login(&self, pending: &PendingLogin, result: Result<Identity>, from_outside: bool) -> bool {
        let error = result.as_ref().err().map(|e| e.message.clone());
        let who = result.as_ref().ok().cloned();
        if !pending.end(result, from_outside) {
            return false;
        }
        match &error {
            None => tracing::info!(account = %pending.account, "logged in"),
            Some(e) => tracing::warn!(account = %pending.account, error = %e, "login ended"),
        }
        let (account, login_id) = (pending.account.clone(), pending.challenge.login_id.clone());
        self.emit(Event::LoginFinished { account, login_id, error, who });
        true
    }

    fn pending_for(&self, account: &str) -> Option<Arc<PendingLogin>> {
        let logins = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        logins.values().find(|p| p.account == account && p.done.borrow().is_none()).cloned()
    }

    /// A login's tokens become the account's session: stored first, then served.
    /// Who logged in is returned.
    /// A `dpop` key, which the login's token requests proved possession of, is kept with the
    /// session; a login that fails drops it with everything else of it.
    async fn install(
        self: &Arc<Self>,
        account: &Arc<Account>,
        tokens: TokenSet,
        dpop: Option<Arc<DpopKey>>,
    ) -> Result<Identity> {
        let key = dpop.as_deref();
        let profile = match &tokens.id_token {
            Some(id) if id.email.is_some() || id.name.is_some() => None,
            // Userinfo must speak of the ID token's subject (OIDC Core 5.3.2), else it is not used.
            Some(id) => {
                let claims = self.whoami(account, &tokens, key).await;
                claims.filter(|c| c.get("sub").and_then(Value::as_str) == Some(id.subject.as_str()))
            }
            None => self.whoami(account, &tokens, key).await,
        };
        let who = Identity::of_login(&tokens, profile.as_ref());
        let turn = account.turn().await;
        let mut session = Session::from_login(tokens, &account.login_scopes(), dpop);
        if let Some(claims) = &profile {
            session.subject = claims.get("sub").and_then(|s| s.as_str()).map(str::to_owned);
        }
        if session.refresh_token.is_none() {
            tracing::warn!(account = %account.name, "the identity provider issued no refresh token; the session ends when the access token expires (add offline_access to the scopes)");
        }
        if let Some(key) = &session.dpop {
            tracing::info!(account = %account.name, jkt = key.thumbprint(), "the session's tokens are bound to its DPoP key");
        }
        self.persist(&turn, account, &session).await;
        let issued_at = session.access.life.issued_at;
        account.write(|s| {
            s.log_in(Arc::new(session));
            s.profile = profile.map(|claims| (issued_at, Arc::new(claims)));
        });
        account.wake.notify_one();
        Ok(who)
    }

    /// Who logged in, from userinfo, for a login that brought no ID token (some IdPs issue
    /// none in the device flow; `Status` then shows userinfo's subject, and later userinfo
    /// answers are held to it) or one without an email or a name to tell the person. Without
    /// userinfo the session still works, unnamed.
    async fn whoami(&self, account: &Account, tokens: &TokenSet, dpop: Option<&DpopKey>) -> Option<Map<String, Value>> {
        let idp = account.idp(&*self.connect).await.ok()?;
        match idp.userinfo(&tokens.access_token, None, dpop).await {
            Ok(claims) => Some(claims),
            Err(e) if tokens.id_token.is_some() => {
                tracing::info!(account = %account.name, error = %e, "no userinfo at login: who logged in is named by the subject alone");
                None
            }
            Err(e) => {
                tracing::warn!(account = %account.name, error = %e, "no ID token and no userinfo: the session has no known subject");
                None
            }
        }
    }
}

impl Broker {
    /// A login of `account` by its configured flow, started by the daemon itself (a desktop
    /// notice's "Log in", which the person clicked).
    pub async fn start_login(self: &Arc<Self>, account: &str) -> Result<LoginChallenge> {
        login(self, Login { account: Some(account.to_owned()), flow: None }).await
    }
}

pub async fn login(broker: &Arc<Broker>, p: Login) -> Result<LoginChallenge> {
    let account = broker.account(p.account.as_deref())?;
    super::machine::refuse(&account, "login: it gets tokens with its own client credentials")?;
    let _starting = account.login_start.lock().await;
    let flow = p.flow.unwrap_or(account.config.flow);
    let replaced = broker.pending_for(&account.name);
    if let Some(pending) = &replaced
        && pending.challenge.flow == flow
    {
        return Ok(pending.challenge.clone());
    }
    let login_id = format!("{:032x}", rand::random::<u128>());
    // The session's key exists before the login's first token request, which proves it.
    let dpop = account.config.dpop.then(|| Arc::new(DpopKey::generate()));
    let (challenge, approval) = match flow {
        Flow::Device => broker.start_device(&account, login_id.clone(), dpop.clone()).await?,
        Flow::Code => broker.start_code(&account, login_id.clone(), dpop.clone()).await?,
    };
    let pending = Arc::new(PendingLogin {
        account: account.name.clone(),
        challenge: challenge.clone(),
        done: watch::channel(None).0,
        cancel: CancellationToken::new(),
        installing: AtomicBool::new(false),
    });
    // Only now that the new flow has started: a failed start leaves the old login alone.
    if let Some(old) = replaced {
        let why = format!("the login was replaced by a new one with the {flow} flow; follow that one instead");
        broker.end_login(&old, Err(Error::new(ErrorKind::LoginExpired, why)), true);
    }
    broker.logins.lock().unwrap_or_else(|e| e.into_inner()).insert(login_id.clone(), pending.clone());
    tracing::info!(account = %account.name, flow = %challenge.flow, "login started");
    broker.tasks.spawn(broker.clone().finish_login(account.clone(), login_id, pending, approval, dpop));
    Ok(challenge)
}

pub async fn await_login(broker: &Broker, login_id: &str) -> Result<LoginDone> {
    let pending = broker.logins.lock().unwrap_or_else(|e| e.into_inner()).get(login_id).cloned().ok_or_else(|| {
        Error::invalid_params("no login with that login_id (finished logins are kept for 10 minutes)")
    })?;
    let mut done = pending.done.subscribe();
    let result = done
        .wait_for(Option::is_some)
        .await
        .map_err(|_| Error::internal("the login was abandoned"))?
        .clone()
        .expect("waited for Some");
    result.map(|who| LoginDone {
        account: pending.account.clone(),
        status: "logged_in".into(),
        subject: who.subject,
        email: who.email,
        name: who.name,
    })
}

/// `CancelLogin`: end the login `login_id` if it is still pending. Once its tokens are
/// being installed it is too late: `cancelled` is false and the login finishes.
pub fn cancel_login(broker: &Broker, login_id: &str) -> LoginCancelled {
    let pending = broker.logins.lock().unwrap_or_else(|e| e.into_inner()).get(login_id).cloned();
    let cancelled = pending.is_some_and(|p| {
        broker.end_login(&p, Err(Error::new(ErrorKind::LoginExpired, "the login was cancelled")), true)
    });
    LoginCancelled { cancelled }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> PendingLogin {
        PendingLogin {
            account: "work".into(),
            challenge: LoginChallenge {
                login_id: "1".into(),
                flow: Flow::Code,
                expires_in: 600,
                verification_uri: None,
                verification_uri_complete: None,
                user_code: None,
                authorization_url: None,
            },
            done: watch::channel(None).0,
            cancel: CancellationToken::new(),
            installing: AtomicBool::new(false),
        }
    }

    fn cancelled() -> Result<Identity> {
        Err(Error::new(ErrorKind::LoginExpired, "cancelled"))
    }

    #[test]
    fn who_logged_in_is_kept_printable() {
        let who = Identity::new(Some("a\u{1b}[2Jb"), Some("x\n@y"), Some("\u{7}"));
        assert_eq!(who, Identity { subject: Some("a[2Jb".into()), email: Some("x@y".into()), name: None });
    }

    fn tokens(email: Option<&str>, name: Option<&str>) -> TokenSet {
        TokenSet {
            access_token: "a".to_owned().into(),
            token_type: "Bearer".into(),
            expires_in: None,
            refresh_token: None,
            id_token: Some(crate::oidc::VerifiedIdToken {
                token: "t".to_owned().into(),
                subject: "alice".into(),
                expires_at: 0,
                issued_at: 0,
                email: email.map(Into::into),
                name: name.map(Into::into),
            }),
            id_token_refused: None,
            scopes: None,
        }
    }

    #[test]
    fn who_logged_in_is_named_from_userinfo_when_the_id_token_names_nobody() {
        let userinfo: Map<String, Value> =
            serde_json::from_str(r#"{"sub":"alice","email":"a@example.com","name":"Alice"}"#).unwrap();
        let who = Identity::of_login(&tokens(None, None), Some(&userinfo));
        assert_eq!((who.email.as_deref(), who.name.as_deref()), (Some("a@example.com"), Some("Alice")));
        // An ID token that names the person is believed over userinfo.
        let who = Identity::of_login(&tokens(Some("x@example.com"), None), Some(&userinfo));
        assert_eq!((who.email.as_deref(), who.name.as_deref()), (Some("x@example.com"), None));
        assert_eq!(who.subject.as_deref(), Some("alice"));
    }

    #[test]
    fn installing_and_ending_from_outside_exclude_each_other() {
        let installing = pending();
        assert!(installing.claim());
        assert!(!installing.end(cancelled(), true), "too late to cancel or replace");
        assert!(!installing.claim(), "one install");
        assert!(installing.end(Ok(Identity::default()), false), "the install ends it");
        assert!(matches!(*installing.done.borrow(), Some(Ok(_))));

        let ended = pending();
        assert!(ended.end(cancelled(), true));
        assert!(!ended.claim(), "a cancelled or replaced login installs nothing");
    }
}
