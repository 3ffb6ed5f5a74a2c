//! The audit trail: one record per grant and per refusal. The request path only hands an
//! [`Entry`] over (no formatting, no I/O, never a wait); a writer off the path ([`Writer`])
//! turns each into a log event (target `audit`) and an `audit.jsonl` line (see `trail`).
//!
//! An entry holds no token, and must never: the record is made from its fields alone.

mod trail;

use std::path::PathBuf;

use tokenbroker::protocol::AuditDecision;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::broker::policy::By;
use crate::broker::request::Caller;

pub use trail::{FILE, ROTATE_AT};

/// What the request path knows of a decision; formatted later, by the writer.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Wall-clock milliseconds since the Unix epoch.
    pub time_ms: i64,
    pub caller: Caller,
    pub method: &'static str,
    pub account: Option<String>,
    pub audience: Option<String>,
    pub decision: AuditDecision,
    pub by: By,
}

/// Where the request path hands its entries.
#[derive(Debug, Clone)]
pub struct Audit {
    tx: Option<mpsc::UnboundedSender<Entry>>,
}

impl Audit {
    /// No trail (tests of other things).
    #[cfg(test)]
    pub fn off() -> Audit {
        Audit { tx: None }
    }

    /// Entries into a channel the caller reads (tests of the core).
    #[cfg(test)]
    pub fn collect() -> (Audit, mpsc::UnboundedReceiver<Entry>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Audit { tx: Some(tx) }, rx)
    }

    /// The trail, written by a task of its own into `dir` (the state directory; `None`: the
    /// log only). Call on the runtime; stop it with [`Writer::finish`].
    pub fn start(dir: Option<PathBuf>) -> (Audit, Writer) {
        Self::start_with(trail::Trail::new(dir.map(|d| d.join(FILE)), ROTATE_AT))
    }

    fn start_with(trail: trail::Trail) -> (Audit, Writer) {
        let (tx, rx) = mpsc::unbounded_channel();
        let close = CancellationToken::new();
        let task = tokio::spawn(write_all(rx, close.clone(), trail));
        (Audit { tx: Some(tx) }, Writer { close, task })
    }

    /// Hand one entry over; never waits.
    pub fn record(&self, entry: Entry) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(entry);
        }
    }
}

/// The writer's task. Its [`Audit`] handles may outlive it (the core keeps one): closing does
/// not wait for them to be dropped.
pub struct Writer {
    close: CancellationToken,
    task: JoinHandle<()>,
}

impl Writer {
    /// Take no more entries, write every one recorded so far, and end. Call once nothing
    /// records any more (the requests drained); `false` if `deadline` came first.
    pub async fn finish(self, deadline: tokio::time::Instant) -> bool {
        self.close.cancel();
        tokio::time::timeout_at(deadline, self.task).await.is_ok()
    }
}

/// At most this many entries are written at a time (one `write`).
const BATCH: usize = 1024;

/// How long the writer gathers entries after the first of a batch.
const GATHER: std::time::Duration = std::time::Duration::from_millis(50);

/// Receive entries and write them in batches: the first entry after a quiet spell starts a
/// batch, everything queued within GATHER after it joins it, so the file is written (never
/// fsynced) at most every GATHER and a record is there at most GATHER after its request. The
/// file work runs on the blocking pool, so a slow or failing disk holds up
/// only this task, never a request.
async fn write_all(mut rx: mpsc::UnboundedReceiver<Entry>, close: CancellationToken, trail: trail::Trail) {
    // Opened now, so a state directory the daemon cannot write is said at start.
    let mut trail = tokio::task::spawn_blocking(move || {
        let mut trail = trail;
        trail.write(&[]);
        trail
    })
    .await
    .ok();
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            // Entries already queued are written before a close ends the loop.
            biased;
            entry = rx.recv() => match entry {
                Some(entry) => batch.push(entry),
                None => break,
            },
            _ = close.cancelled() => break,
        }
        // Then gather for a moment, not waiting on the channel: a request's send then wakes
        // nobody, and a busy daemon writes a batch every GATHER, not a line per request
        // (which cost a cached token's round trip a third more on two cores).
        tokio::select! {
            _ = tokio::time::sleep(GATHER) => {}
            _ = close.cancelled() => break,
        }
        while let Ok(entry) = rx.try_recv() {
            batch.push(entry);
            if batch.len() == BATCH {
                trail = write(trail, std::mem::take(&mut batch)).await;
            }
        }
        trail = write(trail, std::mem::take(&mut batch)).await;
    }
    rx.close();
    while let Ok(entry) = rx.try_recv() {
        batch.push(entry);
        if batch.len() == BATCH {
            trail = write(trail, std::mem::take(&mut batch)).await;
        }
    }
    if !batch.is_empty() {
        write(trail, batch).await;
    }
}

/// One batch into the trail, on the blocking pool. A trail lost to a panic there leaves the
/// log events of later entries (`None`: no file any more).
async fn write(trail: Option<trail::Trail>, batch: Vec<Entry>) -> Option<trail::Trail> {
    let written = tokio::task::spawn_blocking(move || {
        let mut trail = trail;
        crate::logging::held(|| match &mut trail {
            Some(t) => t.write(&batch),
            None => trail::log_only(&batch),
        });
        trail
    })
    .await;
    written.unwrap_or_else(|e| {
        tracing::error!("the audit trail's writer failed ({e}); audit records go to the log only from now on");
        None
    })
}

#[cfg(test)]
mod tests;
