//! Forwards: restricted doors for an SSH session or a container. Each serves some accounts
//! (and audiences) until its TTL, and is kept in the state dir so that a restart serves it
//! again. The core owns them: what a forward allows is decided here, on the one request path
//! ([`admit`]); the daemon's doors only serve the sockets ([`Doors`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokenbroker::ErrorKind;
use tokenbroker::protocol as wire;
use tokio_util::sync::CancellationToken;

use super::{Broker, Error, Result, session};

/// A forward without `--ttl` lives this long: a working day's SSH session.
pub const DEFAULT_TTL: Duration = Duration::from_secs(8 * 3600);
/// The longest a forward may live: a forward is for a session, not a standing grant.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How often a forward's timer looks at the wall clock (see `open_forward`).
const RECHECK: Duration = Duration::from_secs(60);
/// A name is a short file name: its socket is `forward/NAME.sock`.
pub const MAX_NAME: usize = 64;

/// One forward: what it serves and until when.
#[derive(Debug)]
pub struct Forward {
    pub name: String,
    /// Never empty: the accounts resolved when it was added.
    pub accounts: Vec<String>,
    /// Empty: only each account's own token (a request naming no audience, or the account's
    /// configured one).
    pub audiences: Vec<String>,
    /// Unix milliseconds when it ends.
    pub expires_at_ms: i64,
    /// Cancelled when it ends early (removed or replaced): stops its timer.
    ended: CancellationToken,
}

impl Forward {
    fn live(&self, now_ms: i64) -> bool {
        now_ms < self.expires_at_ms
    }

    fn wire(&self, doors: Option<&Arc<dyn Doors>>) -> wire::Forward {
        wire::Forward {
            name: self.name.clone(),
            accounts: self.accounts.clone(),
            audiences: self.audiences.clone(),
            expires_at: self.expires_at_ms / 1000,
            socket: doors.map(|d| d.path(&self.name).display().to_string()),
        }
    }
}

/// What serves the forwards' sockets (the daemon's socket door): the core tells it when one
/// opens and when one ends.
pub trait Doors: Send + Sync {
    /// Bind the forward's socket and serve it, its callers at door `forward:NAME`, until
    /// [`Doors::close`] (or the daemon stops).
    fn open(&self, name: &str) -> std::result::Result<(), String>;
    /// Stop serving: the socket goes, its connections are dropped.
    fn close(&self, name: &str);
    /// Where the forward's socket is.
    fn path(&self, name: &str) -> PathBuf;
}

/// Every forward, by name.
#[derive(Default)]
pub struct Forwards {
    all: Mutex<BTreeMap<String, Arc<Forward>>>,
    /// `forwards.json` in the state dir; none: kept in memory only (tests).
    file: OnceLock<PathBuf>,
    doors: OnceLock<Arc<dyn Doors>>,
}

/// As kept in `forwards.json`.
#[derive(Serialize, Deserialize)]
struct Kept {
    name: String,
    accounts: Vec<String>,
    #[serde(default)]
    audiences: Vec<String>,
    expires_at_ms: i64,
}

#[derive(Default, Serialize, Deserialize)]
struct KeptFile {
    forwards: Vec<Kept>,
}

/// Why a name cannot be a forward's: it becomes a file name and part of a door's name.
pub fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("a forward's name must be 1 to {MAX_NAME} characters"));
    }
    if !name.chars().all(ok_char) || name.starts_with(['.', '-']) {
        return Err(format!(
            "{:?} is no forward name: use letters, digits, '-', '_' and '.', not first '.' or '-'",
            name.escape_debug().to_string()
        ));
    }
    Ok(())
}

impl Forwards {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<Forward>>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The live forward `name`, for a request at its door.
    pub fn get(&self, name: &str) -> Option<Arc<Forward>> {
        self.lock().get(name).filter(|f| f.live(session::now_ms())).cloned()
    }

    /// Every live forward, as `Status` and `ListForwards` show them.
    pub fn list(&self) -> Vec<wire::Forward> {
        let now = session::now_ms();
        self.lock().values().filter(|f| f.live(now)).map(|f| f.wire(self.doors.get())).collect()
    }

    fn save(&self, all: &BTreeMap<String, Arc<Forward>>) {
        let Some(path) = self.file.get() else { return };
        let kept = KeptFile {
            forwards: all
                .values()
                .map(|f| Kept {
                    name: f.name.clone(),
                    accounts: f.accounts.clone(),
                    audiences: f.audiences.clone(),
                    expires_at_ms: f.expires_at_ms,
                })
                .collect(),
        };
        let written = serde_json::to_vec_pretty(&kept)
            .map_err(std::io::Error::other)
            .and_then(|bytes| crate::private_file::replace(path, &bytes));
        if let Err(e) = written {
            tracing::error!(file = %path.display(), error = %e, "cannot save the forwards; they end when the daemon stops");
        }
    }
}

