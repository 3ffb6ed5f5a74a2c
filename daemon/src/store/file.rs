//! `store = "file"`: every account's session in one file, sealed with XChaCha20-Poly1305
//! under a key stretched from a passphrase by Argon2id. For machines without an OS keyring,
//! chosen on purpose; never a plaintext fallback.
//!
//! The file is JSON: the KDF's parameters and salt, a fresh random nonce per write, and the
//! ciphertext of `{account: record}`. Writes go to a temporary file that replaces the old one
//! by rename, so a crash leaves the previous or the new file, never half of one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Backend, Problem, StoreName};

const FORMAT: &str = "tokenbroker-sealed-1";

#[derive(Serialize, Deserialize)]
struct Sealed {
    format: String,
    /// Argon2id: memory in KiB, iterations, lanes, and the salt (base64).
    m: u32,
    t: u32,
    p: u32,
    salt: String,
    nonce: String,
    ciphertext: String,
}

type Entries = BTreeMap<String, Zeroizing<String>>;

pub struct FileStore {
    path: PathBuf,
    key: Zeroizing<[u8; 32]>,
    params: (u32, u32, u32),
    salt: Vec<u8>,
    /// One reader-modifier-writer at a time within the daemon.
    lock: Mutex<()>,
}

fn derive(passphrase: &[u8], salt: &[u8], (m, t, p): (u32, u32, u32)) -> Result<Zeroizing<[u8; 32]>, Problem> {
    let params = Params::new(m, t, p, Some(32)).map_err(|e| Problem::Corrupt(format!("KDF parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, &mut *key)
        .map_err(|e| Problem::Unavailable(format!("deriving the key: {e}")))?;
    Ok(key)
}

fn unreadable(path: &Path, why: impl std::fmt::Display) -> Problem {
    Problem::Unavailable(format!("cannot read {}: {why}", path.display()))
}

impl FileStore {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open the file, checking the passphrase against it, or create it empty. Blocking.
    pub fn open(path: PathBuf, passphrase: &[u8]) -> Result<Self, Problem> {
        if passphrase.is_empty() {
            return Err(Problem::Unavailable("the store's passphrase is empty".into()));
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                let sealed: Sealed = serde_json::from_slice(&bytes)
                    .map_err(|e| Problem::Corrupt(format!("{} is not a sealed sessions file: {e}", path.display())))?;
                if sealed.format != FORMAT {
                    return Err(Problem::Corrupt(format!("{}: unknown format {:?}", path.display(), sealed.format)));
                }
                let salt = B64.decode(&sealed.salt).map_err(|e| Problem::Corrupt(format!("salt: {e}")))?;
                let params = (sealed.m, sealed.t, sealed.p);
                let store =
                    FileStore { key: derive(passphrase, &salt, params)?, path, params, salt, lock: Mutex::new(()) };
                store.read()?;
                Ok(store)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let salt: [u8; 16] = rand::random();
                let d = Params::default();
                let params = (d.m_cost(), d.t_cost(), d.p_cost());
                let key = derive(passphrase, &salt, params)?;
                let store = FileStore { key, path, params, salt: salt.to_vec(), lock: Mutex::new(()) };
                // Written now, empty: a place the daemon cannot write (a read-only home under
                // a sandbox, say) stops it at start, not at the first login.
                store.write(&Entries::new())?;
                Ok(store)
            }
            Err(e) => Err(unreadable(&path, e)),
        }
    }

    fn read(&self) -> Result<Entries, Problem> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entries::new()),
            Err(e) => return Err(unreadable(&self.path, e)),
        };
        let sealed: Sealed = serde_json::from_slice(&bytes).map_err(|e| Problem::Corrupt(e.to_string()))?;
        let nonce = B64.decode(&sealed.nonce).map_err(|e| Problem::Corrupt(format!("nonce: {e}")))?;
        let ciphertext = B64.decode(&sealed.ciphertext).map_err(|e| Problem::Corrupt(format!("ciphertext: {e}")))?;
        if nonce.len() != 24 {
            return Err(Problem::Corrupt("nonce of the wrong size".into()));
        }
        let cipher = XChaCha20Poly1305::new((&*self.key).into());
        let plain =
            Zeroizing::new(cipher.decrypt(XNonce::from_slice(&nonce), ciphertext.as_slice()).map_err(|_| {
                Problem::Unavailable(format!(
                    "cannot decrypt {}: wrong passphrase, or the file was changed",
                    self.path.display()
                ))
            })?);
        serde_json::from_slice(&plain)
            .map_err(|e| Problem::Corrupt(format!("sealed content: {}", super::json_error_kind(&e))))
    }

    fn write(&self, entries: &Entries) -> Result<(), Problem> {
        let failed = |e: std::io::Error| Problem::Unavailable(format!("cannot write {}: {e}", self.path.display()));
        let plain = Zeroizing::new(serde_json::to_vec(entries).expect("entries serialize"));
        let cipher = XChaCha20Poly1305::new((&*self.key).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext =
            cipher.encrypt(&nonce, plain.as_slice()).map_err(|_| Problem::Unavailable("encryption failed".into()))?;
        let sealed = Sealed {
            format: FORMAT.into(),
            m: self.params.0,
            t: self.params.1,
            p: self.params.2,
            salt: B64.encode(&self.salt),
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ciphertext),
        };
        crate::private_file::replace(&self.path, &serde_json::to_vec(&sealed).expect("sealed serializes"))
            .map_err(failed)
    }

    fn modify(&self, change: impl FnOnce(&mut Entries)) -> Result<(), Problem> {
        let _turn = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut entries = self.read()?;
        change(&mut entries);
        self.write(&entries)
    }
}

