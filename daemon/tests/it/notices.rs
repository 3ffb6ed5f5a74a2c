//! Notices (`notify = true`): an account that needs a new login is told on the desktop, on the
//! test's notification service, at most once an hour (the hour itself is the core's unit test,
//! on a clock it moves); its "Log in" starts the login, whose code the notice then shows.

use std::time::Duration;

use tokenbroker::protocol::AccountState;
use tokenbroker_testkit::*;

/// Make the IdP refuse the session, and a caller meet it (LoginRequired).
async fn refuse_session(idp: &Idp, daemon: &Daemon) {
    assert_eq!(idp.revoke_user("alice").await, 1);
    next_second().await;
    let out = daemon.brokerctl(&["token", "--min-ttl", "60"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_required_is_noticed_once_and_log_in_starts_the_login() {
    // The opener is `true`: the browser "opens" and nothing runs.
    let Env { bus, idp, daemon } =
        Fixture::new().config("notify = true\n").env("BROWSER", "true").access_ttl(60).logged_in("alice").await;
    let notes = Notifications::start(&bus);

    refuse_session(&idp, &daemon).await;
    let shown = notes.wait_for(1, Duration::from_secs(10)).await;
    let notice = &shown[0];
    assert_eq!(notice.app_name, "tokenbroker");
    assert!(notice.summary.contains("Log in to work again"), "{notice:#?}");
    assert_eq!(notice.action_keys(), ["login"], "{notice:#?}");

    // Logged in again and refused again within the hour: no second notice.
    daemon.login(&idp, None, "alice").await;
    refuse_session(&idp, &daemon).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(notes.shown().len(), 1, "{:#?}", notes.shown());

    // "Log in": the login starts, and the notice shows its code.
    notes.invoke(notice.id, "login");
    let code = eventually(Duration::from_secs(10), || {
        std::future::ready(notes.shown().iter().any(|n| n.body.contains("\nCode: ")))
    })
    .await;
    assert!(code, "no code shown: {:#?}\n{}", notes.shown(), daemon.log());
    let body = notes.shown().into_iter().find(|n| n.body.contains("\nCode: ")).unwrap().body;
    assert!(body.starts_with("Your browser opens"), "{body}");
    let user_code = body.rsplit("Code: ").next().unwrap().trim().to_owned();
    idp.approve(&user_code, "alice").await;
    let client = daemon.client().await;
    let valid = eventually(Duration::from_secs(15), || async {
        client.status().await.unwrap().accounts[0].state == AccountState::Valid
    })
    .await;
    assert!(valid, "the notice's login did not log in:\n{}", daemon.log());
}

/// Without `notify`, nothing is shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_notify_nothing_is_shown() {
    let Env { bus, idp, daemon } = Fixture::new().access_ttl(60).logged_in("alice").await;
    let notes = Notifications::start(&bus);
    refuse_session(&idp, &daemon).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(notes.shown().is_empty(), "{:#?}", notes.shown());
}
