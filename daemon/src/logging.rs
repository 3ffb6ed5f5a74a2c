//! Logs go to the journal when systemd runs us (it sets `JOURNAL_STREAM`), to stderr
//! otherwise, coloured only when stderr is a terminal and `NO_COLOR` is unset or empty
//! (no-color.org); `RUST_LOG` filters (default `info`).

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Whether [`init`] sent the logs to the journal.
static TO_JOURNAL: AtomicBool = AtomicBool::new(false);

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(journald) => {
                TO_JOURNAL.store(true, Ordering::Relaxed);
                return registry.with(journald.with_syslog_identifier("tokenbrokerd".into())).init();
            }
            Err(e) => eprintln!("tokenbrokerd: the journal is not reachable ({e}); logging to stderr"),
        }
    }
    registry.with(tracing_subscriber::fmt::layer().with_ansi(colour()).with_writer(Stderr)).init();
}

/// Whether the logs go to the journal (else to stderr, or nowhere before [`init`]).
pub fn to_journal() -> bool {
    TO_JOURNAL.load(Ordering::Relaxed)
}

/// Whether what goes to stderr may be coloured.
pub fn colour() -> bool {
    colour_for(io::stderr().is_terminal(), std::env::var_os("NO_COLOR"))
}

/// Colour on a terminal only, and never with `NO_COLOR` set to anything but "" (no-color.org):
/// escape codes in a log file or a pipe are noise.
fn colour_for(terminal: bool, no_color: Option<OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

thread_local! {
    /// Lines held by [`held`] on this thread, written to stderr when it ends.
    static HELD: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Run `f`, its thread's log lines to stderr written together when it returns (or unwinds):
/// one `write` for a batch of audit records rather than one per record, which on a busy
/// daemon cost as much as the requests themselves. Other threads' lines are not held; under
/// journald every event is its own datagram anyway.
pub fn held<R>(f: impl FnOnce() -> R) -> R {
    struct Release;
    impl Drop for Release {
        fn drop(&mut self) {
            if let Some(lines) = HELD.with(|h| h.borrow_mut().take()) {
                let _ = io::stderr().write_all(&lines);
            }
        }
    }
    HELD.with(|h| h.borrow_mut().get_or_insert_with(Vec::new).clear());
    let _release = Release;
    f()
}

/// stderr, or this thread's held lines while [`held`] runs.
struct Stderr;

impl MakeWriter<'_> for Stderr {
    type Writer = Line;
    fn make_writer(&self) -> Line {
        Line
    }
}

/// One formatted event (the fmt layer writes each with one `write_all`).
struct Line;

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let held = HELD.with(|h| match h.borrow_mut().as_mut() {
            Some(lines) => {
                lines.extend_from_slice(bytes);
                true
            }
            None => false,
        });
        if held { Ok(bytes.len()) } else { io::stderr().write(bytes) }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(colour_for(true, None));
        assert!(colour_for(true, Some("".into())), "an empty NO_COLOR does not count");
        assert!(!colour_for(true, Some("1".into())));
        assert!(!colour_for(false, None), "a file or a pipe");
    }
}
