//! The daemon's own defences, seen from outside: another process of its user can neither dump
//! nor trace it, and a sandbox that refuses the hardening calls gets each refusal named in the
//! log, not a daemon that fails to start.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokenbroker_testkit::*;

#[test]
#[ignore = "needs root"]
fn the_daemon_cannot_be_dumped_or_traced_by_its_own_user() {
    // Run it as the second user: a process's /proc files belong to its user while it is
    // dumpable, and to root once it has made itself non-dumpable (so that same-user processes
    // can neither ptrace it nor read its memory).
    let user = other_user();
    let dir = tempfile::tempdir().unwrap();
    let config = memory_config(dir.path());
    let path = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::chown(path.as_ptr(), user, user) }, 0);
    // The daemon serves only in a directory closed to others.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let socket = dir.path().join("broker.sock");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenbrokerd"));
    std::os::unix::process::CommandExt::uid(&mut cmd, user);
    let daemon = cmd
        .arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(&socket)
        .arg("--no-dbus")
        .env("HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let daemon = Proc(daemon);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the daemon did not come up as user {user}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let proc_dir = format!("/proc/{}", daemon.pid());
    let status = std::fs::read_to_string(format!("{proc_dir}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(uid_line.split_whitespace().nth(1) == Some(&user.to_string()), "runs as {user}: {uid_line}");
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(format!("{proc_dir}/mem")).unwrap().uid();
    assert_eq!(owner, 0, "/proc/PID/mem belongs to uid {owner}: the daemon is dumpable");
    let limits = std::fs::read_to_string(format!("{proc_dir}/limits")).unwrap();
    let core = limits.lines().find(|l| l.starts_with("Max core file size")).unwrap();
    assert_eq!(core.split_whitespace().skip(4).take(2).collect::<Vec<_>>(), ["0", "0"], "{core}");
}

/// A sandbox may refuse the hardening calls (here a seccomp filter refuses PR_SET_DUMPABLE and
/// every setrlimit): the daemon still starts, and its log names each one that did not take effect.
#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
#[test]
fn hardening_that_does_not_take_effect_is_logged_by_name() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let filter = refusing_hardening();
    let (_daemon, log) = start_on_memory(dir.path(), |cmd| {
        // SAFETY: between fork and exec only system calls, on memory allocated before the fork.
        unsafe {
            cmd.pre_exec(move || {
                // A soft open-file limit below the hard one, so that the daemon tries to lift it.
                let mut files = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut files);
                files.rlim_cur = files.rlim_max.min(256).saturating_sub(1);
                let program = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
                let installed = libc::setrlimit(libc::RLIMIT_NOFILE, &files) == 0
                    && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                    && libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &program) == 0;
                if installed { Ok(()) } else { Err(std::io::Error::last_os_error()) }
            });
        }
    });
    let text = std::fs::read_to_string(log).unwrap();
    for refused in ["PR_SET_DUMPABLE", "RLIMIT_CORE", "RLIMIT_NOFILE"] {
        let named = text.lines().any(|l| l.contains("hardening did not take effect") && l.contains(refused));
        assert!(named, "{refused} is not named:\n{text}");
    }
}

/// tokenbrokerd on a memory store in `dir`, without a bus, its socket in `dir/run`; `prepare`
/// adjusts the command first. Returns once it is ready, with where its log is.
pub(crate) fn start_on_memory(dir: &std::path::Path, prepare: impl FnOnce(&mut Command)) -> (Proc, std::path::PathBuf) {
    let log = dir.join("log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenbrokerd"));
    prepare(&mut cmd);
    let daemon = Proc(
        cmd.arg("--config")
            .arg(memory_config(dir))
            .arg("--socket")
            .arg(dir.join("run/broker.sock"))
            .arg("--no-dbus")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.contains("tokenbrokerd ready") {
            return (daemon, log);
        }
        assert!(Instant::now() < deadline, "the daemon did not start:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A config in `dir` with one account and `store = "memory"`: the daemon starts on it anywhere.
fn memory_config(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        "store = \"memory\"\n[accounts.work]\nissuer = \"https://idp.example.com\"\nclient_id = \"x\"\n",
    )
    .unwrap();
    config
}

/// A seccomp filter that makes prctl(PR_SET_DUMPABLE) and every setrlimit (prlimit64 with a
/// new limit) fail with EPERM, and lets everything else through.
#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
fn refusing_hardening() -> Vec<libc::sock_filter> {
    const LOAD: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET: u16 = 0x06; // BPF_RET | BPF_K
    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xC000_00B7;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    // seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8 i (low half first on these targets).
    vec![
        op(LOAD, 0, 0, 4),
        op(JEQ, 0, 9, ARCH),
        op(LOAD, 0, 0, 0),
        op(JEQ, 0, 2, libc::SYS_prctl as u32),
        op(LOAD, 0, 0, 16),
        op(JEQ, 6, 5, libc::PR_SET_DUMPABLE as u32),
        op(JEQ, 0, 4, libc::SYS_prlimit64 as u32),
        op(LOAD, 0, 0, 32),
        op(JEQ, 0, 3, 0),
        op(LOAD, 0, 0, 36),
        op(JEQ, 0, 1, 0),
        op(RET, 0, 0, 0x7fff_0000), // SECCOMP_RET_ALLOW
        op(RET, 0, 0, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
    ]
}
