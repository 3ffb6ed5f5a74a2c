//! On real processes: copies of `/bin/sleep` at paths of their own, connected to a socket the
//! test listens on (the child connects, in its own name, just before it runs the copy).

use std::ffi::CString;
use std::os::fd::FromRawFd;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::Duration;

use super::*;

/// Tests that steer which PID the next process gets take turns (they all write
/// `ns_last_pid`).
static PIDS: Mutex<()> = Mutex::new(());

struct Lab {
    dir: tempfile::TempDir,
    listener: UnixListener,
}

impl Lab {
    fn new() -> Lab {
        let dir = tempfile::Builder::new().prefix("tb-identity").tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("s")).unwrap();
        Lab { dir, listener }
    }

    /// A copy of `/bin/sleep` named `name`.
    fn program(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::copy("/bin/sleep", &path).unwrap();
        path
    }

    /// `program 30`, which connected to the listener before it ran; the daemon's end of that
    /// connection (accepted), and the client's end (kept here: it outlives the child).
    fn connected(&self, program: &Path) -> (Child, UnixStream, OwnedFd) {
        loop {
            // SAFETY: plain socket(2).
            let raw = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
            assert!(raw >= 0);
            // SAFETY: just made, ours alone.
            let client = unsafe { OwnedFd::from_raw_fd(raw) };
            let (addr, len) = tokenbroker_testkit::sockaddr_un(&self.dir.path().join("s"));
            // SAFETY: between fork and exec the child only calls connect(2), async-signal-safe.
            let spawned = unsafe {
                Command::new(program)
                    .arg("30")
                    .pre_exec(move || {
                        if libc::connect(raw, (&raw const addr).cast(), len) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    })
                    .spawn()
            };
            let (server, _) = self.listener.accept().unwrap();
            match spawned {
                Ok(child) => return (child, server, client),
                // The copy is still open for writing in a child another test forked meanwhile.
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("{e}"),
            }
        }
    }
}

fn pid(child: &Child) -> i32 {
    child.id() as i32
}

fn end(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn exe(path: &Path) -> Option<Arc<str>> {
    Some(Arc::from(path.to_str().unwrap()))
}

/// `program 30` started so that it gets PID `pid` (root only: `ns_last_pid`); `None` when
/// other processes took it every time.
fn spawn_with_pid(program: &Path, pid: i32) -> Option<Child> {
    for _ in 0..100 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).ok()?;
        let child = match Command::new(program).arg("30").spawn() {
            Ok(child) => child,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => continue,
            Err(e) => panic!("{e}"),
        };
        if self::pid(&child) == pid {
            return Some(child);
        }
        end(child);
    }
    None
}

fn pidfd_open(pid: i32) -> OwnedFd {
    // SAFETY: pidfd_open(2); the descriptor is checked, then owned.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    assert!(fd >= 0, "pidfd_open: {}", std::io::Error::last_os_error());
    // SAFETY: just made, ours alone.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn the_start_time_is_found_after_any_comm() {
    let tail = "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21";
    assert_eq!(parse_start_time(&format!("77 (sleep) {tail}")), Some(424242));
    // A program can name itself (comm, 15 bytes) with spaces and parentheses.
    assert_eq!(parse_start_time(&format!("77 (a) b (c) {tail}")), Some(424242));
    assert_eq!(parse_start_time(&format!("77 ()) 1 2 3 ) {tail}")), Some(424242));
    assert_eq!(parse_start_time("77 (x) S 1 2"), None);
    assert_eq!(parse_start_time("77 no parenthesis"), None);
    // And on a real process whose comm is exactly that (exec names it after its file).
    let lab = Lab::new();
    let program = lab.program("a) b (c");
    let (a, _a_end, _a_client) = lab.connected(&program);
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid(&a))).unwrap();
    assert!(stat.contains("(a) b (c)"), "{stat}");
    assert!(start_time(pid(&a)).is_some());
    assert_eq!(Pin::StartTime.resolve(pid(&a)).exe, exe(&program));
    end(a);
}

#[test]
fn each_program_is_told_by_its_own_path_on_both_roads() {
    let lab = Lab::new();
    let (one, two) = (lab.program("one"), lab.program("two"));
    let (a, a_end, _a_client) = lab.connected(&one);
    let (b, b_end, _b_client) = lab.connected(&two);
    for (child, end_, program) in [(&a, &a_end, &one), (&b, &b_end, &two)] {
        let pin = pin_peer(end_.as_fd());
        assert!(matches!(pin, Pin::Pidfd(_)), "this kernel (6.5+) gives pidfds: {pin:?}");
        assert_eq!(pin.resolve(pid(child)).exe, exe(program));
        assert_eq!(Pin::StartTime.resolve(pid(child)).exe, exe(program));
        // A bus's ProcessFD is a pidfd like any other.
        assert_eq!(Pin::from_pidfd(Some(pidfd_open(pid(child)))).resolve(pid(child)).exe, exe(program));
    }
    end(a);
    end(b);
}

