//! When to tell the person on the desktop that an account needs them (`notify = true`): it
//! needs a new login, or its refresh keeps failing — [`FAILURES`] failures in a row, or failing
//! for [`FAILING_FOR`] — at most once per account per [`QUIET`]. A desktop that nags about the
//! same account every few seconds while an IdP is down gets switched off; once an hour still
//! reaches someone who missed the first. Decided from the core's events on tokio's clock (which
//! the tests move); shown by the D-Bus door (serve/dbus/notices.rs).

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::Event;

/// Refreshes that fail in a row before the person is told.
pub const FAILURES: u32 = 3;
/// How long refreshes may keep failing (counted from the first failure) before the person is
/// told, however few they were (a scheduler backing off tries less and less often).
pub const FAILING_FOR: Duration = Duration::from_secs(600);
/// The least time between two notices about one account.
pub const QUIET: Duration = Duration::from_secs(3600);

/// What an account needs from the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The IdP refused the session: a new login is needed.
    LoginRequired,
    /// This many refreshes in a row failed (the IdP unreachable or refusing).
    RefreshFailing { failures: u32 },
}

/// Per account: the failures in a row and since when, and when the person was last told.
#[derive(Debug, Default)]
pub struct Notices {
    failing: HashMap<String, (u32, Instant)>,
    told: HashMap<String, Instant>,
}

impl Notices {
    /// Follow `event`; the account and what to tell the person, when it is time to.
    pub fn on(&mut self, event: &Event, now: Instant) -> Option<(String, Notice)> {
        let (account, notice) = match event {
            Event::LoginRequired { account } => {
                self.failing.remove(account);
                (account, Notice::LoginRequired)
            }
            Event::RefreshFailed { account } => {
                let (failures, since) = self.failing.entry(account.clone()).or_insert((0, now));
                *failures += 1;
                if *failures < FAILURES && now.duration_since(*since) < FAILING_FOR {
                    return None;
                }
                (account, Notice::RefreshFailing { failures: *failures })
            }
            Event::TokenRefreshed { account, .. } | Event::LoggedOut { account } => {
                self.failing.remove(account);
                return None;
            }
            Event::LoginFinished { account, error: None, .. } => {
                self.failing.remove(account);
                return None;
            }
            _ => return None,
        };
        if self.told.get(account).is_some_and(|last| now.duration_since(*last) < QUIET) {
            return None;
        }
        self.told.insert(account.clone(), now);
        Some((account.clone(), notice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(account: &str) -> Event {
        Event::RefreshFailed { account: account.into() }
    }

    fn required(account: &str) -> Event {
        Event::LoginRequired { account: account.into() }
    }

    #[tokio::test(start_paused = true)]
    async fn a_login_required_is_told_once_an_hour_per_account() {
        let mut n = Notices::default();
        assert_eq!(n.on(&required("work"), Instant::now()), Some(("work".into(), Notice::LoginRequired)));
        tokio::time::advance(Duration::from_secs(3599)).await;
        assert_eq!(n.on(&required("work"), Instant::now()), None, "within the hour");
        assert!(n.on(&required("home"), Instant::now()).is_some(), "another account is told");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(n.on(&required("work"), Instant::now()).is_some(), "an hour later");
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_that_keep_failing_are_told_at_the_third_failure_or_after_ten_minutes() {
        let mut n = Notices::default();
        assert_eq!(n.on(&failed("work"), Instant::now()), None);
        assert_eq!(n.on(&failed("work"), Instant::now()), None);
        let told = n.on(&failed("work"), Instant::now());
        assert_eq!(told, Some(("work".into(), Notice::RefreshFailing { failures: 3 })));
        assert_eq!(n.on(&failed("work"), Instant::now()), None, "once an hour");

        // A success starts the count over; two failures ten minutes apart are enough.
        let mut n = Notices::default();
        n.on(&failed("home"), Instant::now());
        n.on(&failed("home"), Instant::now());
        n.on(&Event::TokenRefreshed { account: "home".into(), expires_at: 0 }, Instant::now());
        assert_eq!(n.on(&failed("home"), Instant::now()), None, "the count started over");
        tokio::time::advance(FAILING_FOR).await;
        assert_eq!(
            n.on(&failed("home"), Instant::now()),
            Some(("home".into(), Notice::RefreshFailing { failures: 2 }))
        );
    }
}
