//! The Unix-socket door: newline-delimited JSON-RPC 2.0, one request at a time per
//! connection, same-UID peers only.

use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokenbroker::protocol::{INVALID_REQUEST, MAX_LINE, RpcError};
use tokenbroker::request::{Decoded, NULL_ID, Refusal, decode_line};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use zeroize::{Zeroize, Zeroizing};

use super::dispatch::dispatch;
use super::lines::{KEEP_AT_MOST, Line, SMALL, read_line, shrink_after_long_line};
use super::log_limit::LogLimit;
use super::slots::Slots;
use crate::broker::request::{Caller, Door, admit};
use crate::broker::{Broker, Error};
use crate::identity;

#[derive(Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed.
    pub idle_timeout: Duration,
}

/// Bind the socket: a missing directory is created 0700, the socket is made 0600. A live
/// daemon at the path is left alone (and reported); a stale socket file is replaced.
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    super::socket_dir::prepare(dir)?;
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("another tokenbrokerd is already serving at {}", path.display());
        }
        super::socket_dir::remove_stale(path)?;
    }
    let listener = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting mode 0600 on {}", path.display()))?;
    Ok(listener)
}

/// Refusals are logged at most once a minute per kind (and per UID for other users).
const REFUSAL_LOG_WINDOW: Duration = Duration::from_secs(60);

/// Refusals in a row before the accept loop lets the other tasks run.
const REFUSALS_BEFORE_YIELD: u32 = 64;

#[derive(Clone, PartialEq, Eq, Hash)]
enum Refused {
    OtherUser(u32),
    Unidentified,
    Full,
}

/// Accept until `shutdown`, callers at `door`; connections are tracked so the caller can wait for in-flight
/// requests to finish.
pub async fn serve(
    listener: UnixListener,
    broker: Arc<Broker>,
    limits: Limits,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    door: Door,
) {
    let slots = Slots::new(limits.max_connections);
    let mut refusals = LogLimit::new(REFUSAL_LOG_WINDOW);
    // Counts held back by the rate limit are logged when their window ends, so a burst that
    // stops is still reported. Armed only while there are counts to report.
    let report = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(report);
    let mut report_armed = false;
    let mut refused_in_a_row = 0u32;
    loop {
        let stream = tokio::select! {
            // Outside tokio's cooperative budget: otherwise, while thousands of connections
            // are busy, the accept loop gets one short turn per round of all of them and new
            // clients wait behind old ones' tenth request (bounded by the listen backlog).
            accepted = tokio::task::unconstrained(listener.accept()) => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut report, if report_armed => {
                for (what, n) in refusals.due(Instant::now()) {
                    log_refused(&what, n, None, limits.max_connections);
                }
                report_armed = arm(&refusals, report.as_mut());
                continue;
            }
            _ = shutdown.cancelled() => {
                for (what, n) in refusals.drain() {
                    log_refused(&what, n, None, limits.max_connections);
                }
                return;
            }
        };
        // The peer first: another user's connection never takes a slot, so a loop of them
        // cannot crowd out the owner's clients.
        let caller = stream.peer_cred().map(|c| Caller::new(c.uid(), c.pid(), door.clone()));
        let refused = match caller {
            Ok(caller) => match admit(&caller) {
                Ok(()) => match slots.try_take() {
                    Some(slot) => {
                        let peer = Peer { broker: broker.clone(), caller };
                        let shutdown = shutdown.clone();
                        let idle_timeout = limits.idle_timeout;
                        tracker.spawn(async move {
                            connection(stream, peer, shutdown, idle_timeout).await;
                            drop(slot);
                        });
                        refused_in_a_row = 0;
                        continue;
                    }
                    None => {
                        refuse(&stream, Error::internal("too many connections to tokenbrokerd; try again shortly"));
                        (Refused::Full, None)
                    }
                },
                Err(e) => {
                    refuse(&stream, e);
                    (Refused::OtherUser(caller.uid), caller.pid)
                }
            },
            Err(_) => (Refused::Unidentified, None),
        };
        drop(stream);
        let (what, pid) = refused;
        if let Some(n) = refusals.hit(what.clone(), Instant::now()) {
            log_refused(&what, n, pid, limits.max_connections);
        }
        if !report_armed {
            report_armed = arm(&refusals, report.as_mut());
        }
        // The accept loop runs outside the budget (above), so a flood of connections to refuse,
        // which never leaves the backlog empty, would keep it from ever giving the thread back:
        // every other connection, the D-Bus door and the timers would stall behind it.
        refused_in_a_row += 1;
        if refused_in_a_row == REFUSALS_BEFORE_YIELD {
            refused_in_a_row = 0;
            tokio::task::yield_now().await;
        }
    }
}

