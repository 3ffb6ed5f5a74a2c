//! Which door of the daemon `brokerctl doctor` checks: the socket, or with `--dbus` the
//! session bus. A doctor that checked the socket while every other `--dbus` command used the
//! bus would pass while those commands fail (and the other way round).

use tokenbroker::Result;
use tokenbroker::protocol::{DBUS_NAME, Diagnosis, Status};

use crate::transport::Transport;

pub(crate) struct Door {
    dbus: bool,
}

impl Door {
    pub(crate) fn new(dbus: bool) -> Door {
        Door { dbus }
    }

    pub(crate) fn is_bus(&self) -> bool {
        self.dbus
    }

    /// The daemon's status and its own checks, through this door.
    pub(crate) fn ask(&self) -> Result<(Status, Diagnosis)> {
        let client = Transport::connect(self.dbus)?;
        Ok((client.status()?, client.diagnose()?))
    }

    /// Where the daemon answers ("tokenbrokerd 0.1.0 answers …").
    pub(crate) fn place(&self) -> String {
        if self.dbus {
            format!("as {DBUS_NAME} on the session bus")
        } else {
            format!("at {}", tokenbroker::paths::socket_path().display())
        }
    }

    /// What to do when another user serves this door.
    pub(crate) fn foreign_fix(&self) -> String {
        if self.dbus {
            "another user owns the broker's name on this bus: do not use it; check DBUS_SESSION_BUS_ADDRESS (it \
             must be your own session bus) and start your own tokenbrokerd there"
                .into()
        } else {
            format!(
                "another user serves {}: do not use it; point TOKENBROKER_SOCKET (or XDG_RUNTIME_DIR) at a \
                 directory only you can write, and start your own tokenbrokerd there",
                tokenbroker::paths::socket_path().display()
            )
        }
    }

    /// What to do when nothing answers at this door.
    pub(crate) fn start_fix(&self) -> String {
        let start = "start it: `systemctl --user start tokenbroker.socket` (systemd), \
                     `launchctl kickstart gui/$(id -u)/io.github.tokenbroker` (macOS), or run `tokenbrokerd`";
        if self.dbus {
            format!(
                "{start}; it must own {DBUS_NAME} on your session bus (DBUS_SESSION_BUS_ADDRESS; \
                 `tokenbrokerd --no-dbus` serves the socket alone), or activate it with the D-Bus service file"
            )
        } else {
            format!(
                "{start}; it must listen at {} (or set TOKENBROKER_SOCKET)",
                tokenbroker::paths::socket_path().display()
            )
        }
    }
}
