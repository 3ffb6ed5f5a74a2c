//! The OS keyring through the keyring project's crates: Secret Service on Linux, the
//! Keychain on macOS.

use std::sync::{Arc, Mutex};

use keyring_core::Error as KeyringError;
use keyring_core::api::CredentialStoreApi;
use zeroize::Zeroizing;

use super::{Backend, Problem, SERVICE, StoreName};

type Store = Arc<dyn CredentialStoreApi + Send + Sync>;

pub struct Keyring {
    /// Replaced when the keyring goes away and comes back: the Secret Service store keeps
    /// one session with the service it first met, which dies with that service. `None` only
    /// while being dropped.
    store: Mutex<Option<Store>>,
}

impl Drop for Keyring {
    fn drop(&mut self) {
        // Taken out, so that the last reference is surely the one moved off the runtime.
        if let Some(store) = self.store.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            drop_off_runtime(store);
        }
    }
}

/// The Secret Service store closes a blocking D-Bus connection when dropped, which must not
/// happen on a thread of the async runtime (zbus would start a runtime inside the runtime).
fn drop_off_runtime(store: Store) {
    let _ = std::thread::Builder::new().name("keyring-drop".into()).spawn(move || drop(store));
}

fn open_store() -> Result<Store, Problem> {
    #[cfg(target_os = "linux")]
    let store = zbus_secret_service_keyring_store::Store::new().map_err(describe)?;
    #[cfg(target_os = "macos")]
    let store = apple_native_keyring_store::keychain::Store::new().map_err(describe)?;
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    compile_error!("tokenbrokerd supports Linux (Secret Service) and macOS (Keychain)");
    Ok(store)
}

impl Keyring {
    /// Connect to the platform's store. Blocking: call it off the async threads.
    pub fn open() -> Result<Self, Problem> {
        Ok(Keyring { store: Mutex::new(Some(open_store()?)) })
    }

    fn current(&self) -> Store {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).clone().expect("the store is open until dropped")
    }

    /// Run `op` on the account's entry; if the store has failed, connect afresh once and
    /// try again (a restarted keyring daemon is a new service).
    fn with_entry<T>(
        &self,
        account: &str,
        op: impl Fn(&keyring_core::Entry) -> Result<T, KeyringError>,
    ) -> Result<T, KeyringError> {
        let store = self.current();
        match op(&store.build(SERVICE, account, None)?) {
            Err(e @ (KeyringError::PlatformFailure(_) | KeyringError::NoStorageAccess(_))) => {
                let Ok(fresh) = open_store() else { return Err(e) };
                let old = self.store.lock().unwrap_or_else(|e| e.into_inner()).replace(fresh.clone());
                if let Some(old) = old {
                    drop_off_runtime(old);
                }
                drop_off_runtime(store);
                op(&fresh.build(SERVICE, account, None)?)
            }
            other => other,
        }
    }
}

impl Backend for Keyring {
    fn name(&self) -> StoreName {
        StoreName::Keyring
    }

    fn get(&self, account: &str) -> Result<Option<Zeroizing<String>>, Problem> {
        match self.with_entry(account, |e| e.get_password()) {
            Ok(value) => Ok(Some(Zeroizing::new(value))),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(e) => Err(describe(e)),
        }
    }

    fn set(&self, account: &str, value: &str) -> Result<(), Problem> {
        self.with_entry(account, |e| e.set_password(value)).map_err(describe)
    }

    fn delete(&self, account: &str) -> Result<(), Problem> {
        match self.with_entry(account, |e| e.delete_credential()) {
            Ok(()) | Err(KeyringError::NoEntry) => Ok(()),
            Err(e) => Err(describe(e)),
        }
    }
}

/// keyring errors, minus the stored bytes some of them carry.
fn describe(e: KeyringError) -> Problem {
    match e {
        KeyringError::BadEncoding(_) | KeyringError::BadDataFormat(..) => Problem::Corrupt("not valid UTF-8".into()),
        KeyringError::NoStorageAccess(p) => Problem::Unavailable(format!("access refused (is it locked?): {p}")),
        KeyringError::PlatformFailure(p) => Problem::Unavailable(p.to_string()),
        other => Problem::Unavailable(other.to_string()),
    }
}
