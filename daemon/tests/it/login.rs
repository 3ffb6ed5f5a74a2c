//! A user logs in once by the device flow; then tokens, the ID token, the profile and the
//! status are served, through the client crate and through brokerctl; logout revokes.

use tokenbroker::ErrorKind;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_then_token_id_token_profile_status_logout() {
    let Env { bus, idp, daemon } = Fixture::new().start().await;
    let client = daemon.client().await;

    // Before login: not_logged_in, exit code 3.
    let err = token(&client, None).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotLoggedIn));
    let out = daemon.brokerctl(&["token"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("brokerctl login"));

    // brokerctl login --json: the challenge line first, then the result line.
    let mut login = std::process::Command::new(brokerctl_path())
        .args(["login", "--json", "--no-browser"])
        .env("TOKENBROKER_SOCKET", daemon.socket())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(login.stdout.take().unwrap()));
    let challenge: LoginChallenge = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(challenge.flow, Flow::Device);
    assert!(challenge.verification_uri.as_deref().unwrap().starts_with(&idp.issuer));
    idp.approve(challenge.user_code.as_deref().unwrap(), "alice").await;
    let done: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    // The test IdP's ID token names nobody: email and name come from userinfo.
    let who = serde_json::json!({"account": "work", "status": "logged_in", "subject": "alice",
        "email": "alice@example.com", "name": "Alice Example"});
    assert_eq!(done, who);
    assert!(login.wait().unwrap().success());

    // The session is in the keyring before anyone sees it.
    let entry = bus.keyring_entry("work").expect("keyring entry written at login");
    let stored_access = entry["access_token"].as_str().unwrap().to_owned();

    let t = token(&client, None).await.unwrap();
    assert_eq!(t.account, "work");
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.access_token.expose(), stored_access);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((now + 50..=now + 61).contains(&t.expires_at), "expires_at {} now {now}", t.expires_at);
    assert!(t.scope.as_deref().unwrap().contains("openid"));

    // brokerctl token prints the bare token and a newline.
    let out = daemon.brokerctl(&["token"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{}\n", t.access_token.expose()));

    let id = client.get_id_token(GetIdToken::default()).await.unwrap();
    assert_eq!(id.id_token.expose().split('.').count(), 3, "a JWT");
    let out = daemon.brokerctl(&["id-token", "--account", "work"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), id.id_token.expose());

    let profile = client.get_profile(GetProfile::default()).await.unwrap();
    assert_eq!(profile.claims["sub"], "alice");
    assert_eq!(profile.claims["email"], "alice@example.com");
    let userinfo_calls = idp.stats().await["userinfo"].as_u64().unwrap();
    // Cached until the token changes or refresh is asked for.
    client.get_profile(GetProfile::default()).await.unwrap();
    assert_eq!(idp.stats().await["userinfo"].as_u64().unwrap(), userinfo_calls);
    let out = daemon.brokerctl(&["profile", "--refresh"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Alice Example <alice@example.com>"));
    assert_eq!(idp.stats().await["userinfo"].as_u64().unwrap(), userinfo_calls + 1);
    let out = daemon.brokerctl(&["--json", "profile"]);
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["claims"]["name"], "Alice Example");

    let status = client.status().await.unwrap();
    let acct = &status.accounts[0];
    assert_eq!((acct.name.as_str(), acct.state, acct.subject.as_deref()), ("work", AccountState::Valid, Some("alice")));
    assert_eq!(acct.expires_at, Some(t.expires_at));
    let out = daemon.brokerctl(&["status"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("work (default)") && text.contains("expires in") && text.contains("as alice"), "{text}");
    let out = daemon.brokerctl(&["status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["accounts"][0]["state"], "valid");

    // Logout revokes at the IdP: the refresh token stops working there.
    let refresh_token = entry["refresh_token"].as_str().unwrap().to_owned();
    let out = daemon.brokerctl(&["logout"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked"));
    assert_eq!(idp.stats().await["revocation"], 1);
    assert_eq!(idp.try_refresh(&refresh_token).await["error"], "invalid_grant");
    assert!(bus.keyring_entry("work").is_none(), "keyring entry deleted");
    assert_eq!(token(&client, None).await.unwrap_err().kind(), Some(ErrorKind::NotLoggedIn));
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::LoggedOut);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_login_is_access_denied_and_exit_6() {
    let Env { bus, idp, daemon } = Fixture::new().start().await;
    let client = daemon.client().await;
    let challenge = client.login(Login::default()).await.unwrap();
    // A second Login while one is pending joins it.
    let again = client.login(Login::default()).await.unwrap();
    assert_eq!(again.login_id, challenge.login_id);
    let ctl = std::process::Command::new(brokerctl_path())
        .args(["login", "--no-browser"])
        .env("TOKENBROKER_SOCKET", daemon.socket())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    idp.deny(challenge.user_code.as_deref().unwrap()).await;
    let err = client.await_login(&challenge.login_id).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::AccessDenied), "{err}");
    let out = ctl.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(bus.keyring_entry("work").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_join_one_flow() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().start().await;
    // All at once, each on its own connection: starting a flow takes an IdP round trip, and
    // none of them may start a second one in that window.
    let mut clients = Vec::new();
    for _ in 0..16 {
        clients.push(daemon.client().await);
    }
    let logins = clients.iter().map(|c| c.login(Login::default()));
    let challenges: Vec<_> = futures_util::future::join_all(logins).await.into_iter().map(Result::unwrap).collect();
    let first = &challenges[0];
    assert!(challenges.iter().all(|c| c.login_id == first.login_id && c.user_code == first.user_code));
    idp.approve(first.user_code.as_deref().unwrap(), "alice").await;
    clients[0].await_login(&first.login_id).await.unwrap();
}

#[test]
fn brokerctl_without_daemon_exits_5_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(brokerctl_path())
        .arg("status")
        .env("TOKENBROKER_SOCKET", dir.path().join("nothing.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach tokenbrokerd"));
    let out = std::process::Command::new(brokerctl_path()).args(["token", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
