//! The broker core: accounts, their sessions, single-flight refresh, the refresh scheduler
//! and logins. It knows nothing of sockets or D-Bus; the doors in `serve` call it.

mod account;
mod audience;
pub mod consent;
#[cfg(test)]
mod core_tests;
mod doctor;
mod dpop;
#[cfg(test)]
mod dpop_tests;
mod error;
#[cfg(test)]
mod fake_idp;
pub mod forward;
#[cfg(test)]
mod forward_tests;
mod login;
mod logout;
mod machine;
#[cfg(test)]
mod machine_tests;
mod metadata;
pub mod notice;
mod offers;
pub mod policy;
#[cfg(test)]
mod policy_tests;
mod profile;
mod refresh;
mod reject;
pub mod request;
mod scheduler;
mod session;
mod status;
mod token;
mod tokens;
mod ttl;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use account::Account;
use account::Turn;
pub(crate) use doctor::idp_checks;
pub use error::{Error, Result};
pub use login::Identity;
use login::PendingLogin;
pub use session::Session;
pub use token::{Memo, Token};
pub use tokens::Grant;

use crate::audit::Audit;
use crate::config::Config;
use crate::oidc::Connect;
use crate::store::SessionStore;

/// What happened to an account, for whoever listens (the D-Bus door's signals, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    TokenRefreshed {
        account: String,
        expires_at: i64,
    },
    LoggedOut {
        account: String,
    },
    LoginRequired {
        account: String,
    },
    /// A refresh failed for another reason than a refused grant (the IdP unreachable or
    /// refusing the request): not a signal; counted for the desktop notices (`notify`).
    RefreshFailed {
        account: String,
    },
    /// A program's request waits for the person: show them the question.
    ConsentAsked(Arc<tokenbroker::protocol::ConsentQuestion>),
    /// The question was answered (anywhere) or ended unanswered: stop showing it.
    ConsentClosed {
        id: String,
    },
    /// `who` is set when the login succeeded.
    LoginFinished {
        account: String,
        login_id: String,
        error: Option<String>,
        who: Option<Identity>,
    },
}

pub struct Broker {
    roster: RwLock<Arc<Roster>>,
    config_path: PathBuf,
    /// Finds each account's IdP (the real ones, or a fake in tests).
    connect: Arc<dyn Connect>,
    store: SessionStore,
    logins: Mutex<HashMap<String, Arc<PendingLogin>>>,
    events: broadcast::Sender<Event>,
    shutdown: CancellationToken,
    /// Every task the core starts (refreshes, schedulers, logins, save retries), so a stop can
    /// wait for them: a refresh cut off between the IdP's answer and the store write would
    /// lose a rotated refresh token, and with it the session.
    tasks: TaskTracker,
    /// Where every grant and refusal is recorded.
    audit: Audit,
    /// The policy's questions to the person, and their remembered answers.
    consents: consent::Consents,
    /// The restricted doors for SSH sessions and containers.
    forwards: forward::Forwards,
}

/// The configured accounts, replaced whole when the config is reloaded.
#[derive(Default)]
struct Roster {
    accounts: BTreeMap<String, Arc<Account>>,
    default_account: Option<String>,
    policy: policy::Policy,
    /// The config's `notify`: desktop notices about accounts that need the person.
    notify: bool,
    /// The config's `browser_command`, for a login the daemon starts itself.
    browser_command: Option<Vec<String>>,
}

/// What a reload changed, by account name.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl Roster {
    fn names(&self) -> String {
        if self.accounts.is_empty() {
            return "none (add an [accounts.NAME] table to the config)".into();
        }
        self.accounts.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
    }

    /// Why a request that names no account has none: no default among several, or none at all.
    fn no_account_named(&self) -> String {
        if self.accounts.is_empty() {
            return "no accounts are configured: add an [accounts.NAME] table (issuer, client_id) to the config, \
                    then reload the daemon (SIGHUP)"
                .into();
        }
        format!("no account named and no default_account in the config; name one of: {}", self.names())
    }
}