fn arm(refusals: &LogLimit<Refused>, report: std::pin::Pin<&mut tokio::time::Sleep>) -> bool {
    match refusals.next_due() {
        Some(at) => {
            report.reset(at);
            true
        }
        None => false,
    }
}

/// `count`: refusals of this kind since its last line (one line a minute at most).
fn log_refused(what: &Refused, count: u64, pid: Option<i32>, max: usize) {
    match what {
        Refused::OtherUser(uid) => {
            tracing::warn!(peer_uid = uid, peer_pid = ?pid, count, "refused a connection from another user")
        }
        Refused::Unidentified => tracing::warn!(count, "refused a connection whose peer cannot be identified"),
        Refused::Full => tracing::warn!(max, count, "connection refused: too many connections"),
    }
}

/// One error line, if the socket takes it at once (a fresh socket's buffer always does), then
/// the caller closes: a refused peer gets no task and nothing to wait on.
fn refuse(stream: &UnixStream, why: Error) {
    let mut out = Vec::new();
    broker_error(&mut out, NULL_ID, why);
    let _ = stream.try_write(&out);
}

/// What a connection's requests go with: one allocation per connection, shared by its task.
struct Peer {
    broker: Arc<Broker>,
    caller: Caller,
}

async fn connection(stream: UnixStream, mut peer: Peer, shutdown: CancellationToken, idle_timeout: Duration) {
    // What the caller's process is: looked up once per connection, here rather than in the
    // accept loop (which must stay quick), before its first request is read. Another user's
    // connection never gets this far, so costs no reading of /proc.
    let pin = identity::pin_peer(stream.as_fd());
    tokio::select! {
        biased;
        found = identity::resolve(pin, peer.caller.pid) => found.fill(&mut peer.caller),
        _ = shutdown.cancelled() => return,
    }
    let c = &peer.caller;
    tracing::debug!(pid = ?c.pid, exe = ?c.exe, unit = ?c.unit, app_id = ?c.app_id, door = c.door.name(), "caller identified");
    let (read, mut write) = stream.into_split();
    // Small: most requests are a hundred bytes, and a thousand idle clients should not cost
    // megabytes. Longer lines still arrive whole, over several reads.
    let mut read = BufReader::with_capacity(1024, read);
    let mut line = Vec::with_capacity(SMALL);
    // Answers carry tokens: one buffer per connection, wiped after every answer. It grows on
    // the first answer, so idle connections cost nothing for it.
    let mut answer = Zeroizing::new(Vec::new());
    // One timer and one cancellation waiter per connection, not one per request. The timer
    // is not moved on each request (that costs a trip through the timer wheel): requests
    // only note the time, and when the timer fires it is moved on if there was activity.
    // Writes wait under the same two: a client that sends and never reads would otherwise
    // hold its connection, and a stop, forever.
    let mut last_active = Instant::now();
    let idle = tokio::time::sleep_until(last_active + idle_timeout);
    let cancelled = shutdown.cancelled();
    tokio::pin!(idle, cancelled);
    loop {
        let next = tokio::select! {
            biased;
            next = read_line(&mut read, &mut line, MAX_LINE) => next,
            _ = &mut cancelled => return,
            _ = &mut idle => {
                if last_active.elapsed() >= idle_timeout {
                    return;
                }
                idle.as_mut().reset(last_active + idle_timeout);
                continue;
            }
        };
        let answered = match next {
            // Boxed per request: a task is as large as the largest future it may hold, and an
            // idle connection (most of them) holds none; the allocation costs tens of
            // nanoseconds, the bytes would be paid by every open connection.
            // A line read after the door closed (a stop, or a forward's end or removal) is
            // not a request in flight: the select above reads waiting lines before it looks
            // at the stop, so a client with lines queued would otherwise be served on, and a
            // forward's door judged by whatever forward has its name by then.
            Ok(Line::Read) if shutdown.is_cancelled() => return,
            Ok(Line::Read) => Box::pin(handle(&peer, &line, &mut answer)).await,
            Ok(Line::TooLong) => {
                protocol_error(
                    &mut answer,
                    NULL_ID,
                    INVALID_REQUEST,
                    &format!("request line longer than {MAX_LINE} bytes"),
                );
                true
            }
            Ok(Line::Eof) | Err(_) => return,
        };
        shrink_after_long_line(&mut line);
        // The answer has the whole idle timeout to be taken, counted from now (a request may
        // have waited long, as AwaitLogin does).
        last_active = Instant::now();
        let written = !answered || {
            let write_all = write.write_all(&answer);
            tokio::pin!(write_all);
            loop {
                tokio::select! {
                    // The write first: an answer ready when a stop comes is still sent if the
                    // client takes it, and on the request path this is the only poll.
                    biased;
                    done = &mut write_all => break done.is_ok(),
                    _ = &mut cancelled => break false,
                    _ = &mut idle => {
                        if last_active.elapsed() >= idle_timeout {
                            break false;
                        }
                        idle.as_mut().reset(last_active + idle_timeout);
                    }
                }
            }
        };
        // Only the bytes written: the rest of the buffer was wiped after earlier answers.
        answer.as_mut_slice().zeroize();
        answer.clear();
        if answer.capacity() > KEEP_AT_MOST {
            // Dropping a Zeroizing<Vec> wipes its whole capacity.
            answer = Zeroizing::new(Vec::new());
        }
        if !written {
            return;
        }
    }
}

