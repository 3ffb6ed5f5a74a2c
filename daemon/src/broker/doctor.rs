//! Diagnose: the daemon's own health checks, in words, each with what to do when it fails.

use std::sync::Arc;
use std::time::Instant;

use tokenbroker::protocol::{Check, Diagnosis};

use super::{Broker, offers};
use crate::config::Config;
use crate::oidc::Provider;

fn check(name: &str, result: Result<String, (String, &str)>) -> Check {
    match result {
        Ok(detail) => Check { name: name.into(), ok: true, detail, fix: None },
        Err((detail, fix)) => Check { name: name.into(), ok: false, detail, fix: Some(fix.into()) },
    }
}

/// The keyring entry the store check writes and deletes again; no account has this name.
const PROBE: &str = "tokenbroker-doctor-probe";

impl Broker {
    /// A locked keyring still answers reads of missing entries; only a write tells.
    async fn probe_store(&self) -> Result<(), crate::store::StoreError> {
        self.store.save(PROBE, zeroize::Zeroizing::new("probe".into())).await?;
        let read = self.store.load(PROBE).await?;
        self.store.delete(PROBE).await?;
        match read.as_deref().map(String::as_str) {
            Some("probe") => Ok(()),
            _ => Err(crate::store::StoreError::Unavailable("what was written could not be read back".into())),
        }
    }

    pub async fn diagnose(self: &Arc<Self>) -> Diagnosis {
        let mut checks = Vec::new();
        let path = self.config_path.display();
        checks.push(check(
            "config",
            match Config::load(&self.config_path) {
                Ok(c) => Ok(format!("{path} parses ({} accounts)", c.accounts.len())),
                Err(e) => Err((
                    e.to_string(),
                    "fix the file, then reload (SIGHUP, or `systemctl --user reload tokenbroker`); until then the daemon keeps its last good config",
                )),
            },
        ));
        checks.push(check(
            "keyring",
            match self.probe_store().await {
                Ok(()) => Ok("the session store takes a write, a read and a delete".into()),
                Err(e) => Err((
                    e.to_string(),
                    "start and unlock your keyring (GNOME Keyring, KWallet, the macOS Keychain), or choose store = \"memory\" in the config",
                )),
            },
        ));
        for account in self.accounts() {
            let started = Instant::now();
            let c = &account.config;
            let found =
                Provider::discover(self.http.clone(), &c.issuer, &c.client_id, &account.endpoint_overrides()).await;
            checks.push(check(
                &format!("identity provider of {}", account.name),
                match &found {
                    Ok(_) => Ok(format!("{} answered discovery in {} ms", c.issuer, started.elapsed().as_millis())),
                    Err(e) => Err((
                        format!("{}: {e}", c.issuer),
                        "check the network, and the account's issuer in the config (it must match the IdP's own issuer exactly)",
                    )),
                },
            ));
            if let Ok(provider) = &found {
                checks.push(offers::features(&account.name, c, &provider.offers));
                checks.push(offers::scopes(&account.name, c, &provider.offers));
            }
        }
        Diagnosis { checks }
    }
}