/// The forwards kept in `path`, read as hostile input: an entry with a bad name, no account,
/// or past its end is dropped (and said so); an unreadable file is none at all.
fn read(path: &Path, now_ms: i64) -> Vec<Kept> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "cannot read the forwards; serving none");
            return Vec::new();
        }
    };
    let file: KeptFile = match serde_json::from_slice(&bytes) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "the forwards file is unreadable; serving none");
            return Vec::new();
        }
    };
    let latest = now_ms.saturating_add(MAX_TTL.as_millis() as i64);
    file.forwards
        .into_iter()
        .filter(|k| match check_name(&k.name) {
            Err(why) => {
                tracing::warn!(file = %path.display(), "dropping a kept forward: {why}");
                false
            }
            Ok(()) if k.accounts.is_empty() || k.accounts.iter().chain(&k.audiences).any(|s| s.is_empty()) => {
                tracing::warn!(forward = %k.name, "dropping a kept forward with an empty account or audience");
                false
            }
            Ok(()) => k.expires_at_ms > now_ms && k.expires_at_ms <= latest,
        })
        .collect()
}

impl Broker {
    /// The forwards, for the doors and `Status`.
    pub fn forwards(&self) -> &Forwards {
        &self.forwards
    }

    /// At start: keep forwards in `file`, serve those it holds through `doors`, and from now on
    /// every forward added.
    pub fn serve_forwards(self: &Arc<Self>, file: Option<PathBuf>, doors: Arc<dyn Doors>) {
        let now = session::now_ms();
        let kept = match &file {
            Some(path) => read(path, now),
            None => Vec::new(),
        };
        if let Some(path) = file {
            let _ = self.forwards.file.set(path);
        }
        if self.forwards.doors.set(doors).is_err() {
            return;
        }
        for k in kept {
            let forward = Arc::new(Forward {
                name: k.name,
                accounts: k.accounts,
                audiences: k.audiences,
                expires_at_ms: k.expires_at_ms,
                ended: CancellationToken::new(),
            });
            if let Err(e) = self.open_forward(forward.clone()) {
                tracing::error!(forward = %forward.name, "cannot serve a kept forward: {e}");
            } else {
                tracing::info!(forward = %forward.name, accounts = ?forward.accounts, expires_at = forward.expires_at_ms / 1000, "serving a kept forward");
            }
        }
    }

    /// Register `forward` (ending one of its name), open its door, and end it at its time.
    fn open_forward(self: &Arc<Self>, forward: Arc<Forward>) -> std::result::Result<(), String> {
        let mut all = self.forwards.lock();
        let replaced = all.remove(&forward.name);
        if let Some(old) = &replaced {
            old.ended.cancel();
            if let Some(doors) = self.forwards.doors.get() {
                doors.close(&old.name);
            }
        }
        let opened = self.forwards.doors.get().map_or(Ok(()), |doors| doors.open(&forward.name));
        if opened.is_ok() {
            all.insert(forward.name.clone(), forward.clone());
        }
        // A kept forward that cannot be served now (at start) stays in the file, to be tried
        // again at the next start until its end; what changed is written.
        if opened.is_ok() || replaced.is_some() {
            self.forwards.save(&all);
        }
        drop(all);
        opened?;
        let broker = self.clone();
        self.tasks.spawn(async move {
            loop {
                let left = forward.expires_at_ms - session::now_ms();
                if left <= 0 {
                    broker.end_forward(&forward, "its time is up");
                    return;
                }
                // The end is wall-clock time and timers are monotonic, which stand still in a
                // suspend: look at the clock again at least once a minute.
                let nap = Duration::from_millis(left as u64).min(RECHECK);
                tokio::select! {
                    _ = tokio::time::sleep(nap) => {}
                    _ = forward.ended.cancelled() => return,
                    // The daemon stops: the forward stays kept, for the next start.
                    _ = broker.shutdown.cancelled() => return,
                }
            }
        });
        Ok(())
    }

    /// End `forward` if it is still the one of its name.
    fn end_forward(&self, forward: &Arc<Forward>, why: &str) -> bool {
        let mut all = self.forwards.lock();
        if !all.get(&forward.name).is_some_and(|f| Arc::ptr_eq(f, forward)) {
            return false;
        }
        all.remove(&forward.name);
        forward.ended.cancel();
        if let Some(doors) = self.forwards.doors.get() {
            doors.close(&forward.name);
        }
        self.forwards.save(&all);
        tracing::info!(forward = %forward.name, "forward ended: {why}");
        true
    }
}

