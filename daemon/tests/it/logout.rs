//! Logout as a person reads it: an account never logged in is not "logged out"; an IdP that
//! cannot be reached to revoke leaves the refresh token valid there, which is said plainly and
//! fails the command (exit 4), though the session is forgotten here all the same.

use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_says_not_logged_in_revoked_or_not_revoked_and_exits_accordingly() {
    let Env { bus, idp, daemon } = Fixture::new().start().await;

    let out = daemon.brokerctl(&["logout"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert_eq!(text, "Not logged in to work: nothing to log out of.\n");
    let done = daemon.client().await.logout(AccountOnly::default()).await.unwrap();
    assert_eq!((done.was_logged_in, done.revocation), (Some(false), None));

    daemon.login(&idp, None, "alice").await;
    let out = daemon.brokerctl(&["logout"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("Logged out of work (session revoked at the identity provider)."), "{text}");
    assert_eq!(idp.stats().await["revocation"], 1);

    // The IdP is down: logged out here, the token still valid there, exit 4.
    daemon.login(&idp, None, "alice").await;
    idp.proxy.set_down(true);
    let out = daemon.brokerctl(&["logout"]);
    let (text, err) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(4), "{text}{err}");
    assert!(
        text.contains(
            "Logged out of work here, but the refresh token could not be revoked at the identity provider: \
                       it stays valid there until it expires."
        ),
        "{text}"
    );
    assert!(err.starts_with("brokerctl: revoking failed: "), "{err}");
    assert!(bus.keyring_entry("work").is_none(), "forgotten here all the same");
    let status = daemon.client().await.status().await.unwrap();
    assert_eq!(status.accounts[0].state, AccountState::LoggedOut);
    idp.proxy.set_down(false);
    assert_eq!(idp.stats().await["revocation"], 1, "the IdP never heard of it");

    // --json: the result's new fields, and the same exit code.
    daemon.login(&idp, None, "alice").await;
    idp.proxy.set_down(true);
    let out = daemon.brokerctl(&["logout", "--json"]);
    assert_eq!(out.status.code(), Some(4));
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["revoked"], false);
    assert_eq!(done["was_logged_in"], true);
    assert_eq!(done["revocation"], "failed");
    assert!(done["revocation_error"].as_str().unwrap().contains("unavailable"), "{done}");
}
