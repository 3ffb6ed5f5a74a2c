use crate::protocol::{ErrorKind, RpcError};

/// Everything a call can fail with, as a client sees it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No daemon answers at the socket (not running, wrong path, refused).
    #[error("cannot reach tokenbrokerd at {path}: {source}")]
    Unreachable { path: String, source: std::io::Error },
    /// The socket or the bus name is served by another user than ours (or root): nothing was
    /// sent to it, and nothing it might say is believed.
    #[error(
        "refusing {server}: it is served by another user (UID {uid}), not by you or root, so nothing was sent; {fix}"
    )]
    ForeignServer { server: String, uid: u32, fix: &'static str },
    /// The daemon answered with one of the contract's broker errors.
    #[error("{message}")]
    Broker { kind: ErrorKind, message: String },
    /// The daemon answered with a JSON-RPC protocol error (-327xx, -32600).
    #[error("protocol error {code}: {message}")]
    Rpc { code: i64, message: String },
    /// The connection broke, or the answer was not the contract's.
    #[error("talking to tokenbrokerd: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The contract's error kind, when the daemon gave one.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Error::Broker { kind, .. } => Some(*kind),
            Error::Rpc { code, .. } if *code == crate::protocol::INVALID_PARAMS => Some(ErrorKind::InvalidParams),
            _ => None,
        }
    }
}

impl From<RpcError> for Error {
    fn from(e: RpcError) -> Self {
        match e.data {
            Some(data) => Error::Broker { kind: data.kind, message: e.message },
            None => Error::Rpc { code: e.code, message: e.message },
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
