//! One rule for how long a token lives and how long a caller needs it, the same for the
//! session's access token, other audiences' tokens and the ID token.

use std::time::Duration;

use tokenbroker::ttl::MAX_TTL_SECS;

use super::token::Life;
use super::{Error, Result};

/// Assumed when a token response has no `expires_in` (RFC 6749 leaves it optional).
pub const DEFAULT_LIFETIME: i64 = 3600;

/// The longest lifetime believed from an IdP (see [`MAX_TTL_SECS`]).
pub const MAX_LIFETIME: i64 = MAX_TTL_SECS as i64;

/// Seconds a token from a response with this `expires_in` lives: the IdP's number, cut to a
/// year, so that no arithmetic on it can overflow and no token is kept "forever".
pub fn lifetime(expires_in: Option<Duration>) -> i64 {
    expires_in.map_or(DEFAULT_LIFETIME, |d| d.as_secs().min(MAX_TTL_SECS) as i64)
}

/// The unix second a token received at `received_at` expires, given the IdP's absolute
/// `exp` (ID tokens): no later than a year after receipt.
pub fn capped_expiry(received_at: i64, exp: i64) -> i64 {
    exp.min(received_at.saturating_add(MAX_LIFETIME))
}

/// A caller's `min_ttl`, in range once made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinTtl(i64);

impl MinTtl {
    /// Decoders refuse more than a year (`tokenbroker::ttl::check_min_ttl`); cutting it here
    /// keeps the arithmetic safe for any other caller, who then hears that no token lives
    /// that long.
    pub fn new(secs: Option<u64>) -> MinTtl {
        MinTtl(secs.unwrap_or(0).min(MAX_TTL_SECS) as i64)
    }

    /// Any token that has not expired.
    pub const NONE: MinTtl = MinTtl(0);

    /// The core's own need, for the calls it makes with a token.
    pub const fn secs(secs: i64) -> MinTtl {
        MinTtl(secs)
    }

    pub fn asked(self) -> bool {
        self.0 > 0
    }

    /// A token of this life serves the caller as it is at `now` (it must at least not have
    /// expired).
    pub fn met_by(self, life: Life, now: i64) -> bool {
        life.remaining(now) >= self.0.max(1)
    }

    /// Whether any token the IdP grants, as long-lived as this one, can serve the caller: one
    /// just refreshed is as fresh as any can be, though a second may have ticked since.
    /// Auth0's `largeMinTTL` otherwise.
    pub fn fits(self, life: Life) -> Result<()> {
        let lifetime = life.lifetime();
        if self.0 <= lifetime {
            return Ok(());
        }
        Err(Error::invalid_params(format!(
            "min_ttl {}s is longer than the token lifetime of {lifetime}s that the identity provider grants; ask for less",
            self.0
        )))
    }

    /// After any refresh, whether a token of this life serves the caller. One `renewed` by
    /// that refresh does if any could (the clock may have ticked since); one carried over,
    /// because the refresh brought no good successor, only while enough of it is left:
    /// `Ok(false)` otherwise.
    pub fn served_by(self, life: Life, now: i64, renewed: bool) -> Result<bool> {
        self.fits(life)?;
        Ok(renewed || self.met_by(life, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_from_the_idp_are_capped_at_a_year() {
        assert_eq!(lifetime(None), DEFAULT_LIFETIME);
        assert_eq!(lifetime(Some(Duration::from_secs(60))), 60);
        assert_eq!(lifetime(Some(Duration::from_secs(u64::MAX))), MAX_LIFETIME);
        assert_eq!(lifetime(Some(Duration::MAX)), MAX_LIFETIME);
        assert_eq!(capped_expiry(1000, i64::MAX), 1000 + MAX_LIFETIME);
        assert_eq!(capped_expiry(1000, 2000), 2000);
    }

    #[test]
    fn min_ttl_is_one_rule() {
        // Lives `lifetime` seconds, `left` of them still to go.
        let at = |lifetime: i64, left: i64| (Life::starting(1000, lifetime), 1000 + lifetime - left);
        let huge = MinTtl::new(Some(1 << 63));
        assert!(huge.asked() && huge.fits(at(MAX_LIFETIME - 1, 0).0).is_err(), "no wrap to a negative number");
        assert_eq!(MinTtl::new(Some(u64::MAX)), MinTtl::new(Some(MAX_TTL_SECS)));
        let none = MinTtl::new(None);
        let (life, now) = at(60, 1);
        assert!(
            !none.asked() && none.met_by(life, now) && !none.met_by(life, now + 1),
            "an expired token never serves"
        );
        let m = MinTtl::new(Some(60));
        let (fresh, now) = at(60, 60);
        assert!(m.met_by(fresh, now) && !m.met_by(fresh, now + 1));
        assert!(m.fits(fresh).is_ok());
        assert!(m.fits(at(59, 59).0).unwrap_err().message.contains("lifetime of 59s"));
        let (life, now) = at(60, 59);
        assert!(m.served_by(life, now, true).unwrap(), "just renewed: a second into its life is fine");
        assert!(!m.served_by(life, now, false).unwrap(), "carried over: judged by what is left");
        assert!(m.served_by(fresh, 1000, false).unwrap());
        assert!(m.served_by(at(59, 59).0, 1000, true).is_err());
    }
}
