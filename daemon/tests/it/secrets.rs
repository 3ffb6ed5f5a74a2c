//! No token or one-time code, at any log level, in the daemon's log or brokerctl's stderr.

use std::time::Duration;

use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_at_trace_level() {
    let Env { bus, idp, daemon } = Fixture::new().access_ttl(60).log_level("trace").start().await;
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

    // The browser flow too: its authorization code and PKCE verifier are secrets as well.
    let challenge = client.login(Login { account: None, flow: Some(Flow::Code) }).await.unwrap();
    let report = idp.browse_code(challenge.authorization_url.as_deref().unwrap(), "alice", false).await;
    assert_eq!(report["ok"], true, "{report}");
    client.await_login(&challenge.login_id).await.unwrap();
    // What the IdP received at its token endpoint: the device code, the authorization code
    // and the code verifier.
    let one_time: Vec<String> =
        idp.stats().await["secrets"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    assert!(one_time.len() >= 3, "the device code, the code and its verifier: {one_time:?}");
    secrets.extend(one_time);

    let log = daemon.log();
    assert!(log.contains("TRACE"), "the daemon really logged at trace level");
    assert!(log.len() > 10_000, "a trace log of a whole session is long: {} bytes", log.len());
    secrets.sort();
    secrets.dedup();
    assert!(secrets.len() >= 9, "{} distinct secrets collected", secrets.len());
    for secret in &secrets {
        assert!(secret.len() >= 20, "a real token: {} chars", secret.len());
        // Any 16-character piece would already be a leak (JWTs could be logged in parts).
        let piece = &secret[secret.len() / 2 - 8..secret.len() / 2 + 8];
        assert!(!log.contains(piece), "a token reached the daemon log");
        assert!(!stderr.contains(piece), "a token reached brokerctl's stderr");
    }
}

/// A refresh token stays in the daemon and its store: no answer on either door carries one,
/// nor a piece of one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_on_either_door_carries_a_refresh_token() {
    let Env { bus, idp: _idp, daemon } = Fixture::new().access_ttl(60).logged_in("alice").await;
    let client = daemon.client().await;
    let mut refresh_tokens = vec![bus.keyring_entry("work").unwrap()["refresh_token"].as_str().unwrap().to_owned()];
    // After a rotation too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    token(&client, Some(60)).await.unwrap();
    refresh_tokens.push(bus.keyring_entry("work").unwrap()["refresh_token"].as_str().unwrap().to_owned());
    assert_ne!(refresh_tokens[0], refresh_tokens[1], "rotated");

    let mut answers = String::new();
    for door in [&[][..], &["--dbus"]] {
        for args in [&["token"][..], &["id-token"], &["profile"], &["status"], &["doctor"]] {
            for json in [&[][..], &["--json"]] {
                let mut cmd = bus.command(brokerctl_path().to_str().unwrap());
                let out = cmd
                    .args(door)
                    .args(json)
                    .args(args)
                    .env("TOKENBROKER_SOCKET", daemon.socket())
                    .env_remove("TOKENBROKER_TRANSPORT")
                    .output()
                    .unwrap();
                assert!(out.status.success() || args == ["doctor"], "{args:?} {door:?}: {out:?}");
                answers.push_str(&String::from_utf8_lossy(&out.stdout));
                answers.push_str(&String::from_utf8_lossy(&out.stderr));
            }
        }
    }
    assert!(answers.contains("eyJ") && answers.contains("alice"), "tokens and the profile were served");
    for rt in &refresh_tokens {
        assert!(rt.len() >= 20, "a real refresh token");
        for piece in rt.as_bytes().chunks(16).filter(|c| c.len() == 16) {
            assert!(!answers.contains(std::str::from_utf8(piece).unwrap()), "a piece of a refresh token was served");
        }
    }
}
