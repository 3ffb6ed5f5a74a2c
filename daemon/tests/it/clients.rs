//! Installed clients that the IdP gives a secret anyway (Google's desktop and TV clients):
//! the secret goes with every token and revocation request, and the code flow can carry the
//! IdP's own extra parameters (Google's `access_type=offline`).

use tokenbroker::ErrorKind;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

const SECRET: &str = "desktop-secret-not-confidential";

fn desktop_account(idp: &Idp, secret: Option<&str>) -> String {
    let mut config = format!(
        "[accounts.g]\nissuer = \"{}\"\nclient_id = \"tokenbroker-desktop\"\nauth_params = {{ access_type = \"offline\" }}\n",
        idp.issuer
    );
    if let Some(secret) = secret {
        config.push_str(&format!("client_secret = \"{secret}\"\n"));
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_a_secret_logs_in_refreshes_and_revokes() {
    let Env { bus: _bus, idp, daemon } =
        Fixture::new().account(|idp| desktop_account(idp, Some(SECRET))).logged_in("alice").await;
    let client = daemon.client().await;
    let first = token(&client, None).await.unwrap();
    next_second().await;
    let renewed = token(&client, Some(60)).await.unwrap();
    assert_ne!(renewed.access_token.expose(), first.access_token.expose());
    assert_eq!(idp.refreshes().await, 1);

    let out = client.logout(AccountOnly::default()).await.unwrap();
    assert!(out.revoked, "the IdP took the revocation only with the client's secret");
    assert!(!daemon.log().contains(SECRET), "the secret stays out of the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_secret_the_idp_refuses_the_client_and_the_error_says_so() {
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().account(|idp| desktop_account(idp, None)).start().await;
    let client = daemon.client().await;
    let err = client.login(Login::default()).await.unwrap_err();
    assert_ne!(err.kind(), Some(ErrorKind::IdpUnavailable), "{err}");
    assert!(err.to_string().contains("invalid_client"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_flow_carries_the_configured_auth_params() {
    let Env { bus, idp, daemon } = Fixture::new().account(|idp| desktop_account(idp, Some(SECRET))).start().await;
    let client = daemon.client().await;
    let challenge = client.login(Login { account: None, flow: Some(Flow::Code) }).await.unwrap();
    let url = url::Url::parse(challenge.authorization_url.as_deref().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q.get("access_type").map(String::as_str), Some("offline"));
    assert_eq!(q["code_challenge_method"], "S256");
    let report = idp.browse_code(url.as_str(), "alice", false).await;
    assert_eq!(report["ok"], true, "{report}");
    client.await_login(&challenge.login_id).await.unwrap();
    assert!(bus.keyring_entry("g").unwrap()["refresh_token"].is_string());
}
