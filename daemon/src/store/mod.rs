//! Where sessions live between daemon runs: one entry per account, written by one writer per
//! account, every call bounded by a timeout (a locked keyring can block forever).

mod file;
mod keyring;
mod memory;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroize::Zeroizing;

pub use self::file::{FileStore, passphrase};
pub use self::keyring::Keyring;
pub use self::memory::Memory;

/// The keyring service name of the contract; the account name is the keyring user.
pub const SERVICE: &str = "tokenbroker";
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The entry `probe` writes and deletes again. It holds a `/`, which no account name may, so
/// the probe never touches an account's session.
const PROBE: &str = "tokenbroker/probe";

/// Which store holds the sessions. Errors and `doctor` name it: "the keyring" is wrong advice
/// to someone whose sessions are in a sealed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreName {
    Keyring,
    File(PathBuf),
    Memory,
}

impl StoreName {
    /// A short name: `doctor`'s check is called this.
    pub fn label(&self) -> &'static str {
        match self {
            StoreName::Keyring => "keyring",
            StoreName::File(_) => "sealed file",
            StoreName::Memory => "memory",
        }
    }

    /// What the user can do when the store refuses a write.
    pub fn remedy(&self) -> String {
        match self {
            StoreName::Keyring => "start and unlock your keyring (GNOME Keyring, KWallet, the macOS Keychain)".into(),
            StoreName::File(path) => {
                format!("make {} writable by you, with room on its disk", path.parent().unwrap_or(path).display())
            }
            StoreName::Memory => "restart the daemon".into(),
        }
    }
}

impl std::fmt::Display for StoreName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreName::Keyring => f.write_str("the OS keyring"),
            StoreName::File(path) => write!(f, "the sealed file at {}", path.display()),
            StoreName::Memory => f.write_str("the in-memory store"),
        }
    }
}

/// What went wrong, as a backend says it; `StoreError` adds which store it was.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Problem {
    #[error("is unavailable: {0}")]
    Unavailable(String),
    #[error("did not answer within {0:?}")]
    Timeout(Duration),
    #[error("holds a damaged entry for this account: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone)]
pub struct StoreError {
    pub store: StoreName,
    pub problem: Problem,
}

impl std::error::Error for StoreError {}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.store, self.problem)?;
        if self.store == StoreName::Keyring && matches!(self.problem, Problem::Timeout(_)) {
            f.write_str(" (is it locked?)")?;
        }
        Ok(())
    }
}

/// The kind of a JSON error, without its text (which could quote a stored secret).
pub fn json_error_kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected fields",
        serde_json::error::Category::Eof => "truncated",
    }
}

/// A blocking secret store; `SessionStore` runs it off the async threads.
pub trait Backend: Send + Sync + 'static {
    fn name(&self) -> StoreName;
    fn get(&self, account: &str) -> Result<Option<Zeroizing<String>>, Problem>;
    fn set(&self, account: &str, value: &str) -> Result<(), Problem>;
    fn delete(&self, account: &str) -> Result<(), Problem>;
}

pub struct SessionStore {
    backend: Arc<dyn Backend>,
    name: StoreName,
    writers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    timeout: Duration,
}

