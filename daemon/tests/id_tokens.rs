//! ID tokens against a strict IdP: a bad one in a refresh costs the session nothing (the IdP
//! rotates refresh tokens with reuse detection, so replaying the spent one would end it), an
//! IdP that signs with ES256 works.

mod support;

use support::*;
use tokenbroker::protocol::*;

fn header_alg(jwt: &str) -> String {
    use base64::Engine;
    let header = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap();
    serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()["alg"].as_str().unwrap().to_owned()
}

/// One refresh answers with a bad ID token of `kind`; `why` is in the logged reason.
async fn a_bad_id_token_on_refresh_keeps_the_session(kind: &str, why: &str) {
    let bus = Bus::start();
    let idp = Idp::start(IdpOptions::default()).await;
    let daemon = Daemon::start(&bus, &idp.account_config("work"));
    daemon.login(&idp, None, "alice").await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_id_token_on_refresh_keeps_the_session() {
    a_bad_id_token_on_refresh_keeps_the_session("forged", "Signature").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_about_another_user_on_refresh_keeps_the_session() {
    a_bad_id_token_on_refresh_keeps_the_session("wrong_sub", "another user").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_for_another_party_on_refresh_keeps_the_session() {
    a_bad_id_token_on_refresh_keeps_the_session("foreign_azp", "azp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_from_the_future_on_refresh_keeps_the_session() {
    a_bad_id_token_on_refresh_keeps_the_session("future_iat", "future").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_with_a_foreign_azp_or_future_iat_still_fails() {
    let bus = Bus::start();
    let idp = Idp::start(IdpOptions::default()).await;
    let daemon = Daemon::start(&bus, &idp.account_config("work"));
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
async fn an_idp_that_signs_id_tokens_with_es256_works() {
    let bus = Bus::start();
    let idp = Idp::start(IdpOptions { id_token_alg: "ES256", ..Default::default() }).await;
    let daemon = Daemon::start(&bus, &idp.account_config("work"));
    daemon.login(&idp, None, "alice").await;
    let client = daemon.client().await;
    let id = client.get_id_token(GetIdToken::default()).await.unwrap();
    assert_eq!(header_alg(id.id_token.expose()), "ES256");
    assert_eq!(client.status().await.unwrap().accounts[0].subject.as_deref(), Some("alice"));

    next_second().await;
    token(&client, Some(60)).await.unwrap();
    let renewed = client.get_id_token(GetIdToken::default()).await.unwrap();
    assert_ne!(renewed.id_token, id.id_token, "the refresh's ES256 ID token was accepted");
    assert!(!daemon.log().contains("refused the ID token"), "{}", daemon.log());
}
