//! The async client, for apps that already run tokio.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::Mutex;

use crate::codec;
use crate::error::{Error, Result};
use crate::protocol::Method;
use crate::server_uid;

/// The longest answer a client reads; profiles and metadata can be larger than requests.
pub(crate) const MAX_RESPONSE: u64 = 4 * 1024 * 1024;

/// One connection to `tokenbrokerd`. Calls on one client are answered in order; share it
/// behind an `Arc`, or open one per task for parallel calls.
pub struct Client {
    conn: Mutex<BufReader<UnixStream>>,
    next_id: AtomicU64,
}

impl Client {
    /// Connect at the contract's socket path (`TOKENBROKER_SOCKET`, else the runtime dir).
    pub async fn connect() -> Result<Self> {
        Self::connect_to(crate::paths::socket_path()).await
    }

    pub async fn connect_to(path: impl AsRef<Path>) -> Result<Self> {
        let path: PathBuf = path.as_ref().into();
        let stream = UnixStream::connect(&path)
            .await
            .map_err(|source| Error::Unreachable { path: path.display().to_string(), source })?;
        let uid =
            stream.peer_cred().map_err(|source| Error::Unreachable { path: path.display().to_string(), source })?.uid();
        server_uid::check(uid, || format!("the socket {}", path.display()), server_uid::SOCKET_FIX)?;
        Ok(Client { conn: Mutex::new(BufReader::new(stream)), next_id: AtomicU64::new(1) })
    }

    /// Send any method by name; the typed methods below are thin wrappers of this.
    pub async fn call<P: Serialize, R: DeserializeOwned>(&self, method: &str, params: &P) -> Result<R> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let line = codec::encode(id, method, params)?;
        let mut conn = self.conn.lock().await;
        let written = conn.get_mut().write_all(&line).await;
        let mut answer = Vec::with_capacity(512);
        let read = (&mut *conn).take(MAX_RESPONSE).read_until(b'\n', &mut answer).await;
        // A daemon that refuses the connection answers and closes before reading: its answer
        // is worth more than our broken pipe.
        if answer.is_empty() {
            written?;
            read?;
        }
        codec::decode(id, &answer)
    }

    /// One method of the contract, typed by its marker (`protocol::method::Status`, …).
    pub async fn request<M: Method>(&self, params: M::Params) -> Result<M::Result> {
        self.call(M::NAME, &params).await
    }

    tokenbroker_protocol::typed_methods!(async.await);
}
