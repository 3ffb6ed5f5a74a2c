//! Refresh: proactive before expiry, forced by min_ttl, single flight under a crowd, rotation
//! that survives SIGKILL, and restarts that need no new login.

use std::collections::HashSet;
use std::time::Duration;

use tokenbroker::ErrorKind;
use tokenbroker_testkit::*;

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_near_expiry_is_refreshed_before_anyone_asks() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().access_ttl(8).logged_in("alice").await;
    let client = daemon.client().await;
    let first = token(&client, None).await.unwrap();
    assert_eq!(idp.refreshes().await, 0);

    // Nobody asks for more than a valid token; the scheduler refreshes at about 3/4 of the 8 s
    // life, before expiry. (Polling for a valid token never causes a refresh by itself.)
    let refreshed = eventually(Duration::from_secs(9), || async {
        token(&client, None).await.unwrap().access_token != first.access_token
    })
    .await;
    assert!(refreshed, "no proactive refresh happened");
    assert!(unix_now() < first.expires_at, "the refresh came only after the token expired");

    let second = token(&client, None).await.unwrap();
    assert!(second.expires_at > first.expires_at);
    assert_eq!(idp.refreshes().await, 1, "serving the refreshed token needed no request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_ttl_forces_a_refresh_and_too_large_a_min_ttl_is_refused() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().access_ttl(60).logged_in("alice").await;
    let client = daemon.client().await;
    let first = token(&client, Some(30)).await.unwrap();
    assert_eq!(idp.refreshes().await, 0, "30 s of 60 left needs no refresh");

    next_second().await;
    let second = token(&client, Some(60)).await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert!(second.expires_at - unix_now() >= 59);
    assert_eq!(idp.refreshes().await, 1);

    let err = token(&client, Some(61)).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::InvalidParams));
    assert!(err.to_string().contains("60s"), "names the lifetime: {err}");
    assert_eq!(idp.refreshes().await, 1, "a hopeless min_ttl causes no refresh");
    let out = daemon.brokerctl(&["token", "--min-ttl", "600"]);
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_callers_on_an_expired_token_cause_one_refresh() {
    let Env { bus: _bus, idp, daemon } =
        Fixture::new().access_ttl(2).config("proactive_refresh = false\n").logged_in("alice").await;
    let expired = token(&daemon.client().await, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(unix_now() >= expired.expires_at);
    assert_eq!(
        daemon.client().await.status().await.unwrap().accounts[0].state,
        tokenbroker::protocol::AccountState::Expired
    );

    let mut clients = Vec::new();
    for _ in 0..500 {
        clients.push(daemon.client().await);
    }
    let calls = clients.iter().map(|c| token(c, None));
    let results = futures_util::future::join_all(calls).await;
    let tokens: HashSet<String> = results.into_iter().map(|r| r.unwrap().access_token.expose().to_owned()).collect();
    assert_eq!(tokens.len(), 1, "every caller got the same fresh token");
    assert!(!tokens.contains(expired.access_token.expose()));
    assert_eq!(idp.refresh_attempts().await, 1, "exactly one token-endpoint request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_survives_sigkill_and_restarts_need_no_login() {
    let Env { bus, idp, mut daemon } = Fixture::new().access_ttl(60).logged_in("alice").await;

    let mut refresh_tokens = HashSet::new();
    refresh_tokens.insert(bus.keyring_entry("work").unwrap()["refresh_token"].as_str().unwrap().to_owned());
    let client = daemon.client().await;
    for i in 1..=8 {
        next_second().await;
        token(&client, Some(60)).await.unwrap();
        let stored = bus.keyring_entry("work").unwrap()["refresh_token"].as_str().unwrap().to_owned();
        assert!(refresh_tokens.insert(stored), "refresh {i}: the rotated refresh token was stored");
    }
    assert_eq!(idp.refreshes().await, 8);
    let before = token(&client, None).await.unwrap();

    // SIGKILL: no chance to flush anything. The restarted daemon serves the stored token
    // without a login and without asking the IdP.
    daemon.kill9();
    daemon.spawn(&bus);
    let client = daemon.client().await;
    let after = token(&client, None).await.unwrap();
    assert_eq!(after.access_token, before.access_token);
    assert_eq!(after.expires_at, before.expires_at);
    assert_eq!(idp.refreshes().await, 8);

    // And it refreshes with the stored (latest) refresh token. A stale one would be refused
    // and, by reuse detection, end the whole grant.
    next_second().await;
    let fresh = token(&client, Some(60)).await.unwrap();
    assert_ne!(fresh.access_token, before.access_token);
    assert_eq!(idp.refreshes().await, 9);
    assert_eq!(idp.refresh_attempts().await, 9, "no refused refresh along the way");
}
