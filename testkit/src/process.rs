//! Child processes that end with the test.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process killed when the test lets go of it.
pub struct Proc(pub Child);

impl Proc {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: a plain kill(2) of our own child.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Wait up to `limit` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Read the first stdout line of a child within `limit`.
pub(crate) fn first_line(child: &mut Child, limit: Duration) -> Option<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(limit).ok().filter(|l| !l.is_empty())
}

/// Spawn `cmd`, waiting out "text file busy": a program the test has just copied may still be
/// open for writing in a process another test forked meanwhile (until that one execs).
pub fn spawn_fresh_copy(cmd: &mut std::process::Command) -> Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.unwrap(),
        }
    }
}

/// [`spawn_fresh_copy`], run to its end with its output captured.
pub fn output_of_fresh_copy(cmd: &mut std::process::Command) -> std::process::Output {
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    spawn_fresh_copy(cmd).wait_with_output().unwrap()
}

/// The address of the Unix socket at `path`, for a `connect(2)` made between `fork` and `exec`
/// (where nothing may allocate), as the identity tests do in their children.
pub fn sockaddr_un(path: &std::path::Path) -> (libc::sockaddr_un, libc::socklen_t) {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: all-zero is a valid sockaddr_un.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len());
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    (addr, (std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1) as libc::socklen_t)
}
