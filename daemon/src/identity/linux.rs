//! Linux: the peer's process pinned by a pidfd, its parts read from `/proc/PID/…`.
//!
//! What each road guarantees:
//!
//! - **pidfd** (`SO_PEERPIDFD`, Linux 6.5+; or a bus's `ProcessFD`): the kernel hands over a
//!   handle on the process that called `connect()`, which no later process can take over. Its
//!   PID (the `Pid:` line of its fdinfo) must equal the PID the kernel or bus gave; the parts
//!   are read from `/proc/PID/…`; THEN the pidfd must show the process still alive
//!   (`pidfd_send_signal(fd, 0)`). A PID is reused only after its process is gone and reaped,
//!   so a process alive at the end was the one behind `/proc/PID` for every read. A peer that
//!   had already gone when the daemon looked gives no parts at all, whatever runs under its
//!   PID now.
//! - **start time** (kernels without `SO_PEERPIDFD`, a bus without `ProcessFD`): field 22 of
//!   `/proc/PID/stat` before and after the reads must be the same. That catches a PID reused
//!   DURING the reads (by a process started in another clock tick). It cannot catch one reused
//!   BEFORE them: the PID was recorded at `connect()`, and if that process exited and another
//!   took its PID before the daemon looked, both reads see the newcomer, whose parts are then
//!   reported. A caller can provoke that (connect, hand the socket to a child, exit, make the
//!   wanted program take the PID) unless the kernel has `SO_PEERPIDFD`.
//!
//! Either way `exe` is what the process runs when the daemon looks, which may be after an
//! `exec` following its `connect()`: a process can pass its socket on and then run another
//! program. That, and running an allowed program with `LD_PRELOAD` or under `ptrace`, is how
//! a same-user process can look like any program it may run (docs/security.md).
//!
//! Every file is taken as hostile: reads are capped, `.flatpak-info` is opened without
//! following a symlink, anything not UTF-8 or not well-formed is `None`.

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::sync::{Arc, OnceLock};

use super::{Identity, cgroup, flatpak, read_capped};

/// Not yet in the `libc` crate's public constants (Linux 6.5, `asm-generic/socket.h`).
const SO_PEERPIDFD: libc::c_int = 77;

/// No file of a process's that is read here is larger than this when it is honest.
const CAP: usize = 64 * 1024;

/// What holds the process still while its parts are read.
#[derive(Debug)]
pub enum Pin {
    /// A pidfd of the very process that connected.
    Pidfd(OwnedFd),
    /// No pidfd to be had from this kernel or bus: the start-time check.
    StartTime,
    /// The kernel has pidfds but gave none for this peer (it is gone): nothing is read.
    Gone,
}

impl Pin {
    /// A pidfd the bus gave (`ProcessFD`), or the start-time check without one.
    pub fn from_pidfd(fd: Option<OwnedFd>) -> Pin {
        fd.map_or(Pin::StartTime, Pin::Pidfd)
    }

    /// The parts of process `pid` (blocking reads of procfs and one `stat` of its executable).
    pub fn resolve(&self, pid: i32) -> Identity {
        self.resolve_with(pid, read_parts)
    }

    /// [`Pin::resolve`] when it needs nothing but procfs, which never waits on a disk or a
    /// network: an executable already found under its path (same device and inode) needs no
    /// new `stat` of that path. `None` when it would.
    pub fn resolve_without_blocking(&self, pid: i32) -> Option<Identity> {
        let mut unknown_exe = false;
        let found = self.resolve_with(pid, |pid| {
            let (parts, known) = read_parts_with(pid, known_exe);
            unknown_exe = !known;
            parts
        });
        (!unknown_exe).then_some(found)
    }

    /// [`Pin::resolve`] with the reads given (tests put a PID's reuse in the middle of them).
    fn resolve_with(&self, pid: i32, read: impl FnOnce(i32) -> Identity) -> Identity {
        if pid <= 0 {
            return Identity::default();
        }
        match self {
            Pin::Pidfd(fd) => by_pidfd(fd, pid, read),
            Pin::StartTime => by_start_time(pid, read),
            Pin::Gone => Identity::default(),
        }
    }
}

