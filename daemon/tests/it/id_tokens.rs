//! ID tokens against a strict IdP: a bad one in a refresh costs the session nothing (the IdP
//! rotates refresh tokens with reuse detection, so replaying the spent one would end it), an
//! IdP that signs with ES256 works, and numbers from outside stay sane.

use tokenbroker::ErrorKind;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn header_alg(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["alg"].as_str().unwrap().to_owned()
}

/// One refresh answers with a bad ID token of `kind`; `why` is in the logged reason.
async fn survives_a_bad_id_token(kind: &str, why: &str) {
    let Env { bus, idp, daemon } = Fixture::new().logged_in("alice").await;
    let client = daemon.client().await;
    let before = client.get_id_token(GetIdToken::default()).await.unwrap();
    let first = token(&client, None).await.unwrap();
    let spent = bus.keyring_entry("work").unwrap()["refresh_token"].clone();

    idp.arm_refresh_id_token_fault(kind).await;
    next_second().await;
    let second = token(&client, Some(60)).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
    assert_ne!(second.access_token, first.access_token, "{kind}: the refresh's access token is served");
    let entry = bus.keyring_entry("work").unwrap();
    assert_ne!(entry["refresh_token"], spent, "{kind}: the rotated refresh token is stored");
    assert_eq!(entry["access_token"], second.access_token.expose());
    assert_eq!(entry["id_token"], before.id_token.expose(), "{kind}: the last verified ID token is kept");
    assert_eq!(entry["subject"], "alice");
    let served = client.get_id_token(GetIdToken::default()).await.unwrap();
    assert_eq!(served.id_token, before.id_token, "{kind}: the refused ID token is never served");
    assert_eq!(client.status().await.unwrap().accounts[0].subject.as_deref(), Some("alice"));
    let log = daemon.log();
    let refusal = log.lines().find(|l| l.contains("refused the ID token of a refresh"));
    let refusal = refusal.unwrap_or_else(|| panic!("{kind}: the refusal is logged:\n{log}"));
    assert!(refusal.contains(why), "{kind}: {refusal}");
    assert!(!log.contains(entry["refresh_token"].as_str().unwrap()), "{kind}: no token in the log");
    // Nor the refused ID token: no JWT at all (their headers start `eyJ`), nor the garbled one.
    assert!(!log.contains("eyJ") && !log.contains("this is not a JWT"), "{kind}: a token in the log:\n{log}");

    // The session lives: the next refresh spends the rotated token (the spent one would make
    // the IdP revoke the grant), and its good ID token replaces the kept one.
    next_second().await;
    let third = token(&client, Some(60)).await.unwrap_or_else(|e| panic!("{kind}: the session died: {e}"));
    assert_ne!(third.access_token, second.access_token);
    assert_eq!(idp.refresh_attempts().await, 2, "{kind}: no refused refresh");
    let after = client.get_id_token(GetIdToken::default()).await.unwrap();
    assert_ne!(after.id_token, before.id_token, "{kind}");
    assert_eq!(jwt_claims(after.id_token.expose())["sub"], "alice");
}

