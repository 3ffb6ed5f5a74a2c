//! tokenbrokerd as a library: [`start`] is the whole daemon (`main.rs` only reports how it
//! ended). The layers, each behind the one below it:
//!
//! - `serve`: the doors (Unix socket, D-Bus) — decode, dispatch to the core, encode;
//! - `broker`: the core — accounts, sessions, refresh scheduling, logins;
//! - `oidc`: talking to identity providers;
//! - `store`: where sessions live between runs (keyring, sealed file, memory).

mod activation;
mod audit;
mod broker;
mod browser;
mod check;
mod config;
mod failure;
mod harden;
mod identity;
mod logging;
#[cfg(test)]
mod man;
mod markup;
mod oidc;
mod private_file;
mod run;
mod serve;
mod sleep;
mod state_dir;
mod store;

pub use failure::report_failure;
pub use run::{Args, run, start};