#[test]
fn a_pidfd_of_one_process_does_not_vouch_for_another_pid() {
    let lab = Lab::new();
    let (a, _a_end, _a_client) = lab.connected(&lab.program("one"));
    let (b, _b_end, _b_client) = lab.connected(&lab.program("two"));
    assert_eq!(Pin::Pidfd(pidfd_open(pid(&a))).resolve(pid(&b)), Identity::default());
    end(a);
    end(b);
}

#[test]
fn an_executable_deleted_or_replaced_since_it_started_is_not_named() {
    let lab = Lab::new();
    let program = lab.program("gone");
    let (a, a_end, _a_client) = lab.connected(&program);
    assert_eq!(pin_peer(a_end.as_fd()).resolve(pid(&a)).exe, exe(&program));
    std::fs::remove_file(&program).unwrap();
    // /proc/PID/exe now reads ".../gone (deleted)", and a file of that name could be anyone's.
    std::fs::copy("/bin/true", program.with_file_name("gone (deleted)")).unwrap();
    assert_eq!(pin_peer(a_end.as_fd()).resolve(pid(&a)).exe, None);
    // Another file now at the path is not what runs.
    std::fs::copy("/bin/true", &program).unwrap();
    assert_eq!(pin_peer(a_end.as_fd()).resolve(pid(&a)).exe, None);
    end(a);
}

#[test]
fn a_peer_gone_before_it_is_looked_at_has_no_parts() {
    let lab = Lab::new();
    let (a, a_end, _a_client) = lab.connected(&lab.program("brief"));
    let a_pid = pid(&a);
    end(a);
    let pin = pin_peer(a_end.as_fd());
    assert!(!matches!(pin, Pin::StartTime), "{pin:?}");
    assert_eq!(pin.resolve(a_pid), Identity::default());
}

/// THE PID-REUSE TEST, first form: the caller connects, keeps the connection open elsewhere
/// (here: in the test), exits, and the program it wants to pass for takes its PID before the
/// daemon looks. With a pidfd nothing of the newcomer is reported; the start-time fallback
/// cannot tell (both its reads see the newcomer): it reports the newcomer, the window that
/// kernels without SO_PEERPIDFD have (docs/security.md).
#[test]
#[ignore = "needs root"]
fn a_caller_gone_before_the_lookup_cannot_lend_its_pid_to_another_program() {
    let _turn = PIDS.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new();
    let (denied, allowed) = (lab.program("denied"), lab.program("allowed"));
    let (a, a_end, _a_client) = lab.connected(&denied);
    let a_pid = pid(&a);
    end(a);
    let b = spawn_with_pid(&allowed, a_pid).expect("the allowed program got the caller's PID");
    // The newcomer is there under the caller's PID: the test is real.
    assert_eq!(read_parts(a_pid).exe, exe(&allowed));

    let pin = pin_peer(a_end.as_fd());
    assert_eq!(pin.resolve(a_pid), Identity::default(), "{pin:?}");
    // The fallback's window, shown: it names the newcomer.
    assert_eq!(Pin::StartTime.resolve(a_pid).exe, exe(&allowed));
    end(b);
}

/// THE PID-REUSE TEST, second form: the caller dies, and its PID is taken, WHILE its parts
/// are read. Both roads catch it (the pidfd is dead afterwards; the start time changed).
#[test]
#[ignore = "needs root"]
fn a_pid_reused_during_the_reads_gives_no_parts_on_either_road() {
    let _turn = PIDS.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new();
    let (denied, allowed) = (lab.program("denied"), lab.program("allowed"));
    for fallback in [false, true] {
        let (a, a_end, _a_client) = lab.connected(&denied);
        let a_pid = pid(&a);
        // Another clock tick for the newcomer's start (USER_HZ is 100).
        std::thread::sleep(Duration::from_millis(30));
        let pin = if fallback { Pin::StartTime } else { pin_peer(a_end.as_fd()) };
        let mut newcomer = None;
        let mut seen = None;
        let identity = pin.resolve_with(a_pid, |p| {
            end(a);
            newcomer = Some(spawn_with_pid(&allowed, p).expect("the allowed program got the caller's PID"));
            let parts = read_parts(p);
            seen = parts.exe.clone();
            parts
        });
        assert_eq!(seen, exe(&allowed), "the reads saw the newcomer");
        assert_eq!(identity, Identity::default(), "fallback: {fallback}");
        end(newcomer.unwrap());
    }
}

