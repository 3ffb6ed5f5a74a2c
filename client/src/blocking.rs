//! The blocking client, for programs without an async runtime (and for `brokerctl`, whose
//! start-up stays lean this way).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::MAX_RESPONSE;
use crate::codec;
use crate::error::{Error, Result};
use crate::protocol::Method;
use crate::server_uid;

/// One connection to `tokenbrokerd`, with the same methods as the async [`crate::Client`].
pub struct Client {
    conn: Mutex<BufReader<UnixStream>>,
    next_id: AtomicU64,
}

impl Client {
    pub fn connect() -> Result<Self> {
        Self::connect_to(crate::paths::socket_path())
    }

    pub fn connect_to(path: impl AsRef<Path>) -> Result<Self> {
        let path: PathBuf = path.as_ref().into();
        let stream = UnixStream::connect(&path)
            .map_err(|source| Error::Unreachable { path: path.display().to_string(), source })?;
        let uid = server_uid::of_socket(stream.as_fd())
            .map_err(|source| Error::Unreachable { path: path.display().to_string(), source })?;
        server_uid::check(uid, || format!("the socket {}", path.display()), server_uid::SOCKET_FIX)?;
        Ok(Client { conn: Mutex::new(BufReader::new(stream)), next_id: AtomicU64::new(1) })
    }

    pub fn call<P: Serialize, R: DeserializeOwned>(&self, method: &str, params: &P) -> Result<R> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let line = codec::encode(id, method, params)?;
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let written = conn.get_mut().write_all(&line);
        let mut answer = Vec::with_capacity(512);
        let read = (&mut *conn).take(MAX_RESPONSE).read_until(b'\n', &mut answer);
        // A daemon that refuses the connection answers and closes before reading: its answer
        // is worth more than our broken pipe.
        if answer.is_empty() {
            written?;
            read?;
        }
        codec::decode(id, &answer)
    }

    /// One method of the contract, typed by its marker (`protocol::method::Status`, …).
    pub fn request<M: Method>(&self, params: M::Params) -> Result<M::Result> {
        self.call(M::NAME, &params)
    }

    tokenbroker_protocol::typed_methods!();
}