/// Take hold of the process that connected `socket` (cheap, never blocks: one `getsockopt`).
pub fn pin_peer(socket: BorrowedFd<'_>) -> Pin {
    match peer_pidfd(socket) {
        Ok(fd) => Pin::Pidfd(fd),
        // A kernel that has SO_PEERPIDFD refuses it (EINVAL, ESRCH) for a peer that is gone:
        // then nothing is to be read, and above all not the process that has its PID now.
        Err(_) if kernel_has_peer_pidfd() => Pin::Gone,
        Err(_) => Pin::StartTime,
    }
}

fn peer_pidfd(socket: BorrowedFd<'_>) -> std::io::Result<OwnedFd> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket, and an int-sized out buffer with its length.
    let r =
        unsafe { libc::getsockopt(socket.as_raw_fd(), libc::SOL_SOCKET, SO_PEERPIDFD, (&raw mut fd).cast(), &mut len) };
    if r != 0 || fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just made this descriptor (close-on-exec) for us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether this kernel knows `SO_PEERPIDFD`: asked once, on a socket pair of our own (whose
/// peer, this process, is alive), so that a refusal for a real peer means the peer is gone.
fn kernel_has_peer_pidfd() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        std::os::unix::net::UnixStream::pair().is_ok_and(|(a, _b)| {
            use std::os::fd::AsFd;
            peer_pidfd(a.as_fd()).is_ok()
        })
    })
}

fn by_pidfd(pidfd: &OwnedFd, pid: i32, read: impl FnOnce(i32) -> Identity) -> Identity {
    if pidfd_pid(pidfd) != Some(pid) {
        return Identity::default();
    }
    let found = read(pid);
    if !alive(pidfd) {
        return Identity::default();
    }
    found
}

fn by_start_time(pid: i32, read: impl FnOnce(i32) -> Identity) -> Identity {
    let Some(before) = start_time(pid) else { return Identity::default() };
    let found = read(pid);
    if start_time(pid) != Some(before) {
        return Identity::default();
    }
    found
}

/// The PID a pidfd stands for, from its fdinfo (`Pid:\t1234`; `-1` once the process is gone
/// and reaped, and then `None`).
fn pidfd_pid(pidfd: &OwnedFd) -> Option<i32> {
    let text = read_text(&format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd()))?;
    let pid: i32 = text.lines().find_map(|l| l.strip_prefix("Pid:"))?.trim().parse().ok()?;
    (pid > 0).then_some(pid)
}

/// Whether the pidfd's process is still there (a zombie counts: its PID is not free yet).
fn alive(pidfd: &OwnedFd) -> bool {
    // SAFETY: pidfd_send_signal with signal 0 only checks; the null siginfo is allowed.
    let r = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), 0, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Field 22 of `/proc/PID/stat`: when the process started, in clock ticks since boot.
fn start_time(pid: i32) -> Option<u64> {
    parse_start_time(&read_text(&format!("/proc/{pid}/stat"))?)
}

