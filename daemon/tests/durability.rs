//! Sessions survive the daemon being killed at any moment and the keyring going away: a
//! rotated refresh token is never dropped.

mod support;

use std::time::Duration;

use support::*;
use tokenbroker::protocol::AccountState;

/// Refresh-token grants the IdP refused (reuse of a consumed token, revoked grants), from one
/// snapshot of its counters (the daemon may be refreshing meanwhile).
async fn refused_refreshes(idp: &Idp) -> u64 {
    let stats = idp.stats().await;
    let counts = stats["token"].as_object().unwrap();
    counts
        .iter()
        .filter(|(k, _)| k.starts_with("refresh_token:") && *k != "refresh_token:200")
        .map(|(_, v)| v.as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_while_rotating_the_session_survives() {
    let bus = Bus::start();
    // One-second tokens are due for refresh at once: the daemon rotates its refresh token
    // back to back, so a kill at a random moment often lands inside a refresh. A rotated
    // token stays good for a short grace, as at Okta and Auth0: without one, a kill between
    // the IdP's answer and the keyring write would lose the session whatever the client did.
    let idp = Idp::start(IdpOptions { access_ttl: 1, rotation_grace: 2, ..Default::default() }).await;
    let mut daemon = Daemon::start_with_log(&bus, &idp.account_config("work"), "info");
    daemon.login(&idp, None, "alice").await;

    for round in 0..100 {
        let before = idp.refreshes().await;
        // Up to a third of a second: enough for several rotations, sometimes none.
        let at = Duration::from_micros(rand::random_range(0..300_000));
        tokio::time::sleep(at).await;
        daemon.kill9();
        daemon.spawn(&bus);
        let client = daemon.client().await;
        let state = client.status().await.unwrap().accounts[0].state;
        assert!(
            matches!(state, AccountState::Valid | AccountState::Expired | AccountState::Refreshing),
            "round {round} (killed after {at:?}, {} refreshes in it): {state:?}\n{}",
            idp.refreshes().await - before,
            daemon.log()
        );
    }
    assert!(idp.refreshes().await > 100, "the daemon kept rotating: {}", idp.refreshes().await);
    // Still a live session, refreshed without a new login; no grant was ever refused.
    let client = daemon.client().await;
    let before = idp.refreshes().await;
    assert!(eventually(Duration::from_secs(10), || async { idp.refreshes().await > before + 2 }).await);
    let token = client.get_access_token(Default::default()).await.unwrap();
    assert!(!token.access_token.expose().is_empty());
    assert_eq!(refused_refreshes(&idp).await, 0, "a refresh token was refused at some point");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyring_that_goes_away_or_locks_is_retried_and_the_rotated_token_is_kept() {
    let mut bus = Bus::start();
    let idp = Idp::start(IdpOptions::default()).await;
    let mut daemon = Daemon::start(&bus, &idp.account_config("work"));
    daemon.login(&idp, None, "alice").await;
    let client = daemon.client().await;
    let stored = bus.keyring_entry("work").unwrap();

    bus.stop_keyring();
    next_second().await;
    // A refresh while the keyring is gone: the rotated session is served from memory.
    let fresh = token(&client, Some(60)).await.unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async { daemon.log().contains("could not store the session") }).await,
        "the failed write was not reported:\n{}",
        daemon.log()
    );
    assert_eq!(token(&client, None).await.unwrap().access_token, fresh.access_token);
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::Valid);

    bus.restart_keyring();
    let landed = eventually(Duration::from_secs(20), || async {
        bus.keyring_entry("work").is_some_and(|e| e["refresh_token"] != stored["refresh_token"])
    })
    .await;
    assert!(landed, "the rotated refresh token never reached the keyring:\n{}", daemon.log());
    assert!(daemon.log().contains("stored the session after all"));

    // The proof: a daemon started from the keyring alone refreshes without a login.
    daemon.kill9();
    daemon.spawn(&bus);
    next_second().await;
    let client = daemon.client().await;
    let after = token(&client, Some(60)).await.unwrap();
    assert_ne!(after.access_token, fresh.access_token);
    assert_eq!(refused_refreshes(&idp).await, 0);
}
