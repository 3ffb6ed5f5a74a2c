//! A pause like a laptop's suspend: the daemon stopped (SIGSTOP) past the IdP's keep-alive
//! with callers queued on an expired token. The IdP has closed the pooled connection meanwhile;
//! on resume every caller gets the fresh token from exactly one refresh, and none an error.

use std::collections::HashSet;
use std::time::Duration;

use tokenbroker_testkit::*;

const CALLERS: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_queued_through_a_pause_past_the_idps_keep_alive_all_get_the_token() {
    let Env { bus: _bus, idp, daemon } =
        Fixture::new().access_ttl(2).config("proactive_refresh = false\n").logged_in("alice").await;
    // A refresh just now leaves a connection to the IdP in the daemon's pool.
    next_second().await;
    let before = token(&daemon.client().await, Some(2)).await.unwrap();
    assert_eq!(idp.refresh_attempts().await, 1);
    let mut clients = Vec::with_capacity(CALLERS);
    for _ in 0..CALLERS {
        clients.push(daemon.client().await);
    }

    // Stopped longer than the IdP's 5 s keep-alive (and the token's 2 s life); the callers ask
    // while it is stopped, and wait.
    daemon.signal(libc::SIGSTOP);
    let calls = futures_util::future::join_all(clients.iter().map(|c| token(c, None)));
    let resume = async {
        tokio::time::sleep(Duration::from_secs(7)).await;
        daemon.signal(libc::SIGCONT);
    };
    let (results, ()) = tokio::join!(calls, resume);

    let errors: Vec<String> = results.iter().filter_map(|r| r.as_ref().err()).map(ToString::to_string).collect();
    assert!(errors.is_empty(), "{} of {CALLERS} callers failed, e.g. {:?}", errors.len(), errors.first());
    let tokens: HashSet<String> = results.into_iter().map(|r| r.unwrap().access_token.expose().to_owned()).collect();
    assert_eq!(tokens.len(), 1, "every caller got the same fresh token");
    assert!(!tokens.contains(before.access_token.expose()));
    assert_eq!(idp.refresh_attempts().await, 2, "exactly one token-endpoint request after the pause");
}
