//! The browser login (authorization code + PKCE on a loopback redirect) and the checks every
//! ID token goes through.

use tokenbroker::ErrorKind;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

fn code_login() -> Login {
    Login { account: None, flow: Some(Flow::Code) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_flow_with_pkce_through_a_scripted_browser() {
    let Env { bus, idp, daemon } = Fixture::new().start().await;
    let client = daemon.client().await;

    let challenge = client.login(code_login()).await.unwrap();
    assert_eq!(challenge.flow, Flow::Code);
    assert!(challenge.user_code.is_none());
    let url = url::Url::parse(challenge.authorization_url.as_deref().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["response_type"], "code");
    assert!(q["redirect_uri"].starts_with("http://127.0.0.1:") && q["redirect_uri"].ends_with("/callback"));
    assert!(q["scope"].split(' ').any(|s| s == "offline_access"));
    assert!(!q["state"].is_empty() && !q["nonce"].is_empty());
    let redirect = url::Url::parse(&q["redirect_uri"]).unwrap();

    // Someone else's redirect (wrong state) is ignored; the login goes on.
    let forged = format!("{}?code=stolen&state=not-yours", redirect);
    let page = reqwest::get(&forged).await.unwrap();
    assert_eq!(page.status(), 400);

    let report = idp.browse_code(url.as_str(), "alice", false).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["app_status"], 200);
    assert!(report["app_page"].as_str().unwrap().contains("close this tab"), "{report}");
    let done = client.await_login(&challenge.login_id).await.unwrap();
    assert_eq!(done.account, "work");

    let t = token(&client, None).await.unwrap();
    assert_eq!(bus.keyring_entry("work").unwrap()["access_token"], t.access_token.expose());
    assert!(bus.keyring_entry("work").unwrap()["refresh_token"].is_string(), "offline_access granted");
    let profile = client.get_profile(GetProfile::default()).await.unwrap();
    assert_eq!(profile.claims["sub"], "alice");
    // The listener is gone once the browser came back.
    let port = redirect.port().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "loopback listener closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_flow_denied_and_brokerctl_prints_the_url() {
    let Env { bus, idp, daemon } = Fixture::new().start().await;
    let mut ctl = std::process::Command::new(brokerctl_path())
        .args(["login", "--flow", "code", "--no-browser"])
        .env("TOKENBROKER_SOCKET", daemon.socket())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(ctl.stdout.take().unwrap());
    let mut url = String::new();
    while !url.contains("/auth?") {
        url.clear();
        assert_ne!(std::io::BufRead::read_line(&mut stdout, &mut url).unwrap(), 0, "no URL printed");
    }
    let report = idp.browse_code(url.trim(), "alice", true).await;
    assert_eq!(report["ok"], true, "{report}");
    let out = ctl.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6), "access denied: {}", String::from_utf8_lossy(&out.stderr));
    assert!(bus.keyring_entry("work").is_none());
}

/// A login whose ID token is bad in one way fails with a clear error and stores nothing.
async fn refused_login(kind: &str, flow: Flow) {
    let Env { bus, idp, daemon } = Fixture::new().start().await;
    let client = daemon.client().await;
    idp.arm_id_token_fault(kind).await;
    let challenge = client.login(Login { account: None, flow: Some(flow) }).await.unwrap();
    match flow {
        Flow::Device => idp.approve(challenge.user_code.as_deref().unwrap(), "alice").await,
        Flow::Code => {
            let report = idp.browse_code(challenge.authorization_url.as_deref().unwrap(), "alice", false).await;
            assert_eq!(report["ok"], true, "{report}");
        }
    }
    let err = client.await_login(&challenge.login_id).await.unwrap_err();
    assert!(err.to_string().contains("ID token failed verification"), "{kind}: {err}");
    assert!(bus.keyring_entry("work").is_none(), "{kind}: nothing stored");
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::LoggedOut);
    assert_eq!(token(&client, None).await.unwrap_err().kind(), Some(ErrorKind::NotLoggedIn));
}

cases! {
    a_forged_id_token_is_refused => refused_login("forged", Flow::Device);
    an_expired_id_token_is_refused => refused_login("expired", Flow::Device);
    an_id_token_for_another_audience_is_refused => refused_login("wrong_aud", Flow::Device);
    an_id_token_from_another_issuer_is_refused => refused_login("wrong_iss", Flow::Code);
    an_id_token_with_the_wrong_nonce_is_refused => refused_login("wrong_nonce", Flow::Code);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_key_id_makes_the_daemon_refetch_the_keys_once_then_refuse() {
    let Env { bus, idp, daemon } = Fixture::new().start().await;
    let client = daemon.client().await;
    let challenge = client.login(Login::default()).await.unwrap();
    let fetched_at_discovery = idp.stats().await["jwks"].as_u64().unwrap();
    assert_eq!(fetched_at_discovery, 1);
    idp.arm_id_token_fault("unknown_kid").await;
    idp.approve(challenge.user_code.as_deref().unwrap(), "alice").await;
    let err = client.await_login(&challenge.login_id).await.unwrap_err();
    assert!(err.to_string().contains("ID token failed verification"), "{err}");
    assert_eq!(idp.stats().await["jwks"].as_u64().unwrap(), 2, "the keys were fetched once more");
    assert!(bus.keyring_entry("work").is_none());

    // A good login afterwards verifies against the refetched keys without another fetch.
    daemon.login(&idp, None, "alice").await;
    assert_eq!(idp.stats().await["jwks"].as_u64().unwrap(), 2);
}

/// Other local programs may connect to the loopback redirect port and say nothing (or send a
/// huge request): the browser's redirect must not wait behind them. Each silent connection
/// once held the listener for its whole 10 s read timeout, one after the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_oversize_connections_do_not_hold_up_the_redirect() {
    use std::io::Write;
    let Env { bus: _bus, idp, daemon } = Fixture::new().start().await;
    let client = daemon.client().await;

    let challenge = client.login(code_login()).await.unwrap();
    let url = url::Url::parse(challenge.authorization_url.as_deref().unwrap()).unwrap();
    let redirect = url.query_pairs().find(|(k, _)| k == "redirect_uri").unwrap().1.into_owned();
    let port = url::Url::parse(&redirect).unwrap().port().unwrap();

    // More than the listener reads at once (64): the oldest give way to the newest.
    let mut squatters: Vec<std::net::TcpStream> =
        (0..80).map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    // Half a request line, then silence.
    squatters[0].write_all(b"GET /callback?st").unwrap();
    let mut oversize = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    // Past the head's size cap, never ending it; the listener may close before all is sent.
    let _ = oversize.write_all(format!("GET /{} HTTP/1.1\r\nX: ", "a".repeat(40_000)).as_bytes());

    let started = std::time::Instant::now();
    let limit = std::time::Duration::from_secs(8);
    let login = async {
        let report = idp.browse_code(url.as_str(), "alice", false).await;
        assert_eq!(report["ok"], true, "{report}");
        assert_eq!(report["app_status"], 200, "{report}");
        client.await_login(&challenge.login_id).await.unwrap();
    };
    // Before, each silent connection held the listener 10 s, one after the other.
    let waited = tokio::time::timeout(limit, login).await;
    assert!(waited.is_ok(), "the redirect waited over {limit:?} behind silent connections");
    assert!(started.elapsed() < limit);
    drop(squatters);
}
