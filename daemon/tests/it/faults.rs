//! Token-endpoint faults injected by the proxy in front of the real IdP: through each one the
//! cached token keeps being served and the session survives; retries back off with jitter
//! and honour `Retry-After`; once the fault clears the next refresh succeeds. Only
//! `invalid_grant` ends the session.

use std::time::Duration;

use futures_util::StreamExt;
use tokenbroker::ErrorKind;
use tokenbroker::dbus::Signal;
use tokenbroker::protocol::AccountState;
use tokenbroker_testkit::*;

/// Everything a transient fault must leave alone, checked for one fault: an on-demand refresh
/// fails as `idp_unavailable`, the still-valid token is served, the session stays valid and
/// in the keyring, no `LoginRequired` is announced, and a refresh after the fault succeeds.
/// `says` is a piece of the error the daemon reports, proof that the fault was the one meant.
async fn survives(fault: Fault, says: &str) {
    survives_on(fault, says, false).await
}

/// With `tls`, the token endpoint is reached over TLS, trusted through `SSL_CERT_FILE`.
async fn survives_on(fault: Fault, says: &str, tls: bool) {
    let bus = Bus::start();
    let idp = Idp::start(IdpOptions { access_ttl: 60, ..Default::default() }).await;
    // A short IdP timeout, so a hung token endpoint costs the test seconds, not the default 15.
    let mut daemon = Daemon::prepare(&format!("idp_timeout = 2\n{}", idp.account_config("work")));
    let certs = tempfile::tempdir().unwrap();
    if tls {
        let ca = idp.proxy.serve_token_over_tls(certs.path()).await;
        daemon.env.push(("SSL_CERT_FILE".into(), ca.display().to_string()));
    }
    daemon.spawn(&bus);
    daemon.login(&idp, None, "alice").await;
    let client = daemon.client().await;
    let mut signals = bus.dbus_client().await.signals().await.unwrap();
    let cached = token(&client, None).await.unwrap();

    idp.proxy.set_fault(Some(fault));
    next_second().await;
    let err = token(&client, Some(60)).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::IdpUnavailable), "{fault:?}: {err}");
    assert!(err.to_string().contains(says), "{fault:?}: {err}");
    // No part of the IdP's answer is quoted back: a malformed 200 may hold tokens.
    for text in [err.to_string(), daemon.log()] {
        assert!(!text.contains("leak-canary"), "{fault:?}: the answer's body was quoted: {text}");
    }
    // A failed TLS handshake never gets as far as a request.
    let reached = if fault == Fault::UntrustedCertificate { 0 } else { 1 };
    assert_eq!(idp.proxy.token_requests().len(), reached, "{fault:?}: requests at the token endpoint");
    let during = token(&client, None).await.unwrap();
    assert_eq!(during.access_token, cached.access_token, "{fault:?}: the valid token is still served");
    let out = daemon.brokerctl(&["token"]);
    assert!(out.status.success(), "{fault:?}: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::Valid, "{fault:?}");
    assert!(bus.keyring_entry("work").is_some(), "{fault:?}: a transient fault does not end the session");

    idp.proxy.set_fault(None);
    let after = token(&client, Some(60)).await.unwrap();
    assert_ne!(after.access_token, cached.access_token, "{fault:?}: refreshed once the fault cleared");
    assert_eq!(idp.refreshes().await, 1, "{fault:?}");
    assert_eq!(idp.proxy.token_requests().len(), reached + 1, "{fault:?}: the refresh went through the proxy");
    let stray = tokio::time::timeout(Duration::from_millis(300), async {
        while let Some(s) = signals.next().await {
            if matches!(s, Signal::LoginRequired { .. }) {
                return s;
            }
        }
        std::future::pending().await
    })
    .await;
    assert!(stray.is_err(), "{fault:?}: announced {stray:?}");
}

