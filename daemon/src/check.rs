//! `tokenbrokerd --check`: what a start needs, checked without serving, for when the daemon
//! will not start (the commonest failure `brokerctl doctor` meets). The same loader and store
//! opening as a start, so the same errors; the report has the shape of the `Diagnose` method's,
//! so `brokerctl doctor` shows it as it shows the daemon's own.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use tokenbroker::protocol::{Check, Diagnosis};

use crate::config::{self, Config, ConfigError, StoreKind};
use crate::failure::describe;
use crate::{broker, oidc, run, store};

/// Check, print the report (human, or one JSON line), and exit 0 when every check passed.
pub fn main(config_path: &Path, json: bool) -> ExitCode {
    let diagnosis = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(diagnose(config_path)),
        Err(e) => Diagnosis {
            checks: vec![failed("runtime", format!("cannot start the async runtime: {e}"), "report this as a bug")],
        },
    };
    let healthy = diagnosis.checks.iter().all(|c| c.ok);
    let mut out = std::io::stdout().lock();
    if json {
        let _ = serde_json::to_writer(&mut out, &diagnosis);
        let _ = writeln!(out);
    } else {
        let _ = out.write_all(diagnosis.report().as_bytes());
    }
    let _ = out.flush();
    if healthy { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn failed(name: &str, detail: String, fix: impl Into<String>) -> Check {
    Check { name: name.into(), ok: false, detail, fix: Some(fix.into()) }
}

fn passed(name: &str, detail: String) -> Check {
    Check { name: name.into(), ok: true, detail, fix: None }
}

/// The config; when it loads, the store it names and every account's IdP. A config that does
/// not load is the only check: nothing else can be known without it.
pub async fn diagnose(config_path: &Path) -> Diagnosis {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(ConfigError::Missing { path }) => {
            let fix = format!(
                "write one there (or name another with --config or TOKENBROKER_CONFIG); a minimal one to start \
                 from, with your identity provider's issuer and client ID put in:\n\n{}",
                config::sample(&path)
            );
            return Diagnosis { checks: vec![failed("config", format!("no config file at {}", path.display()), fix)] };
        }
        Err(e) => {
            let fix = "fix the file: the daemon does not start until it loads";
            return Diagnosis { checks: vec![failed("config", e.to_string(), fix)] };
        }
    };
    let n = config.accounts.len();
    let accounts = if n == 1 { "1 account".to_owned() } else { format!("{n} accounts") };
    let mut checks = vec![passed("config", format!("{} parses ({accounts})", config_path.display()))];
    checks.push(store_check(&config).await);
    match oidc::http::Http::new(Duration::from_secs(config.idp_timeout.max(1))) {
        Ok(http) => {
            let connect = oidc::Connector::new(http);
            let each = config.accounts.iter().map(|(name, c)| broker::idp_checks(&connect, name, c));
            checks.extend(futures_util::future::join_all(each).await.into_iter().flatten());
        }
        Err(e) => checks.push(failed(
            "identity providers",
            format!("cannot build the HTTP client: {e}"),
            "report this as a bug",
        )),
    }
    Diagnosis { checks }
}

/// The store opened as a start opens it (a keyring must take a write too): what stops a start.
async fn store_check(config: &Config) -> Check {
    let (label, what) = match config.store {
        StoreKind::Keyring => ("keyring", "the OS keyring takes a write, a read and a delete".to_owned()),
        StoreKind::File => ("sealed file", String::new()),
        StoreKind::Memory => ("memory", "sessions are kept in memory only, and lost when the daemon stops".to_owned()),
    };
    let opened = match run::open_store(config).await {
        Ok(backend) => {
            let store = store::SessionStore::new(backend);
            match config.store {
                StoreKind::Keyring => store.probe().await.map(|()| what).map_err(run::no_keyring),
                StoreKind::File => Ok(format!("{} opens with its passphrase", store.name())),
                StoreKind::Memory => Ok(what),
            }
        }
        Err(e) => Err(e),
    };
    match opened {
        Ok(detail) => passed(label, detail),
        Err(e) => {
            // The first line is what failed; the lines after it, when there are any, the choices.
            let text = describe(&e);
            let (detail, rest) = text.split_once('\n').unwrap_or((&text, ""));
            let fix = match (rest.trim(), config.store) {
                (rest, _) if !rest.is_empty() => rest.to_owned(),
                (_, StoreKind::File) => "check store_passphrase_command or store_key_credential (the passphrase), and \
                                         that the file's directory is yours and writable"
                    .to_owned(),
                _ => "start and unlock your keyring, or choose another store in the config: store = \"file\" or \
                      store = \"memory\""
                    .to_owned(),
            };
            failed(label, detail.to_owned(), fix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_config_is_the_one_failed_check_and_its_fix_holds_a_sample_that_parses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let d = diagnose(&path).await;
        assert_eq!(d.checks.len(), 1, "{d:?}");
        let c = &d.checks[0];
        assert!(!c.ok && c.name == "config" && c.detail.contains("no config file at"), "{c:?}");
        let fix = c.fix.as_deref().unwrap();
        let sample = fix.split_once("\n\n").unwrap().1;
        assert!(Config::parse(sample).is_ok(), "{sample}");
    }

    #[tokio::test]
    async fn a_memory_store_and_an_unreachable_idp_are_each_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "store = \"memory\"\nidp_timeout = 2\n[accounts.work]\nissuer = \"http://127.0.0.1:9/\"\nclient_id = \"c\"\n").unwrap();
        let d = diagnose(&path).await;
        let names: Vec<(&str, bool)> = d.checks.iter().map(|c| (c.name.as_str(), c.ok)).collect();
        assert_eq!(names, [("config", true), ("memory", true), ("identity provider of work", false)], "{d:?}");
        assert!(d.report().contains("FAIL identity provider of work: http://127.0.0.1:9/"), "{}", d.report());
    }

    #[tokio::test]
    async fn a_machine_accounts_secret_source_is_checked_without_showing_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let config = |script: &str| {
            format!(
                "store = \"memory\"\nidp_timeout = 2\n[accounts.ci]\nissuer = \"http://127.0.0.1:9/\"\n\
                 client_id = \"m2m\"\ngrant = \"client_credentials\"\nclient_secret_command = [\"sh\", \"-c\", \"{script}\"]\n"
            )
        };
        std::fs::write(&path, config("echo s3cr3t-out; exit 2")).unwrap();
        let d = diagnose(&path).await;
        let c = d.checks.iter().find(|c| c.name == "client credentials of ci").expect("checked");
        assert!(!c.ok && c.detail.contains("exit status: 2"), "{c:?}");
        assert!(!d.report().contains("s3cr3t"), "{}", d.report());
        std::fs::write(&path, config("echo s3cr3t-out")).unwrap();
        let d = diagnose(&path).await;
        let c = d.checks.iter().find(|c| c.name == "client credentials of ci").expect("checked");
        assert!(c.ok && c.detail.contains("prints a secret"), "{c:?}");
        assert!(!d.report().contains("s3cr3t"), "{}", d.report());
    }
}