/// The second field, `comm`, is in parentheses and may hold anything, spaces and `)` included
/// (`a) b (c`): the fields after it start after the LAST `)`.
fn parse_start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` begins with field 3 (state): field 22 is the 20th from here.
    rest.split_ascii_whitespace().nth(22 - 3)?.parse().ok()
}

/// Every part, read with no regard for PID reuse: the callers above see to that.
fn read_parts(pid: i32) -> Identity {
    read_parts_with(pid, |link| (exe(link), true)).0
}

/// The parts, the executable found by `exe` (which says whether it could tell).
fn read_parts_with(pid: i32, exe: impl FnOnce(&str) -> (Option<Arc<str>>, bool)) -> (Identity, bool) {
    let (exe, told) = exe(&format!("/proc/{pid}/exe"));
    let cgroup = read_text(&format!("/proc/{pid}/cgroup")).map(|t| cgroup::parse(&t)).unwrap_or_default();
    let app_id = flatpak_id(pid).or_else(|| apparmor_snap(pid)).or(cgroup.snap).map(Arc::from);
    (Identity { exe, unit: cgroup.unit.map(Arc::from), app_id }, told)
}

/// `/proc/PID/exe` resolved, if that path (absolute, UTF-8) names the very file the process
/// runs now — same device and inode. Not so for an executable deleted or replaced since it
/// was started (`… (deleted)`), nor for a path of another mount namespace (a Flatpak's
/// `/usr/bin/git` is its runtime's, not the host's): those are `None`.
fn exe(link: &str) -> Option<Arc<str>> {
    let (path, running) = running_exe(link)?;
    let named = std::fs::metadata(&*path).ok()?;
    let same = running.dev() == named.dev() && running.ino() == named.ino();
    same.then(|| remember_exe(&path, &running));
    same.then_some(path)
}

/// What the link says and the file it leads to (procfs only: the kernel's own handle on the
/// running file, no walk of the path).
fn running_exe(link: &str) -> Option<(Arc<str>, std::fs::Metadata)> {
    let path = std::fs::read_link(link).ok()?;
    let path = path.to_str().filter(|p| p.starts_with('/'))?;
    Some((Arc::from(path), std::fs::metadata(link).ok()?))
}

/// Executables found under their paths lately, by device and inode: most callers are the same
/// few programs, and the `stat` of a path may wait on a slow disk or a network mount. A file
/// replaced or moved since shows another path in `/proc/PID/exe` (`… (deleted)`, the new
/// name), and a new file at the path has another inode: neither matches an entry.
static FOUND: std::sync::Mutex<Vec<(u64, u64, Arc<str>)>> = std::sync::Mutex::new(Vec::new());

fn remember_exe(path: &Arc<str>, running: &std::fs::Metadata) {
    let mut found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    if found.len() >= 256 {
        found.clear();
    }
    if !found.iter().any(|(d, i, p)| (*d, *i) == (running.dev(), running.ino()) && p == path) {
        found.push((running.dev(), running.ino(), path.clone()));
    }
}

/// The executable if it was found under this path before (told), else not told.
fn known_exe(link: &str) -> (Option<Arc<str>>, bool) {
    let Some((path, running)) = running_exe(link) else { return (None, true) };
    let found = FOUND.lock().unwrap_or_else(|e| e.into_inner());
    let known = found.iter().find(|(d, i, p)| (*d, *i) == (running.dev(), running.ino()) && *p == path);
    match known {
        Some((_, _, p)) => (Some(p.clone()), true),
        None => (None, false),
    }
}

/// The ID in the process's own `/.flatpak-info` (see `flatpak`): `/proc/PID/root` is the
/// process's root, and the file must be a regular one, not a symlink (which would be resolved
/// in the daemon's root).
fn flatpak_id(pid: i32) -> Option<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(format!("/proc/{pid}/root/.flatpak-info"))
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    flatpak::app_id(&String::from_utf8(read_capped(file, CAP)?).ok()?)
}

/// `snap.NAME` from the process's AppArmor label, stronger than the cgroup's hint: only
/// snapd's launcher puts a process in a snap's profile (or a process that then is as confined
/// as that snap is). The AppArmor-specific file first (Linux 5.8+), so that another security
/// module's label is never read as one.
fn apparmor_snap(pid: i32) -> Option<String> {
    let label = read_text(&format!("/proc/{pid}/attr/apparmor/current"))
        .or_else(|| read_text(&format!("/proc/{pid}/attr/current")))?;
    cgroup::snap_of_apparmor_label(&label)
}

fn read_text(path: &str) -> Option<String> {
    String::from_utf8(read_capped(File::open(path).ok()?, CAP)?).ok()
}

#[cfg(test)]
#[path = "linux_tests.rs"]
mod tests;
