//! Where the socket may be bound: a directory that only we can change, reached through
//! directories that no one else can rearrange. Without `XDG_RUNTIME_DIR` the socket lives
//! under the shared temp directory, where another user could otherwise create our directory
//! first (or a symlink to theirs) and serve a fake broker that every client would trust.

use std::fs::{DirBuilder, Metadata};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::Path;

use anyhow::{Context, bail};

/// Make `dir` if it is missing (0700, without following a symlink at its place), then check
/// it and every directory above it.
pub fn prepare(dir: &Path) -> anyhow::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    // mkdir does not follow a symlink in the last component: one there is an EEXIST, and the
    // lstat below refuses it.
    match DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating socket directory {}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir).with_context(|| format!("examining {}", dir.display()))?;
    check_own(dir, &meta)?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let real = parent.canonicalize().with_context(|| format!("resolving {}", parent.display()))?;
    for ancestor in real.ancestors() {
        let meta = std::fs::metadata(ancestor).with_context(|| format!("examining {}", ancestor.display()))?;
        check_ancestor(dir, ancestor, &meta)?;
    }
    Ok(())
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

const FIX: &str = "remove it if it is yours, or give tokenbrokerd a directory only you can write \
                   (set XDG_RUNTIME_DIR, or --socket / TOKENBROKER_SOCKET)";

/// The socket's own directory: a real directory, ours, closed to everyone else.
fn check_own(dir: &Path, meta: &Metadata) -> anyhow::Result<()> {
    let d = dir.display();
    if !meta.file_type().is_dir() {
        bail!("refusing to serve in {d}: it is not a directory (a symlink?); {FIX}");
    }
    if meta.uid() != euid() {
        bail!("refusing to serve in {d}: it belongs to uid {}, not to you (uid {}); {FIX}", meta.uid(), euid());
    }
    if meta.mode() & 0o077 != 0 {
        bail!(
            "refusing to serve in {d}: its mode is {:o}, open to others; `chmod 700 {d}`, or {FIX}",
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

/// A directory above: ours or root's, and if others may write in it, sticky (as /tmp is), so
/// that they cannot rename or replace what we made there.
fn check_ancestor(dir: &Path, ancestor: &Path, meta: &Metadata) -> anyhow::Result<()> {
    let (d, a) = (dir.display(), ancestor.display());
    if meta.uid() != euid() && meta.uid() != 0 {
        bail!("refusing to serve in {d}: {a} above it belongs to uid {}, who could replace it; {FIX}", meta.uid());
    }
    if meta.mode() & 0o022 != 0 && meta.mode() & 0o1000 == 0 {
        bail!("refusing to serve in {d}: others may write in {a} above it (mode {:o}); {FIX}", meta.mode() & 0o7777);
    }
    Ok(())
}

/// A socket file left by a daemon that died is replaced; anything else at the path is not
/// ours to delete.
pub fn remove_stale(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(path).with_context(|| format!("examining {}", path.display()))?;
    if !meta.file_type().is_socket() || meta.uid() != euid() {
        bail!(
            "{} exists and is not a socket of yours; refusing to remove it (move it away, or choose another --socket)",
            path.display()
        );
    }
    std::fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A new directory `name` in `parent`, with `mode`.
    fn dir(parent: &Path, name: &str, mode: u32) -> std::path::PathBuf {
        let dir = parent.join(name);
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, mode);
        dir
    }

    #[test]
    fn a_missing_directory_is_made_0700_and_passes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run/tokenbroker");
        prepare(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        prepare(&dir).expect("a second start finds it as it left it");
    }

    #[test]
    fn a_directory_open_to_others_or_a_symlink_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let open = dir(tmp.path(), "open", 0o777);
        let err = prepare(&open).unwrap_err().to_string();
        assert!(err.contains("open to others") && err.contains("777"), "{err}");

        let theirs = dir(tmp.path(), "theirs", 0o700);
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&theirs, &link).unwrap();
        let err = prepare(&link).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn a_directory_above_that_others_can_rearrange_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let above = dir(tmp.path(), "tokenbroker-1000", 0o777);
        let err = prepare(&above.join("tokenbroker")).unwrap_err().to_string();
        assert!(err.contains("others may write"), "{err}");
        chmod(&above, 0o1777);
        prepare(&above.join("tokenbroker")).expect("a sticky directory, as /tmp, is fine");

        // Made by another user (possible to set up only as root, as CI runs).
        chmod(&above, 0o755);
        if unsafe {
            libc::chown(std::ffi::CString::new(above.as_os_str().as_encoded_bytes()).unwrap().as_ptr(), 65534, 65534)
        } == 0
        {
            let err = prepare(&above.join("tokenbroker")).unwrap_err().to_string();
            assert!(err.contains("belongs to uid 65534"), "{err}");
        }
    }

    #[tokio::test]
    async fn the_daemon_binds_only_where_the_checks_pass() {
        let tmp = tempfile::tempdir().unwrap();
        let above = dir(tmp.path(), "tokenbroker-1000", 0o777);
        let path = above.join("tokenbroker/broker.sock");
        assert!(crate::serve::socket::bind(&path).is_err(), "a hijackable path is refused");
        chmod(&above, 0o700);
        crate::serve::socket::bind(&path).expect("and a sound one is served");
        let file = tmp.path().join("file.sock");
        std::fs::write(&file, "x").unwrap();
        assert!(crate::serve::socket::bind(&file).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"x", "a regular file at --socket is never deleted");
    }

    /// Give `path` to another user (nobody): possible only as root, so the tests that call
    /// this are marked "needs root" (scripts/test runs them when it is root, as CI is).
    fn give_away(path: &Path) {
        let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string; lchown changes the link itself, never what it names.
        assert_eq!(unsafe { libc::lchown(path.as_ptr(), 65534, 65534) }, 0, "lchown: are we root?");
    }

    #[test]
    #[ignore = "needs root"]
    fn a_socket_directory_of_another_user_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = dir(tmp.path(), "tokenbroker", 0o700);
        give_away(&dir);
        let err = prepare(&dir).unwrap_err().to_string();
        assert!(err.contains("belongs to uid 65534, not to you"), "{err}");
    }

    #[test]
    fn only_a_socket_of_ours_is_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("broker.sock");
        std::fs::write(&file, "not a socket").unwrap();
        assert!(remove_stale(&file).is_err());
        assert!(file.exists(), "a regular file is never deleted");
        std::fs::remove_file(&file).unwrap();
        drop(std::os::unix::net::UnixListener::bind(&file).unwrap());
        remove_stale(&file).unwrap();
        assert!(!file.exists());
    }

    #[test]
    #[ignore = "needs root"]
    fn another_users_socket_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("broker.sock");
        drop(std::os::unix::net::UnixListener::bind(&file).unwrap());
        give_away(&file);
        let err = remove_stale(&file).unwrap_err().to_string();
        assert!(err.contains("not a socket of yours"), "{err}");
        assert!(file.exists(), "another user's socket is left alone");
    }
}
