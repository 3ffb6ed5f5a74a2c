//! Tokens as the core holds them, whatever their kind: the session's access token, other
//! audiences' access tokens and the ID token all live by one [`Life`], judged by one rule
//! ([`super::ttl::MinTtl`]).

use secrecy::SecretString;

use super::ttl;
use crate::oidc::TokenSet;

/// When a token was received and when it expires, in unix seconds of our clock: wall-clock
/// time, so time spent asleep counts against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Life {
    pub issued_at: i64,
    pub expires_at: i64,
}

impl Life {
    /// A token received at `issued_at` that lives `lifetime` seconds.
    pub fn starting(issued_at: i64, lifetime: i64) -> Life {
        Life { issued_at, expires_at: issued_at.saturating_add(lifetime) }
    }

    /// How long the IdP lets such tokens live: no less than nothing, no more than a year.
    pub fn lifetime(self) -> i64 {
        (self.expires_at - self.issued_at).clamp(0, ttl::MAX_LIFETIME)
    }

    pub fn remaining(self, now: i64) -> i64 {
        self.expires_at - now
    }

    /// When the scheduler renews it: three quarters into its life, less a little jitter so
    /// that many daemons behind one IdP do not refresh in step.
    pub fn refresh_at(self) -> i64 {
        let lifetime = self.lifetime();
        let jitter = rand::random_range(0..=(lifetime / 20).max(0));
        self.issued_at + lifetime * 3 / 4 - jitter
    }
}

/// An access token: what `GetAccessToken` grants, shared (not copied) with every caller it
/// serves. `Debug` is safe: secrecy's type prints `[REDACTED]`.
#[derive(Debug)]
pub struct Token {
    pub secret: SecretString,
    pub token_type: String,
    pub scopes: Vec<String>,
    pub life: Life,
    /// When the scheduler renews it ([`Life::refresh_at`], drawn once). Not stored.
    pub refresh_at: i64,
    /// A door's memo of this token (the socket's encoded answer): made by the door, once, and
    /// dropped with the token, so it never outlives it. The core never reads it.
    pub memo: std::sync::OnceLock<Memo>,
    /// An API refused it and a caller said so (`RejectToken`): no longer served, so the next
    /// request refreshes. Set once, never cleared: the token it marks is never good again.
    rejected: std::sync::atomic::AtomicBool,
}

/// What a door keeps with a token, opaque to the core.
pub struct Memo(pub Box<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

impl Token {
    pub fn new(secret: SecretString, token_type: String, scopes: Vec<String>, life: Life) -> Token {
        Token {
            secret,
            token_type,
            scopes,
            life,
            refresh_at: life.refresh_at(),
            memo: Default::default(),
            rejected: Default::default(),
        }
    }

    /// Whether a caller reported it refused ([`Token::reject`]).
    pub fn rejected(&self) -> bool {
        self.rejected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// No longer serve it; whether it was served until now.
    pub fn reject(&self) -> bool {
        !self.rejected.swap(true, std::sync::atomic::Ordering::Relaxed)
    }

    /// The access token of a token response received at `now`; `requested` are the scopes
    /// asked for, which an IdP that does not say otherwise granted.
    pub fn received(t: &TokenSet, now: i64, requested: impl FnOnce() -> Vec<String>) -> Token {
        let life = Life::starting(now, ttl::lifetime(t.expires_in));
        Token::new(t.access_token.clone(), t.token_type.clone(), t.scopes.clone().unwrap_or_else(requested), life)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_life_is_judged_the_same_for_every_kind() {
        let life = Life::starting(1000, 60);
        assert_eq!((life.lifetime(), life.remaining(1030)), (60, 30));
        let at = life.refresh_at();
        assert!((1042..=1045).contains(&at), "three quarters in, less up to 5%: {at}");
        let backwards = Life { issued_at: 2000, expires_at: 1000 };
        assert_eq!(backwards.lifetime(), 0, "a token that expires before it was issued lives 0s");
        assert_eq!(Life::starting(i64::MAX - 1, 60).expires_at, i64::MAX, "no overflow");
    }
}
