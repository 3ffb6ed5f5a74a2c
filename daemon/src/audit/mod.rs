//! The audit trail: one record per grant and per refusal. The request path only hands an
//! [`Entry`] over (no formatting, no I/O); a writer off the path turns it into a log line and
//! an `audit.jsonl` line.

use tokenbroker::protocol::AuditDecision;
use tokio::sync::mpsc;

use crate::broker::policy::By;
use crate::broker::request::Caller;

/// What the request path knows of a decision; formatted later, by the writer.
#[derive(Debug, Clone)]
#[allow(dead_code)] // the writer (next) formats every field
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
    pub fn off() -> Audit {
        Audit { tx: None }
    }

    /// Entries into a channel the caller reads (tests of the core).
    #[cfg(test)]
    pub fn collect() -> (Audit, mpsc::UnboundedReceiver<Entry>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Audit { tx: Some(tx) }, rx)
    }

    /// Hand one entry over; never waits.
    pub fn record(&self, entry: Entry) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(entry);
        }
    }
}
