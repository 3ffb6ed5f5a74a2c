//! The Unix-socket door: newline-delimited JSON-RPC 2.0, one request at a time per
//! connection, same-UID peers only.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokenbroker::protocol::{
    Call, ErrorData, INVALID_REQUEST, MAX_LINE, METHOD_NOT_FOUND, PARSE_ERROR, RawRequest, Response, RpcError,
};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::dispatch::dispatch;
use super::lines::{Line, read_line};
use crate::broker::{Broker, Error};

/// A connection that sends nothing for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

pub struct Limits {
    pub max_connections: usize,
}

/// Bind the socket: a missing directory is created 0700, the socket is made 0600. A live
/// daemon at the path is left alone (and reported); a stale socket file is replaced.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating socket directory {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("another tokenbrokerd is already serving at {}", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting mode 0600 on {}", path.display()))?;
    Ok(listener)
}

/// Accept until `shutdown`; connections are tracked so the caller can wait for in-flight
/// requests to finish.
pub async fn serve(
    listener: UnixListener,
    broker: Arc<Broker>,
    limits: Limits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(max = limits.max_connections, "connection refused: too many connections");
            tracker.spawn(refuse(stream, "too many connections to tokenbrokerd; try again shortly"));
            continue;
        };
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            connection(stream, broker, shutdown).await;
            drop(slot);
        });
    }
}

async fn refuse(mut stream: UnixStream, why: &str) {
    let error = RpcError { code: -32000, message: why.into(), data: None };
    let _ = stream.write_all(&encode(Response::<Value>::err(Value::Null, error))).await;
}

async fn connection(stream: UnixStream, broker: Arc<Broker>, shutdown: CancellationToken) {
    let me = unsafe { libc::getuid() };
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == me => {}
        Ok(cred) => {
            tracing::warn!(peer_uid = cred.uid(), peer_pid = ?cred.pid(), "refused a connection from another user");
            return refuse(stream, "tokenbrokerd serves only its own user").await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "refused a connection whose peer cannot be identified");
            return;
        }
    }
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = Vec::with_capacity(256);
    loop {
        let next = tokio::select! {
            next = read_line(&mut read, &mut line, MAX_LINE) => next,
            _ = tokio::time::sleep(IDLE_TIMEOUT) => return,
            _ = shutdown.cancelled() => return,
        };
        let answer = match next {
            Ok(Line::Read) => handle(&broker, &line).await,
            Ok(Line::TooLong) => {
                Some(protocol_error(Value::Null, INVALID_REQUEST, format!("request line longer than {MAX_LINE} bytes")))
            }
            Ok(Line::Eof) | Err(_) => return,
        };
        if let Some(answer) = answer
            && write.write_all(&answer).await.is_err()
        {
            return;
        }
    }
}

/// One request line to one answer line; `None` for a notification (no `id`), which JSON-RPC
/// says must not be answered.
async fn handle(broker: &Arc<Broker>, line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(_) => {
            return Some(protocol_error(Value::Null, PARSE_ERROR, "parse error: the line is not valid JSON".into()));
        }
    };
    if !value.is_object() {
        return Some(protocol_error(
            Value::Null,
            INVALID_REQUEST,
            "a request must be one JSON object (batches are not supported)".into(),
        ));
    }
    let has_id = value.get("id").is_some();
    let req: RawRequest = match serde_json::from_value(value) {
        Ok(r) => r,
        Err(_) => {
            return Some(protocol_error(Value::Null, INVALID_REQUEST, "invalid request object".into()));
        }
    };
    let id = match req.id {
        Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => id,
        None => Value::Null,
        Some(_) => {
            return Some(protocol_error(Value::Null, INVALID_REQUEST, "id must be a number, string or null".into()));
        }
    };
    if req.jsonrpc.as_deref() != Some("2.0") {
        return Some(protocol_error(id, INVALID_REQUEST, "jsonrpc must be \"2.0\"".into()));
    }
    let Some(method) = req.method else {
        return Some(protocol_error(id, INVALID_REQUEST, "method is missing".into()));
    };
    let answer = match Call::decode(&method, req.params) {
        Ok(call) => match dispatch(broker, call).await {
            Ok(result) => encode(Response::ok(id, result)),
            Err(e) => encode(Response::<Value>::err(id, broker_error(e))),
        },
        Err(None) => {
            protocol_error(id, METHOD_NOT_FOUND, format!("no method {method:?}; methods: {}", Call::METHODS.join(", ")))
        }
        Err(Some(why)) => encode(Response::<Value>::err(
            id,
            broker_error(Error::invalid_params(format!("invalid params for {method}: {why}"))),
        )),
    };
    has_id.then_some(answer)
}

fn broker_error(e: Error) -> RpcError {
    RpcError { code: e.kind.code(), message: e.message, data: Some(ErrorData { kind: e.kind }) }
}

fn protocol_error(id: Value, code: i64, message: String) -> Vec<u8> {
    encode(Response::<Value>::err(id, RpcError { code, message, data: None }))
}

fn encode(response: Response<Value>) -> Vec<u8> {
    let mut line = serde_json::to_vec(&response).expect("responses always serialize");
    line.push(b'\n');
    line
}

/// The socket path from `--socket`, `TOKENBROKER_SOCKET` or the runtime dir (the client
/// crate owns the rule, so both sides agree).
pub fn default_path() -> PathBuf {
    tokenbroker::paths::socket_path()
}
