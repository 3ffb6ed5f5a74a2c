//! The core against a fake IdP under Tokio's paused clock: what the integration tests show
//! against oidc-provider in seconds or minutes, here in milliseconds. Each test says which
//! behaviour it guards.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokenbroker::protocol::{AccountState, GetAccessToken, RejectToken};
use tokenbroker::{ErrorKind, Secret};
use tokio::time::{Instant, sleep, sleep_until};

use super::fake_idp::{Answer, FakeIdp, World};
use super::session::suspend;
use super::{Broker, Event, Result};

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `GetAccessToken` for the default account: the access token.
async fn access(broker: &Arc<Broker>) -> Result<String> {
    let grant = super::tokens::access_token(broker, GetAccessToken::default()).await?;
    Ok(grant.token.secret.expose_secret().to_owned())
}

/// `GetAccessToken` for the account's other API.
async fn api_access(broker: &Arc<Broker>) -> Result<String> {
    let p = GetAccessToken { audience: Some(API.into()), ..Default::default() };
    Ok(super::tokens::access_token(broker, p).await?.token.secret.expose_secret().to_owned())
}

const API: &str = "https://api";

/// `RejectToken` for the default account: whether `token` was dropped.
fn reject(broker: &Arc<Broker>, token: &str, audience: Option<&str>) -> bool {
    let p = RejectToken { account: None, access_token: Secret::new(token), audience: audience.map(Into::into) };
    super::reject::reject_token(broker, p).unwrap().dropped
}

/// As many callers at once as `n`, each asking for the access token.
fn callers(broker: &Arc<Broker>, n: usize) -> Vec<tokio::task::JoinHandle<Result<String>>> {
    (0..n)
        .map(|_| {
            let broker = broker.clone();
            tokio::spawn(async move { access(&broker).await })
        })
        .collect()
}

async fn answers(callers: Vec<tokio::task::JoinHandle<Result<String>>>) -> Vec<Result<String>> {
    let mut answers = Vec::new();
    for caller in callers {
        answers.push(caller.await.unwrap());
    }
    answers
}

/// Guards the single flight: ten callers on an expired token, one refresh request.
#[tokio::test(start_paused = true)]
async fn callers_on_an_expired_token_share_one_refresh() {
    let world = World::logged_in(false, FakeIdp::new(60)).await;
    world.idp.then(Answer::Tokens { expires_in: 60, rotate: true }.held());
    sleep(secs(61)).await;
    let waiting = callers(&world.broker, 10);
    sleep(Duration::from_millis(10)).await;
    assert_eq!(world.idp.refreshes(), 1, "one request reached the IdP");
    world.idp.release();
    for answer in answers(waiting).await {
        assert_eq!(answer.unwrap(), "at-1");
    }
    assert_eq!(world.idp.spent(), ["rt-0"]);
}

/// Guards the scheduler: a refresh about three quarters into the token's life (less up to
/// 5% jitter); after failures, retries after 1, 2, 4, 8 s (each plus up to half again); a
/// success starts the backoff over.
#[tokio::test(start_paused = true)]
async fn the_scheduler_refreshes_three_quarters_in_and_backs_off() {
    let world = World::logged_in(true, FakeIdp::new(1000)).await;
    let start = Instant::now();
    let down = Answer::Unavailable { retry_after: None };
    for _ in 0..4 {
        world.idp.then(down.clone());
    }
    sleep_until(start + secs(699)).await;
    assert_eq!(world.idp.refreshes(), 0, "too early");
    sleep_until(start + secs(750 + 30)).await;
    let times = world.idp.times();
    assert_eq!(times.len(), 5, "four failures, then a success");
    let first = times[0] - start;
    assert!(first > secs(699) && first <= secs(750), "three quarters in: {first:?}");
    let within = |gap: Duration, backoff: Duration| {
        let ms = Duration::from_millis(1);
        gap + ms >= backoff && gap <= backoff.mul_f64(1.5) + ms
    };
    for (i, pair) in times.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        assert!(within(gap, secs(1 << i)), "retry {i} after {gap:?}");
    }
    assert_eq!(access(&world.broker).await.unwrap(), "at-1", "the success is served");

    world.idp.then(down);
    sleep_until(times[4] + secs(751 + 2)).await;
    let times = world.idp.times();
    assert_eq!(times.len(), 7, "the new token's refresh failed once, then succeeded");
    assert!(within(times[6] - times[5], secs(1)), "the backoff started over: {:?}", times[6] - times[5]);
}

