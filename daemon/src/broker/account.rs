//! One configured account: its config, its session and what is known about its state.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tokenbroker::protocol::AccountState;
use tokio::sync::{Notify, OnceCell};
use tokio_util::sync::CancellationToken;

use super::audience::AudienceKey;
use super::error::{Error, Result};
use super::session::{Session, now};
use super::token::Token;
use crate::config::AccountConfig;
use crate::oidc::{Audiences, ClientSettings, Connect, EndpointOverrides, Idp};

/// What a user-facing Management API token must carry to read and update the user's own
/// metadata (Auth0's names).
pub const MANAGEMENT_SCOPES: &str = "read:current_user update:current_user_metadata";

pub struct Account {
    pub name: String,
    pub config: AccountConfig,
    /// Whether a scheduler refreshes this account before expiry.
    pub proactive: bool,
    /// Stops the account's background work when the daemon stops or a reload drops it.
    pub stop: CancellationToken,
    idp: OnceCell<Arc<dyn Idp>>,
    state: RwLock<State>,
    /// The account's turn (see [`Turn`]). In an `Arc` so a refresh's own task can hold it
    /// past its callers.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Held while a login starts (an IdP round trip), so a second Login finds the first
    /// pending and joins it instead of starting another flow.
    pub(super) login_start: tokio::sync::Mutex<()>,
    /// Wakes the account's refresh scheduler when its session changes.
    pub(super) wake: Notify,
}

/// Where an account is in its life: one of these, never two at once. Everything else in
/// [`State`] is about the session of `LoggedIn` and goes with it (see the transitions).
#[derive(Default)]
pub(super) enum Phase {
    /// Never logged in, or logged out.
    #[default]
    LoggedOut,
    /// The IdP refused the session (revoked, expired); until the next login.
    LoginRequired,
    LoggedIn(Arc<Session>),
}

/// The account's turn, held for the whole of a refresh (the single flight), a login's install,
/// a logout or a retried store write. The store's writes of the account's session take it
/// (`Broker::persist`, `save`, `unstore`): so the holder is the one writer of the account's
/// entry, and no two writes of it race or land out of order.
pub(super) struct Turn {
    _held: tokio::sync::OwnedMutexGuard<()>,
}

#[derive(Default)]
pub(super) struct State {
    pub phase: Phase,
    pub refresh: Refreshes,
    /// Set while the session in memory is newer than the store's copy (a write failed): when
    /// the scheduler tries the write again, in Unix milliseconds.
    pub save_retry_at: Option<i64>,
    /// Userinfo claims and the access token's issue time they were fetched with.
    pub profile: Option<(i64, Arc<serde_json::Map<String, serde_json::Value>>)>,
    /// Tokens for the account's other APIs.
    pub audience_tokens: HashMap<AudienceKey, Arc<Token>>,
    /// The last token dropped by `RejectToken`, per audience (`None`: the session's own).
    pub rejections: HashMap<Option<String>, super::reject::Dropped>,
}

/// How the refreshes of the session went: what callers and the scheduler go by until the
/// next one.
#[derive(Default)]
pub(super) struct Refreshes {
    /// One is in flight (any caller's or the scheduler's).
    pub running: bool,
    /// Finished attempts, so callers queued behind one can tell it happened.
    pub attempts: u64,
    pub last_failure: Option<Error>,
    /// Unix milliseconds before which the scheduler will not retry a failed refresh.
    pub retry_at: Option<i64>,
    /// Unix milliseconds until which the IdP asked (`Retry-After`) not to be asked again:
    /// callers get the last failure instead of a new request until then.
    pub hold_until: Option<i64>,
}

impl State {
    pub fn session(&self) -> Option<&Arc<Session>> {
        match &self.phase {
            Phase::LoggedIn(session) => Some(session),
            Phase::LoggedOut | Phase::LoginRequired => None,
        }
    }

    /// A login's session (or one loaded from the store): whatever was derived from an earlier
    /// session goes. A pending store write stays: `persist` has just set it for this one.
    pub fn log_in(&mut self, session: Arc<Session>) {
        let pending_write = self.save_retry_at;
        self.leave(Phase::LoggedIn(session));
        self.save_retry_at = pending_write;
    }

    /// The same login, renewed by a refresh: what was derived from it stays.
    pub fn renew(&mut self, session: Arc<Session>) {
        self.phase = Phase::LoggedIn(session);
    }

    /// The user logged out; the session that was, if any.
    pub fn log_out(&mut self) -> Option<Arc<Session>> {
        match self.leave(Phase::LoggedOut) {
            Phase::LoggedIn(session) => Some(session),
            Phase::LoggedOut | Phase::LoginRequired => None,
        }
    }

    /// The IdP refused the session.
    pub fn refused(&mut self) {
        self.leave(Phase::LoginRequired);
    }

    /// Into `next`, forgetting everything derived from the session left; the phase left.
    fn leave(&mut self, next: Phase) -> Phase {
        self.profile = None;
        self.refresh.last_failure = None;
        self.refresh.retry_at = None;
        self.refresh.hold_until = None;
        self.save_retry_at = None;
        self.audience_tokens.clear();
        self.rejections.clear();
        std::mem::replace(&mut self.phase, next)
    }
}

