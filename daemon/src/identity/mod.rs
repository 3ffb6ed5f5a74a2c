//! What a caller's process is — its executable, its systemd unit, its Flatpak or Snap app —
//! as far as it can be told WITHOUT GUESSING: every part that cannot be made sure of is
//! `None`. The doors learn a caller's UID and PID from the kernel or the bus; this module looks
//! at the process behind them, once per connection (never per request).
//!
//! Two steps, so that a door does the cheap, non-blocking one on its own task and the reads on
//! the blocking pool: [`pin_peer`] (or [`Pin::from_pidfd`] for a bus's `ProcessFD`) takes hold
//! of the very process that connected, then [`resolve`] reads what it is.
//!
//! - Linux ([`linux`]): a pidfd from `SO_PEERPIDFD` (Linux 6.5+) pins the process that called
//!   `connect()`; `/proc/PID/…` is read, then the pidfd must show the process still alive, so
//!   the PID cannot have been reused in between. Without `SO_PEERPIDFD`, the process's start
//!   time is read before and after instead, which leaves a window (see [`linux`]).
//! - macOS ([`macos`]): `LOCAL_PEERPID` and `proc_pidpath`, exe only. NOT compile-checked here
//!   (only the Linux target is installed where it was written); kept tiny for that reason.
//! - Other Unix: nothing is known; every part is `None`.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::request::Caller;

#[cfg(target_os = "linux")]
mod cgroup;
#[cfg(target_os = "linux")]
mod flatpak;
#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "macos")]
mod macos;

#[cfg(target_os = "linux")]
pub use linux::{Pin, pin_peer};
#[cfg(target_os = "macos")]
pub use macos::{Pin, pin_peer};

/// What the caller's process is; see the module's words for how each part is made sure of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The resolved `/proc/PID/exe`, when that path names the very file the process runs.
    pub exe: Option<Arc<str>>,
    /// The systemd unit of the process's cgroup (`app-foo@1.service`, `bar.scope`).
    pub unit: Option<Arc<str>>,
    /// The Flatpak application ID, or `snap.NAME`.
    pub app_id: Option<Arc<str>>,
}

impl Identity {
    /// `caller` with these parts: what a door hands the pipeline.
    pub fn fill(self, caller: &mut Caller) {
        caller.exe = self.exe;
        caller.unit = self.unit;
        caller.app_id = self.app_id;
    }
}

/// At most this many lookups at once on the blocking pool (a burst of connections must not
/// start hundreds of threads), and a lookup gives up after `LOOKUP_LIMIT`, queueing included:
/// a process can run its executable from a FUSE mount that never answers a `stat`, and that
/// must cost its own connection an unknown identity, not the daemon a stuck thread per caller.
const LOOKUPS_AT_ONCE: usize = 4;
const LOOKUP_LIMIT: Duration = Duration::from_secs(5);

/// Read what the pinned process is, on the blocking pool (bounded, and cut off after
/// `LOOKUP_LIMIT`, giving an identity with every part unknown).
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub async fn resolve(pin: Pin, pid: Option<i32>) -> Identity {
    static LOOKUPS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(LOOKUPS_AT_ONCE);
    let Some(pid) = pid else { return Identity::default() };
    // Most lookups need procfs alone (a program seen before): on this task, at once.
    if let Some(found) = pin.resolve_without_blocking(pid) {
        return found;
    }
    let lookup = async {
        let permit = LOOKUPS.acquire().await.ok()?;
        // A crowd of one new program's connections waits here for the first of them; then
        // the rest need procfs alone.
        if let Some(found) = pin.resolve_without_blocking(pid) {
            return Some(found);
        }
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            pin.resolve(pid)
        })
        .await
        .ok()
    };
    match tokio::time::timeout(LOOKUP_LIMIT, lookup).await {
        Ok(found) => found.unwrap_or_default(),
        Err(_) => {
            tracing::warn!(pid, "gave up finding out what a caller's process is: it took too long");
            Identity::default()
        }
    }
}

/// Other Unix: no way to look at a peer's process is implemented; every part is unknown.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub struct Pin;

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn pin_peer(_socket: std::os::fd::BorrowedFd<'_>) -> Pin {
    Pin
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub async fn resolve(_pin: Pin, _pid: Option<i32>) -> Identity {
    Identity::default()
}

/// Read at most `cap` bytes of an open file; more than that is refused (`None`), as a file
/// that is not what it should be.
#[cfg(any(target_os = "linux", test))]
fn read_capped(mut file: impl std::io::Read, cap: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    (&mut file).take(cap as u64 + 1).read_to_end(&mut buf).ok()?;
    (buf.len() <= cap).then_some(buf)
}
