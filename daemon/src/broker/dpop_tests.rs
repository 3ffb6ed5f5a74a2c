//! DPoP in the core, against the fake IdP: the key made at login, kept with the session
//! through refreshes and restarts, proven on every refresh, and GetDpopProof's answers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::Value;
use tokenbroker::ErrorKind;
use tokenbroker::protocol::{Flow, GetAccessToken, GetDpopProof, Login};

use super::fake_idp::{FakeIdp, World};

async fn dpop_world() -> World {
    let world =
        World::with_account(false, FakeIdp::new(3600), "", "dpop = true", crate::audit::Audit::off(), None).await;
    let challenge =
        super::login::login(&world.broker, Login { account: None, flow: Some(Flow::Device) }).await.unwrap();
    super::login::await_login(&world.broker, &challenge.login_id).await.unwrap();
    world
}

fn ask(htm: &str, htu: &str) -> GetDpopProof {
    GetDpopProof { htm: htm.into(), htu: htu.into(), ..Default::default() }
}

fn claims(proof: &str) -> Value {
    serde_json::from_slice(&B64.decode(proof.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

fn jkt(world: &World) -> String {
    world.broker.account(None).unwrap().session().unwrap().dpop.as_ref().unwrap().thumbprint().to_owned()
}

#[tokio::test]
async fn a_dpop_account_gets_bound_tokens_and_proofs_for_them() {
    let world = dpop_world().await;
    let answer = super::dpop::dpop_proof(&world.broker, ask("GET", "https://api.example.com/r?q=1#x")).await.unwrap();
    assert_eq!(answer.token_type, "DPoP");
    let c = claims(answer.proof.expose());
    assert_eq!((c["htm"].as_str(), c["htu"].as_str()), (Some("GET"), Some("https://api.example.com/r")));
    assert_eq!(c["ath"], crate::oidc::dpop::ath(answer.access_token.expose()));
    let grant = super::tokens::access_token(&world.broker, GetAccessToken::default()).await.unwrap();
    assert_eq!(grant.answer().token_type, "DPoP", "GetAccessToken says DPoP too");
    // The fake IdP refuses a refresh that does not prove the login's key.
    world.broker.account(None).unwrap().write(|s| s.session().unwrap().access.reject());
    let before = jkt(&world);
    super::tokens::access_token(&world.broker, GetAccessToken::default()).await.expect("refreshed with the key");
    assert_eq!(jkt(&world), before);
}

#[tokio::test]
async fn the_key_survives_a_restart_and_a_new_login_makes_a_new_one() {
    let mut world = dpop_world().await;
    let first = jkt(&world);
    world.restart().await;
    assert_eq!(jkt(&world), first, "the key came back from the store");
    let challenge =
        super::login::login(&world.broker, Login { account: None, flow: Some(Flow::Device) }).await.unwrap();
    super::login::await_login(&world.broker, &challenge.login_id).await.unwrap();
    assert_ne!(jkt(&world), first);
}

#[tokio::test]
async fn bad_requests_and_bearer_accounts_are_refused_clearly() {
    let world = dpop_world().await;
    for (htm, htu) in [("get", "https://a/"), ("GET", "http://api.example.com/"), ("GET", "relative")] {
        let e = super::dpop::dpop_proof(&world.broker, ask(htm, htu)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParams, "{htm} {htu}");
    }
    let bad_nonce = GetDpopProof { nonce: Some("a\"b".into()), ..ask("GET", "https://a/") };
    assert_eq!(super::dpop::dpop_proof(&world.broker, bad_nonce).await.unwrap_err().kind, ErrorKind::InvalidParams);

    let bearer = World::logged_in(false, FakeIdp::new(3600)).await;
    let e = super::dpop::dpop_proof(&bearer.broker, ask("GET", "https://a/")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotSupported);
    assert!(e.message.contains("dpop = true"), "{}", e.message);
}

#[tokio::test]
async fn a_session_stored_under_the_other_dpop_setting_is_not_used() {
    use crate::store::Backend;
    let bearer = World::logged_in(false, FakeIdp::new(3600)).await;
    let bound = dpop_world().await;
    let (plain, keyed) = (bearer.store.get("work").unwrap().unwrap(), bound.store.get("work").unwrap().unwrap());
    for (mut world, record) in [(bound, plain), (bearer, keyed)] {
        world.store.set("work", &record).unwrap();
        world.restart().await;
        assert!(world.broker.account(None).unwrap().session().is_none(), "a new login is needed");
    }
}

#[test]
fn doctor_says_whether_the_idp_takes_our_proofs() {
    use crate::oidc::Offers;
    let check = |dpop_es256| super::dpop::doctor_check("work", &Offers { dpop_es256, ..Offers::default() });
    assert!(check(Some(true)).ok && check(Some(true)).fix.is_none());
    assert!(!check(Some(false)).ok, "an IdP that lists other algorithms will refuse our proofs");
    let unlisted = check(None);
    assert!(unlisted.ok && unlisted.fix.is_some(), "a warning: it may still work");
}

/// A refresh that came back as a bearer token (an IdP whose DPoP was switched off) is kept, as
/// its refresh token is spent; GetDpopProof then says so instead of signing a proof for a token
/// no server will take with it.
#[tokio::test]
async fn an_unbound_token_gets_no_proof() {
    use super::token::Token;
    let world = dpop_world().await;
    let account = world.broker.account(None).unwrap();
    let old = account.session().unwrap();
    let bearer = Token::new(old.access.secret.clone(), "Bearer".into(), old.access.scopes.clone(), old.access.life);
    let session = super::Session {
        refresh_token: old.refresh_token.clone(),
        access: std::sync::Arc::new(bearer),
        id: old.id.clone(),
        id_current: old.id_current,
        subject: old.subject.clone(),
        dpop: old.dpop.clone(),
    };
    account.write(|s| s.log_in(std::sync::Arc::new(session)));
    let e = super::dpop::dpop_proof(&world.broker, ask("GET", "https://a/")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotSupported, "{}", e.message);
    assert!(e.message.contains("not a DPoP-bound one"), "{}", e.message);
}
