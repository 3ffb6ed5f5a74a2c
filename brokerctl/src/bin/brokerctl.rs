//! brokerctl: the command line for tokenbrokerd, on the blocking client (no async runtime,
//! no TLS: it only ever talks to the local daemon over its socket). `--dbus` is served by
//! brokerctl-dbus, installed beside it.

use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use brokerctl::transport::Bus;

fn main() -> ExitCode {
    brokerctl::main(open_bus)
}

/// The session bus: hand the whole command over to brokerctl-dbus (beside this binary, else
/// on PATH), which links the D-Bus stack this one leaves out. Returns only if that fails.
fn open_bus() -> tokenbroker::Result<Box<dyn Bus>> {
    let beside = std::env::current_exe().ok().map(|p| p.with_file_name("brokerctl-dbus")).filter(|p| p.exists());
    let helper = beside.unwrap_or_else(|| "brokerctl-dbus".into());
    let error = std::process::Command::new(&helper).args(std::env::args_os().skip(1)).exec();
    Err(tokenbroker::Error::Unreachable {
        path: format!("the session bus (through {})", helper.display()),
        source: error,
    })
}
