use std::collections::HashMap;
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::{Backend, Problem, StoreName};

/// Sessions kept in memory only, lost when the daemon exits.
#[derive(Default)]
pub struct Memory {
    entries: Mutex<HashMap<String, Zeroizing<String>>>,
    /// Tests: refuse writes, as a locked keyring does, and count the refusals.
    #[cfg(test)]
    refusing: std::sync::atomic::AtomicBool,
    #[cfg(test)]
    refused: std::sync::atomic::AtomicUsize,
}

#[cfg(test)]
impl Memory {
    pub fn refuse_writes(&self, on: bool) {
        self.refusing.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn refused(&self) -> usize {
        self.refused.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Backend for Memory {
    fn name(&self) -> StoreName {
        StoreName::Memory
    }

    fn get(&self, account: &str) -> Result<Option<Zeroizing<String>>, Problem> {
        Ok(self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(account).cloned())
    }

    fn set(&self, account: &str, value: &str) -> Result<(), Problem> {
        #[cfg(test)]
        if self.refusing.load(std::sync::atomic::Ordering::SeqCst) {
            self.refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return Err(Problem::Unavailable("refused by the test".into()));
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(account.to_owned(), Zeroizing::new(value.to_owned()));
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), Problem> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(account);
        Ok(())
    }
}
