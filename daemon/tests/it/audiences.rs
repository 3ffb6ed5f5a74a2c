//! Several APIs from one login, user metadata through the management API, and two accounts
//! on two issuers side by side.

use std::time::Duration;

use tokenbroker::ErrorKind;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

fn aud(token: &AccessToken) -> String {
    jwt_claims(token.access_token.expose())["aud"].as_str().unwrap().to_owned()
}

fn for_api(audience: &str) -> GetAccessToken {
    GetAccessToken { audience: Some(audience.into()), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_audiences_from_one_login_each_refreshed_once_under_a_crowd() {
    let Env { bus: _bus, idp, daemon } = Fixture::new()
        .access_ttl(3)
        .config("proactive_refresh = false\n")
        .account(|idp| idp.api_account_config("work"))
        .logged_in("alice")
        .await;
    let client = daemon.client().await;

    let default = token(&client, None).await.unwrap();
    assert_eq!(default.access_token.expose().split('.').count(), 1, "the login's token is opaque, for userinfo");
    let api = client.get_access_token(for_api(API)).await.unwrap();
    let reports = client.get_access_token(for_api(REPORTS)).await.unwrap();
    assert_eq!((aud(&api), aud(&reports)), (API.to_owned(), REPORTS.to_owned()));
    assert_eq!(api.scope.as_deref(), Some("api:read"));
    assert_eq!(jwt_claims(api.access_token.expose())["sub"], "alice");
    assert_eq!(idp.refreshes().await, 2, "one grant per audience");
    // Cached per audience.
    assert_eq!(client.get_access_token(for_api(API)).await.unwrap().access_token, api.access_token);
    assert_eq!(idp.refreshes().await, 2);
    // The default token still serves userinfo, and rotation kept the session whole.
    assert_eq!(
        client.get_profile(GetProfile { refresh: true, ..Default::default() }).await.unwrap().claims["sub"],
        "alice"
    );

    // Expired: 200 callers per audience at once make one request per audience.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let mut clients = Vec::new();
    for _ in 0..400 {
        clients.push(daemon.client().await);
    }
    let calls =
        clients.iter().enumerate().map(|(i, c)| c.get_access_token(for_api(if i % 2 == 0 { API } else { REPORTS })));
    let results: Vec<AccessToken> =
        futures_util::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    let api_tokens: std::collections::HashSet<_> =
        results.iter().step_by(2).map(|t| t.access_token.expose().to_owned()).collect();
    let report_tokens: std::collections::HashSet<_> =
        results.iter().skip(1).step_by(2).map(|t| t.access_token.expose().to_owned()).collect();
    assert_eq!((api_tokens.len(), report_tokens.len()), (1, 1));
    assert!(!api_tokens.contains(api.access_token.expose()), "refreshed, not the expired one");
    assert_eq!(aud(&results[0]), API);
    assert_eq!(aud(&results[1]), REPORTS);
    assert_eq!(idp.refresh_attempts().await, 4, "exactly one more request per audience");

    // Only what the login asked for.
    let err = client.get_access_token(for_api("https://elsewhere.example/")).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::InvalidParams));
    assert!(err.to_string().contains("not configured for audience"), "{err}");
    let err = client
        .get_access_token(GetAccessToken {
            audience: Some(API.into()),
            scope: Some("admin".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::InvalidParams));
    assert!(err.to_string().contains("not requested at login"), "{err}");
    let err = client.get_access_token(GetAccessToken { scope: Some("api:read".into()), ..Default::default() }).await;
    assert_eq!(err.unwrap_err().kind(), Some(ErrorKind::InvalidParams), "the default token does not carry API scopes");
    assert_eq!(idp.refresh_attempts().await, 4, "refused requests never reach the IdP");

    // brokerctl --audience
    let out = daemon.brokerctl(&["token", "--audience", REPORTS]);
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(jwt_claims(printed.trim())["aud"], REPORTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_set_get_merge_and_delete_by_null() {
    let Env { bus: _bus, idp, daemon } =
        Fixture::new().account(|idp| idp.api_account_config("work")).logged_in("alice").await;
    let json = |out: std::process::Output| -> serde_json::Value {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    assert_eq!(json(daemon.brokerctl(&["metadata", "get"])), serde_json::json!({}));
    let set = json(daemon.brokerctl(&["metadata", "set", "theme=dark", "lang=en"]));
    assert_eq!(set, serde_json::json!({"theme": "dark", "lang": "en"}));
    assert_eq!(json(daemon.brokerctl(&["metadata", "get", "--account", "work"])), set);
    let merged = json(daemon.brokerctl(&["metadata", "set", "--json", r#"{"volume": 7, "theme": null}"#]));
    assert_eq!(merged, serde_json::json!({"lang": "en", "volume": 7}));
    let deleted = json(daemon.brokerctl(&["--json", "metadata", "set", r#"{"prefs": {"a": [1, 2]}}"#]));
    assert_eq!(deleted, serde_json::json!({"lang": "en", "volume": 7, "prefs": {"a": [1, 2]}}));
    let deleted = json(daemon.brokerctl(&["metadata", "set", "lang="]));
    assert_eq!(deleted, serde_json::json!({"volume": 7, "prefs": {"a": [1, 2]}}));

    // Through the client crate, the same store.
    let client = daemon.client().await;
    let m = client.get_metadata(AccountOnly::default()).await.unwrap();
    assert_eq!(serde_json::Value::Object(m.user_metadata), deleted);
    let out = daemon.brokerctl(&["metadata", "set", "no-equals-sign"]);
    assert_eq!(out.status.code(), Some(2));
    // One management-API token, asked with the scopes the API wants, served every call.
    let mgmt = format!("{}/api/v2/", idp.issuer);
    let scope = Some("read:current_user update:current_user_metadata".into());
    let t = client.get_access_token(GetAccessToken { audience: Some(mgmt.clone()), scope, ..Default::default() });
    let t = t.await.unwrap();
    assert_eq!(jwt_claims(t.access_token.expose())["aud"], mgmt.as_str());
    assert_eq!(idp.refreshes().await, 1);
}

/// Auth0 grants a Management API token only the scopes asked for, and so does the test IdP:
/// a config that names the management API but none of its scopes must still read and write
/// metadata (the login asks for them itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_works_with_a_config_that_lists_no_management_scopes() {
    let with_management_api = |idp: &Idp| {
        format!(
            "{}audience_param = \"resource\"\nmanagement_api = \"{}/api/v2/\"\n",
            idp.account_config("work"),
            idp.issuer
        )
    };
    let Env { bus: _bus, idp, daemon } = Fixture::new().account(with_management_api).logged_in("alice").await;
    let mgmt = format!("{}/api/v2/", idp.issuer);
    let out = daemon.brokerctl(&["metadata", "set", "theme=dark"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = daemon.brokerctl(&["metadata", "get"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(), serde_json::json!({"theme": "dark"}));

    // The token the metadata calls used carries exactly the two scopes, asked for by name.
    let client = daemon.client().await;
    let asked = GetAccessToken {
        audience: Some(mgmt.clone()),
        scope: Some("update:current_user_metadata read:current_user".into()),
        ..Default::default()
    };
    let t = client.get_access_token(asked).await.unwrap();
    let scope = jwt_claims(t.access_token.expose())["scope"].as_str().unwrap().to_owned();
    let mut granted: Vec<&str> = scope.split(' ').collect();
    granted.sort_unstable();
    assert_eq!(granted, ["read:current_user", "update:current_user_metadata"]);
    assert_eq!(idp.refreshes().await, 1, "the metadata calls and this request shared one token");
}

/// A session from before `management_api` was set lacks the API and its scopes: the IdP will
/// not add them by refresh, so the answer says to log in again, and that login fixes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_from_before_the_management_api_was_set_is_told_to_log_in_again() {
    let plain = |idp: &Idp| format!("{}audience_param = \"resource\"\n", idp.account_config("work"));
    let Env { bus, idp, mut daemon } = Fixture::new().account(plain).logged_in("alice").await;
    daemon.kill9();
    let plain = plain(&idp);
    daemon.write_config(&format!("{plain}management_api = \"{}/api/v2/\"\n", idp.issuer));
    daemon.spawn(&bus);

    let out = daemon.brokerctl(&["metadata", "get"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("log in again with `brokerctl login --account work`"), "{stderr}");
    assert!(stderr.contains("read:current_user update:current_user_metadata"), "{stderr}");
    assert_eq!(token(&daemon.client().await, None).await.unwrap().account, "work", "the session lives on");

    daemon.login(&idp, None, "alice").await;
    let out = daemon.brokerctl(&["metadata", "get"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_without_a_management_api_is_not_supported() {
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().logged_in("alice").await;
    let err = daemon.client().await.get_metadata(AccountOnly::default()).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotSupported));
    assert!(err.to_string().contains("management_api"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_on_two_issuers_side_by_side() {
    let bus = Bus::start();
    let (one, two) = (Idp::start(IdpOptions::default()).await, Idp::start(IdpOptions::default()).await);
    let config = format!("default_account = \"home\"\n{}{}", one.account_config("home"), two.account_config("work"));
    let daemon = Daemon::start(&bus, &config);
    daemon.login(&one, None, "alice").await;
    daemon.login(&two, Some("work"), "bob").await;
    let client = daemon.client().await;

    let home = token(&client, None).await.unwrap();
    let work =
        client.get_access_token(GetAccessToken { account: Some("work".into()), ..Default::default() }).await.unwrap();
    assert_eq!((home.account.as_str(), work.account.as_str()), ("home", "work"));
    assert_ne!(home.access_token, work.access_token);
    let who = |account: &str| {
        let out = daemon.brokerctl(&["--json", "profile", "--account", account]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["claims"]["sub"].as_str().unwrap().to_owned()
    };
    assert_eq!((who("home"), who("work")), ("alice".to_owned(), "bob".to_owned()));
    assert!(bus.keyring_entry("home").is_some() && bus.keyring_entry("work").is_some());

    let out = String::from_utf8(daemon.brokerctl(&["status"]).stdout).unwrap();
    assert!(out.contains("home (default)") && out.contains("as alice") && out.contains("as bob"), "{out}");
    assert!(out.contains(&one.issuer) && out.contains(&two.issuer), "{out}");

    // Logging one out leaves the other alone, and offers the IdP's logout page.
    let out = daemon.brokerctl(&["logout", "--account", "work", "--json"]);
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["revoked"], true);
    assert!(done["end_session_url"].as_str().unwrap().starts_with(&format!("{}/session/end?client_id=", two.issuer)));
    assert_eq!(two.stats().await["revocation"], 1);
    assert_eq!(one.stats().await["revocation"], 0);
    assert!(bus.keyring_entry("work").is_none());
    assert_eq!(token(&client, None).await.unwrap().access_token, home.access_token);
    let status = client.status().await.unwrap();
    let states: Vec<_> = status.accounts.iter().map(|a| (a.name.as_str(), a.state)).collect();
    assert_eq!(states, vec![("home", AccountState::Valid), ("work", AccountState::LoggedOut)]);
}