cases! {
    a_500_leaves_the_session => survives(Fault::Status(500), "HTTP 500");
    a_429_leaves_the_session => survives(Fault::Status(429), "HTTP 429");
    a_hang_past_the_timeout_leaves_the_session => survives(Fault::Hang, "timed out");
    malformed_json_leaves_the_session => survives(Fault::Malformed, "malformed");
    a_body_over_the_size_limit_leaves_the_session => survives(Fault::Oversize, "larger than");
    a_reset_connection_leaves_the_session => survives(Fault::Reset, "reset");
    // Logged in and refreshed over TLS while the certificate is good; then the token endpoint
    // shows one from an unknown CA (as a TLS-intercepting box would).
    a_tls_failure_leaves_the_session => survives_on(Fault::UntrustedCertificate, "certificate", true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_invalid_grant_ends_the_session_and_says_so() {
    let Env { bus, idp, daemon } = Fixture::new().access_ttl(60).logged_in("alice").await;
    let client = daemon.client().await;
    let mut signals = bus.dbus_client().await.signals().await.unwrap();

    idp.proxy.set_fault(Some(Fault::InvalidGrant));
    next_second().await;
    let err = token(&client, Some(60)).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::LoginRequired), "{err}");
    let announced = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(s) = signals.next().await {
            if s == (Signal::LoginRequired { account: "work".into() }) {
                return;
            }
        }
    })
    .await;
    assert!(announced.is_ok(), "no LoginRequired signal");
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::LoginRequired);
    assert!(bus.keyring_entry("work").is_none());
    let err = token(&client, None).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::LoginRequired), "the refused session's token is not served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_on_the_token_endpoint_is_not_followed() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().logged_in("alice").await;
    let client = daemon.client().await;
    let cached = token(&client, None).await.unwrap();
    // Whoever the redirect points at would receive the refresh token.
    let thief = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    idp.proxy.set_fault(Some(Fault::Redirect(thief.local_addr().unwrap().port())));

    next_second().await;
    let err = token(&client, Some(60)).await.unwrap_err();
    assert_ne!(err.kind(), Some(ErrorKind::LoginRequired), "{err}");
    let visited = tokio::time::timeout(Duration::from_millis(500), thief.accept()).await;
    assert!(visited.is_err(), "the daemon followed the redirect");
    assert_eq!(token(&client, None).await.unwrap().access_token, cached.access_token);
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::Valid);
}

/// The gaps between the token requests the proxy saw.
fn gaps(idp: &Idp) -> Vec<Duration> {
    idp.proxy.token_requests().windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_retries_back_off_and_resume_when_the_fault_clears() {
    // Refreshed proactively at about three quarters of 20 s: the token outlives two retries.
    let Env { bus: _bus, idp, daemon } = Fixture::new().access_ttl(20).logged_in("alice").await;
    let client = daemon.client().await;
    let cached = token(&client, None).await.unwrap();
    idp.proxy.set_fault(Some(Fault::Status(503)));

    assert!(eventually(Duration::from_secs(30), || async { idp.proxy.token_requests().len() >= 2 }).await);
    // Between the failed attempts, callers still get the token, which has not expired yet.
    let during = token(&client, None).await.unwrap();
    assert_eq!(during.access_token, cached.access_token);
    assert!(eventually(Duration::from_secs(10), || async { idp.proxy.token_requests().len() >= 3 }).await);
    idp.proxy.set_fault(None);
    assert!(
        eventually(Duration::from_secs(20), || async { idp.refreshes().await == 1 }).await,
        "the scheduler refreshed once the fault cleared"
    );
    let gaps = gaps(&idp);
    assert_eq!(gaps.len(), 3, "three failures and a success, nothing else: {gaps:?}");
    // 1 s, 2 s, 4 s, each plus up to half again of jitter (and a little for the machine).
    let slack = Duration::from_millis(400);
    for (gap, backoff) in gaps.iter().zip([1, 2, 4]) {
        let backoff = Duration::from_secs(backoff);
        assert!(*gap >= backoff && *gap <= backoff.mul_f64(1.5) + slack, "gaps {gaps:?}");
    }
    let after = token(&client, None).await.unwrap();
    assert_ne!(after.access_token, cached.access_token);
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::Valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_by_the_scheduler_and_by_callers() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().access_ttl(8).logged_in("alice").await;
    let client = daemon.client().await;
    let cached = token(&client, None).await.unwrap();
    idp.proxy.set_fault(Some(Fault::RetryAfter(503, 3)));

    assert!(eventually(Duration::from_secs(20), || async { !idp.proxy.token_requests().is_empty() }).await);
    // While the IdP's Retry-After holds, a caller that needs a refresh gets the failure at
    // once, without asking the IdP again.
    let err = token(&client, Some(8)).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::IdpUnavailable), "{err}");
    assert_eq!(idp.proxy.token_requests().len(), 1, "a caller asked during Retry-After");
    // A caller content with the current token still gets it.
    assert!(token(&client, None).await.is_ok_and(|t| t.access_token == cached.access_token));
    idp.proxy.set_fault(Some(Fault::RetryAfter(429, 3)));

    assert!(eventually(Duration::from_secs(20), || async { idp.proxy.token_requests().len() >= 2 }).await);
    idp.proxy.set_fault(None);
    assert!(eventually(Duration::from_secs(20), || async { idp.refreshes().await == 1 }).await);
    let gaps = gaps(&idp);
    // The backoff alone would have waited 1 to 1.5 s, then 2 to 3 s.
    assert!(gaps.iter().take(2).all(|g| *g >= Duration::from_secs(3)), "gaps {gaps:?}");
}
