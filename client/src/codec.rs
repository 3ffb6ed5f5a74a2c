//! Encoding a request line and decoding its answer, shared by the async and blocking clients.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::protocol::{RequestRef, Response};

pub(crate) fn encode<P: Serialize>(id: u64, method: &str, params: &P) -> Result<Vec<u8>> {
    let req = RequestRef { jsonrpc: "2.0", id, method, params };
    let mut line = serde_json::to_vec(&req).map_err(std::io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

pub(crate) fn decode<R: DeserializeOwned>(id: u64, line: &[u8]) -> Result<R> {
    if line.is_empty() {
        return Err(Error::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    let resp: Response<R> =
        serde_json::from_slice(line).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    // An error with a null id answers a request the daemon could not read, or refuses the
    // connection itself: it is still meant for us.
    if resp.id.is_null()
        && let Some(e) = resp.error
    {
        return Err(e.into());
    }
    if resp.id != id {
        return Err(Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "answer to another request")));
    }
    match (resp.result, resp.error) {
        (_, Some(e)) => Err(e.into()),
        (Some(r), None) => Ok(r),
        (None, None) => {
            Err(Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "answer with neither result nor error")))
        }
    }
}