/// Guards Retry-After: until it passes, callers get the last error and the scheduler waits;
/// no request reaches the IdP. Then the scheduler's retry serves everyone.
#[tokio::test(start_paused = true)]
async fn retry_after_holds_callers_and_the_scheduler() {
    let world = World::logged_in(true, FakeIdp::new(100)).await;
    world.idp.then(Answer::Unavailable { retry_after: Some(secs(120)) });
    sleep(secs(76)).await;
    let failed = world.idp.times();
    assert_eq!(failed.len(), 1, "the scheduler's refresh");
    sleep_until(failed[0] + secs(119)).await;
    for answer in answers(callers(&world.broker, 3)).await {
        assert_eq!(answer.unwrap_err().kind, ErrorKind::IdpUnavailable, "the token expired; the hold serves the error");
    }
    assert_eq!(world.idp.refreshes(), 1, "nobody asked the IdP during the hold");
    sleep_until(failed[0] + secs(121)).await;
    assert_eq!(world.idp.refreshes(), 2, "the scheduler asked once the hold was over");
    assert_eq!(access(&world.broker).await.unwrap(), "at-1");
    assert_eq!(world.idp.refreshes(), 2);
}

/// Guards the resume: after the machine slept past the token's expiry, `resumed` drops the
/// pooled connections and the scheduler refreshes at once (its Tokio timer stood still);
/// callers get that one refresh's token.
#[tokio::test(start_paused = true)]
async fn after_a_suspend_one_refresh_serves_every_caller() {
    let world = World::logged_in(true, FakeIdp::new(1000)).await;
    sleep(secs(10)).await;
    suspend(secs(2000));
    sleep(Duration::from_millis(10)).await;
    assert_eq!(world.idp.refreshes(), 0, "no timer saw the sleep");
    world.broker.resumed();
    sleep(Duration::from_millis(10)).await;
    assert_eq!(world.idp.refreshes(), 1, "the scheduler refreshed on resume");
    assert_eq!(world.connect.resumes.load(std::sync::atomic::Ordering::SeqCst), 1, "pooled connections dropped");
    for answer in answers(callers(&world.broker, 5)).await {
        assert_eq!(answer.unwrap(), "at-1");
    }
    assert_eq!(world.idp.refreshes(), 1);
}

/// Guards rotation: the rotated refresh token is in the store once the refresh returns, and
/// the next refresh (after a restart, from the store) spends it, not the spent one.
#[tokio::test(start_paused = true)]
async fn a_rotated_refresh_token_is_stored_and_spent_next() {
    let mut world = World::logged_in(false, FakeIdp::new(60)).await;
    assert_eq!(world.stored_refresh_token().as_deref(), Some("rt-0"));
    sleep(secs(61)).await;
    assert_eq!(access(&world.broker).await.unwrap(), "at-1");
    assert_eq!(world.stored_refresh_token().as_deref(), Some("rt-1"));
    world.restart().await;
    sleep(secs(61)).await;
    assert_eq!(access(&world.broker).await.unwrap(), "at-2");
    assert_eq!(world.idp.spent(), ["rt-0", "rt-1"]);
    assert_eq!(world.stored_refresh_token().as_deref(), Some("rt-2"));
}

/// Guards the end of a session: `invalid_grant` means login_required, for this caller and
/// the next (without asking the IdP again), and the stored record is deleted.
#[tokio::test(start_paused = true)]
async fn invalid_grant_ends_the_session_and_deletes_its_record() {
    let world = World::logged_in(false, FakeIdp::new(60)).await;
    let mut events = world.broker.subscribe();
    world.idp.then(Answer::InvalidGrant);
    sleep(secs(61)).await;
    assert_eq!(access(&world.broker).await.unwrap_err().kind, ErrorKind::LoginRequired);
    assert_eq!(world.stored_refresh_token(), None, "the record is deleted");
    assert_eq!(world.broker.account(None).unwrap().state(), AccountState::LoginRequired);
    assert_eq!(events.try_recv().unwrap(), Event::LoginRequired { account: "work".into() });
    assert_eq!(access(&world.broker).await.unwrap_err().kind, ErrorKind::LoginRequired);
    assert_eq!(world.idp.refreshes(), 1);
}

