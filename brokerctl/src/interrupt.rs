//! Ctrl-C during `brokerctl login` cancels the login at the daemon instead of leaving it
//! pending (a browser login would hold the account, and a loopback port, until it timed
//! out). No async runtime: the signal handler only sets a flag, a thread of ours does the
//! talking.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on the first SIGINT only sets the flag; a second one kills as usual
/// (`SA_RESETHAND`), should the daemon not answer the cancellation.
pub fn catch_sigint() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as *const () as usize;
        action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut());
    }
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Run `then` on a thread of its own once SIGINT has come (at once if it already has).
pub fn on_interrupt(then: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        while !interrupted() {
            std::thread::sleep(Duration::from_millis(50));
        }
        then();
    });
}
