//! Caller identity end to end: the daemon's debug log names, once per connection, the
//! program it saw behind each caller (`caller identified`, with pid, exe, unit, app_id).

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use tokenbroker_testkit::{Daemon, Env, Fixture, SOCKET_ONLY, brokerctl_path, eventually};

/// A copy of `program` in `dir` named `name` (another path, the same code).
fn copy(program: &Path, dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(program, &path).unwrap();
    path
}

/// Spawn, again while a child forked elsewhere still holds the fresh copy open for writing.
fn spawn(cmd: &mut Command) -> Child {
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => std::thread::sleep(Duration::from_millis(10)),
            spawned => return spawned.unwrap(),
        }
    }
}

/// The daemon's `caller identified` line for `pid`, once there is one.
async fn identified(daemon: &Daemon, pid: u32) -> String {
    let needle = format!("pid=Some({pid}) ");
    let line =
        || daemon.log().lines().find(|l| l.contains("caller identified") && l.contains(&needle)).map(String::from);
    assert!(
        eventually(Duration::from_secs(10), || async { line().is_some() }).await,
        "no line for {pid}:\n{}",
        daemon.log()
    );
    line().unwrap()
}

fn exe_field(path: &Path) -> String {
    format!("exe=Some({:?})", path.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_callers_are_told_apart_by_their_program() {
    let daemon = Daemon::start_without_bus(SOCKET_ONLY);
    let dir = tempfile::tempdir().unwrap();
    for name in ["first-tool", "second-tool"] {
        let program = copy(&brokerctl_path(), dir.path(), name);
        let mut child = spawn(Command::new(&program).arg("status").env("TOKENBROKER_SOCKET", daemon.socket()));
        let line = identified(&daemon, child.id()).await;
        child.wait().unwrap();
        assert!(line.contains(&exe_field(&program)) && line.contains("door=\"socket\""), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbus_callers_are_told_apart_by_their_program() {
    let Env { bus, idp: _idp, daemon } = Fixture::new().start().await;
    let dir = tempfile::tempdir().unwrap();
    let gdbus = copy(Path::new("/usr/bin/gdbus"), dir.path(), "some-dbus-tool");
    let mut cmd = bus.command(gdbus.to_str().unwrap());
    cmd.args(["call", "--session", "--dest", "io.github.tokenbroker.Broker1"]).args([
        "--object-path",
        "/io/github/tokenbroker/Broker1",
        "--method",
        "io.github.tokenbroker.Broker1.Status",
    ]);
    let mut child = spawn(&mut cmd);
    let line = identified(&daemon, child.id()).await;
    assert!(child.wait().unwrap().success());
    assert!(line.contains(&exe_field(&gdbus)) && line.contains("door=\"dbus\""), "{line}");
}

/// THE PID-REUSE TEST against the real daemon: while it is stopped (SIGSTOP), a caller running
/// `denied` connects (the connection waits in the backlog), keeps the connection open
/// elsewhere (here, in the test), exits, and a process running `allowed` is made to take its
/// PID; then the daemon goes on (SIGCONT) and looks. It must not name `allowed` (this kernel
/// has SO_PEERPIDFD: it names nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root"]
async fn a_caller_gone_before_the_daemon_looks_lends_its_pid_to_no_other_program() {
    let daemon = Daemon::start_without_bus(SOCKET_ONLY);
    let dir = tempfile::tempdir().unwrap();
    let denied = copy(Path::new("/bin/sleep"), dir.path(), "denied");
    let allowed = copy(Path::new("/bin/sleep"), dir.path(), "allowed");
    daemon.signal(libc::SIGSTOP);

    // SAFETY: plain socket(2), then owned.
    let client =
        unsafe { OwnedFd::from_raw_fd(libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0)) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&client);
    let (addr, len) = tokenbroker_testkit::sockaddr_un(&daemon.socket());
    let mut cmd = Command::new(&denied);
    cmd.arg("30");
    // SAFETY: between fork and exec the child only calls connect(2), async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            if libc::connect(raw, (&raw const addr).cast(), len) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut caller = spawn(&mut cmd);
    let pid = caller.id();
    caller.kill().unwrap();
    caller.wait().unwrap();
    let mut newcomer = None;
    for _ in 0..100 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let child = spawn(Command::new(&allowed).arg("30"));
        if child.id() == pid {
            newcomer = Some(child);
            break;
        }
        let mut child = child;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let mut newcomer = newcomer.expect("the allowed program got the caller's PID");
    assert_eq!(std::fs::read_link(format!("/proc/{pid}/exe")).unwrap(), allowed);

    daemon.signal(libc::SIGCONT);
    let line = identified(&daemon, pid).await;
    newcomer.kill().unwrap();
    newcomer.wait().unwrap();
    drop(client);
    assert!(!line.contains("allowed"), "the daemon took the newcomer for the caller: {line}");
    assert!(line.contains("exe=None"), "{line}");
}