impl Account {
    pub fn new(name: String, config: AccountConfig, proactive: bool, shutdown: &CancellationToken) -> Self {
        Account {
            name,
            config,
            proactive,
            stop: shutdown.child_token(),
            idp: OnceCell::new(),
            state: RwLock::new(State::default()),
            turn: Arc::new(tokio::sync::Mutex::new(())),
            login_start: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
        }
    }

    /// The account's IdP, discovered on first use; a failure is not cached.
    pub async fn idp(&self, connect: &dyn Connect) -> Result<&Arc<dyn Idp>> {
        self.idp
            .get_or_try_init(|| async { connect.connect(&self.client_settings()).await })
            .await
            .map_err(|e| Error::from_oidc(&self.name, e))
    }

    /// Who the account is at its IdP, as its config says.
    pub fn client_settings(&self) -> ClientSettings<'_> {
        client_settings(&self.config)
    }

    /// Wait for the account's turn.
    pub(super) async fn turn(&self) -> Turn {
        Turn { _held: self.turn.clone().lock_owned().await }
    }

    pub(super) fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub(super) fn write<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.write().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the account holds a session the store has not taken (kept in memory only).
    pub fn unsaved(&self) -> bool {
        self.read(|s| s.save_retry_at.is_some() && s.session().is_some())
    }

    pub fn session(&self) -> Option<Arc<Session>> {
        self.read(|s| s.session().cloned())
    }

    pub fn state(&self) -> AccountState {
        self.read(|s| match &s.phase {
            Phase::LoginRequired => AccountState::LoginRequired,
            Phase::LoggedOut => AccountState::LoggedOut,
            Phase::LoggedIn(_) if s.refresh.running => AccountState::Refreshing,
            Phase::LoggedIn(session) if session.access.life.expires_at > now() => AccountState::Valid,
            Phase::LoggedIn(_) => AccountState::Expired,
        })
    }

    /// The error for an account with no usable session.
    pub fn no_session_error(&self) -> Error {
        if self.read(|s| matches!(s.phase, Phase::LoginRequired)) {
            Error::login_required(&self.name)
        } else {
            Error::not_logged_in(&self.name)
        }
    }

    /// The scopes the login asks for: the configured ones, plus what the management API needs
    /// when there is one. Auth0 puts only requested scopes into a Management API token, so a
    /// login without these could never read or write the user's metadata.
    pub fn login_scopes(&self) -> Vec<String> {
        let mut scopes = self.config.scopes.clone();
        if self.config.management_api.is_some() {
            for s in MANAGEMENT_SCOPES.split(' ') {
                if !scopes.iter().any(|have| have == s) {
                    scopes.push(s.to_owned());
                }
            }
        }
        scopes
    }

    /// Every API the login asks for (see the contract): audience, audiences, management API.
    pub fn login_audiences(&self) -> Audiences {
        let c = &self.config;
        let mut values: Vec<String> = c.audience.iter().chain(&c.audiences).cloned().collect();
        if let Some(m) = &c.management_api
            && !values.contains(m)
        {
            values.push(m.clone());
        }
        Audiences { param: c.audience_param.name(), values }
    }
}

/// Who an account is at its IdP, as its config says.
pub fn client_settings(c: &AccountConfig) -> ClientSettings<'_> {
    ClientSettings {
        issuer: &c.issuer,
        client_id: &c.client_id,
        client_secret: c.client_secret.as_ref().map(|s| s.expose()),
        auth_params: &c.auth_params,
        overrides: EndpointOverrides {
            device_authorization: c.device_authorization_endpoint.clone(),
            revocation: c.revocation_endpoint.clone(),
            userinfo: c.userinfo_endpoint.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use secrecy::{ExposeSecret, SecretString};

    use super::*;
    use crate::broker::token::Life;

    fn session(access: &str) -> Arc<Session> {
        let token = Token::new(SecretString::from(access), "Bearer".into(), vec![], Life::starting(now(), 60));
        Arc::new(Session {
            refresh_token: None,
            access: Arc::new(token),
            id: None,
            id_current: false,
            subject: None,
            dpop: None,
        })
    }

    /// What a session brought (an audience token, the profile) goes when another login, a
    /// logout or a refusal replaces it, and stays while a refresh renews it.
    #[test]
    fn the_phases_and_what_each_transition_keeps() {
        let mut s = State::default();
        let derive = |s: &mut State| {
            s.audience_tokens.insert(AudienceKey::new("api", None), s.session().unwrap().access.clone());
            s.profile = Some((0, Arc::default()));
        };
        s.log_in(session("a"));
        derive(&mut s);
        s.renew(session("b"));
        assert!(s.profile.is_some() && s.audience_tokens.len() == 1, "a refresh keeps what the login brought");
        s.save_retry_at = Some(1);
        s.log_in(session("c"));
        assert!(s.profile.is_none() && s.audience_tokens.is_empty(), "a new login starts afresh");
        assert_eq!(s.save_retry_at, Some(1), "the pending write is the new session's");
        derive(&mut s);
        s.refused();
        assert!(matches!(s.phase, Phase::LoginRequired) && s.session().is_none() && s.audience_tokens.is_empty());
        assert!(s.log_out().is_none(), "no session to give back");
        s.log_in(session("d"));
        assert!(s.log_out().is_some_and(|x| x.access.secret.expose_secret() == "d"));
        assert!(matches!(s.phase, Phase::LoggedOut) && s.save_retry_at.is_none());
    }
}
