//! The Unix-socket door: newline-delimited JSON-RPC 2.0, one request at a time per
//! connection, same-UID peers only.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokenbroker::protocol::{
    Call, ErrorData, INVALID_REQUEST, MAX_LINE, METHOD_NOT_FOUND, PARSE_ERROR, RawRequest, RpcError,
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
    let _ = stream.write_all(&protocol_error(NULL, -32000, why)).await;
}

async fn connection(stream: UnixStream, broker: Arc<Broker>, shutdown: CancellationToken) {
    // SAFETY: getuid has no preconditions and cannot fail.
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
    // Small: most requests are a hundred bytes, and a thousand idle clients should not cost
    // megabytes. Longer lines still arrive whole, over several reads.
    let mut read = BufReader::with_capacity(1024, read);
    let mut line = Vec::with_capacity(256);
    // One timer and one cancellation waiter per connection, not one per request.
    let idle = tokio::time::sleep(IDLE_TIMEOUT);
    let cancelled = shutdown.cancelled();
    tokio::pin!(idle, cancelled);
    loop {
        let next = tokio::select! {
            biased;
            next = read_line(&mut read, &mut line, MAX_LINE) => next,
            _ = &mut cancelled => return,
            _ = &mut idle => return,
        };
        let answer = match next {
            Ok(Line::Read) => handle(&broker, &line).await,
            Ok(Line::TooLong) => {
                Some(protocol_error(NULL, INVALID_REQUEST, &format!("request line longer than {MAX_LINE} bytes")))
            }
            Ok(Line::Eof) | Err(_) => return,
        };
        if let Some(answer) = answer
            && write.write_all(&answer).await.is_err()
        {
            return;
        }
        idle.as_mut().reset(tokio::time::Instant::now() + IDLE_TIMEOUT);
    }
}

const NULL: &str = "null";

/// One request line to one answer line; `None` for a notification (no `id`), which JSON-RPC
/// says must not be answered.
async fn handle(broker: &Arc<Broker>, line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let req: RawRequest = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return Some(protocol_error(NULL, PARSE_ERROR, "parse error: the line is not valid JSON"));
        }
        Err(_) if line.trim_ascii_start().starts_with(b"[") => {
            return Some(protocol_error(
                NULL,
                INVALID_REQUEST,
                "a request must be one JSON object (batches are not supported)",
            ));
        }
        Err(_) => {
            return Some(protocol_error(NULL, INVALID_REQUEST, "a request must be one JSON-RPC 2.0 request object"));
        }
    };
    let id = match req.id.map(|raw| raw.get()) {
        None => NULL,
        Some(id) if id.starts_with(['"', '-', 'n']) || id.starts_with(|c: char| c.is_ascii_digit()) => id,
        Some(_) => return Some(protocol_error(NULL, INVALID_REQUEST, "id must be a number, string or null")),
    };
    if req.jsonrpc.as_deref() != Some("2.0") {
        return Some(protocol_error(id, INVALID_REQUEST, "jsonrpc must be \"2.0\""));
    }
    let Some(method) = req.method else {
        return Some(protocol_error(id, INVALID_REQUEST, "method is missing"));
    };
    let answer = match Call::decode(&method, req.params) {
        Ok(call) => match dispatch(broker, call).await {
            Ok(result) => frame(id, "result", &result),
            Err(e) => broker_error(id, e),
        },
        Err(None) => protocol_error(
            id,
            METHOD_NOT_FOUND,
            &format!("no method {method:?}; methods: {}", Call::METHODS.join(", ")),
        ),
        Err(Some(why)) => broker_error(id, Error::invalid_params(format!("invalid params for {method}: {why}"))),
    };
    req.id.is_some().then_some(answer)
}

/// `{"jsonrpc":"2.0","id":ID,"KEY":VALUE}` and a newline, from pieces already encoded.
fn frame(id: &str, key: &str, value: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(40 + id.len() + value.len());
    line.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    line.extend_from_slice(id.as_bytes());
    line.extend_from_slice(b",\"");
    line.extend_from_slice(key.as_bytes());
    line.extend_from_slice(b"\":");
    line.extend_from_slice(value);
    line.extend_from_slice(b"}\n");
    line
}

fn encode_error(id: &str, error: &RpcError) -> Vec<u8> {
    frame(id, "error", &serde_json::to_vec(error).expect("errors always serialize"))
}

fn broker_error(id: &str, e: Error) -> Vec<u8> {
    encode_error(id, &RpcError { code: e.kind.code(), message: e.message, data: Some(ErrorData { kind: e.kind }) })
}

fn protocol_error(id: &str, code: i64, message: &str) -> Vec<u8> {
    encode_error(id, &RpcError { code, message: message.into(), data: None })
}

/// The socket path from `--socket`, `TOKENBROKER_SOCKET` or the runtime dir (the client
/// crate owns the rule, so both sides agree).
pub fn default_path() -> PathBuf {
    tokenbroker::paths::socket_path()
}
