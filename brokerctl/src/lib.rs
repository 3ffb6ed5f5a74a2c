//! brokerctl, the command line for tokenbrokerd, as a library: the `brokerctl` and
//! `brokerctl-dbus` binaries are thin wrappers that differ only in how they reach the session
//! bus (brokerctl hands `--dbus` over to brokerctl-dbus, so that it links no D-Bus stack).

mod app;
mod args;
mod audit;
mod browser;
mod challenge;
mod completions;
mod credential_wire;
mod doctor;
mod doctor_door;
mod dpop;
mod exec;
mod forward;
pub mod git_credential;
mod git_hosts;
mod handoff;
mod human;
mod interrupt;
mod kube;
mod login;
mod login_view;
mod logout;
#[cfg(test)]
mod man;
mod setup_git;
mod status;
pub mod transport;

pub use app::main;
