//! Machine accounts in the core, against the fake IdP under Tokio's paused clock: tokens on
//! demand by the client-credentials grant, one request for any crowd, nothing stored, and
//! what only a user has refused.

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokenbroker::ErrorKind;
use tokenbroker::protocol::{AccountOnly, AccountState, GetAccessToken, GetIdToken, GetProfile, Login};
use tokio::time::sleep;

use super::fake_idp::{Answer, FakeIdp, World};
use super::{Broker, Result};
use crate::store::Backend as _;

async fn token(broker: &Arc<Broker>, audience: Option<&str>) -> Result<String> {
    let p = GetAccessToken { audience: audience.map(Into::into), ..Default::default() };
    Ok(super::tokens::access_token(broker, p).await?.token.secret.expose_secret().to_owned())
}

fn crowd(broker: &Arc<Broker>, n: usize) -> Vec<tokio::task::JoinHandle<Result<String>>> {
    (0..n)
        .map(|_| {
            let broker = broker.clone();
            tokio::spawn(async move { token(&broker, None).await })
        })
        .collect()
}

/// Guards the single flight for machine accounts: a thousand callers with no token, then a
/// thousand on an expired one, make one client-credentials request each time. And that no
/// scheduler asks ahead of time meanwhile (IdPs meter these tokens): it fails with proactive
/// refresh on for machine accounts (checked).
#[tokio::test(start_paused = true)]
async fn a_thousand_callers_make_one_token_request_and_an_expired_token_is_renewed() {
    let world = World::machine(FakeIdp::new(60)).await;
    for round in 0..2 {
        world.idp.then(Answer::Tokens { expires_in: 60, rotate: false }.held());
        let waiting = crowd(&world.broker, 1000);
        sleep(Duration::from_millis(10)).await;
        assert_eq!(world.idp.grants().len(), round + 1, "one request reached the IdP");
        world.idp.release();
        for caller in waiting {
            assert_eq!(caller.await.unwrap().unwrap(), format!("at-{round}"));
        }
        assert_eq!(token(&world.broker, None).await.unwrap(), format!("at-{round}"), "cached");
        sleep(Duration::from_secs(61)).await;
    }
    assert_eq!(world.idp.grants(), [Some("https://api".to_owned()), Some("https://api".to_owned())]);
    assert_eq!(world.store.get("ci").unwrap(), None, "nothing stored");
}

/// Guards the first request of a machine account: a `min_ttl` is judged on the token the IdP
/// grants, not on the empty session that holds its place before one.
#[tokio::test(start_paused = true)]
async fn a_min_ttl_is_judged_on_the_first_token_not_on_the_empty_session() {
    let world = World::machine(FakeIdp::new(60)).await;
    let p = GetAccessToken { min_ttl: Some(30), ..Default::default() };
    let grant = super::tokens::access_token(&world.broker, p).await.unwrap();
    assert_eq!(grant.token.secret.expose_secret(), "at-0");
    let p = GetAccessToken { min_ttl: Some(120), ..Default::default() };
    let Err(e) = super::tokens::access_token(&world.broker, p).await else { panic!("min_ttl 120 was served") };
    assert!(e.kind == ErrorKind::InvalidParams && e.message.contains("lifetime of 60s"), "{e}");
}

/// Guards tokens per audience: each of the account's APIs has its own token and request;
/// an API it is not configured for is refused without asking the IdP.
#[tokio::test(start_paused = true)]
async fn each_audience_gets_its_own_token() {
    let world = World::machine(FakeIdp::new(60)).await;
    let api = token(&world.broker, None).await.unwrap();
    let reports = token(&world.broker, Some("https://reports")).await.unwrap();
    assert_ne!(api, reports);
    assert_eq!(token(&world.broker, Some("https://reports")).await.unwrap(), reports, "cached");
    assert_eq!(world.idp.grants(), [Some("https://api".to_owned()), Some("https://reports".to_owned())]);
    let e = token(&world.broker, Some("https://elsewhere")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidParams, "{e}");
    assert_eq!(world.idp.grants().len(), 2);
}

/// Guards what a machine account is not: no login, ID token, profile or metadata
/// (`not_supported`); `Status` says it is a machine account, with no subject; `Logout`
/// forgets its tokens, so the next caller gets a new one; a refused client is `access_denied`.
#[tokio::test(start_paused = true)]
async fn no_login_status_says_machine_logout_forgets_and_a_refused_client_is_access_denied() {
    let world = World::machine(FakeIdp::new(60)).await;
    let b = &world.broker;
    let account = || Some("ci".to_owned());
    let refused = [
        super::login::login(b, Login { account: account(), flow: None }).await.err(),
        super::tokens::id_token(b, GetIdToken { account: account(), ..Default::default() }).await.err(),
        super::profile::profile(b, GetProfile { account: account(), ..Default::default() }).await.err(),
        super::metadata::metadata(b, AccountOnly { account: account() }).await.err(),
    ];
    for e in refused {
        let e = e.expect("refused");
        assert!(e.kind == ErrorKind::NotSupported && e.message.contains("machine account"), "{e}");
    }

    let status = || b.status().accounts.into_iter().next().unwrap();
    let s = status();
    assert_eq!(
        (s.kind.as_deref(), s.state, s.expires_at, s.persisted),
        (Some("machine"), AccountState::Expired, None, None)
    );
    token(b, None).await.unwrap();
    let s = status();
    assert_eq!((s.state, s.subject.as_deref(), s.persisted), (AccountState::Valid, None, None));
    assert!(s.expires_at.is_some());

    let done = super::logout::logout(b, AccountOnly { account: account() }).await.unwrap();
    assert_eq!(done.was_logged_in, Some(true));
    assert_eq!(status().state, AccountState::Expired);
    assert_eq!(token(b, None).await.unwrap(), "at-1", "a new token after the logout");

    world.idp.then(Answer::InvalidGrant);
    super::logout::logout(b, AccountOnly { account: account() }).await.unwrap();
    let e = token(b, None).await.unwrap_err();
    assert!(e.kind == ErrorKind::AccessDenied && e.message.contains("client's credentials"), "{e}");
}
