//! One contract call against the core, answered as the JSON of its result: shared by every
//! door that speaks the contract's JSON shapes.

use std::sync::Arc;

use serde::Serialize;
use tokenbroker::protocol::Call;

use crate::broker::{Broker, Encoded, Error, Result};

/// The result's JSON, encoded from its type directly (no JSON tree in between).
pub async fn dispatch(broker: &Arc<Broker>, call: Call) -> Result<Encoded> {
    match call {
        Call::GetAccessToken(p) => broker.access_token_json(p).await,
        Call::GetIdToken(p) => json(broker.id_token(p).await?),
        Call::GetProfile(p) => json(broker.profile(p).await?),
        Call::GetMetadata(p) => json(broker.metadata(p).await?),
        Call::UpdateMetadata(p) => json(broker.update_metadata(p).await?),
        Call::Login(p) => json(broker.login(p).await?),
        Call::AwaitLogin(p) => json(broker.await_login(&p.login_id).await?),
        Call::Logout(p) => json(broker.logout(p).await?),
        Call::Status(_) => json(broker.status()),
        Call::Diagnose(_) => json(broker.diagnose().await),
    }
}

fn json(v: impl Serialize) -> Result<Encoded> {
    serde_json::to_vec(&v).map(Encoded::owned).map_err(|e| Error::internal(format!("encoding the answer: {e}")))
}
