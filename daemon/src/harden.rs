//! Process hardening, as an agent that holds credentials should have (compare rbw, ssh-agent).

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// No core dumps, and no ptrace attach by other processes of the same user. Also lift the
/// open-file limit to its hard maximum: every client connection is a descriptor.
///
/// Runs before logging is set up (nothing that could read a secret runs before it), so what
/// did not take effect is returned, for the caller to log once it can. None of it stops the
/// daemon: a sandbox that refuses these calls (a seccomp filter) usually has its own guards,
/// and a daemon that does not start protects nothing.
pub fn apply() -> Vec<String> {
    let mut failed = Vec::new();
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable) {
        failed.push(format!(
            "prctl(PR_SET_DUMPABLE, 0) failed ({e}): other processes of this user may ptrace the daemon and read its memory"
        ));
    }
    if let Err(e) = setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) }) {
        failed.push(format!("setrlimit(RLIMIT_CORE, 0) failed ({e}): a crash may leave a core dump holding tokens"));
    }
    let files = getrlimit(Resource::Nofile);
    let below_hard = match (files.current, files.maximum) {
        (Some(current), Some(maximum)) => current < maximum,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard && let Err(e) = setrlimit(Resource::Nofile, Rlimit { current: files.maximum, ..files }) {
        failed.push(format!(
            "setrlimit(RLIMIT_NOFILE) to the hard limit failed ({e}): the soft limit stays, and with it fewer \
             client connections fit"
        ));
    }
    failed
}

/// One allocator arena for the whole process. glibc gives each thread that allocates an
/// arena of its own, kept for the life of the process; the daemon's threads besides the
/// runtime's one are short-lived keyring workers, so their arenas would be memory held for
/// nothing (about 70 KiB each).
pub fn single_allocator_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; it is called before other threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
