//! The one background loop per account: it sleeps until the account next needs it, then
//! refreshes what is due (proactive refresh: the earliest `refresh_at` of the session and its
//! audience tokens, or the retry time after a failure) and retries a session write the store
//! refused. Both retries take the same [`Backoff`]. No timers run while there is nothing to do.

use std::sync::Arc;
use std::time::Duration;

use tokenbroker::ErrorKind;

use super::account::State;
use super::session::{now, now_ms};
use super::{Account, Broker, Result};

pub(super) const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A store that refused a write is tried again at least once a minute: until it takes the
/// session, a stop loses it.
const SAVE_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A `Retry-After` longer than this is taken as this: an IdP cannot park a session for days.
pub(super) const RETRY_AFTER_MAX: Duration = BACKOFF_MAX;

/// How long to wait after each failure in a row: from a second, doubled each time up to a
/// ceiling, plus up to half of it again at random (so the daemons behind one IdP outage do
/// not return in step), and never less than the IdP's `Retry-After`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(super) const fn new(max: Duration) -> Backoff {
        Backoff { next: BACKOFF_MIN, max }
    }

    /// The wait after one more failure.
    pub(super) fn failed(&mut self, retry_after: Option<Duration>) -> Duration {
        let wait = self.next.mul_f64(1.0 + rand::random_range(0.0..=0.5));
        self.next = (self.next * 2).min(self.max);
        wait.max(retry_after.unwrap_or_default().min(RETRY_AFTER_MAX))
    }

    pub(super) fn succeeded(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// When a proactive refresh (or its retry) is due, in Unix milliseconds, if ever.
fn refresh_due(s: &State) -> Option<i64> {
    let session = s.session()?;
    let earliest = s.audience_tokens.values().map(|t| t.refresh_at).chain([session.access.refresh_at]).min();
    s.refresh.retry_at.or(earliest.map(|at| at * 1000))
}

/// When a refused session write is tried again, if one is pending.
fn save_due(s: &State) -> Option<i64> {
    s.session().and(s.save_retry_at)
}

impl Broker {
    pub(super) async fn schedule(self: Arc<Self>, account: Arc<Account>) {
        let proactive = account.proactive;
        let (mut refreshes, mut saves) = (Backoff::new(BACKOFF_MAX), Backoff::new(SAVE_BACKOFF_MAX));
        loop {
            let due = account.read(|s| [save_due(s), refresh_due(s).filter(|_| proactive)].into_iter().flatten().min());
            // Tokio's clock stops while the machine sleeps; the due time is wall-clock, and
            // callers judge expiry by wall-clock too, so a late wake-up costs nothing.
            let sleep = async {
                match due {
                    Some(at) => tokio::time::sleep(Duration::from_millis((at - now_ms()).max(0) as u64)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // First: a stop must not start a refresh that was due at the same moment.
                biased;
                _ = account.stop.cancelled() => return,
                _ = sleep => {}
                _ = account.wake.notified() => continue,
            }
            let now = now_ms();
            if account.read(save_due).is_some_and(|at| at <= now) {
                self.retry_save(&account, &mut saves).await;
            }
            if proactive && account.read(refresh_due).is_some_and(|at| at <= now) {
                self.refresh_or_back_off(&account, &mut refreshes).await;
            }
        }
    }

    async fn refresh_or_back_off(self: &Arc<Self>, account: &Arc<Account>, backoff: &mut Backoff) {
        match self.refresh_due(account).await {
            Ok(()) => backoff.succeeded(),
            Err(e) if e.kind == ErrorKind::IdpUnavailable => {
                let wait = backoff.failed(e.retry_after);
                tracing::info!(account = %account.name, retry_in_ms = wait.as_millis() as u64, "will retry the refresh");
                account.write(|s| s.refresh.retry_at = Some(now_ms() + wait.as_millis() as i64));
            }
            Err(e) => {
                tracing::debug!(account = %account.name, error = %e, "scheduled refresh failed");
                // A refused session is gone (the loop then waits for a login); anything
                // else is a configuration problem, retried rarely rather than in a loop.
                account.write(|s| s.refresh.retry_at = Some(now_ms() + BACKOFF_MAX.as_millis() as i64));
            }
        }
    }

    /// Refresh the session and every audience token whose time has come.
    async fn refresh_due(self: &Arc<Self>, account: &Arc<Account>) -> Result<()> {
        account.write(|s| s.refresh.retry_at = None);
        self.fresh(account, |s, now| s.access.refresh_at > now).await?;
        let due: Vec<_> = account.read(|s| {
            s.audience_tokens.iter().filter(|(_, t)| t.refresh_at <= now()).map(|(k, _)| k.clone()).collect()
        });
        for key in due {
            self.fresh_audience(account, &key, |t, now| t.refresh_at > now).await?;
        }
        Ok(())
    }

    /// Write the account's current session to the store again. Under the account's refresh
    /// lock, so it never overwrites a newer session.
    async fn retry_save(&self, account: &Account, backoff: &mut Backoff) {
        let turn = account.turn().await;
        let Some(session) = account.read(|s| s.session().filter(|_| s.save_retry_at.is_some()).cloned()) else {
            return;
        };
        match self.save(&turn, account, &session).await {
            Ok(()) => {
                backoff.succeeded();
                account.write(|s| s.save_retry_at = None);
                tracing::info!(account = %account.name, "stored the session after all");
            }
            Err(e) => {
                let wait = backoff.failed(None);
                account.write(|s| s.save_retry_at = Some(now_ms() + wait.as_millis() as i64));
                tracing::warn!(account = %account.name, error = %e, retry_in = ?wait, "still cannot store the session");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The waits of `n` failures in a row.
    fn waits(max: Duration, n: usize, retry_after: Option<Duration>) -> Vec<Duration> {
        let mut backoff = Backoff::new(max);
        (0..n).map(|_| backoff.failed(retry_after)).collect()
    }

    #[test]
    fn retry_delays_spread_over_half_the_backoff_again() {
        let mut eight = Backoff { next: Duration::from_secs(8), max: BACKOFF_MAX };
        let delays: Vec<Duration> = (0..1000).map(|_| eight.clone().failed(None)).collect();
        let backoff = Duration::from_secs(8);
        assert!(delays.iter().all(|d| *d >= backoff && *d <= backoff.mul_f64(1.5)));
        // Jitter at millisecond grain: a thousand draws land on many distinct values.
        let mut distinct: Vec<_> = delays.iter().map(|d| d.as_millis()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 500, "only {} distinct delays", distinct.len());
        let (lo, hi) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(*lo < Duration::from_millis(8500) && *hi > Duration::from_millis(11500), "{lo:?}..{hi:?}");
        eight.succeeded();
        assert!(eight.failed(None) <= Duration::from_millis(1500), "a success starts over");
    }

    #[test]
    fn the_backoff_doubles_from_a_second_to_its_ceiling() {
        let floors = |max| waits(max, 12, None).iter().map(|d| d.as_secs()).collect::<Vec<_>>();
        let refresh = floors(BACKOFF_MAX);
        let want = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300];
        assert!(refresh.iter().zip(want).all(|(got, w)| *got >= w && *got <= w * 3 / 2), "{refresh:?}");
        let save = floors(SAVE_BACKOFF_MAX);
        assert!(save[6..].iter().all(|s| (60..=90).contains(s)), "a refused write is retried each minute: {save:?}");
    }

    #[test]
    fn retry_after_is_a_floor_with_a_ceiling() {
        assert_eq!(waits(BACKOFF_MAX, 1, Some(Duration::from_secs(30)))[0], Duration::from_secs(30));
        assert!(waits(BACKOFF_MAX, 1, Some(Duration::from_millis(10)))[0] >= BACKOFF_MIN);
        assert_eq!(waits(BACKOFF_MAX, 1, Some(Duration::from_secs(86_400)))[0], RETRY_AFTER_MAX);
    }
}
