//! Logs go to the journal when systemd runs us (it sets `JOURNAL_STREAM`), to stderr
//! otherwise; `RUST_LOG` filters (default `info`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(journald) => return registry.with(journald.with_syslog_identifier("tokenbrokerd".into())).init(),
            Err(e) => eprintln!("tokenbrokerd: the journal is not reachable ({e}); logging to stderr"),
        }
    }
    registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)).init();
}