/// One request line to one answer line in `out`; `false` when nothing is to be answered (a
/// blank line, a notification).
async fn handle(peer: &Peer, line: &[u8], out: &mut Vec<u8>) -> bool {
    match decode_line(line) {
        Decoded::Blank => false,
        Decoded::Refused { id, error, answer } => {
            match error {
                Refusal::Protocol { code, message } => protocol_error(out, id, code, &message),
                Refusal::Kind { kind, message } => broker_error(out, id, Error::new(kind, message)),
            }
            answer
        }
        Decoded::Call { id, call } => {
            let answer_id = id.unwrap_or(NULL_ID);
            match dispatch(&peer.broker, &peer.caller, call, true).await {
                Ok(result) => frame(out, answer_id, "result", result.as_bytes()),
                Err(e) => broker_error(out, answer_id, e),
            }
            id.is_some()
        }
    }
}

/// `{"jsonrpc":"2.0","id":ID,"KEY":VALUE}` and a newline, from pieces already encoded.
fn frame(out: &mut Vec<u8>, id: &str, key: &str, value: &[u8]) {
    out.clear();
    out.reserve(40 + id.len() + value.len());
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
    out.extend_from_slice(value);
    out.extend_from_slice(b"}\n");
}

fn encode_error(out: &mut Vec<u8>, id: &str, error: &RpcError) {
    frame(out, id, "error", &serde_json::to_vec(error).expect("errors always serialize"));
}

fn broker_error(out: &mut Vec<u8>, id: &str, e: Error) {
    encode_error(out, id, &e.into());
}

fn protocol_error(out: &mut Vec<u8>, id: &str, code: i64, message: &str) {
    encode_error(out, id, &RpcError { code, message: message.into(), data: None });
}

/// The socket path from `--socket`, `TOKENBROKER_SOCKET` or the runtime dir (the client
/// crate owns the rule, so both sides agree).
pub fn default_path() -> PathBuf {
    tokenbroker::paths::socket_path()
}
