//! Diagnose: the daemon's own health checks, in words, each with what to do when it fails.

use std::sync::Arc;
use std::time::Instant;

use tokenbroker::protocol::{Check, Diagnosis};

use super::{Account, Broker, offers};
use crate::config::Config;
use crate::store::StoreName;

fn check(name: &str, result: Result<String, (String, &str)>) -> Check {
    match result {
        Ok(detail) => Check { name: name.into(), ok: true, detail, fix: None },
        Err((detail, fix)) => Check { name: name.into(), ok: false, detail, fix: Some(fix.into()) },
    }
}

/// Sessions the store refused to take: they live in memory only, until a retried write lands.
fn unsaved_sessions<'a>(accounts: &[Arc<Account>], fix: &'a str) -> Result<String, (String, &'a str)> {
    let unsaved: Vec<&str> = accounts.iter().filter(|a| a.unsaved()).map(|a| a.name.as_str()).collect();
    if unsaved.is_empty() {
        return Ok("every session is in the store".into());
    }
    Err((
        format!(
            "the session of {} is in memory only: the store refused to save it, and it is lost if the daemon stops",
            unsaved.join(", ")
        ),
        fix,
    ))
}

pub async fn diagnose(broker: &Arc<Broker>) -> Diagnosis {
    let mut checks = Vec::new();
    let path = broker.config_path.display();
    checks.push(check(
        "config",
        match Config::load(&broker.config_path) {
            Ok(c) => Ok(format!("{path} parses ({} accounts)", c.accounts.len())),
            Err(e) => Err((
                e.to_string(),
                "fix the file, then reload (SIGHUP, or `systemctl --user reload tokenbroker`); until then the daemon keeps its last good config",
            )),
        },
    ));
    let store = broker.store.name();
    let remedy = store.remedy();
    let fix = match store {
        StoreName::Keyring => format!("{remedy}, or choose store = \"memory\" in the config"),
        _ => format!("{remedy}; until then sessions are kept in memory, and the daemon retries"),
    };
    checks.push(check(
        store.label(),
        match broker.store.probe().await {
            Ok(()) => Ok(format!("{store} takes a write, a read and a delete")),
            Err(e) => Err((e.to_string(), &fix)),
        },
    ));
    let fix = format!("{remedy}; the daemon retries the write until it lands, so keep it running until then");
    checks.push(check("sessions", unsaved_sessions(&broker.accounts(), &fix)));
    for account in broker.accounts() {
        let started = Instant::now();
        let c = &account.config;
        let found = broker.connect.connect(&account.client_settings()).await;
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
            checks.push(offers::features(&account.name, c, provider.offers()));
            checks.push(offers::scopes(&account.name, c, provider.offers()));
        }
    }
    Diagnosis { checks }
}
