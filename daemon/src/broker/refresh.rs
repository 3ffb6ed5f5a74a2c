//! Single-flight refresh: any number of callers that need a fresher token share one
//! token-endpoint request per account. All refreshes of an account, whatever the audience,
//! take turns: they spend the same (rotating) refresh token.

use std::future::Future;
use std::sync::Arc;

use super::account::{State, Turn};
use super::audience::AudienceKey;
use super::scheduler::RETRY_AFTER_MAX;
use super::session::{now, now_ms};
use super::token::Token;
use super::{Account, Broker, Error, Event, Result, Session};
use crate::oidc::{Audiences, OidcError, Refresh, TokenSet};

/// The last failure, while the IdP's `Retry-After` holds.
fn held(s: &State) -> Option<Error> {
    s.refresh.hold_until.filter(|&until| until > now_ms()).and(s.refresh.last_failure.clone())
}

impl Broker {
    /// The session, refreshed first if `good` does not hold for it.
    pub(super) async fn fresh(
        self: &Arc<Self>,
        account: &Arc<Account>,
        good: impl Fn(&Session, i64) -> bool,
    ) -> Result<Arc<Session>> {
        let check = |s: &State, now: i64| s.session().filter(|x| good(x, now)).cloned();
        self.single_flight(account, check, |broker, account, session, turn| async move {
            broker.renew_session(&turn, &account, &session).await
        })
        .await
    }

    /// The token for `key`, got or refreshed first if `good` does not hold for it.
    pub(super) async fn fresh_audience(
        self: &Arc<Self>,
        account: &Arc<Account>,
        key: &AudienceKey,
        good: impl Fn(&Token, i64) -> bool,
    ) -> Result<Arc<Token>> {
        let check = |s: &State, now: i64| s.audience_tokens.get(key).filter(|t| good(t, now)).cloned();
        let key = key.clone();
        self.single_flight(account, check, |broker, account, session, turn| async move {
            broker.renew_audience(&turn, &account, &session, key).await
        })
        .await
    }

