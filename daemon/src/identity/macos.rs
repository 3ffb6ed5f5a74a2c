//! macOS: the peer's PID from `LOCAL_PEERPID`, its executable from `proc_pidpath`. No unit,
//! no app ID.
//!
//! NOT COMPILE-CHECKED: only the Linux target was installed where this was written. Kept
//! tiny so that it is obviously right.
//!
//! What it guarantees: little. macOS has no pidfd; the PID is the one the kernel recorded at
//! `connect()`, and a caller that exits before the daemon looks can let another process take
//! its PID, whose executable is then reported (the window of Linux's start-time fallback, and
//! without even its check). An audit token (`LOCAL_PEERTOKEN`) would close it; not done yet.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::Arc;

use super::Identity;

/// The PID `LOCAL_PEERPID` gives, to be checked against the one the door has.
#[derive(Debug)]
pub struct Pin(Option<i32>);

impl Pin {
    /// `proc_pidpath` asks the kernel only: it never waits.
    pub fn resolve_without_blocking(&self, pid: i32) -> Option<Identity> {
        Some(self.resolve(pid))
    }

    pub fn resolve(&self, pid: i32) -> Identity {
        if self.0 != Some(pid) || pid <= 0 {
            return Identity::default();
        }
        let mut buf = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
        // SAFETY: the buffer and its length.
        let n = unsafe { libc::proc_pidpath(pid, buf.as_mut_ptr().cast(), buf.len() as u32) };
        if n <= 0 {
            return Identity::default();
        }
        buf.truncate(n as usize);
        let exe = String::from_utf8(buf).ok().filter(|p| p.starts_with('/')).map(Arc::from);
        Identity { exe, unit: None, app_id: None }
    }
}

pub fn pin_peer(socket: BorrowedFd<'_>) -> Pin {
    let mut pid: libc::pid_t = 0;
    let mut len = std::mem::size_of::<libc::pid_t>() as libc::socklen_t;
    // SAFETY: a valid socket, and a pid_t-sized out buffer with its length.
    let r = unsafe {
        libc::getsockopt(socket.as_raw_fd(), libc::SOL_LOCAL, libc::LOCAL_PEERPID, (&raw mut pid).cast(), &mut len)
    };
    Pin((r == 0).then_some(pid))
}
