//! Where the daemon keeps what it learns while running (the audit trail, remembered consent):
//! `$XDG_STATE_HOME/tokenbroker` (the systemd unit's `StateDirectory=`), never the config.

use std::path::PathBuf;

/// `$XDG_STATE_HOME/tokenbroker`, else `~/.local/state/tokenbroker`; where a platform has no
/// state dir (macOS), its local data dir.
pub fn state_dir() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "tokenbroker")?;
    Some(dirs.state_dir().unwrap_or_else(|| dirs.data_local_dir()).to_path_buf())
}
