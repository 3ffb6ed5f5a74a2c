//! brokerctl, the command line for tokenbrokerd, as a library: the `brokerctl` and
//! `brokerctl-dbus` binaries are thin wrappers that differ only in how they reach the session
//! bus (brokerctl hands `--dbus` over to brokerctl-dbus, so that it links no D-Bus stack).

mod app;
mod args;
mod audit;
mod challenge;
mod credential_wire;
mod doctor_door;
mod exec;
pub mod git_credential;
mod git_hosts;
mod handoff;
mod human;
mod interrupt;
mod kube;
mod setup_git;
pub mod transport;

pub use app::main;
