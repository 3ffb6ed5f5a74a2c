//! No token, at any log level, in the daemon's log or brokerctl's stderr.

mod support;

use std::time::Duration;

use support::*;
use tokenbroker::protocol::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_at_trace_level() {
    let bus = Bus::start();
    let idp = Idp::start(IdpOptions { access_ttl: 60 }).await;
    let daemon = Daemon::start_with_log(&bus, &idp.account_config("work"), "trace");
    let mut secrets: Vec<String> = Vec::new();
    let mut stderr = String::new();

    daemon.login(&idp, None, "alice").await;
    let client = daemon.client().await;
    let first_entry = bus.keyring_entry("work").unwrap();
    let t = token(&client, None).await.unwrap();
    secrets.push(t.access_token.expose().into());
    secrets.push(client.get_id_token(GetIdToken::default()).await.unwrap().id_token.expose().into());
    client.get_profile(GetProfile { refresh: true, ..Default::default() }).await.unwrap();

    // A refresh (rotation) and every brokerctl command, errors included.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    secrets.push(token(&client, Some(60)).await.unwrap().access_token.expose().into());
    let second_entry = bus.keyring_entry("work").unwrap();
    for args in [
        &["token"][..],
        &["id-token"],
        &["profile"],
        &["status"],
        &["token", "--min-ttl", "9999"],
        &["token", "--audience", "x"],
    ] {
        let out = daemon.brokerctl(args);
        stderr.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    for entry in [&first_entry, &second_entry] {
        for key in ["refresh_token", "access_token", "id_token"] {
            secrets.push(entry[key].as_str().unwrap().into());
        }
    }
    daemon.brokerctl(&["logout"]);
    let out = daemon.brokerctl(&["token"]);
    stderr.push_str(&String::from_utf8_lossy(&out.stderr));

    let log = daemon.log();
    assert!(log.contains("TRACE"), "the daemon really logged at trace level");
    assert!(log.len() > 10_000, "a trace log of a whole session is long: {} bytes", log.len());
    secrets.sort();
    secrets.dedup();
    assert!(secrets.len() >= 6, "{} distinct secrets collected", secrets.len());
    for secret in &secrets {
        assert!(secret.len() >= 20, "a real token: {} chars", secret.len());
        // Any 16-character piece would already be a leak (JWTs could be logged in parts).
        let piece = &secret[secret.len() / 2 - 8..secret.len() / 2 + 8];
        assert!(!log.contains(piece), "a token reached the daemon log");
        assert!(!stderr.contains(piece), "a token reached brokerctl's stderr");
    }
}
