//! The broker core: accounts, their sessions, single-flight refresh, the refresh scheduler
//! and logins. It knows nothing of sockets or D-Bus; the doors in `serve` call it.

mod account;
mod audience;
mod error;
mod login;
mod logout;
mod metadata;
mod profile;
mod refresh;
mod scheduler;
mod session;
mod status;
mod tokens;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use account::Account;
pub use error::{Error, Result};
use login::PendingLogin;
pub use session::Session;

use crate::config::Config;
use crate::oidc::http::Http;
use crate::store::SessionStore;

/// What happened to an account, for whoever listens (the D-Bus door's signals, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    TokenRefreshed { account: String, expires_at: i64 },
    LoggedOut { account: String },
    LoginRequired { account: String },
    LoginFinished { account: String, error: Option<String> },
}

pub struct Broker {
    accounts: BTreeMap<String, Arc<Account>>,
    default_account: Option<String>,
    proactive_refresh: bool,
    http: Http,
    store: SessionStore,
    logins: Mutex<HashMap<String, Arc<PendingLogin>>>,
    events: broadcast::Sender<Event>,
    shutdown: CancellationToken,
}

impl Broker {
    /// Build the core and load every account's session from the store, so a restart needs
    /// no new login. A store that cannot be read leaves accounts logged out, and says why.
    pub async fn start(config: &Config, store: SessionStore, http: Http) -> Arc<Broker> {
        let accounts = config
            .accounts
            .iter()
            .map(|(name, c)| (name.clone(), Arc::new(Account::new(name.clone(), c.clone()))))
            .collect();
        let broker = Arc::new(Broker {
            accounts,
            default_account: config.default_account().map(str::to_owned),
            proactive_refresh: config.proactive_refresh,
            http,
            store,
            logins: Mutex::new(HashMap::new()),
            events: broadcast::channel(64).0,
            shutdown: CancellationToken::new(),
        });
        for account in broker.accounts.values() {
            broker.load(account).await;
            if broker.proactive_refresh {
                tokio::spawn(broker.clone().schedule(account.clone()));
            }
        }
        broker
    }

    async fn load(&self, account: &Account) {
        let c = &account.config;
        let record = match self.store.load(&account.name).await {
            Ok(Some(record)) => record,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(account = %account.name, error = %e, "cannot load the stored session");
                return;
            }
        };
        match Session::from_record(&record, &c.issuer, &c.client_id) {
            Ok(Some(session)) => {
                tracing::info!(account = %account.name, expires_at = session.expires_at, "loaded stored session");
                account.write(|s| s.session = Some(Arc::new(session)));
            }
            Ok(None) => {
                tracing::warn!(account = %account.name, "stored session belongs to another issuer or client; ignoring it")
            }
            Err(e) => {
                tracing::warn!(account = %account.name, error = %e, "stored session is unreadable; ignoring it")
            }
        }
    }

    /// Stop background work (schedulers, pending logins).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
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

    /// The named account, or the default one.
    pub fn account(&self, name: Option<&str>) -> Result<&Arc<Account>> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => self.default_account.as_deref().ok_or_else(|| {
                Error::new(
                    tokenbroker::ErrorKind::UnknownAccount,
                    format!(
                        "no account named and no default_account in the config; name one of: {}",
                        self.account_names()
                    ),
                )
            })?,
        };
        self.accounts.get(name).ok_or_else(|| {
            Error::new(
                tokenbroker::ErrorKind::UnknownAccount,
                format!("no account {name:?} in the config; configured: {}", self.account_names()),
            )
        })
    }

    fn account_names(&self) -> String {
        if self.accounts.is_empty() {
            return "none (add an [accounts.NAME] table to the config)".into();
        }
        self.accounts.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
    }

    /// Write a session to the store before anyone sees it. A failed write keeps the session
    /// in memory (dropping a rotated refresh token would end the session) and says so.
    async fn persist(&self, account: &Account, session: &Session) {
        let c = &account.config;
        if let Err(e) = self.store.save(&account.name, session.to_record(&c.issuer, &c.client_id)).await {
            tracing::error!(account = %account.name, error = %e, "could not store the session; keeping it in memory only");
        }
    }
}
