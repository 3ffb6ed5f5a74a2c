//! Client for `tokenbrokerd`, the per-user OAuth 2.0 / OpenID Connect token broker.
//!
//! ```no_run
//! # async fn demo() -> tokenbroker::Result<()> {
//! let client = tokenbroker::Client::connect().await?;
//! let token = client.get_access_token(Default::default()).await?;
//! println!("Authorization: Bearer {}", token.access_token.expose());
//! # Ok(()) }
//! ```
//!
//! Programs without tokio use [`blocking::Client`], which has the same methods.

pub mod blocking;
mod client;
mod codec;
#[cfg(feature = "dbus")]
pub mod dbus;
pub mod dpop;
mod error;
pub mod paths;
mod server_uid;

pub use client::Client;
pub use error::{Error, Result};
/// The wire types, shared with the daemon (the `tokenbroker-protocol` crate).
pub use tokenbroker_protocol as protocol;
pub use tokenbroker_protocol::{ErrorKind, Secret, request, ttl};
