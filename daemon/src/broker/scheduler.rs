//! Proactive refresh: one task per account sleeps until the earliest `refresh_at` of its
//! session and audience tokens (or the retry time after a failure), refreshes what is due,
//! and sleeps again. No timers run while there is nothing to do.

use std::sync::Arc;
use std::time::Duration;

use tokenbroker::ErrorKind;

use super::account::State;
use super::session::now;
use super::{Account, Broker, Result};

const BACKOFF_MIN: i64 = 1;
const BACKOFF_MAX: i64 = 300;

/// When the account next needs the scheduler, if ever.
fn next_due(s: &State) -> Option<i64> {
    let session = s.session.as_ref().filter(|_| !s.login_required)?;
    let earliest = s.audience_tokens.values().map(|t| t.refresh_at).chain([session.refresh_at]).min();
    s.retry_at.or(earliest)
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
                    Some(at) => tokio::time::sleep(Duration::from_secs((at - now()).max(0) as u64)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                _ = account.wake.notified() => continue,
                _ = account.stop.cancelled() => return,
            }
            match self.refresh_due(&account).await {
                Ok(()) => backoff = BACKOFF_MIN,
                Err(e) if e.kind == ErrorKind::IdpUnavailable => {
                    let wait = backoff + rand::random_range(0..=backoff / 2);
                    tracing::info!(account = %account.name, retry_in = wait, "will retry the refresh");
                    account.write(|s| s.retry_at = Some(now() + wait));
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(e) => {
                    tracing::debug!(account = %account.name, error = %e, "scheduled refresh failed");
                    // A refused session is gone (the loop then waits for a login); anything
                    // else is a configuration problem, retried rarely rather than in a loop.
                    account.write(|s| s.retry_at = Some(now() + BACKOFF_MAX));
                }
            }
        }
    }

    /// Refresh the session and every audience token whose time has come.
    async fn refresh_due(self: &Arc<Self>, account: &Arc<Account>) -> Result<()> {
        account.write(|s| s.retry_at = None);
        self.fresh(account, |s, now| s.refresh_at > now).await?;
        let due: Vec<_> = account.read(|s| {
            s.audience_tokens.iter().filter(|(_, t)| t.refresh_at <= now()).map(|(k, _)| k.clone()).collect()
        });
        for key in due {
            self.fresh_audience(account, &key, |t, now| t.refresh_at > now).await?;
        }
        Ok(())
    }
}
