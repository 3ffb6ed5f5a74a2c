//! tokenbrokerd: the per-user OAuth 2.0 / OpenID Connect token broker. Everything is in the
//! library; this reports how it ended (once: see `tokenbroker_daemon::report_failure`).

use std::process::ExitCode;

fn main() -> ExitCode {
    match tokenbroker_daemon::start() {
        Ok(code) => code,
        Err(e) => {
            tokenbroker_daemon::report_failure(&e);
            ExitCode::FAILURE
        }
    }
}