impl Backend for FileStore {
    fn name(&self) -> StoreName {
        StoreName::File(self.path.clone())
    }

    fn get(&self, account: &str) -> Result<Option<Zeroizing<String>>, Problem> {
        let _turn = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        Ok(self.read()?.remove(account))
    }

    fn set(&self, account: &str, value: &str) -> Result<(), Problem> {
        self.modify(|entries| {
            entries.insert(account.to_owned(), Zeroizing::new(value.to_owned()));
        })
    }

    fn delete(&self, account: &str) -> Result<(), Problem> {
        self.modify(|entries| {
            entries.remove(account);
        })
    }
}

/// The passphrase from the configured source: a systemd credential (`LoadCredential=` or
/// `LoadCredentialEncrypted=`, read from `$CREDENTIALS_DIRECTORY`) or a command's output.
/// One trailing newline is dropped. Blocking.
pub fn passphrase(credential: Option<&str>, command: Option<&[String]>) -> Result<Zeroizing<Vec<u8>>, Problem> {
    let mut secret = match (credential, command) {
        (Some(name), _) => {
            let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                Problem::Unavailable(format!(
                    "store_key_credential = {name:?} needs the daemon started by systemd with \
                     LoadCredential={name}:… (CREDENTIALS_DIRECTORY is not set)"
                ))
            })?;
            let path = Path::new(&dir).join(name);
            Zeroizing::new(std::fs::read(&path).map_err(|e| unreadable(&path, e))?)
        }
        (None, Some([program, args @ ..])) => {
            let out = std::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::inherit())
                .output()
                .map_err(|e| Problem::Unavailable(format!("store_passphrase_command {program:?}: {e}")))?;
            let stdout = Zeroizing::new(out.stdout);
            if !out.status.success() {
                return Err(Problem::Unavailable(format!(
                    "store_passphrase_command {program:?} failed: {}",
                    out.status
                )));
            }
            stdout
        }
        _ => return Err(Problem::Unavailable("no passphrase source for store = \"file\"".into())),
    };
    if secret.last() == Some(&b'\n') {
        secret.pop();
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_round_trip_wrong_passphrase_and_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/sessions.sealed");
        let store = FileStore::open(path.clone(), b"correct horse").unwrap();
        assert_eq!(store.get("work").unwrap(), None);
        store.set("work", r#"{"refresh_token":"rt-very-secret"}"#).unwrap();
        store.set("home", "other").unwrap();
        store.delete("home").unwrap();

        let bytes = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("very-secret"), "sealed, not plaintext");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        let again = FileStore::open(path.clone(), b"correct horse").unwrap();
        assert_eq!(
            again.get("work").unwrap().as_deref().map(String::as_str),
            Some(r#"{"refresh_token":"rt-very-secret"}"#)
        );
        assert_eq!(again.get("home").unwrap(), None);

        let err = FileStore::open(path.clone(), b"wrong").err().expect("a wrong passphrase is refused");
        assert!(err.to_string().contains("wrong passphrase"), "{err}");

        let mut sealed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let mut ct = B64.decode(sealed["ciphertext"].as_str().unwrap()).unwrap();
        ct[0] ^= 1;
        sealed["ciphertext"] = B64.encode(ct).into();
        std::fs::write(&path, serde_json::to_vec(&sealed).unwrap()).unwrap();
        assert!(FileStore::open(path, b"correct horse").is_err(), "tampering is detected");
    }

    #[test]
    fn a_leftover_or_planted_temporary_file_is_replaced_not_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.sealed");
        let tmp = dir.path().join("sessions.tmp");
        let store = FileStore::open(path.clone(), b"pw").unwrap();
        std::fs::write(&tmp, "left over").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
        store.set("work", "session").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "untouched").unwrap();
        std::os::unix::fs::symlink(&elsewhere, &tmp).unwrap();
        store.set("work", "session 2").unwrap();
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "untouched", "the symlink was followed");
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        assert_eq!(store.get("work").unwrap().as_deref().map(String::as_str), Some("session 2"));
    }

    #[test]
    fn passphrase_sources() {
        let from_command = passphrase(None, Some(&["printf".into(), "%s\\n".into(), "pw".into()])).unwrap();
        assert_eq!(&*from_command, b"pw");
        let failing = passphrase(None, Some(&["false".into()])).unwrap_err();
        assert!(failing.to_string().contains("failed"), "{failing}");
    }
}
