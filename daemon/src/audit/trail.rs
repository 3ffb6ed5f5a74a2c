//! The writer's blocking half: an entry becomes an [`AuditRecord`], logged as one event
//! (target `audit`, its fields as the event's fields: journald fields under journald) and
//! appended as one JSON line to `audit.jsonl`, which is rotated at [`ROTATE_AT`]
//! (`audit.jsonl.1`, `audit.jsonl.2`; the oldest is dropped).
//!
//! The file is opened without following a symlink, created 0600 in a directory created 0700;
//! one of another owner is refused, one open to others is made 0600 (the sealed store and the
//! socket's directory are guarded the same way). A file that cannot be written costs the
//! records their line in it, never a request: a warning at most once a minute (with the count
//! of records not written), the log events go on, and the file is opened again later.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use tokenbroker::protocol::{AuditDecision, AuditRecord};

use super::Entry;

/// The trail's file name in the state directory.
pub const FILE: &str = "audit.jsonl";
/// The size at which the file is rotated.
pub const ROTATE_AT: u64 = 10 * 1024 * 1024;
/// Files kept: `audit.jsonl` and `audit.jsonl.1` … `.{KEPT - 1}`.
const KEPT: usize = 3;
/// How long after a failure the file is opened again.
const RETRY: Duration = Duration::from_secs(10);
/// At most one warning about a failing file in this long.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The record of an entry: every field the entry has, the absent ones left out.
pub fn record(e: &Entry) -> AuditRecord {
    let text = |s: &Option<std::sync::Arc<str>>| s.as_deref().map(str::to_owned);
    AuditRecord {
        time: rfc3339(e.time_ms),
        uid: e.caller.uid,
        pid: e.caller.pid,
        exe: text(&e.caller.exe),
        unit: text(&e.caller.unit),
        app_id: text(&e.caller.app_id),
        door: e.caller.door.name().to_owned(),
        method: e.method.to_owned(),
        account: e.account.clone(),
        audience: e.audience.clone(),
        decision: e.decision,
        rule: e.by.to_string(),
    }
}

/// `2026-12-02T15:40:00.123Z` (a time before the epoch, which no clock of ours gives, as the
/// epoch).
fn rfc3339(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(at).to_string()
}

fn decision(d: AuditDecision) -> &'static str {
    match d {
        AuditDecision::Allow => "allow",
        AuditDecision::Deny => "deny",
    }
}

/// The record as one log event. Text from other processes (exe, unit, app_id) goes only into
/// fields, which the log's formatter quotes and escapes (journald keeps them as they are).
pub fn event(r: &AuditRecord) {
    let decision = decision(r.decision);
    tracing::info!(
        target: "audit",
        time = r.time.as_str(),
        uid = r.uid,
        pid = r.pid,
        exe = r.exe.as_deref(),
        unit = r.unit.as_deref(),
        app_id = r.app_id.as_deref(),
        door = r.door.as_str(),
        method = r.method.as_str(),
        account = r.account.as_deref(),
        audience = r.audience.as_deref(),
        decision,
        rule = r.rule.as_str(),
        "{decision} {}",
        r.method,
    );
}

/// The log events alone (no file to write).
pub fn log_only(batch: &[Entry]) {
    for e in batch {
        event(&record(e));
    }
}

pub struct Trail {
    /// `None`: no state directory, the log only.
    path: Option<PathBuf>,
    rotate_at: u64,
    open: Option<Open>,
    /// After a failure: not opened again before this.
    retry_at: Option<Instant>,
    retry: Duration,
    warned_at: Option<Instant>,
    /// Records not written since the last warning.
    unwritten: u64,
    /// Held by a test to stall the writer, as a hung disk would.
    #[cfg(test)]
    pub stall: Option<std::sync::Arc<std::sync::Mutex<()>>>,
}

struct Open {
    file: File,
    size: u64,
}

impl Trail {
    /// The trail at `path`, rotated at `rotate_at` bytes.
    pub fn new(path: Option<PathBuf>, rotate_at: u64) -> Trail {
        Trail {
            path,
            rotate_at,
            open: None,
            retry_at: None,
            retry: RETRY,
            warned_at: None,
            unwritten: 0,
            #[cfg(test)]
            stall: None,
        }
    }

