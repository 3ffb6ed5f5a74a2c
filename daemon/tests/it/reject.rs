//! RejectToken against the real test IdP, on the socket and on D-Bus: a rejected token is
//! refreshed once by the next request, a token that is not the one served changes nothing, and
//! the replacement rejected within the minute is kept (one warning in the log, no token).

use std::collections::HashMap;

use tokenbroker::Secret;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

fn rejection(token: &Secret) -> RejectToken {
    RejectToken { account: None, access_token: token.clone(), audience: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_socket_a_rejected_token_is_refreshed_once_and_not_in_a_loop() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().access_ttl(600).logged_in("alice").await;
    let client = daemon.client().await;
    let first = token(&client, None).await.unwrap().access_token;

    let other = client.reject_token(rejection(&Secret::new("not-the-token"))).await.unwrap();
    assert!(!other.dropped && other.account == "work");
    assert_eq!(token(&client, None).await.unwrap().access_token, first, "nothing changed");
    assert_eq!(idp.refreshes().await, 0);

    assert!(client.reject_token(rejection(&first)).await.unwrap().dropped);
    let second = token(&client, None).await.unwrap().access_token;
    assert_ne!(second, first);
    assert_eq!(token(&client, None).await.unwrap().access_token, second);
    assert_eq!(idp.refreshes().await, 1, "one refresh");

    for _ in 0..3 {
        assert!(!client.reject_token(rejection(&second)).await.unwrap().dropped, "within the minute");
        assert_eq!(token(&client, None).await.unwrap().access_token, second);
    }
    assert_eq!(idp.refreshes().await, 1, "no refresh per refused request");
    let log = daemon.log();
    assert_eq!(log.matches("not refreshing again").count(), 1, "one warning: {log}");
    assert!(!log.contains(first.expose()) && !log.contains(second.expose()), "no token in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dbus_a_rejected_token_is_refreshed_once() {
    let Env { bus, idp, daemon } = Fixture::new().access_ttl(600).logged_in("alice").await;
    let client = bus.dbus_client().await;
    let first = client.get_access_token(GetAccessToken::default()).await.unwrap().access_token;

    // The interface's own method, as gdbus or busctl would call it.
    let none = HashMap::new();
    assert!(!client.proxy().reject_token("", "not-the-token", none.clone()).await.unwrap());
    assert!(client.proxy().reject_token("work", first.expose(), none).await.unwrap());
    let second = token(&daemon.client().await, None).await.unwrap().access_token;
    assert_ne!(second, first);
    assert_eq!(idp.refreshes().await, 1);

    // Through `Call`, as the client crate's typed method goes; and a bad option is refused.
    assert!(!client.reject_token(rejection(&second)).await.unwrap().dropped, "within the minute");
    let bad = HashMap::from([("min_ttl", 5u32.into())]);
    let err = client.proxy().reject_token("", second.expose(), bad).await.unwrap_err();
    assert!(err.to_string().contains("InvalidParams"), "{err}");
    assert_eq!(token(&daemon.client().await, None).await.unwrap().access_token, second);
    assert_eq!(idp.refreshes().await, 1);
}