/// Guards the one background loop's second job: a session the store refused is written again
/// (for an account without proactive refresh too), backing off, until the store takes it.
#[tokio::test(start_paused = true)]
async fn a_refused_write_is_retried_until_the_store_takes_it() {
    let world = World::logged_in(false, FakeIdp::new(60)).await;
    let account = world.broker.account(None).unwrap();
    world.store.refuse_writes(true);
    sleep(secs(61)).await;
    assert_eq!(access(&world.broker).await.unwrap(), "at-1", "served from memory");
    assert!(account.unsaved());
    sleep(secs(10)).await;
    // Refused at the refresh, then retried after about 1, 1, 2 and 4 s (each plus up to half).
    let refused = world.store.refused();
    assert!((4..=5).contains(&refused), "{refused} refused writes in the first 10 s");
    assert!(account.unsaved() && world.stored_refresh_token().as_deref() == Some("rt-0"));
    world.store.refuse_writes(false);
    sleep(secs(15)).await;
    assert!(!account.unsaved(), "the write landed once the store took it");
    assert_eq!(world.stored_refresh_token().as_deref(), Some("rt-1"));
    assert_eq!(world.store.refused(), refused, "no retries after it landed");
}

/// Guards RejectToken: the token served, once rejected, is refreshed by the next requests,
/// once for all of them; a token that is not the one served changes nothing; the replacement,
/// rejected again within the minute, is kept (an API that refuses every token must not cause
/// a refresh per request); a minute after the drop, a rejection drops again.
#[tokio::test(start_paused = true)]
async fn a_rejected_token_is_refreshed_once_and_not_in_a_loop() {
    let world = World::logged_in(false, FakeIdp::new(3600)).await;
    let broker = &world.broker;
    assert_eq!(access(broker).await.unwrap(), "at-0");
    assert!(!reject(broker, "at-9", None), "not the token served");
    assert!(!reject(broker, "at-", None), "a prefix is not the token");
    assert!(!reject(broker, "at-0", Some(API)), "not that audience's token");
    assert_eq!(access(broker).await.unwrap(), "at-0", "nothing changed");
    assert_eq!(world.idp.refreshes(), 0);

    assert!(reject(broker, "at-0", None));
    assert!(reject(broker, "at-0", None), "another caller's 401 with the same token: dropped already");
    world.idp.then(Answer::Tokens { expires_in: 3600, rotate: true }.held());
    let waiting = callers(broker, 10);
    sleep(Duration::from_millis(10)).await;
    world.idp.release();
    for answer in answers(waiting).await {
        assert_eq!(answer.unwrap(), "at-1");
    }
    assert_eq!(world.idp.refreshes(), 1, "one refresh for every caller");

    sleep(secs(59)).await;
    assert!(!reject(broker, "at-1", None), "the replacement refused within the minute is kept");
    assert!(!reject(broker, "at-1", None));
    assert_eq!(access(broker).await.unwrap(), "at-1");
    assert_eq!(world.idp.refreshes(), 1, "no refresh per refused request");

    sleep(secs(2)).await;
    assert!(reject(broker, "at-1", None), "a minute after the last drop");
    assert_eq!(access(broker).await.unwrap(), "at-2");
    assert_eq!(world.idp.refreshes(), 2);
}

/// Guards RejectToken per audience: another API's token is dropped only when that audience is
/// named, the session's own token stays, and each audience has its own minute.
#[tokio::test(start_paused = true)]
async fn a_rejected_audience_token_is_dropped_alone() {
    let world = World::logged_in(false, FakeIdp::new(3600)).await;
    let broker = &world.broker;
    assert_eq!(api_access(broker).await.unwrap(), "at-1");
    assert!(!reject(broker, "at-1", None), "the API's token is not the session's");
    assert!(!reject(broker, "at-1", Some("https://other")));
    assert!(reject(broker, "at-1", Some(API)));
    assert_eq!(api_access(broker).await.unwrap(), "at-2");
    assert_eq!(access(broker).await.unwrap(), "at-0", "the session's own token stays");
    assert_eq!(world.idp.refreshes(), 2);
    assert!(reject(broker, "at-0", None), "the session's own token has a minute of its own");
    assert!(!reject(broker, "at-2", Some(API)), "the API's replacement, within the minute");
    assert_eq!(access(broker).await.unwrap(), "at-3");
    assert_eq!(api_access(broker).await.unwrap(), "at-2");
}
