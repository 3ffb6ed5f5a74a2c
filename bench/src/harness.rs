//! The parts a benchmark run needs, started by tokenbroker-testkit as the integration tests
//! start them: the test IdP (behind the testkit's proxy, passing everything through), the
//! release tokenbrokerd beside this binary on this process's session bus (scripts/bench runs
//! inside a private one), and a logged-in session. The testkit is async: a runtime of one
//! worker thread of its own drives the IdP's proxy, apart from the runtimes that measure.

use std::path::Path;

use tokenbroker_testkit::{Daemon, Idp, IdpOptions};

pub struct Harness {
    rt: tokio::runtime::Runtime,
}

impl Harness {
    pub fn new() -> anyhow::Result<Harness> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        Ok(Harness { rt })
    }

    /// The test IdP, its access tokens living `access_ttl` seconds.
    pub fn idp(&self, access_ttl: u64) -> Idp {
        self.rt.block_on(Idp::start(IdpOptions { access_ttl, ..Default::default() }))
    }

    /// tokenbrokerd with one account `name` on `idp`, after `extra_config` (top-level keys),
    /// logging warnings only; its log stays in its directory.
    pub fn daemon(&self, name: &str, idp: &Idp, extra_config: &str, args: &[&str]) -> Daemon {
        let mut daemon = Daemon::prepare(&format!("{extra_config}{}", idp.account_config(name)));
        daemon.log_level = "warn".into();
        daemon.args = args.iter().map(|a| a.to_string()).collect();
        daemon.spawn_on_own_session();
        daemon
    }

    /// tokenbrokerd built from `binary` (`None`: this tree's), socket only, at the log level of
    /// a default install (`info`: the audit trail's log lines included), its state in its
    /// own directory.
    pub fn daemon_from(&self, binary: Option<&Path>, name: &str, idp: &Idp) -> Daemon {
        let mut daemon = Daemon::prepare(&idp.account_config(name));
        daemon.log_level = "info".into();
        daemon.args = vec!["--no-dbus".into()];
        daemon.env.push(("XDG_STATE_HOME".into(), daemon.dir.path().join("state").display().to_string()));
        match binary {
            Some(b) => daemon.spawn_binary_on_own_session(b),
            None => daemon.spawn_on_own_session(),
        }
        daemon
    }

    /// Log the daemon's default account in by the device flow.
    pub fn login(&self, daemon: &Daemon, idp: &Idp) {
        self.rt.block_on(daemon.login(idp, None, "alice"));
    }

    /// Refresh-token requests the IdP answered since the last [`Harness::reset_stats`].
    pub fn refresh_requests(&self, idp: &Idp) -> u64 {
        self.rt.block_on(idp.refresh_attempts())
    }

    pub fn reset_stats(&self, idp: &Idp) {
        self.rt.block_on(idp.reset_stats());
    }
}
