//! Process hardening, as an agent that holds credentials should have (compare rbw, ssh-agent).

/// No core dumps, and no ptrace attach by other processes of the same user. Also lift the
/// open-file limit to its hard maximum: every client connection is a descriptor.
pub fn apply() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) only changes this process's dumpable flag.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: setrlimit reads the struct we pass; failure only leaves core dumps possible.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
    }
    let mut files = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut files) == 0 && files.rlim_cur < files.rlim_max {
            files.rlim_cur = files.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &files);
        }
    }
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
