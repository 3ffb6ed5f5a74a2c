//! Real parts for tokenbroker's integration tests and benchmarks, each started by the test
//! itself: a private D-Bus session bus with an unlocked gnome-keyring ([`Bus`]), the
//! oidc-provider test IdP in `testidp/` behind a fault-injecting proxy ([`Idp`], [`Proxy`]),
//! the real `tokenbrokerd` binary ([`Daemon`]), and a client that speaks the socket protocol
//! by hand ([`RawConn`]), a desktop notification service ([`Notifications`]), an OpenSSH server
//! on loopback ([`Sshd`]). [`Fixture`] starts the usual trio in one line:
//!
//! ```no_run
//! # async fn f() {
//! use tokenbroker_testkit::*;
//! let Env { bus, idp, daemon } =
//!     Fixture::new().idp(IdpOptions { access_ttl: 8, ..Default::default() }).logged_in("alice").await;
//! # }
//! ```
//!
//! Everything here panics on failure: a test (or a benchmark run) that cannot start its parts
//! has nothing else to do.

mod bus;
mod daemon;
mod fixture;
mod git_server;
mod idp;
mod kube_api;
mod notifications;
mod process;
mod proxy;
mod raw;
mod resource;
mod sshd;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use bus::Bus;
pub use daemon::{Daemon, SOCKET_ONLY};
pub use fixture::{Env, Fixture};
pub use git_server::{DEBIAN_GIT, GitServer, Seen};
pub use idp::{API, Idp, IdpOptions, REPORTS};
pub use kube_api::KubeApi;
pub use notifications::{NOTIFICATIONS_NAME, NOTIFICATIONS_PATH, Notification, Notifications};
pub use process::{Proc, output_of_fresh_copy, sockaddr_un, spawn_fresh_copy};
pub use proxy::{Fault, Proxy};
pub use raw::{AsyncConn, GET_ACCESS_TOKEN, RawConn, STATUS};
pub use resource::Resource;
pub use sshd::Sshd;

/// The repository's root (the test IdP, the units and the docs are found from here).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A binary of the workspace in the running program's target directory: beside a benchmark
/// binary, or one level up from a test binary (which cargo puts in `deps/`). `cargo test
/// -p tokenbroker-daemon` builds tokenbrokerd before its tests; brokerctl needs `cargo build
/// --workspace` (the README's test command does it first).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap();
    if dir.ends_with("deps") {
        dir = dir.parent().unwrap();
    }
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace` first (scripts/test does)", path.display());
    path
}

pub fn tokenbrokerd_path() -> PathBuf {
    binary("tokenbrokerd")
}

pub fn brokerctl_path() -> PathBuf {
    binary("brokerctl")
}

/// The UID of a second user for refusal tests: `tokenbroker-peer`, which CI creates
/// (`.ci/run`), or else `nobody`.
pub fn other_user() -> u32 {
    let out = Command::new("id").args(["-u", "tokenbroker-peer"]).output();
    out.ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(65534)
}

/// The claims of a JWT, unverified (tests look at what the IdP put in).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Seconds since the epoch, as token expiries count them.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The default account's access token, asked with `min_ttl`.
pub async fn token(
    client: &tokenbroker::Client,
    min_ttl: Option<u64>,
) -> tokenbroker::Result<tokenbroker::protocol::AccessToken> {
    client.get_access_token(tokenbroker::protocol::GetAccessToken { min_ttl, ..Default::default() }).await
}

/// Sleep into the next wall-clock second, so a token issued earlier has lost a second of life
/// (lifetimes are whole seconds).
pub async fn next_second() {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_millis();
    tokio::time::sleep(Duration::from_millis(1010 - ms as u64)).await;
}

/// Poll `f` until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Resident memory of a process, in KiB (0 once it is gone).
pub fn rss_kib(pid: impl std::fmt::Display) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Lift this process's open-file limit towards `want` (the hard limit too, where allowed), for
/// crowds of connections: each needs a descriptor here and one in the daemon, which inherits
/// the limit. The soft limit reached.
pub fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        if lim.rlim_max < want {
            let raised = libc::rlimit { rlim_cur: want, rlim_max: want };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return want;
            }
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}
