//! The usual start of a test in one expression: a private bus with a keyring, the test IdP,
//! and tokenbrokerd configured for one account on it, optionally logged in.
//!
//! ```no_run
//! # async fn f() {
//! use tokenbroker_testkit::*;
//! let Env { bus, idp, daemon } = Fixture::new()
//!     .idp(IdpOptions { access_ttl: 2, ..Default::default() })
//!     .config("proactive_refresh = false\n")
//!     .logged_in("alice")
//!     .await;
//! # }
//! ```

use crate::bus::Bus;
use crate::daemon::Daemon;
use crate::idp::{Idp, IdpOptions};

type AccountSection = Box<dyn FnOnce(&Idp) -> String + Send>;

/// What to start; see the module's example. By default: a session bus (closed to other users),
/// an IdP with [`IdpOptions::default`], and one account `work` on it
/// ([`Idp::account_config`]), the daemon logging at debug level.
pub struct Fixture {
    idp: IdpOptions,
    open_bus: bool,
    config: String,
    account: AccountSection,
    policy: Option<String>,
    log_level: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// What a [`Fixture`] started. Destructure it: `let Env { bus, idp: _idp, daemon } = …`,
/// binding every part, used or not: the parts stop when dropped, and a part left to `..` or
/// `_` is dropped at once (the daemon would lose its bus or its IdP).
pub struct Env {
    pub bus: Bus,
    pub idp: Idp,
    pub daemon: Daemon,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture {
            idp: IdpOptions::default(),
            open_bus: false,
            config: String::new(),
            account: Box::new(|idp| idp.account_config("work")),
            policy: None,
            log_level: "debug".into(),
            args: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::default()
    }

    /// The test IdP's options.
    pub fn idp(mut self, options: IdpOptions) -> Fixture {
        self.idp = options;
        self
    }

    /// The test IdP's access-token lifetime in seconds, its other options as they are.
    pub fn access_ttl(mut self, seconds: u64) -> Fixture {
        self.idp.access_ttl = seconds;
        self
    }

    /// A bus other users may connect to ([`Bus::start_open_to_all_users`]).
    pub fn open_bus(mut self) -> Fixture {
        self.open_bus = true;
        self
    }

    /// Top-level config lines, before the account (e.g. `"proactive_refresh = false\n"`).
    pub fn config(mut self, lines: &str) -> Fixture {
        self.config.push_str(lines);
        self
    }

    /// The account section(s) of the config, made from the started IdP, in place of the
    /// default `work` account: `.account(|idp| idp.api_account_config("work"))`.
    pub fn account(mut self, section: impl FnOnce(&Idp) -> String + Send + 'static) -> Fixture {
        self.account = Box::new(section);
        self
    }

    /// The config's `[policy]`: its keys and, after them, any `[[policy.rule]]` tables
    /// (`"default = \"ask\"\nask_timeout = 5\n"`). Written after the accounts.
    pub fn policy(mut self, lines: &str) -> Fixture {
        self.policy = Some(lines.into());
        self
    }

    /// The daemon's `RUST_LOG` (default `debug`).
    pub fn log_level(mut self, level: &str) -> Fixture {
        self.log_level = level.into();
        self
    }

    /// Extra command-line arguments for the daemon.
    pub fn args(mut self, args: &[&str]) -> Fixture {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// An environment variable for the daemon.
    pub fn env(mut self, key: &str, value: &str) -> Fixture {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Start the bus, the IdP and the daemon (not logged in).
    pub async fn start(self) -> Env {
        let bus = if self.open_bus { Bus::start_open_to_all_users() } else { Bus::start() };
        let idp = Idp::start(self.idp).await;
        let policy = self.policy.map(|p| format!("\n[policy]\n{p}")).unwrap_or_default();
        let mut daemon = Daemon::prepare(&format!("{}{}{policy}", self.config, (self.account)(&idp)));
        daemon.log_level = self.log_level;
        daemon.args = self.args;
        daemon.env = self.env;
        daemon.spawn(&bus);
        Env { bus, idp, daemon }
    }

    /// [`Fixture::start`], then log the default account in by the device flow as `user`.
    pub async fn logged_in(self, user: &str) -> Env {
        let env = self.start().await;
        env.daemon.login(&env.idp, None, user).await;
        env
    }
}