impl SessionStore {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        SessionStore { name: backend.name(), backend, writers: Mutex::new(HashMap::new()), timeout: CALL_TIMEOUT }
    }

    pub fn name(&self) -> &StoreName {
        &self.name
    }

    fn error(&self, problem: Problem) -> StoreError {
        StoreError { store: self.name.clone(), problem }
    }

    pub async fn load(&self, account: &str) -> Result<Option<Zeroizing<String>>, StoreError> {
        let account = account.to_owned();
        self.blocking(move |b| b.get(&account)).await
    }

    pub async fn save(&self, account: &str, record: Zeroizing<String>) -> Result<(), StoreError> {
        let account = account.to_owned();
        self.write(&account.clone(), move |b| b.set(&account, &record)).await
    }

    pub async fn delete(&self, account: &str) -> Result<(), StoreError> {
        let account = account.to_owned();
        self.write(&account.clone(), move |b| b.delete(&account)).await
    }

    /// Write, read back and delete a throwaway entry. A locked keyring still answers reads of
    /// missing entries; only a write tells whether sessions would survive a restart.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.save(PROBE, Zeroizing::new("probe".into())).await?;
        let read = self.load(PROBE).await?;
        self.delete(PROBE).await?;
        match read.as_deref().map(String::as_str) {
            Some("probe") => Ok(()),
            _ => Err(self.error(Problem::Unavailable("what was written could not be read back".into()))),
        }
    }

    /// Concurrent writes to one Secret Service entry fail; one writer per account avoids it.
    fn writer(&self, account: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        writers.entry(account.to_owned()).or_default().clone()
    }

    /// One write to `account`'s entry at a time, and the turn is held until the blocking call
    /// has returned, not just until we stop waiting for it: a write that timed out may still
    /// land, and a later write (a newer rotated refresh token, a logout) must not land first
    /// and then be overwritten by it. A stuck write makes the next one wait, within its own
    /// timeout, and fail if it is still stuck.
    async fn write(
        &self,
        account: &str,
        f: impl FnOnce(&dyn Backend) -> Result<(), Problem> + Send + 'static,
    ) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let Ok(turn) = tokio::time::timeout_at(deadline, self.writer(account).lock_owned()).await else {
            return Err(self.error(Problem::Timeout(self.timeout)));
        };
        self.blocking_until(deadline, move |b| {
            let _turn = turn;
            f(b)
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Backend) -> Result<T, Problem> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.blocking_until(tokio::time::Instant::now() + self.timeout, f).await
    }

    async fn blocking_until<T: Send + 'static>(
        &self,
        deadline: tokio::time::Instant,
        f: impl FnOnce(&dyn Backend) -> Result<T, Problem> + Send + 'static,
    ) -> Result<T, StoreError> {
        let backend = self.backend.clone();
        let task = tokio::task::spawn_blocking(move || f(&*backend));
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(result)) => result.map_err(|problem| self.error(problem)),
            Ok(Err(join)) => Err(self.error(Problem::Unavailable(format!("the call failed: {join}")))),
            Err(_) => Err(self.error(Problem::Timeout(self.timeout))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    use zeroize::Zeroizing;

    use super::{Backend, Problem, SessionStore, StoreName};

    /// A store whose writes of `"stuck"` hang until the gate opens, as a keyring call can.
    #[derive(Default)]
    struct Gated {
        entries: Mutex<HashMap<String, String>>,
        gate: (Mutex<bool>, Condvar),
        landed: Mutex<Vec<String>>,
        /// The keyring unless a test names another.
        name: Option<StoreName>,
    }

    impl Backend for Gated {
        fn name(&self) -> StoreName {
            self.name.clone().unwrap_or(StoreName::Keyring)
        }
        fn get(&self, account: &str) -> Result<Option<Zeroizing<String>>, Problem> {
            Ok(self.entries.lock().unwrap().get(account).map(|v| Zeroizing::new(v.clone())))
        }
        fn set(&self, account: &str, value: &str) -> Result<(), Problem> {
            if value == "stuck" {
                let (open, opened) = &self.gate;
                let _open = opened.wait_while(open.lock().unwrap(), |open| !*open).unwrap();
            }
            self.entries.lock().unwrap().insert(account.into(), value.into());
            self.landed.lock().unwrap().push(format!("set {value}"));
            Ok(())
        }
        fn delete(&self, account: &str) -> Result<(), Problem> {
            self.entries.lock().unwrap().remove(account);
            self.landed.lock().unwrap().push("delete".into());
            Ok(())
        }
    }

    impl Gated {
        fn open(&self) {
            *self.gate.0.lock().unwrap() = true;
            self.gate.1.notify_all();
        }
        async fn wait_landed(&self, n: usize) {
            while self.landed.lock().unwrap().len() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }

    fn store(backend: &Arc<Gated>) -> SessionStore {
        let mut store = SessionStore::new(backend.clone());
        store.timeout = Duration::from_millis(200);
        store
    }

    #[tokio::test]
    async fn a_logout_after_a_stuck_write_is_not_undone_by_it() {
        let backend = Arc::new(Gated::default());
        let store = store(&backend);
        let stuck = store.save("work", Zeroizing::new("stuck".into())).await;
        assert!(matches!(stuck.as_ref().map_err(|e| &e.problem), Err(Problem::Timeout(_))), "{stuck:?}");
        // The stuck write still holds the turn: the delete waits, and gives up, rather than
        // landing first and being undone when the stuck write lands.
        let delete = store.delete("work").await;
        backend.open();
        backend.wait_landed(1).await;
        assert!(delete.is_err(), "the delete reported success, then the stuck write undid it");
        assert_eq!(*backend.landed.lock().unwrap(), ["set stuck"]);
        // Once it has returned, the next write goes through.
        store.delete("work").await.unwrap();
        assert_eq!(backend.entries.lock().unwrap().get("work"), None);
    }

    #[tokio::test]
    async fn a_newer_session_is_not_overwritten_by_an_older_stuck_write() {
        let backend = Arc::new(Gated::default());
        let store = Arc::new(store(&backend));
        assert!(store.save("work", Zeroizing::new("stuck".into())).await.is_err());
        // Opened while the newer write waits for its turn: it lands after the stuck one.
        let newer = tokio::spawn({
            let store = store.clone();
            async move { store.save("work", Zeroizing::new("newer".into())).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        backend.open();
        newer.await.unwrap().unwrap();
        assert_eq!(*backend.landed.lock().unwrap(), ["set stuck", "set newer"]);
        assert_eq!(backend.entries.lock().unwrap().get("work").map(String::as_str), Some("newer"));
    }

    #[tokio::test]
    async fn a_stuck_store_is_named_in_the_error() {
        let path = std::path::PathBuf::from("/home/u/.local/share/tokenbroker/sessions.sealed");
        let file = Arc::new(Gated { name: Some(StoreName::File(path)), ..Gated::default() });
        let e = store(&file).save("work", Zeroizing::new("stuck".into())).await.unwrap_err().to_string();
        file.open();
        assert!(
            e.starts_with("the sealed file at /home/u/.local/share/tokenbroker/sessions.sealed did not answer"),
            "{e}"
        );
        assert!(!e.contains("keyring") && !e.contains("locked"), "{e}");

        let keyring = Arc::new(Gated::default());
        let e = store(&keyring).save("work", Zeroizing::new("stuck".into())).await.unwrap_err().to_string();
        keyring.open();
        assert!(e.starts_with("the OS keyring did not answer") && e.ends_with("(is it locked?)"), "{e}");
    }

    #[test]
    fn no_account_can_be_named_like_the_probe() {
        let config = format!("[accounts.\"{}\"]\nissuer = \"https://x/\"\nclient_id = \"c\"\n", super::PROBE);
        assert!(crate::config::Config::parse(&config).is_err(), "the probe would overwrite that account's session");
    }
}
