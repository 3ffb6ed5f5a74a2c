//! Proactive refresh: one task per account sleeps until its session's `refresh_at` (or the
//! retry time after a failure), refreshes, and sleeps again. No timers run while there is
//! nothing to do.

use std::sync::Arc;
use std::time::Duration;

use tokenbroker::ErrorKind;

use super::session::now;
use super::{Account, Broker};

const BACKOFF_MIN: i64 = 1;
const BACKOFF_MAX: i64 = 300;

impl Broker {
    pub(super) async fn schedule(self: Arc<Self>, account: Arc<Account>) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let due = account.read(|s| match &s.session {
                Some(session) if !s.login_required => Some(s.retry_at.unwrap_or(session.refresh_at)),
                _ => None,
            });
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
                _ = self.shutdown.cancelled() => return,
            }
            let attempts = account.read(|s| s.attempts);
            match self.refresh(&account, attempts, |s, now| s.refresh_at > now).await {
                Ok(_) => backoff = BACKOFF_MIN,
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
}
