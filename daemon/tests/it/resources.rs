//! RFC 8707 resource indicators (`audience_param = "resource"`): the login's own token stays
//! good for userinfo whatever the flow, and a token userinfo refuses is refreshed, not taken
//! for a dead session.

use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

fn profile_now() -> GetProfile {
    GetProfile { refresh: true, ..Default::default() }
}

/// An account with the harness's APIs, refreshed only on demand.
fn with_apis() -> Fixture {
    Fixture::new().config("proactive_refresh = false\n").account(|idp| idp.api_account_config("work"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_logins_token_serves_userinfo_after_both_flows() {
    let Env { bus: _bus, idp, daemon } = with_apis().logged_in("alice").await;
    let client = daemon.client().await;
    assert_eq!(client.get_profile(profile_now()).await.unwrap().claims["sub"], "alice");

    let challenge = client.login(Login { account: None, flow: Some(Flow::Code) }).await.unwrap();
    let url = url::Url::parse(challenge.authorization_url.as_deref().unwrap()).unwrap();
    let resources: Vec<String> = url.query_pairs().filter(|(k, _)| k == "resource").map(|(_, v)| v.into()).collect();
    assert!(resources.contains(&API.to_owned()), "the APIs are asked for on the authorization request");
    let report = idp.browse_code(url.as_str(), "alice", false).await;
    assert_eq!(report["ok"], true, "{report}");
    client.await_login(&challenge.login_id).await.unwrap();
    assert_eq!(client.get_profile(profile_now()).await.unwrap().claims["sub"], "alice");

    // Straight from the login: no refresh was needed to make the token fit for userinfo, and
    // no login token request named an API (that would bind the token to it).
    let stats = idp.stats().await;
    assert_eq!(idp.refresh_attempts().await, 0, "{stats}");
    assert_eq!(stats["token_resource"], serde_json::json!({}), "{stats}");
    // API tokens still come by refresh with resource=.
    let api = client.get_access_token(GetAccessToken { audience: Some(API.into()), ..Default::default() }).await;
    assert_eq!(jwt_claims(api.unwrap().access_token.expose())["aud"], API);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_access_token_is_refreshed_once_and_the_session_lives() {
    let Env { bus, idp, daemon } = with_apis().logged_in("alice").await;
    let client = daemon.client().await;
    let before = token(&client, None).await.unwrap();

    // Counted from here: the login asked userinfo once already, for whom to name.
    let userinfo = idp.stats().await["userinfo"].as_u64().unwrap();
    assert!(idp.revoke_access_tokens("alice").await >= 1);
    let profile = client.get_profile(profile_now()).await.unwrap();
    assert_eq!(profile.claims["sub"], "alice");
    assert_eq!(idp.refresh_attempts().await, 1, "one refresh, then userinfo again");
    assert_eq!(idp.stats().await["userinfo"].as_u64().unwrap(), userinfo + 2, "refused, then answered");
    let after = token(&client, None).await.unwrap();
    assert_ne!(after.access_token, before.access_token);
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::Valid);
    assert!(bus.keyring_entry("work").is_some(), "the session is kept");

    // `brokerctl profile` agrees with `status`.
    idp.revoke_access_tokens("alice").await;
    let out = daemon.brokerctl(&["profile", "--refresh"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(idp.refresh_attempts().await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_refresh_token_a_refused_access_token_does_not_end_the_session() {
    let Env { bus, idp, daemon } =
        Fixture::new().account(|idp| idp.account_config_without_refresh("work")).logged_in("alice").await;
    let client = daemon.client().await;
    assert!(bus.keyring_entry("work").unwrap()["refresh_token"].is_null(), "no offline_access, no refresh token");

    idp.revoke_access_tokens("alice").await;
    let err = client.get_profile(profile_now()).await.unwrap_err();
    assert_ne!(err.kind(), Some(tokenbroker::ErrorKind::LoginRequired), "{err}");
    assert!(err.to_string().contains("refused the access token"), "{err}");
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::Valid);
    assert!(bus.keyring_entry("work").is_some(), "the session is kept until it expires");
}
