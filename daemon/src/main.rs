//! tokenbrokerd: the per-user OAuth 2.0 / OpenID Connect token broker. Everything is in the
//! library; this reports how it ended, to the log, the terminal and the service manager.

use std::process::ExitCode;

use sd_notify::NotifyState;

fn main() -> ExitCode {
    match tokenbroker_daemon::start() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("tokenbrokerd: {e:#}");
            let _ = sd_notify::notify(&[NotifyState::Status(&format!("failed: {e:#}"))]);
            ExitCode::FAILURE
        }
    }
}
