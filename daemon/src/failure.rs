//! How a failed start is told: once. Under systemd with the journal reachable, to the journal
//! (as an error-priority entry; stderr goes there too, so not both); otherwise on stderr, as one
//! sentence, its causes each said once, coloured only on a terminal. The service manager's
//! STATUS gets the first line either way.

use std::io::Write;

use sd_notify::NotifyState;

use crate::logging;

pub fn report_failure(e: &anyhow::Error) {
    let text = describe(e);
    if logging::to_journal() {
        tracing::error!("{text}");
    } else {
        let error = if logging::colour() { "\x1b[1;31merror\x1b[0m" } else { "error" };
        let _ = writeln!(std::io::stderr().lock(), "tokenbrokerd: {error}: {text}");
    }
    let first = text.lines().next().unwrap_or_default();
    let _ = sd_notify::notify(&[NotifyState::Status(&format!("failed: {first}"))]);
}

/// The error and its causes, joined by ": ", leaving out a cause its effect already quotes
/// (`cannot read config X: No such file` has no need of a second `: No such file`).
pub fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_said_once_even_when_its_effect_quotes_it() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let quoted = anyhow::Error::new(crate::config::ConfigError::Read { path: "/c".into(), source: io });
        assert_eq!(describe(&quoted), "cannot read config /c: No such file or directory");
        let layered = anyhow::anyhow!("disk full").context("writing the sessions file").context("opening the store");
        assert_eq!(describe(&layered), "opening the store: writing the sessions file: disk full");
    }
}
