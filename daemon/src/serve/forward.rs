//! The forwards' sockets: `forward/NAME.sock` beside the main socket's directory, served by the
//! socket door with callers at door `forward:NAME`. What a forward allows, and when it ends,
//! the core decides; this only binds, serves and closes.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::socket::{self, Limits};
use crate::broker::Broker;
use crate::broker::forward::Doors;
use crate::broker::request::Door;

/// The directory of the forwards' sockets, for the main socket at `main`.
pub fn dir_for(main: &Path) -> PathBuf {
    main.parent().unwrap_or(Path::new(".")).join("forward")
}

pub struct ForwardDoors {
    dir: PathBuf,
    /// Weak: the core holds this, and a forward's connections hold the core.
    broker: Weak<Broker>,
    limits: Limits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    open: Mutex<HashMap<String, Open>>,
}

/// A socket being served: how to stop it, and which file is ours to remove.
struct Open {
    stop: CancellationToken,
    path: PathBuf,
    file: (u64, u64),
}

impl ForwardDoors {
    pub fn new(
        dir: PathBuf,
        broker: &Arc<Broker>,
        limits: Limits,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> ForwardDoors {
        let doors =
            ForwardDoors { dir, broker: Arc::downgrade(broker), limits, shutdown, tracker, open: Mutex::default() };
        doors.sweep();
        doors
    }

    /// Sockets left by a daemon that was killed: forwards that ended meanwhile would leave
    /// theirs behind forever. Only our own sockets are removed (as the main socket's stale
    /// file is); the ones still kept are bound again right after.
    fn sweep(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "sock")
                && std::os::unix::net::UnixStream::connect(&path).is_err()
                && let Err(e) = super::socket_dir::remove_stale(&path)
            {
                tracing::debug!(error = %e, "leaving a file in the forwards' directory");
            }
        }
    }
}

/// Device and inode: which file a path names, so that a forward's old task never removes the
/// socket of the forward that replaced it.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn remove_if(path: &Path, file: (u64, u64)) {
    if identity(path) == Some(file) {
        let _ = std::fs::remove_file(path);
    }
}

impl Doors for ForwardDoors {
    fn open(&self, name: &str) -> Result<(), String> {
        let broker = self.broker.upgrade().ok_or("the daemon is stopping")?;
        let path = self.path(name);
        let listener = socket::bind(&path).map_err(|e| format!("{e:#}"))?;
        let file = identity(&path).ok_or("the socket vanished as it was bound")?;
        let stop = self.shutdown.child_token();
        let serving =
            socket::serve(listener, broker, self.limits, stop.clone(), self.tracker.clone(), Door::forward(name));
        let gone = path.clone();
        self.tracker.spawn(async move {
            serving.await;
            remove_if(&gone, file);
        });
        let old =
            self.open.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_owned(), Open { stop, path, file });
        if let Some(old) = old {
            old.stop.cancel();
        }
        Ok(())
    }

    fn close(&self, name: &str) {
        let Some(open) = self.open.lock().unwrap_or_else(|e| e.into_inner()).remove(name) else { return };
        // The file first: no new connection finds it, even before the task sees the stop.
        remove_if(&open.path, open.file);
        open.stop.cancel();
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.sock"))
    }
}