impl Broker {
    /// Build the core and load every account's session from the store, so a restart needs
    /// no new login. A store that cannot be read leaves accounts logged out, and says why.
    pub async fn start(
        config_path: PathBuf,
        config: &Config,
        store: SessionStore,
        connect: Arc<dyn Connect>,
        audit: Audit,
        consents: consent::Consents,
    ) -> Arc<Broker> {
        let broker = Arc::new(Broker {
            roster: RwLock::new(Arc::new(Roster::default())),
            config_path,
            connect,
            store,
            logins: Mutex::new(HashMap::new()),
            events: broadcast::channel(64).0,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            audit,
            consents,
            forwards: forward::Forwards::default(),
        });
        broker.reload(config).await;
        broker
    }

    /// Take a new config: unchanged accounts keep their sessions; added and changed ones are
    /// (re)loaded from the store; removed ones stop (their keyring entries stay, for when they
    /// come back).
    pub async fn reload(self: &Arc<Self>, config: &Config) -> Reloaded {
        let old = self.roster();
        let mut summary = Reloaded::default();
        let mut accounts = BTreeMap::new();
        for (name, c) in &config.accounts {
            // Machine accounts get tokens on demand only (see machine.rs).
            let proactive = config.proactive_refresh && !c.is_machine();
            let kept = old.accounts.get(name).filter(|a| a.config == *c && a.proactive == proactive);
            let account = match kept {
                Some(a) => a.clone(),
                None => {
                    let changes =
                        if old.accounts.contains_key(name) { &mut summary.changed } else { &mut summary.added };
                    changes.push(name.clone());
                    let account = Arc::new(Account::new(name.clone(), c.clone(), proactive, &self.shutdown));
                    self.load(&account).await;
                    self.tasks.spawn(self.clone().schedule(account.clone()));
                    account
                }
            };
            accounts.insert(name.clone(), account);
        }
        for (name, account) in &old.accounts {
            if accounts.get(name).is_none_or(|a| !Arc::ptr_eq(a, account)) {
                account.stop.cancel();
                if !accounts.contains_key(name) {
                    summary.removed.push(name.clone());
                }
            }
        }
        let default_account = config.default_account().map(str::to_owned);
        *self.roster.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Roster {
            accounts,
            default_account,
            policy: policy::Policy::new(&config.policy),
            notify: config.notify,
            browser_command: config.browser_command.clone(),
        });
        summary
    }

    fn roster(&self) -> Arc<Roster> {
        self.roster.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every configured account, in name order.
    pub fn accounts(&self) -> Vec<Arc<Account>> {
        self.roster().accounts.values().cloned().collect()
    }

    pub fn default_account(&self) -> Option<String> {
        self.roster().default_account.clone()
    }

    /// After a resume from suspend: the IdPs have closed our pooled connections, and every
    /// scheduler must look at the wall clock again.
    pub fn resumed(&self) {
        self.connect.resumed();
        self.wake_all();
    }

    /// Wake every scheduler to look at the wall clock again (after a resume from suspend).
    pub fn wake_all(&self) {
        for account in self.accounts() {
            account.wake.notify_one();
        }
    }

    async fn load(&self, account: &Account) {
        let c = &account.config;
        if c.is_machine() {
            account.write(|s| s.log_in(Arc::new(machine::empty_session(account))));
            return;
        }
        let record = match self.store.load(&account.name).await {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(account = %account.name, error = %e, "cannot load the stored session");
                return;
            }
        };
        match Session::from_record(&record, &c.issuer, &c.client_id) {
            // `dpop` switched since the login: its tokens are bound to a key, or not, against
            // the config's word. A new login is needed either way.
            Ok(Some(session)) if session.dpop.is_some() != c.dpop => {
                tracing::warn!(account = %account.name, dpop = c.dpop, "stored session was made with the other dpop setting; ignoring it (log in again)")
            }
            Ok(Some(session)) => {
                tracing::info!(account = %account.name, expires_at = session.access.life.expires_at, "loaded stored session");
                account.write(|s| s.log_in(Arc::new(session)));
            }
            Ok(None) => {
                tracing::warn!(account = %account.name, "stored session belongs to another issuer or client; ignoring it")
            }
            Err(e) => {
                tracing::warn!(account = %account.name, error = %e, "stored session is unreadable; ignoring it")
            }
        }
    }

    /// Stop background work that only waits (schedulers, pending logins, save retries); work
    /// under way (a refresh, a login's install) runs on, for `tasks` to drain.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// The tracker of every task the core starts; the daemon's doors spawn theirs here too,
    /// so one `close` and `wait` at stop drains them all.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }

    /// The audit trail's entrance.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// The policy's questions to the person.
    pub fn consents(&self) -> &consent::Consents {
        &self.consents
    }

    /// Whether the config asks for desktop notices (`notify`), as of the last (re)load.
    pub fn notify(&self) -> bool {
        self.roster().notify
    }

    /// The config's `browser_command`, as of the last (re)load.
    pub fn browser_command(&self) -> Option<Vec<String>> {
        self.roster().browser_command.clone()
    }

    /// The core's events, for doors that announce them (D-Bus signals).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn emit(&self, event: Event) {
        tracing::debug!(?event, "event");
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    /// The named account, or the default one. On every request's path: one read lock, one
    /// reference count.
    pub fn account(&self, name: Option<&str>) -> Result<Arc<Account>> {
        let roster = self.roster.read().unwrap_or_else(|e| e.into_inner());
        let name = match name.filter(|n| !n.is_empty()).or(roster.default_account.as_deref()) {
            Some(n) => n,
            None => {
                return Err(Error::new(tokenbroker::ErrorKind::UnknownAccount, roster.no_account_named()));
            }
        };
        roster.accounts.get(name).cloned().ok_or_else(|| {
            Error::new(
                tokenbroker::ErrorKind::UnknownAccount,
                format!("no account {name:?} in the config; configured: {}", roster.names()),
            )
        })
    }

    /// Write a session to the store before anyone sees it. A failed write keeps the session
    /// in memory (dropping a rotated refresh token would end the session), says so, and leaves
    /// the scheduler to retry it until it lands.
    async fn persist(&self, turn: &Turn, account: &Account, session: &Session) {
        match self.save(turn, account, session).await {
            Ok(()) => account.write(|s| s.save_retry_at = None),
            Err(e) => {
                tracing::error!(account = %account.name, error = %e, "could not store the session; keeping it in memory and retrying");
                let first = scheduler::BACKOFF_MIN.as_millis() as i64;
                account.write(|s| s.save_retry_at = s.save_retry_at.or(Some(session::now_ms() + first)));
                account.wake.notify_one();
            }
        }
    }

    async fn save(&self, _turn: &Turn, account: &Account, session: &Session) -> Result<(), crate::store::StoreError> {
        let c = &account.config;
        if c.is_machine() {
            return Ok(());
        }
        self.store.save(&account.name, session.to_record(&c.issuer, &c.client_id)).await
    }

    /// Delete the account's stored session (a logout, a refused session).
    async fn unstore(&self, _turn: &Turn, account: &Account) -> Result<(), crate::store::StoreError> {
        if account.config.is_machine() {
            return Ok(());
        }
        self.store.delete(&account.name).await
    }
}

#[cfg(test)]
mod roster_tests {
    use super::Roster;

    #[test]
    fn with_no_accounts_the_error_says_so_and_how_to_add_one() {
        let said = Roster::default().no_account_named();
        assert!(said.starts_with("no accounts are configured") && said.contains("[accounts.NAME]"), "{said}");
        assert!(!said.contains("one of: none"), "{said}");
    }
}
