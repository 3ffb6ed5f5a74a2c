use std::collections::HashMap;
use std::sync::Mutex;

use zeroize::Zeroizing;

use super::{Backend, Problem, StoreName};

/// Sessions kept in memory only, lost when the daemon exits.
#[derive(Default)]
pub struct Memory {
    entries: Mutex<HashMap<String, Zeroizing<String>>>,
}

impl Backend for Memory {
    fn name(&self) -> StoreName {
        StoreName::Memory
    }

    fn get(&self, account: &str) -> Result<Option<Zeroizing<String>>, Problem> {
        Ok(self.entries.lock().unwrap_or_else(|e| e.into_inner()).get(account).cloned())
    }

    fn set(&self, account: &str, value: &str) -> Result<(), Problem> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.insert(account.to_owned(), Zeroizing::new(value.to_owned()));
        Ok(())
    }

    fn delete(&self, account: &str) -> Result<(), Problem> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(account);
        Ok(())
    }
}
