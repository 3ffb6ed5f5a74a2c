//! When the IdP refuses the session or is down.

use tokenbroker::ErrorKind;
use tokenbroker::protocol::AccountState;
use tokenbroker_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_means_login_required_exit_3_and_no_keyring_entry() {
    let Env { bus, idp, daemon } = Fixture::new().access_ttl(60).logged_in("alice").await;
    assert!(bus.keyring_entry("work").is_some());
    assert_eq!(idp.revoke_user("alice").await, 1);

    next_second().await;
    let out = daemon.brokerctl(&["token", "--min-ttl", "60"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("log in again"));
    assert!(bus.keyring_entry("work").is_none(), "the refused session left the keyring");

    let client = daemon.client().await;
    let err = token(&client, None).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::LoginRequired), "the old token is not served either");
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::LoginRequired);
    assert_eq!(idp.refresh_attempts().await, 1, "one refused refresh, no retries of a dead grant");

    // Logging in again clears it.
    daemon.login(&idp, None, "alice").await;
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::Valid);
    assert!(token(&client, None).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_idp_is_down_the_valid_token_is_served_and_refresh_resumes_after() {
    let Env { bus, idp, daemon } = Fixture::new().access_ttl(60).logged_in("alice").await;
    let client = daemon.client().await;
    let cached = token(&client, None).await.unwrap();

    idp.proxy.set_down(true);
    next_second().await;
    // No min_ttl: the still-valid token is served without the IdP.
    let during = token(&client, None).await.unwrap();
    assert_eq!(during.access_token, cached.access_token);
    let out = daemon.brokerctl(&["token"]);
    assert!(out.status.success());
    // A caller that insists on a fresh one learns the IdP is unavailable: exit code 4.
    let out = daemon.brokerctl(&["token", "--min-ttl", "60"]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::Valid);
    assert!(bus.keyring_entry("work").is_some(), "an outage does not end the session");

    idp.proxy.set_down(false);
    let after = token(&client, Some(60)).await.unwrap();
    assert_ne!(after.access_token, cached.access_token);
    assert_eq!(idp.refreshes().await, 1);
}
