//! The wire protocol of tokenbroker: newline-delimited JSON-RPC 2.0 over a Unix socket, and the
//! same methods on D-Bus.
//!
//! These types are shared by the daemon (which decodes requests and encodes results) and the
//! clients (which do the opposite), so the two can never disagree about a field name. Only
//! types, the method table, the token type [`Secret`] and the request decoder live here: no
//! runtime, no HTTP, no D-Bus, so that every side can depend on it and the decoder can be
//! fuzzed alone.

mod audit;
mod consent;
mod dpop;
mod envelope;
mod errors;
mod forward;
mod methods;
pub mod request;
mod secret;
pub mod ttl;
mod types;

pub use audit::{AuditDecision, AuditRecord};
pub use consent::*;
pub use dpop::{DpopProof, GetDpopProof, asks_for_nonce};
pub use envelope::*;
pub use errors::*;
pub use forward::*;
pub use methods::{Call, Method, method};
pub use secret::Secret;
pub use types::*;
