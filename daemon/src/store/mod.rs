//! Where sessions live between daemon runs: one entry per account, written by one writer per
//! account, every call bounded by a timeout (a locked keyring can block forever).

mod file;
mod keyring;
mod memory;

use std::collections::HashMap;
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

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the keyring is unavailable: {0}")]
    Unavailable(String),
    #[error("the keyring did not answer within {0:?} (is it locked?)")]
    Timeout(Duration),
    #[error("the stored entry for this account is damaged: {0}")]
    Corrupt(String),
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
    fn get(&self, account: &str) -> Result<Option<Zeroizing<String>>, StoreError>;
    fn set(&self, account: &str, value: &str) -> Result<(), StoreError>;
    fn delete(&self, account: &str) -> Result<(), StoreError>;
}

pub struct SessionStore {
    backend: Arc<dyn Backend>,
    writers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl SessionStore {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        SessionStore { backend, writers: Mutex::new(HashMap::new()) }
    }

    pub async fn load(&self, account: &str) -> Result<Option<Zeroizing<String>>, StoreError> {
        let account = account.to_owned();
        self.blocking(move |b| b.get(&account)).await
    }

    pub async fn save(&self, account: &str, record: Zeroizing<String>) -> Result<(), StoreError> {
        let writer = self.writer(account);
        let _turn = writer.lock().await;
        let account = account.to_owned();
        self.blocking(move |b| b.set(&account, &record)).await
    }

    pub async fn delete(&self, account: &str) -> Result<(), StoreError> {
        let writer = self.writer(account);
        let _turn = writer.lock().await;
        let account = account.to_owned();
        self.blocking(move |b| b.delete(&account)).await
    }

    /// Write, read back and delete a throwaway entry. A locked keyring still answers reads of
    /// missing entries; only a write tells whether sessions would survive a restart.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.save(PROBE, Zeroizing::new("probe".into())).await?;
        let read = self.load(PROBE).await?;
        self.delete(PROBE).await?;
        match read.as_deref().map(String::as_str) {
            Some("probe") => Ok(()),
            _ => Err(StoreError::Unavailable("what was written could not be read back".into())),
        }
    }

    /// Concurrent writes to one Secret Service entry fail; one writer per account avoids it.
    fn writer(&self, account: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut writers = self.writers.lock().unwrap_or_else(|e| e.into_inner());
        writers.entry(account.to_owned()).or_default().clone()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Backend) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let backend = self.backend.clone();
        let task = tokio::task::spawn_blocking(move || f(&*backend));
        match tokio::time::timeout(CALL_TIMEOUT, task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(StoreError::Unavailable(format!("keyring call failed: {join}"))),
            Err(_) => Err(StoreError::Timeout(CALL_TIMEOUT)),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_account_can_be_named_like_the_probe() {
        let config = format!("[accounts.\"{}\"]\nissuer = \"https://x/\"\nclient_id = \"c\"\n", super::PROBE);
        assert!(crate::config::Config::parse(&config).is_err(), "the probe would overwrite that account's session");
    }
}
