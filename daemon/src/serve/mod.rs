//! The doors: thin adapters that decode a request, call the broker core, encode the answer.

mod answers;
pub mod dbus;
pub mod dispatch;
pub mod forward;
mod lines;
mod log_limit;
mod slots;
pub mod socket;
mod socket_dir;
