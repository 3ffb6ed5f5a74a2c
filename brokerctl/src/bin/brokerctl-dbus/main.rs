//! brokerctl-dbus: brokerctl with the session bus as its transport. `brokerctl --dbus …` (or
//! `TOKENBROKER_TRANSPORT=dbus`) runs this; it takes the same arguments.

mod bus;

use std::process::ExitCode;

fn main() -> ExitCode {
    brokerctl::main(bus::connect)
}
