//! Process hardening, as an agent that holds credentials should have (compare rbw, ssh-agent).

/// No core dumps, and no ptrace attach by other processes of the same user.
pub fn apply() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) only changes this process's dumpable flag.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let no_core = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct we pass; failure only leaves core dumps possible.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
    }
}
