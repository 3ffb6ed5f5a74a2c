//! Proactive refresh: one task per account sleeps until the earliest `refresh_at` of its
//! session and audience tokens (or the retry time after a failure), refreshes what is due,
//! and sleeps again. No timers run while there is nothing to do.

use std::sync::Arc;
use std::time::Duration;

use tokenbroker::ErrorKind;

use super::account::State;
use super::session::{now, now_ms};
use super::{Account, Broker, Result};

const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A `Retry-After` longer than this is taken as this: an IdP cannot park a session for days.
pub(super) const RETRY_AFTER_MAX: Duration = BACKOFF_MAX;

/// When the account next needs the scheduler (Unix milliseconds), if ever.
fn next_due(s: &State) -> Option<i64> {
    let session = s.session.as_ref().filter(|_| !s.login_required)?;
    let earliest = s.audience_tokens.values().map(|t| t.refresh_at).chain([session.access.refresh_at]).min();
    s.retry_at.or(earliest.map(|at| at * 1000))
}

/// How long to wait before retrying a failed refresh: the backoff plus up to half of it
/// again at random (so the daemons behind one IdP outage do not return in step), and never
/// less than the IdP's `Retry-After`.
fn retry_delay(backoff: Duration, retry_after: Option<Duration>) -> Duration {
    let wait = backoff.mul_f64(1.0 + rand::random_range(0.0..=0.5));
    wait.max(retry_after.unwrap_or_default().min(RETRY_AFTER_MAX))
}

/// The backoff after one more failure: doubled, up to `BACKOFF_MAX`.
fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).min(BACKOFF_MAX)
}

impl Broker {
    pub(super) async fn schedule(self: Arc<Self>, account: Arc<Account>) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let due = account.read(next_due);
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
            match self.refresh_due(&account).await {
                Ok(()) => backoff = BACKOFF_MIN,
                Err(e) if e.kind == ErrorKind::IdpUnavailable => {
                    let wait = retry_delay(backoff, e.retry_after);
                    tracing::info!(account = %account.name, retry_in_ms = wait.as_millis() as u64, "will retry the refresh");
                    account.write(|s| s.retry_at = Some(now_ms() + wait.as_millis() as i64));
                    backoff = next_backoff(backoff);
                }
                Err(e) => {
                    tracing::debug!(account = %account.name, error = %e, "scheduled refresh failed");
                    // A refused session is gone (the loop then waits for a login); anything
                    // else is a configuration problem, retried rarely rather than in a loop.
                    account.write(|s| s.retry_at = Some(now_ms() + BACKOFF_MAX.as_millis() as i64));
                }
            }
        }
    }

    /// Refresh the session and every audience token whose time has come.
    async fn refresh_due(self: &Arc<Self>, account: &Arc<Account>) -> Result<()> {
        account.write(|s| s.retry_at = None);
        self.fresh(account, |s, now| s.access.refresh_at > now).await?;
        let due: Vec<_> = account.read(|s| {
            s.audience_tokens.iter().filter(|(_, t)| t.refresh_at <= now()).map(|(k, _)| k.clone()).collect()
        });
        for key in due {
            self.fresh_audience(account, &key, |t, now| t.refresh_at > now).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_spread_over_half_the_backoff_again() {
        let backoff = Duration::from_secs(8);
        let delays: Vec<Duration> = (0..1000).map(|_| retry_delay(backoff, None)).collect();
        assert!(delays.iter().all(|d| *d >= backoff && *d <= backoff.mul_f64(1.5)));
        // Jitter at millisecond grain: a thousand draws land on many distinct values.
        let mut distinct: Vec<_> = delays.iter().map(|d| d.as_millis()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 500, "only {} distinct delays", distinct.len());
        let (lo, hi) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(*lo < Duration::from_millis(8500) && *hi > Duration::from_millis(11500), "{lo:?}..{hi:?}");
    }

    #[test]
    fn the_backoff_doubles_from_a_second_to_five_minutes() {
        let steps: Vec<u64> = std::iter::successors(Some(BACKOFF_MIN), |&b| Some(next_backoff(b)))
            .take(12)
            .map(|d| d.as_secs())
            .collect();
        assert_eq!(steps, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        // With the jitter on top, no wait is longer than seven and a half minutes.
        assert!((0..1000).all(|_| retry_delay(BACKOFF_MAX, None) <= BACKOFF_MAX.mul_f64(1.5)));
    }

    #[test]
    fn retry_after_is_a_floor_with_a_ceiling() {
        let one = Duration::from_secs(1);
        assert!(retry_delay(one, Some(Duration::from_secs(30))) == Duration::from_secs(30));
        assert!(retry_delay(one, Some(Duration::from_millis(10))) >= one);
        assert_eq!(retry_delay(one, Some(Duration::from_secs(86_400))), RETRY_AFTER_MAX);
    }
}
