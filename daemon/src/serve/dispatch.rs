//! One contract call against the core, answered as the JSON of its result: shared by every
//! door that speaks the contract's JSON shapes.

use std::sync::Arc;

use tokenbroker::protocol::Call;

use crate::broker::{Broker, Encoded, Result};

/// The result's JSON, encoded from its type directly (no JSON tree in between).
pub async fn dispatch(broker: &Arc<Broker>, call: Call) -> Result<Encoded> {
    match call {
        Call::GetAccessToken(p) => broker.access_token_json(p).await,
        Call::GetIdToken(p) => Encoded::json(&broker.id_token(p).await?),
        Call::GetProfile(p) => Encoded::json(&broker.profile(p).await?),
        Call::GetMetadata(p) => Encoded::json(&broker.metadata(p).await?),
        Call::UpdateMetadata(p) => Encoded::json(&broker.update_metadata(p).await?),
        Call::Login(p) => Encoded::json(&broker.login(p).await?),
        Call::AwaitLogin(p) => Encoded::json(&broker.await_login(&p.login_id).await?),
        Call::CancelLogin(p) => Encoded::json(&broker.cancel_login(&p.login_id)),
        Call::Logout(p) => Encoded::json(&broker.logout(p).await?),
        Call::Status(_) => Encoded::json(&broker.status()),
        Call::Diagnose(_) => Encoded::json(&broker.diagnose().await),
    }
}
