//! The socket door's cache of `GetAccessToken` answers: encoded once per token and shared by
//! every request that token serves. Encoding an answer (a kilobyte of JWT, escaped) costs
//! about a microsecond, an eighth of a request's time in the daemon at full load; copying the
//! cached bytes costs a hundredth of that.

use std::sync::{Arc, Mutex, Weak};

use zeroize::Zeroizing;

use crate::broker::{Grant, Token};

/// An answer's JSON, wiped from memory when the last holder drops it.
pub enum Json {
    Shared(Arc<Zeroizing<Vec<u8>>>),
    Owned(Zeroizing<Vec<u8>>),
}

impl Json {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Json::Shared(bytes) => bytes,
            Json::Owned(bytes) => bytes,
        }
    }
}

/// One entry per token still in use, a handful at most (one per account and audience).
#[derive(Default)]
pub struct Answers {
    entries: Mutex<Vec<Entry>>,
}

struct Entry {
    /// Weak: the cache never keeps a token the core has let go of (refreshed, logged out).
    token: Weak<Token>,
    json: Arc<Zeroizing<Vec<u8>>>,
}

impl Answers {
    /// The answer for `grant`, encoded now if its token has none yet.
    pub fn get(&self, grant: &Grant) -> Json {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = entries.iter().find(|e| std::ptr::eq(e.token.as_ptr(), Arc::as_ptr(&grant.token))) {
            return Json::Shared(e.json.clone());
        }
        entries.retain(|e| e.token.strong_count() > 0);
        let json =
            Arc::new(Zeroizing::new(serde_json::to_vec(grant).expect("an access token answer always serializes")));
        entries.push(Entry { token: Arc::downgrade(&grant.token), json: json.clone() });
        Json::Shared(json)
    }

    /// Drop the answers of tokens the core no longer holds, so their copies do not outlive
    /// them in memory (called on the core's events: refresh, logout, login required).
    pub fn forget_dropped(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).retain(|e| e.token.strong_count() > 0);
    }
}