cases! {
    a_forged_id_token_on_refresh_keeps_the_session => survives_a_bad_id_token("forged", "Signature");
    an_id_token_about_another_user_on_refresh_keeps_the_session => survives_a_bad_id_token("wrong_sub", "another user");
    an_id_token_for_another_party_on_refresh_keeps_the_session => survives_a_bad_id_token("foreign_azp", "azp");
    an_id_token_from_the_future_on_refresh_keeps_the_session => survives_a_bad_id_token("future_iat", "future");
    // openidconnect parses the ID token with the response: these fail before any verification.
    an_id_token_that_is_not_a_jwt_on_refresh_keeps_the_session => survives_a_bad_id_token("garbled", "cannot be read");
    an_id_token_with_an_unknown_alg_on_refresh_keeps_the_session => survives_a_bad_id_token("unknown_alg", "ES256K");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_a_refresh_token_is_not_ended_while_its_token_is_good() {
    let Env { bus, idp: _idp, daemon } =
        Fixture::new().account(|idp| idp.account_config_without_refresh("work")).logged_in("alice").await;
    let client = daemon.client().await;
    assert!(bus.keyring_entry("work").unwrap()["refresh_token"].is_null(), "no offline_access, no refresh token");
    let first = token(&client, None).await.unwrap();

    next_second().await;
    let err = token(&client, Some(60)).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::InvalidParams), "{err}");
    assert!(err.to_string().contains("no refresh token"), "{err}");
    assert_eq!(token(&client, None).await.unwrap().access_token, first.access_token, "the session lives on");
    assert!(bus.keyring_entry("work").is_some());
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::Valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_a_refresh_token_needs_a_login_once_its_token_has_expired() {
    let Env { bus: _bus, idp, daemon } =
        Fixture::new().access_ttl(2).account(|idp| idp.account_config_without_refresh("work")).logged_in("alice").await;
    let client = daemon.client().await;
    assert!(token(&client, None).await.is_ok());
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let err = token(&client, None).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::LoginRequired), "{err}");
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::LoginRequired);
    assert_eq!(idp.refresh_attempts().await, 0, "nothing to refresh with");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_with_a_foreign_azp_or_future_iat_still_fails() {
    let Env { bus, idp, daemon } = Fixture::new().start().await;
    let client = daemon.client().await;
    for kind in ["foreign_azp", "future_iat"] {
        idp.arm_id_token_fault(kind).await;
        let challenge = client.login(Login::default()).await.unwrap();
        idp.approve(challenge.user_code.as_deref().unwrap(), "alice").await;
        let err = client.await_login(&challenge.login_id).await.unwrap_err();
        assert!(err.to_string().contains("ID token failed verification"), "{kind}: {err}");
        assert!(bus.keyring_entry("work").is_none(), "{kind}: nothing stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_that_signs_id_tokens_with_es256_works_and_min_ttl_judges_their_lifetime() {
    let Env { bus: _bus, idp: _idp, daemon } =
        Fixture::new().idp(IdpOptions { id_token_alg: "ES256", ..Default::default() }).logged_in("alice").await;
    let client = daemon.client().await;
    let id = client.get_id_token(GetIdToken::default()).await.unwrap();
    assert_eq!(header_alg(id.id_token.expose()), "ES256");
    assert_eq!(client.status().await.unwrap().accounts[0].subject.as_deref(), Some("alice"));

    next_second().await;
    token(&client, Some(60)).await.unwrap();
    let renewed = client.get_id_token(GetIdToken::default()).await.unwrap();
    assert_ne!(renewed.id_token, id.id_token, "the refresh's ES256 ID token was accepted");
    assert!(!daemon.log().contains("refused the ID token"), "{}", daemon.log());

    // min_ttl judges ID tokens as it does access tokens: against the lifetime the IdP grants
    // (the harness's 3600 s), not against what is left a second after the refresh.
    next_second().await;
    let long = GetIdToken { min_ttl: Some(3600), ..Default::default() };
    let fresh = client.get_id_token(long).await.unwrap();
    assert_ne!(fresh.id_token, renewed.id_token, "refreshed for the caller");
    let err = client.get_id_token(GetIdToken { min_ttl: Some(3601), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::InvalidParams));
    assert!(err.to_string().contains("3600s"), "names the lifetime: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_numbers_from_the_idp_and_from_callers_stay_sane() {
    // 3,170 years.
    let idp = IdpOptions { access_ttl: 100_000_000_000, id_ttl: 100_000_000_000, ..Default::default() };
    let Env { bus, idp: _idp, daemon } = Fixture::new().idp(idp).logged_in("alice").await;
    let client = daemon.client().await;
    let year = 365 * 24 * 3600;

    let t = token(&client, None).await.unwrap();
    assert!(t.expires_at <= unix_now() + year, "expires_in is capped at a year: {}", t.expires_at);
    let id = client.get_id_token(GetIdToken::default()).await.unwrap();
    assert!(jwt_claims(id.id_token.expose())["exp"].as_i64().unwrap() > unix_now() + 100 * year, "the IdP's exp");
    assert!(id.expires_at <= unix_now() + year, "an ID token's exp is capped at a year: {}", id.expires_at);
    let status = client.status().await.unwrap();
    assert!(status.accounts[0].expires_at.unwrap() <= unix_now() + year);
    let out = daemon.brokerctl(&["status"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(token(&client, Some(year as u64)).await.is_ok(), "a year is within range");

    for (method, huge) in [("GetAccessToken", 1u64 << 63), ("GetAccessToken", u64::MAX), ("GetIdToken", 1 << 63)] {
        let line = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{{"min_ttl":{huge}}}}}"#);
        let r = RawConn::ask(&daemon.socket(), &line);
        assert_eq!(r["error"]["data"]["kind"], "invalid_params", "{method} {huge}: {r}");
        assert!(r["result"].is_null());
    }
    let err = token(&client, Some(1 << 63)).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::InvalidParams), "{err}");

    let gdbus = |method: &str, options: &str| {
        let out = bus
            .command("gdbus")
            .args(["call", "--session", "--dest", "io.github.tokenbroker.Broker1"])
            .args(["--object-path", "/io/github/tokenbroker/Broker1", "--method"])
            .arg(format!("io.github.tokenbroker.Broker1.{method}"))
            .args(["", options])
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for method in ["GetAccessToken", "GetIdToken"] {
        let (ok, err) = gdbus(method, "{'min_ttl': <uint64 9223372036854775808>}");
        assert!(!ok && err.contains("io.github.tokenbroker.Error.InvalidParams"), "{method}: {err}");
    }
    let (ok, err) = gdbus("GetAccessToken", "{'min_ttl': <uint64 60>}");
    assert!(ok, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_that_renews_id_tokens_only_at_login_is_not_asked_again_on_every_call() {
    let opts = IdpOptions { no_refresh_id_token: true, id_ttl: 2, ..Default::default() };
    let Env { bus: _bus, idp, daemon } = Fixture::new().idp(opts).logged_in("alice").await;
    let client = daemon.client().await;
    client.get_id_token(GetIdToken::default()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    for _ in 0..3 {
        let err = client.get_id_token(GetIdToken::default()).await.unwrap_err();
        assert_eq!(err.kind(), Some(ErrorKind::NotSupported), "{err}");
        assert!(err.to_string().contains("brokerctl login"), "{err}");
    }
    assert_eq!(idp.refreshes().await, 1, "one refresh to learn the IdP sends none, not one per call");
    assert_eq!(client.status().await.unwrap().accounts[0].subject.as_deref(), Some("alice"));
    token(&client, None).await.expect("the access token is served as before");
}
