//! A decoded call through the one request pipeline, its result encoded as the contract's JSON:
//! the socket's answers and D-Bus `Call`'s. The match over methods is stamped from the
//! protocol's table, so a method added there is served here or the build fails.

use std::sync::Arc;

use serde::Serialize;
use tokenbroker::protocol::{Call, method};
use zeroize::Zeroizing;

use super::answers::{Json, cached};
use crate::broker::request::{Caller, handle};
use crate::broker::{Broker, Error, Result};

/// Run `call` for `caller`; its result's JSON. With `cache`, token answers come from the
/// token's memo (the socket's answers).
pub async fn dispatch(broker: &Arc<Broker>, caller: &Caller, call: Call, cache: bool) -> Result<Json> {
    // The hot path inline; the rest boxed, so that a connection's task, which holds this
    // future while it waits, stays the size of a token request (thousands may be open).
    match (call, cache) {
        (Call::GetAccessToken(p), true) => Ok(cached(&handle::<method::GetAccessToken>(broker, caller, p).await?)),
        (call, _) => Box::pin(dispatch_any(broker, caller, call)).await,
    }
}

async fn dispatch_any(broker: &Arc<Broker>, caller: &Caller, call: Call) -> Result<Json> {
    macro_rules! arms {
        ($( $(#[$doc:meta])* $name:ident $fn_name:ident [$params:ty] $args:tt -> $result:ty; )*) => {
            match call {
                $( Call::$name(p) => encode(&handle::<method::$name>(broker, caller, p).await?), )*
            }
        };
    }
    tokenbroker::protocol::for_each_method!((arms))
}

/// Any result, encoded from its type directly (no JSON tree in between), wiped when dropped.
pub fn encode(result: &impl Serialize) -> Result<Json> {
    serde_json::to_vec(result)
        .map(|bytes| Json::Owned(Zeroizing::new(bytes)))
        .map_err(|e| Error::internal(format!("encoding the answer: {e}")))
}
