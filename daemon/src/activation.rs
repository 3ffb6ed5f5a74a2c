//! A listening socket handed over by the service manager: systemd socket activation
//! (`LISTEN_FDS`/`LISTEN_PID`) on Linux, `launch_activate_socket` on macOS.

use std::os::fd::FromRawFd;
use std::os::unix::net::UnixListener;

/// The inherited listener, if the daemon was started with one.
pub fn inherited_listener() -> anyhow::Result<Option<UnixListener>> {
    #[cfg(target_os = "macos")]
    return launchd();
    #[cfg(not(target_os = "macos"))]
    systemd()
}

#[cfg(not(target_os = "macos"))]
fn systemd() -> anyhow::Result<Option<UnixListener>> {
    let mut fds = sd_notify::listen_fds()?;
    let Some(fd) = fds.next() else { return Ok(None) };
    if fds.len() > 0 {
        anyhow::bail!("expected one listening socket from systemd, got {}", fds.len() + 1);
    }
    // SAFETY: systemd passed this descriptor to us alone (LISTEN_PID is our pid) and nothing
    // else in the process owns it.
    let listener = unsafe { UnixListener::from_raw_fd(fd) };
    // Children must not inherit the variables and try to take the socket again.
    // SAFETY: called at start-up, before any other thread exists.
    unsafe {
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    Ok(Some(listener))
}

#[cfg(target_os = "macos")]
fn launchd() -> anyhow::Result<Option<UnixListener>> {
    use std::ffi::{c_char, c_int, c_void};
    unsafe extern "C" {
        fn launch_activate_socket(name: *const c_char, fds: *mut *mut c_int, cnt: *mut usize) -> c_int;
    }
    let mut fds: *mut c_int = std::ptr::null_mut();
    let mut count: usize = 0;
    // SAFETY: launchd fills `fds` with a malloc'd array of `count` descriptors, or fails.
    let rc = unsafe { launch_activate_socket(c"Listeners".as_ptr(), &mut fds, &mut count) };
    if rc == libc::ESRCH || rc == libc::ENOENT {
        return Ok(None); // not started by launchd, or no such socket in the plist
    }
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc).into());
    }
    // SAFETY: `fds` points at `count` descriptors that are ours; the array is freed once read.
    let first = (count > 0).then(|| unsafe { *fds });
    unsafe { libc::free(fds as *mut c_void) };
    // SAFETY: the descriptor came from launchd for this process alone.
    Ok(first.map(|fd| unsafe { UnixListener::from_raw_fd(fd) }))
}
