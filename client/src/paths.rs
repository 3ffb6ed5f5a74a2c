//! Where the daemon's socket is, by the contract's rules.

use std::path::PathBuf;

/// `TOKENBROKER_SOCKET`, else `$XDG_RUNTIME_DIR/tokenbroker/broker.sock`. Without a runtime
/// dir: on macOS `~/Library/Caches/tokenbroker/broker.sock` (where the LaunchAgent's socket
/// is), elsewhere a per-user directory in the temp dir.
pub fn socket_path() -> PathBuf {
    if let Some(p) = std::env::var_os("TOKENBROKER_SOCKET").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    runtime_dir().join("tokenbroker").join("broker.sock")
}

fn runtime_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("XDG_RUNTIME_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if cfg!(target_os = "macos")
        && let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
    {
        return PathBuf::from(home).join("Library/Caches");
    }
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("tokenbroker-{uid}"))
}