/// `AddForward`: a new forward (replacing one of that name), for accounts that exist.
pub fn add(broker: &Arc<Broker>, p: wire::AddForward) -> Result<wire::Forward> {
    check_name(&p.name).map_err(Error::invalid_params)?;
    let ttl = match p.ttl {
        None => DEFAULT_TTL,
        Some(0) => return Err(Error::invalid_params("a forward's ttl must be at least 1 second")),
        Some(s) if s > MAX_TTL.as_secs() => {
            return Err(Error::invalid_params(format!(
                "a forward lives at most {} days ({} s); add it again when it ends",
                MAX_TTL.as_secs() / 86_400,
                MAX_TTL.as_secs()
            )));
        }
        Some(s) => Duration::from_secs(s),
    };
    if p.accounts.iter().any(|a| a.is_empty()) {
        return Err(Error::invalid_params("an account name must not be empty"));
    }
    let mut accounts = Vec::new();
    let mut may_have = Vec::new();
    for name in p.accounts.iter().map(|a| Some(a.as_str())).chain(p.accounts.is_empty().then_some(None)) {
        let account = broker.account(name)?;
        if !accounts.contains(&account.name) {
            accounts.push(account.name.clone());
            may_have.extend(account.login_audiences().values);
        }
    }
    // An audience no forwarded account may have would make a forward that refuses everything.
    if let Some(bad) = p.audiences.iter().find(|a| !may_have.contains(a)) {
        return Err(Error::invalid_params(format!(
            "audience {bad:?} is not one the forwarded accounts may have ({}); see their audience, audiences \
             and management_api",
            if may_have.is_empty() { "they have none".to_owned() } else { may_have.join(", ") }
        )));
    }
    let mut audiences = p.audiences;
    audiences.sort();
    audiences.dedup();
    let forward = Arc::new(Forward {
        name: p.name,
        accounts,
        audiences,
        expires_at_ms: session::now_ms() + ttl.as_millis() as i64,
        ended: CancellationToken::new(),
    });
    broker
        .open_forward(forward.clone())
        .map_err(|e| Error::internal(format!("cannot serve forward {:?}: {e}", forward.name)))?;
    tracing::info!(forward = %forward.name, accounts = ?forward.accounts, audiences = ?forward.audiences, expires_at = forward.expires_at_ms / 1000, "forward added");
    Ok(forward.wire(broker.forwards.doors.get()))
}

/// `RemoveForward`.
pub fn remove(broker: &Broker, name: &str) -> wire::ForwardRemoved {
    let found = broker.forwards.lock().get(name).cloned();
    let removed = found.is_some_and(|f| broker.end_forward(&f, "removed"));
    wire::ForwardRemoved { name: name.to_owned(), removed }
}

/// What a request at a forward's door may do: the methods a far side needs for tokens, and
/// none that manages anything. `account` is filled with the forward's first account when the
/// request names none, so `brokerctl token` on the far side needs no `--account`.
pub fn admit(
    broker: &Broker,
    door: &str,
    method: &'static str,
    account: Option<&mut Option<String>>,
    audience: Option<&str>,
) -> Result<()> {
    let denied = |why: String| Err(Error::new(ErrorKind::AccessDenied, format!("forward {door:?}: {why}")));
    let Some(forward) = broker.forwards.get(door) else {
        return denied("this forward has ended".into());
    };
    match (method, account) {
        ("Status", _) => Ok(()),
        // A DPoP proof too: the key stays here and the far side gets one proof per request it
        // names, which is what makes a forwarded DPoP token worth anything there.
        ("GetAccessToken" | "GetDpopProof" | "RejectToken", Some(account)) => {
            let name = match account.as_deref().filter(|a| !a.is_empty()) {
                Some(a) => a,
                None => account.insert(forward.accounts[0].clone()),
            };
            if !forward.accounts.iter().any(|a| a == name) {
                return denied(format!(
                    "account {name:?} is not forwarded here (only {})",
                    forward.accounts.join(", ")
                ));
            }
            let own = broker.account(Some(name))?.config.audience.clone();
            let audience = audience.filter(|a| !a.is_empty());
            let allowed = if forward.audiences.is_empty() {
                audience.is_none() || audience == own.as_deref()
            } else {
                audience.or(own.as_deref()).is_some_and(|aud| forward.audiences.iter().any(|a| a == aud))
            };
            if allowed {
                return Ok(());
            }
            let asked = audience.or(own.as_deref()).unwrap_or("the account's own token");
            let may = if forward.audiences.is_empty() {
                "only the account's own token".to_owned()
            } else {
                format!("only the audiences {}", forward.audiences.join(", "))
            };
            denied(format!("{asked:?} is not forwarded here ({may})"))
        }
        _ => denied(format!("{method} is not served on a forward (only tokens and a limited Status)")),
    }
}
