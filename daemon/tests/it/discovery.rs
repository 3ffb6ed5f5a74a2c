//! IdPs that publish endpoints outside OIDC discovery (RFC 8414 metadata, or only in the
//! account's config), `doctor`'s report of what an IdP offers, and refusals that name the
//! config key to change.

use tokenbroker::ErrorKind;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

const DEVICE: &str = "device_authorization_endpoint";
const REVOCATION: &str = "revocation_endpoint";
const USERINFO: &str = "userinfo_endpoint";

fn doctor(daemon: &Daemon) -> String {
    let out = daemon.brokerctl(&["doctor"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Log in, then log out: the refresh token must be revoked at the IdP.
async fn login_and_revoking_logout(daemon: &Daemon, idp: &Idp) {
    daemon.login(idp, None, "alice").await;
    let client = daemon.client().await;
    let done = client.logout(AccountOnly::default()).await.unwrap();
    assert!(done.revoked, "logout revoked nothing");
    assert_eq!(idp.stats().await["revocation"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_and_revocation_with_endpoints_only_in_rfc8414_metadata() {
    let Env { bus: _bus, idp, daemon } =
        Fixture::new().idp(IdpOptions { rfc8414_only: &[DEVICE, REVOCATION], ..Default::default() }).start().await;
    login_and_revoking_logout(&daemon, &idp).await;
    let text = doctor(&daemon);
    assert!(
        text.contains(
            "ok   features of work: offers device flow, code flow, revocation, end session, userinfo, refresh tokens; lacks nothing"
        ),
        "{text}"
    );
}

/// RFC 8414 metadata that is briefly unavailable is not remembered as missing: the login that
/// met the 503 fails as a transient fault, and the next one finds the device endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc8414_metadata_unavailable_once_is_fetched_again() {
    let opts = IdpOptions { rfc8414_only: &[DEVICE, REVOCATION], rfc8414_unavailable: 1, ..Default::default() };
    let Env { bus: _bus, idp, daemon } = Fixture::new().idp(opts).start().await;
    let client = daemon.client().await;
    let err = client.login(Login::default()).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::IdpUnavailable), "{err}");
    login_and_revoking_logout(&daemon, &idp).await;
    assert_eq!(idp.stats().await["server_metadata"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_overrides_name_the_endpoints_an_idp_lists_nowhere() {
    // Without overrides: discovery still works (the RFC 8414 404 is no error), the device
    // flow is missing and doctor says which keys would fix it.
    let unlisted = IdpOptions { unlisted: &[DEVICE, REVOCATION, USERINFO], no_rfc8414: true, ..Default::default() };
    let Env { bus, idp, daemon } = Fixture::new().idp(unlisted).start().await;
    let err = daemon.client().await.login(Login::default()).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotSupported), "{err}");
    assert!(idp.stats().await["server_metadata"].as_u64().unwrap() >= 1, "RFC 8414 metadata was looked for");
    let text = doctor(&daemon);
    assert!(text.contains("ok   identity provider of work"), "{text}");
    assert!(!text.contains("RFC 8414 metadata was not used"), "a 404 means none, not a fault: {text}");
    assert!(
        text.contains("FAIL features of work") && text.contains("lacks device flow, revocation, userinfo"),
        "{text}"
    );
    assert!(text.contains("flow = \"code\"") && text.contains(DEVICE), "{text}");
    drop(daemon);

    let iss = &idp.issuer;
    let config = format!(
        "{}device_authorization_endpoint = \"{iss}/device/auth\"\nrevocation_endpoint = \"{iss}/token/revocation\"\n\
         userinfo_endpoint = \"{iss}/me\"\n",
        idp.account_config("work")
    );
    let daemon = Daemon::start(&bus, &config);
    daemon.login(&idp, None, "alice").await;
    let profile = daemon.client().await.get_profile(GetProfile::default()).await.unwrap();
    assert_eq!(profile.claims["email"], "alice@example.com");
    let done = daemon.client().await.logout(AccountOnly::default()).await.unwrap();
    assert!(done.revoked, "logout revoked nothing");
    let text = doctor(&daemon);
    assert!(text.contains("ok   features of work"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_compares_scopes_and_fetches_no_rfc8414_metadata_it_does_not_need() {
    let two_accounts = |idp: &Idp| format!("{}{}", idp.account_config("work"), idp.api_account_config("api"));
    let Env { bus: _bus, idp, daemon } = Fixture::new().account(two_accounts).start().await;
    let out = daemon.brokerctl(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "warnings are no failure: {text}");
    assert!(text.contains("ok   scopes of work: the IdP lists all 4"), "{text}");
    // The harness's API scopes are granted by audience, not listed in scopes_supported.
    assert!(text.contains("warn scopes of api: the IdP's scopes_supported does not list api:read"), "{text}");
    assert!(text.contains("remove those from scopes in [accounts.api]"), "{text}");
    assert_eq!(idp.stats().await["server_metadata"], 0, "discovery listed everything");
}

/// A login the daemon refuses with `kind` before anyone is asked to approve it: the daemon,
/// and what it said.
async fn refused_login(fixture: Fixture, kind: ErrorKind) -> (Env, String) {
    let env = fixture.start().await;
    let err = env.daemon.client().await.login(Login::default()).await.unwrap_err();
    assert_eq!(err.kind(), Some(kind), "{err}");
    (env, err.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_client_names_the_flow_key() {
    let grants = &["authorization_code", "refresh_token"];
    let idp = IdpOptions { client_grant_types: Some(grants), ..Default::default() };
    let (Env { bus: _bus, idp: _idp, daemon }, text) =
        refused_login(Fixture::new().idp(idp), ErrorKind::NotSupported).await;
    assert!(text.contains("device code grant") && text.contains("flow = \"code\" in [accounts.work]"), "{text}");
    assert!(!text.contains("issuer and client_id"), "{text}");
    let out = daemon.brokerctl(&["login", "--no-browser"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("flow = \"code\""), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_the_idp_does_not_offer_names_the_scopes_key() {
    let scopes = |idp: &Idp| {
        format!("{}scopes = [\"openid\", \"offline_access\", \"nosuch:scope\"]\n", idp.account_config("work"))
    };
    let (_env, text) = refused_login(Fixture::new().account(scopes), ErrorKind::InvalidParams).await;
    assert!(text.contains("nosuch:scope") && text.contains("`scopes` in [accounts.work]"), "{text}");
    assert!(!text.contains("issuer and client_id"), "{text}");
}

/// A discovery document that names another issuer is refused as a configuration error, not
/// retried as an outage: OIDC Discovery §4.3 wants the issuer to match exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_document_for_another_issuer_is_refused_and_named() {
    let misnamed = |idp: &Idp| {
        let other = if idp.issuer.ends_with('/') {
            idp.issuer.trim_end_matches('/').to_owned()
        } else {
            format!("{}/", idp.issuer)
        };
        format!("[accounts.work]\nissuer = \"{other}\"\nclient_id = \"tokenbroker-test\"\n")
    };
    let (Env { bus, idp: _idp, daemon: _daemon }, text) =
        refused_login(Fixture::new().account(misnamed), ErrorKind::Internal).await;
    assert!(text.contains("issuer") && text.contains("check the account's issuer"), "{text}");
    assert!(bus.keyring_entry("work").is_none());
}
