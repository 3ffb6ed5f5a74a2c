//! The OS keyring through the keyring project's crates: Secret Service on Linux, the
//! Keychain on macOS.

use std::sync::Arc;

use keyring_core::Error as KeyringError;
use keyring_core::api::CredentialStoreApi;
use zeroize::Zeroizing;

use super::{Backend, SERVICE, StoreError};

pub struct Keyring {
    store: Arc<dyn CredentialStoreApi + Send + Sync>,
}

impl Drop for Keyring {
    /// The Secret Service store closes a blocking D-Bus connection when dropped, which must
    /// not happen on an async worker (zbus would start a runtime inside the runtime).
    fn drop(&mut self) {
        let store = self.store.clone();
        let _ = std::thread::Builder::new().name("keyring-drop".into()).spawn(move || drop(store));
    }
}

impl Keyring {
    /// Connect to the platform's store. Blocking: call it off the async threads.
    pub fn open() -> Result<Self, StoreError> {
        #[cfg(target_os = "linux")]
        let store = zbus_secret_service_keyring_store::Store::new().map_err(describe)?;
        #[cfg(target_os = "macos")]
        let store = apple_native_keyring_store::keychain::Store::new().map_err(describe)?;
        #[cfg(not(any(target_os = "linux", target_os = "macos")))]
        compile_error!("tokenbrokerd supports Linux (Secret Service) and macOS (Keychain)");
        Ok(Keyring { store })
    }

    fn entry(&self, account: &str) -> Result<keyring_core::Entry, StoreError> {
        self.store.build(SERVICE, account, None).map_err(describe)
    }
}

impl Backend for Keyring {
    fn get(&self, account: &str) -> Result<Option<Zeroizing<String>>, StoreError> {
        match self.entry(account)?.get_password() {
            Ok(value) => Ok(Some(Zeroizing::new(value))),
            Err(KeyringError::NoEntry) => Ok(None),
            Err(e) => Err(describe(e)),
        }
    }

    fn set(&self, account: &str, value: &str) -> Result<(), StoreError> {
        self.entry(account)?.set_password(value).map_err(describe)
    }

    fn delete(&self, account: &str) -> Result<(), StoreError> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(KeyringError::NoEntry) => Ok(()),
            Err(e) => Err(describe(e)),
        }
    }
}

/// keyring errors, minus the stored bytes some of them carry.
fn describe(e: KeyringError) -> StoreError {
    match e {
        KeyringError::BadEncoding(_) | KeyringError::BadDataFormat(..) => StoreError::Corrupt("not valid UTF-8".into()),
        KeyringError::NoStorageAccess(p) => StoreError::Unavailable(format!("no access: {p}")),
        KeyringError::PlatformFailure(p) => StoreError::Unavailable(p.to_string()),
        other => StoreError::Unavailable(other.to_string()),
    }
}
