//! Sessions survive the daemon being killed at any moment and the keyring going away: a
//! rotated refresh token is never dropped.

use std::time::Duration;

use tokenbroker::protocol::AccountState;
use tokenbroker_testkit::*;

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
    // One-second tokens are due for refresh at once: the daemon rotates its refresh token
    // back to back, so a kill at a random moment often lands inside a refresh. A rotated
    // token stays good for a short grace, as at Okta and Auth0: without one, a kill between
    // the IdP's answer and the keyring write would lose the session whatever the client did.
    let idp = IdpOptions { access_ttl: 1, rotation_grace: 2, ..Default::default() };
    let Env { bus, idp, mut daemon } = Fixture::new().idp(idp).log_level("info").logged_in("alice").await;

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
    let Env { mut bus, idp, mut daemon } = Fixture::new().logged_in("alice").await;
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

fn stored_refresh_token(bus: &Bus) -> String {
    bus.keyring_entry("work").unwrap()["refresh_token"].as_str().unwrap().to_owned()
}

/// A stop during a scheduled refresh waits for it: the IdP has rotated the refresh token (and,
/// with reuse detection, spending the old one again would end the grant), so the daemon stores
/// the new one before it exits, and after a restart it refreshes without a new login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_scheduled_refresh_stores_the_rotated_token_first() {
    // No rotation grace: the IdP's strict reuse detection.
    let Env { bus, idp, mut daemon } = Fixture::new().access_ttl(4).log_level("info").logged_in("alice").await;
    let spent = stored_refresh_token(&bus);
    idp.proxy.hold_refresh_answers(Duration::from_secs(2));

    // The scheduler refreshes at about 3/4 of the 4 s life; once the IdP has answered (and
    // rotated), its answer is held on the way back for 2 s, and the daemon is told to stop.
    let answered = eventually(Duration::from_secs(10), || async { idp.refreshes().await >= 1 }).await;
    assert!(answered, "no scheduled refresh:\n{}", daemon.log());
    let stopping = std::time::Instant::now();
    daemon.signal(libc::SIGTERM);
    let status = daemon.proc.as_mut().unwrap().wait_exit(Duration::from_secs(30)).expect("tokenbrokerd did not stop");
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
    let stored = stored_refresh_token(&bus);
    assert_ne!(stored, spent, "the rotated refresh token was not stored before the exit:\n{}", daemon.log());
    assert!(stopping.elapsed() < Duration::from_secs(15), "the stop took {:?}", stopping.elapsed());

    idp.proxy.hold_refresh_answers(Duration::ZERO);
    daemon.spawn(&bus);
    let client = daemon.client().await;
    next_second().await;
    let fresh =
        client.get_access_token(tokenbroker::protocol::GetAccessToken { min_ttl: Some(4), ..Default::default() }).await;
    assert!(fresh.is_ok(), "a refresh after the restart needed a login: {fresh:?}\n{}", daemon.log());
    assert!(idp.refreshes().await >= 2);
    assert_eq!(refused_refreshes(&idp).await, 0, "a spent refresh token was used");
}

/// With nothing in flight the stop is quick: waiting loops (the refresh scheduler, a pending
/// login, a finished login kept for late `AwaitLogin` callers, the suspend watcher, the D-Bus
/// signals) are cancelled, not waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_only_waiting_tasks_exits_at_once() {
    let Env { bus: _bus, idp: _idp, mut daemon } = Fixture::new().access_ttl(3600).logged_in("alice").await;
    let client = daemon.client().await;
    client.login(Default::default()).await.unwrap();

    let stopping = std::time::Instant::now();
    daemon.signal(libc::SIGTERM);
    let status = daemon.proc.as_mut().unwrap().wait_exit(Duration::from_secs(30)).expect("tokenbrokerd did not stop");
    assert_eq!(status.code(), Some(0));
    assert!(stopping.elapsed() < Duration::from_secs(5), "the stop took {:?}:\n{}", stopping.elapsed(), daemon.log());
}

/// A stop during a D-Bus `Logout` lets it finish: the session was already dropped from memory,
/// so a logout cut off before its keyring delete would come back at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_dbus_logout_lets_it_delete_the_stored_session() {
    let Env { bus, idp, mut daemon } = Fixture::new().logged_in("alice").await;
    assert!(bus.keyring_entry("work").is_some());
    let dbus = bus.dbus_client().await;
    // The revocation request (before the keyring delete) waits at the IdP.
    idp.proxy.set_delay(Duration::from_secs(2));
    let logout = dbus.logout(Default::default());
    tokio::select! {
        r = logout => panic!("the logout did not wait for the IdP: {r:?}"),
        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
    }

    daemon.signal(libc::SIGTERM);
    let status = daemon.proc.as_mut().unwrap().wait_exit(Duration::from_secs(30)).expect("tokenbrokerd did not stop");
    assert_eq!(status.code(), Some(0));
    assert!(bus.keyring_entry("work").is_none(), "the stop undid the logout:\n{}", daemon.log());
}
