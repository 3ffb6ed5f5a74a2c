//! brokerctl-dbus: brokerctl with the session bus as its transport. `brokerctl --dbus …` (or
//! `TOKENBROKER_TRANSPORT=dbus`) runs this; it takes the same arguments.

#[path = "../brokerctl/app.rs"]
mod app;
#[path = "../brokerctl/args.rs"]
mod args;
mod bus;
#[path = "../brokerctl/challenge.rs"]
mod challenge;
#[path = "../brokerctl/handoff.rs"]
mod handoff;
#[path = "../brokerctl/human.rs"]
mod human;
#[path = "../brokerctl/interrupt.rs"]
mod interrupt;
#[path = "../brokerctl/transport.rs"]
mod transport;

use std::process::ExitCode;

fn main() -> ExitCode {
    app::main()
}

pub fn open_bus() -> tokenbroker::Result<Box<dyn transport::Bus>> {
    bus::connect()
}