    /// Serve from `check` if it can; otherwise take the account's turn and run `renew`, unless
    /// by then someone else has refreshed (checked again) or has just failed: callers that
    /// queued behind a failed attempt get its error instead of trying again, so a crowd
    /// behind a failing IdP makes one request, not one each.
    async fn single_flight<T, Fut>(
        self: &Arc<Self>,
        account: &Arc<Account>,
        check: impl Fn(&State, i64) -> Option<T>,
        renew: impl FnOnce(Arc<Broker>, Arc<Account>, Arc<Session>, Arc<Turn>) -> Fut,
    ) -> Result<T>
    where
        T: Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let seen = match account.read(|s| check(s, now()).ok_or((s.refresh.attempts, s.session().is_some(), held(s)))) {
            Ok(hit) => return Ok(hit),
            Err((_, false, _)) => return Err(account.no_session_error()),
            Err((_, true, Some(e))) => return Err(e),
            Err((seen, true, None)) => seen,
        };
        // Boxed: every connection's task is as large as the largest future it may wait on, and
        // most requests never get here. A thousand idle connections would each carry it.
        Box::pin(self.take_turn(account, check, renew, seen)).await
    }

    /// The slow half of [`Self::single_flight`]: wait for the account's turn, then refresh
    /// unless someone else did, or just failed, meanwhile.
    async fn take_turn<T, Fut>(
        self: &Arc<Self>,
        account: &Arc<Account>,
        check: impl Fn(&State, i64) -> Option<T>,
        renew: impl FnOnce(Arc<Broker>, Arc<Account>, Arc<Session>, Arc<Turn>) -> Fut,
        seen: u64,
    ) -> Result<T>
    where
        T: Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let turn = Arc::new(account.turn().await);
        let (hit, attempts, failure, session) = account
            .read(|s| (check(s, now()), s.refresh.attempts, s.refresh.last_failure.clone(), s.session().cloned()));
        if let Some(hit) = hit {
            return Ok(hit);
        }
        let session = session.ok_or_else(|| account.no_session_error())?;
        if attempts != seen
            && let Some(e) = failure
        {
            return Err(e);
        }
        // In a task of its own: once the IdP has rotated the refresh token, no caller going
        // away may cancel the write of the new one. The task holds the turn: were it the
        // caller's, a caller going away would let the next one spend the same refresh token.
        // Tracked, so a stop waits for the write too.
        let work = renew(self.clone(), account.clone(), session, turn.clone());
        let account = account.clone();
        let task = self.tasks.spawn(async move {
            let _turn = turn;
            account.write(|s| s.refresh.running = true);
            let result = work.await;
            account.write(|s| {
                s.refresh.running = false;
                s.refresh.attempts += 1;
                match &result {
                    Ok(_) => {
                        s.refresh.last_failure = None;
                        s.refresh.retry_at = None;
                        s.refresh.hold_until = None;
                    }
                    Err(e) => {
                        s.refresh.hold_until =
                            e.retry_after.map(|d| now_ms() + d.min(RETRY_AFTER_MAX).as_millis() as i64);
                        s.refresh.last_failure = Some(e.clone());
                    }
                }
            });
            account.wake.notify_one();
            result
        });
        task.await.map_err(|e| Error::internal(format!("refresh task failed: {e}")))?
    }

    async fn renew_session(&self, turn: &Turn, account: &Arc<Account>, session: &Session) -> Result<Arc<Session>> {
        let tokens = self.exchange(turn, account, session, &Audiences::default(), None).await?;
        let new = Arc::new(session.renewed(tokens));
        self.persist(turn, account, &new).await;
        account.write(|s| s.renew(new.clone()));
        tracing::info!(account = %account.name, expires_at = new.access.life.expires_at, "refreshed");
        self.emit(Event::TokenRefreshed { account: account.name.clone(), expires_at: new.access.life.expires_at });
        Ok(new)
    }

    async fn renew_audience(
        &self,
        turn: &Turn,
        account: &Arc<Account>,
        session: &Session,
        key: AudienceKey,
    ) -> Result<Arc<Token>> {
        let audiences = Audiences { param: account.config.audience_param.name(), values: vec![key.audience.clone()] };
        let tokens = self.exchange(turn, account, session, &audiences, key.scope.as_deref()).await?;
        let requested = || key.scope.iter().flat_map(|s| s.split(' ')).map(str::to_owned).collect();
        let token = Arc::new(Token::received(&tokens, now(), requested));
        let new = Arc::new(session.rotated(tokens.refresh_token, tokens.id_token));
        self.persist(turn, account, &new).await;
        account.write(|s| {
            s.renew(new);
            s.audience_tokens.insert(key.clone(), token.clone());
        });
        tracing::info!(account = %account.name, audience = %key.audience, expires_at = token.life.expires_at, "got a token for another audience");
        Ok(token)
    }

    /// One refresh-token grant. A refused grant ends the session; other failures leave it.
    async fn exchange(
        &self,
        turn: &Turn,
        account: &Account,
        session: &Session,
        audiences: &Audiences,
        scope: Option<&str>,
    ) -> Result<TokenSet> {
        if account.config.is_machine() {
            return self.machine_grant(account, audiences, scope, session.dpop.as_deref()).await;
        }
        let Some(refresh_token) = &session.refresh_token else {
            // Nothing is lost while the token is still good: it serves until it expires (the
            // scheduler or a caller's min_ttl may ask earlier); only then is a login needed.
            if session.access.life.remaining(now()) > 0 {
                return Err(Error::invalid_params(format!(
                    "account {:?} has no refresh token (is offline_access among the scopes?), so its token cannot be renewed before it expires; log in again for a new one",
                    account.name
                )));
            }
            tracing::warn!(account = %account.name, "the access token expired and there is no refresh token (is offline_access among the scopes?)");
            self.end_session(turn, account).await;
            return Err(Error::login_required(&account.name));
        };
        let idp = match account.idp(&*self.connect).await {
            Ok(idp) => idp,
            Err(e) => {
                self.emit(Event::RefreshFailed { account: account.name.clone() });
                return Err(e);
            }
        };
        tracing::debug!(account = %account.name, audiences = ?audiences.values, "refreshing");
        let subject = session.subject.as_deref();
        let dpop = session.dpop.as_deref();
        match idp.refresh(Refresh { refresh_token, audiences, scope, subject, dpop }).await {
            Ok(tokens) => {
                if let Some(why) = &tokens.id_token_refused {
                    tracing::warn!(account = %account.name, %why, "refused the ID token of a refresh; keeping its other tokens and the last verified identity");
                }
                Ok(tokens)
            }
            Err(OidcError::InvalidGrant(why)) => {
                tracing::warn!(account = %account.name, %why, "the identity provider refused the refresh token; login required");
                self.end_session(turn, account).await;
                Err(Error::login_required(&account.name))
            }
            Err(e) => {
                tracing::warn!(account = %account.name, error = %e, "refresh failed");
                self.emit(Event::RefreshFailed { account: account.name.clone() });
                Err(Error::from_oidc(&account.name, e))
            }
        }
    }

    /// The IdP refused the session: forget it everywhere until the user logs in again.
    async fn end_session(&self, turn: &Turn, account: &Account) {
        account.write(|s| s.refused());
        if let Err(e) = self.unstore(turn, account).await {
            tracing::error!(account = %account.name, error = %e, "could not delete the refused session from the session store");
        }
        self.emit(Event::LoginRequired { account: account.name.clone() });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::broker::fake_idp::{FakeIdp, World};

    async fn broker_with_a_session() -> (Arc<Broker>, Arc<Account>) {
        let world = World::logged_in(false, FakeIdp::new(3600)).await;
        let account = world.broker.account(None).unwrap();
        (world.broker, account)
    }

    /// A caller that goes away mid-refresh (its request dropped) must not hand the turn to
    /// the next caller while the refresh still runs: both would spend the same refresh token.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_going_away_keeps_the_turn_until_the_refresh_ends() {
        let (broker, account) = broker_with_a_session().await;
        let renewals = Arc::new(AtomicUsize::new(0));
        // Good once any refresh has finished: the second caller needs none of its own.
        let check = |s: &State, _: i64| s.session().filter(|_| s.refresh.attempts > 0).cloned();
        let renew = |renewals: Arc<AtomicUsize>| {
            move |_: Arc<Broker>, _: Arc<Account>, session: Arc<Session>, _: Arc<Turn>| async move {
                renewals.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(session)
            }
        };

        let (b, a, r) = (broker.clone(), account.clone(), renewals.clone());
        let first = tokio::spawn(async move { b.single_flight(&a, check, renew(r)).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(renewals.load(Ordering::SeqCst), 1, "the first caller's refresh is under way");
        first.abort();
        let _ = first.await;

        broker.single_flight(&account, check, renew(renewals.clone())).await.unwrap();
        assert_eq!(renewals.load(Ordering::SeqCst), 1, "the second caller waited for the first refresh");
    }

    /// A stop drains a refresh whose caller has gone: the store write after the IdP's answer
    /// is not cut off, and the daemon's wait for its tasks covers it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_waits_for_a_refresh_its_caller_left() {
        let (broker, account) = broker_with_a_session().await;
        let written = Arc::new(AtomicUsize::new(0));
        let check = |_: &State, _: i64| None::<Arc<Session>>;
        let w = written.clone();
        let renew = move |_: Arc<Broker>, _: Arc<Account>, session: Arc<Session>, _: Arc<Turn>| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            w.fetch_add(1, Ordering::SeqCst);
            Ok(session)
        };
        let (b, a) = (broker.clone(), account.clone());
        let caller = tokio::spawn(async move { b.single_flight(&a, check, renew).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        caller.abort();

        broker.shutdown();
        broker.tasks().close();
        tokio::time::timeout(Duration::from_secs(10), broker.tasks().wait()).await.expect("drained");
        assert_eq!(written.load(Ordering::SeqCst), 1, "the stop did not wait for the refresh");
    }
}