    /// Open again at once after a failure (tests).
    #[cfg(test)]
    pub fn retry_at_once(mut self) -> Trail {
        self.retry = Duration::ZERO;
        self
    }

    /// Log and append a batch; the file is written once (more only across a rotation), and
    /// never synced: the records reach the kernel, which keeps them past our exit. An empty
    /// batch only opens the file, if it is not open.
    pub fn write(&mut self, batch: &[Entry]) {
        #[cfg(test)]
        if let Some(stall) = &self.stall {
            drop(stall.lock());
        }
        let records: Vec<AuditRecord> = batch.iter().map(record).collect();
        for r in &records {
            event(r);
        }
        let Some(path) = self.path.clone() else { return };
        if self.open.is_none() && self.retry_at.is_some_and(|at| Instant::now() < at) {
            self.unwritten += records.len() as u64;
            return;
        }
        if let Err(e) = self.append(&path, &records) {
            self.failed(&path, e, records.len());
        }
    }

    fn append(&mut self, path: &Path, records: &[AuditRecord]) -> io::Result<()> {
        if self.open.is_none() {
            self.open = Some(open(path)?);
            if self.retry_at.take().is_some() {
                tracing::info!(
                    path = %path.display(),
                    unwritten = self.unwritten,
                    "the audit trail is written again (records since the last warning are in the log only)"
                );
                self.unwritten = 0;
            }
        }
        let mut buf = Vec::with_capacity(records.len() * 256);
        for r in records {
            let start = buf.len();
            serde_json::to_writer(&mut buf, r).expect("a record serializes");
            buf.push(b'\n');
            let size = self.open.as_ref().map_or(0, |o| o.size) + start as u64;
            if size > 0 && size + (buf.len() - start) as u64 > self.rotate_at {
                let line = buf.split_off(start);
                self.flush(&mut buf)?;
                self.open = None;
                rotate(path)?;
                self.open = Some(open(path)?);
                buf = line;
            }
        }
        self.flush(&mut buf)
    }

    fn flush(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        let open = self.open.as_mut().expect("opened before writing");
        if !buf.is_empty() {
            open.file.write_all(buf)?;
            open.size += buf.len() as u64;
            buf.clear();
        }
        Ok(())
    }

    fn failed(&mut self, path: &Path, error: io::Error, records: usize) {
        self.open = None;
        let now = Instant::now();
        self.retry_at = Some(now + self.retry);
        self.unwritten += records as u64;
        if self.warned_at.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            tracing::warn!(
                path = %path.display(),
                unwritten = self.unwritten,
                "the audit trail cannot be written ({error}); its records go to the log only until it can \
                 (tried again every {:?}, warned at most once a minute)",
                self.retry,
            );
            self.warned_at = Some(now);
            self.unwritten = 0;
        }
    }
}

/// The file, opened for appending: its directory made 0700 if missing, the file 0600, never
/// through a symlink, never a file of another user or one others may read.
fn open(path: &Path) -> io::Result<Open> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let refused = |why: String| io::Error::other(format!("{} {why}", path.display()));
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        // O_NONBLOCK: a FIFO planted there fails the open (ENXIO) instead of hanging it.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused("is a symbolic link; not following it (remove it)".into()),
            _ => e,
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refused("is not a regular file (move it away)".into()));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(refused(format!("belongs to uid {}, not to you (uid {me}); move it away", meta.uid())));
    }
    if meta.mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        tracing::warn!(path = %path.display(), "the audit trail was open to others (mode {:o}); made it 0600", meta.mode() & 0o777);
    }
    let mut open = Open { size: meta.len(), file };
    // A line cut short by an earlier failure: the next record starts a line of its own.
    let mut last = [0u8];
    if open.size > 0 && open.file.read_exact_at(&mut last, open.size - 1).is_ok() && last[0] != b'\n' {
        open.file.write_all(b"\n")?;
        open.size += 1;
    }
    Ok(open)
}

/// `audit.jsonl.N`.
pub fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// `.1` becomes `.2` (the old `.2` dropped), and the file becomes `.1`.
fn rotate(path: &Path) -> io::Result<()> {
    for n in (1..KEPT - 1).rev() {
        match std::fs::rename(rotated(path, n), rotated(path, n + 1)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, rotated(path, 1))
}