/// The unit and a snap's name from the process's cgroup (v2), for a process root moved into
/// cgroups named like a systemd scope and a snap's scope.
#[test]
#[ignore = "needs root"]
fn the_unit_and_the_snap_hint_come_from_the_cgroup() {
    let Some(root) = cgroup2_mount() else { panic!("no cgroup2 mount to test with") };
    let lab = Lab::new();
    let (a, a_end, _a_client) = lab.connected(&lab.program("scoped"));
    let tag = std::process::id();
    let parent = root.join(format!("tb-test-{tag}.slice"));
    let scope = parent.join(format!("tb-probe-{tag}.scope"));
    let snap = parent.join(format!("snap.tbprobe.app-{tag}.scope"));
    for dir in [&parent, &scope, &snap] {
        std::fs::create_dir(dir).unwrap();
    }
    let ours = std::fs::read_to_string(format!("/proc/{}/cgroup", pid(&a))).unwrap();
    let look = || pin_peer(a_end.as_fd()).resolve(pid(&a));
    std::fs::write(scope.join("cgroup.procs"), pid(&a).to_string()).unwrap();
    let in_scope = look();
    std::fs::write(snap.join("cgroup.procs"), pid(&a).to_string()).unwrap();
    let in_snap = look();
    end(a);
    std::thread::sleep(Duration::from_millis(50));
    for dir in [&snap, &scope, &parent] {
        let _ = std::fs::remove_dir(dir);
    }
    assert_eq!(in_scope.unit.as_deref(), Some(format!("tb-probe-{tag}.scope").as_str()), "was in:\n{ours}");
    assert_eq!(in_scope.app_id, None);
    assert_eq!(in_snap.unit.as_deref(), Some(format!("snap.tbprobe.app-{tag}.scope").as_str()));
    assert_eq!(in_snap.app_id.as_deref(), Some("snap.tbprobe"));
}

fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split(' ');
        let (_, at, kind) = (f.next()?, f.next()?, f.next()?);
        (kind == "cgroup2").then(|| PathBuf::from(at))
    })
}

/// A process whose root is `dir` (a forked child that chroots and waits).
struct Rooted(i32);

impl Rooted {
    fn new(dir: &Path) -> Rooted {
        let dir = CString::new(dir.as_os_str().as_bytes()).unwrap();
        // SAFETY: the child calls only chroot, pause and _exit (async-signal-safe).
        match unsafe { libc::fork() } {
            0 => unsafe {
                if libc::chroot(dir.as_ptr()) != 0 {
                    libc::_exit(1);
                }
                loop {
                    libc::pause();
                }
            },
            pid => {
                assert!(pid > 0);
                // Until it has chrooted.
                let want = std::fs::canonicalize(dir.to_str().unwrap()).unwrap();
                for _ in 0..200 {
                    if std::fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r == want) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Rooted(pid)
            }
        }
    }
}

impl Drop for Rooted {
    fn drop(&mut self) {
        // SAFETY: our own child.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

/// `/.flatpak-info` is read in the process's own root, as a regular file: a symlink there
/// (which would be resolved in the DAEMON's root, where the caller may have put any file) or a
/// directory names no app.
#[test]
#[ignore = "needs root"]
fn the_flatpak_id_is_read_from_the_processs_own_root_and_never_through_a_symlink() {
    let lab = Lab::new();
    let info = "[Application]\nname=org.example.Sandboxed\n[Instance]\ninstance-id=1\n";
    let honest = lab.dir.path().join("honest");
    std::fs::create_dir(&honest).unwrap();
    std::fs::write(honest.join(".flatpak-info"), info).unwrap();
    let p = Rooted::new(&honest);
    assert_eq!(Pin::Pidfd(pidfd_open(p.0)).resolve(p.0).app_id.as_deref(), Some("org.example.Sandboxed"));
    drop(p);

    let planted = lab.dir.path().join("planted-info");
    std::fs::write(&planted, info).unwrap();
    let linked = lab.dir.path().join("linked");
    std::fs::create_dir(&linked).unwrap();
    std::os::unix::fs::symlink(&planted, linked.join(".flatpak-info")).unwrap();
    let p = Rooted::new(&linked);
    assert_eq!(Pin::Pidfd(pidfd_open(p.0)).resolve(p.0).app_id, None);
    drop(p);

    let dir = lab.dir.path().join("dir");
    std::fs::create_dir_all(dir.join(".flatpak-info")).unwrap();
    let p = Rooted::new(&dir);
    assert_eq!(Pin::Pidfd(pidfd_open(p.0)).resolve(p.0).app_id, None);
}

#[test]
fn reads_are_capped() {
    assert_eq!(read_capped(&[b'a'; 10][..], 10).map(|v| v.len()), Some(10));
    assert_eq!(read_capped(&[b'a'; 11][..], 10), None);
}

/// The quick road (procfs only) names an executable only as found under its path before, and
/// never a file replaced since.
#[test]
fn a_program_seen_before_is_named_without_a_stat_and_a_replaced_one_is_not() {
    let lab = Lab::new();
    let program = lab.program("quick");
    let (first, _server, _client) = lab.connected(&program);
    let pin = Pin::Pidfd(pidfd_open(pid(&first)));
    assert_eq!(pin.resolve_without_blocking(pid(&first)), None, "never seen: the path must be looked at");
    assert_eq!(pin.resolve(pid(&first)).exe, exe(&program));
    assert_eq!(pin.resolve_without_blocking(pid(&first)).and_then(|i| i.exe), exe(&program));
    // A new file put at the path: the running process's file is no longer under it.
    let fresh = lab.program("fresh");
    std::fs::rename(&fresh, &program).unwrap();
    let quick = pin.resolve_without_blocking(pid(&first));
    assert!(quick.as_ref().is_none_or(|i| i.exe.is_none()), "{quick:?}");
    assert_eq!(pin.resolve(pid(&first)).exe, None);
    end(first);
}
