//! Whom a client is about to talk to. The socket's path can lead to another user's server (without
//! `XDG_RUNTIME_DIR` it lies under the shared temp directory; `TOKENBROKER_SOCKET` may be
//! mistyped), and so can a bus name: a request may carry the user's metadata, and its answer
//! would be believed (a token, a login URL to open). So before a client sends a byte, it checks
//! that the server runs as the client's own user or as root, who could read everything anyway.
//! A forward's socket on the far side of `ssh -R` passes: its listener is the user's own sshd
//! session process there (daemon/tests/it/forward.rs checks this against a real sshd).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use crate::error::{Error, Result};

fn me() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Refuse a server of any other UID than ours or root's; `server` and `fix` make the message.
pub(crate) fn check(uid: u32, server: impl FnOnce() -> String, fix: &'static str) -> Result<()> {
    if uid == me() || uid == 0 {
        return Ok(());
    }
    Err(Error::ForeignServer { server: server(), uid, fix })
}

pub(crate) const SOCKET_FIX: &str = "check TOKENBROKER_SOCKET and XDG_RUNTIME_DIR: they must lead to \
                                     your own tokenbrokerd's socket";

/// The effective UID of the process that serves the other end of a connected Unix socket, as
/// the kernel recorded it when that process listened (it cannot be forged).
pub(crate) fn of_socket(fd: BorrowedFd<'_>) -> io::Result<u32> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` and `len` are valid for writes and `len` is `cred`'s size.
        let r = unsafe {
            libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&raw mut cred).cast(), &mut len)
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        if len as usize != std::mem::size_of::<libc::ucred>() {
            return Err(io::Error::other("SO_PEERCRED gave a short answer"));
        }
        Ok(cred.uid)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let (mut uid, mut gid) = (0, 0);
        // SAFETY: both are valid for writes.
        if unsafe { libc::getpeereid(fd.as_raw_fd(), &mut uid, &mut gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(uid)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    use super::*;

    #[test]
    fn a_socket_of_our_own_is_ours() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(of_socket(a.as_fd()).unwrap(), me());
        assert!(check(me(), || "x".into(), SOCKET_FIX).is_ok());
        assert!(check(0, || "x".into(), SOCKET_FIX).is_ok());
    }

    #[test]
    fn another_uid_is_refused_with_a_way_out() {
        let other = if me() == 4242 { 4243 } else { 4242 };
        let e = check(other, || "the socket /tmp/x".into(), SOCKET_FIX).unwrap_err();
        let text = e.to_string();
        assert!(matches!(e, Error::ForeignServer { uid, .. } if uid == other));
        for part in ["/tmp/x", "another user (UID", "nothing was sent", "TOKENBROKER_SOCKET", "XDG_RUNTIME_DIR"] {
            assert!(text.contains(part), "{text}");
        }
    }
}
