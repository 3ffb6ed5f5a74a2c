//! Machine accounts (`grant = "client_credentials"`) against the test IdP's machine clients
//! (testidp/machine.mjs): a secret from a systemd-style credentials directory or from a
//! command, or private_key_jwt; one token request for a crowd; no secret in the logs.

use std::path::Path;
use std::time::Duration;

use tokenbroker::ErrorKind;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

const SECRET: &str = "machine-secret-d41e8c7a0f9b";

/// A machine account `ci` on the IdP, for its API, authenticated by `auth` (config lines).
fn machine_account(idp: &Idp, client_id: &str, auth: &str) -> String {
    format!(
        "[accounts.ci]\nissuer = \"{}\"\nclient_id = \"{client_id}\"\ngrant = \"client_credentials\"\n{auth}\
         audience = \"{API}\"\naudience_param = \"resource\"\naudiences = [\"{REPORTS}\"]\n\
         scopes = [\"api:read\", \"reports:read\"]\n",
        idp.issuer
    )
}

async fn client_credentials_requests(idp: &Idp) -> u64 {
    idp.stats().await["token"]["client_credentials:200"].as_u64().unwrap_or(0)
}

fn aud(token: &AccessToken) -> String {
    jwt_claims(token.access_token.expose())["aud"].as_str().unwrap().to_owned()
}

/// No login, `kind: machine`; a thousand callers on an expired token make one request; the
/// secret and the tokens never reach the trace log; nothing in the keyring; doctor checks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_secret_serves_a_crowd_with_one_request_and_stays_out_of_the_logs() {
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("idp-secret"), format!("{SECRET}\n")).unwrap();
    let Env { bus, idp, daemon } = Fixture::new()
        .access_ttl(3)
        .log_level("trace")
        .env("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())
        .account(|idp| machine_account(idp, "tokenbroker-machine", "client_secret_credential = \"idp-secret\"\n"))
        .start()
        .await;
    let client = daemon.client().await;
    let mut tokens = Vec::new();

    let status = client.status().await.unwrap();
    assert_eq!(status.accounts[0].kind.as_deref(), Some("machine"));
    assert_eq!(status.accounts[0].subject, None);
    let first = token(&client, None).await.unwrap();
    assert_eq!((aud(&first), first.scope.as_deref()), (API.to_owned(), Some("api:read")));
    assert_eq!(jwt_claims(first.access_token.expose())["client_id"], "tokenbroker-machine");
    let reports =
        client.get_access_token(GetAccessToken { audience: Some(REPORTS.into()), ..Default::default() }).await.unwrap();
    assert_eq!((aud(&reports), reports.scope.as_deref()), (REPORTS.to_owned(), Some("reports:read")));
    assert_eq!(client_credentials_requests(&idp).await, 2, "one per audience");
    assert_eq!(token(&client, None).await.unwrap().access_token, first.access_token, "cached");
    tokens.extend([first.access_token.expose().to_owned(), reports.access_token.expose().to_owned()]);

    // Expired: a thousand callers at once, on a hundred connections, make one request.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(daemon.client().await);
    }
    let calls = (0..1000).map(|i| token(&clients[i % 100], None));
    let results: Vec<AccessToken> =
        futures_util::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    let distinct: std::collections::HashSet<&str> = results.iter().map(|t| t.access_token.expose()).collect();
    assert_eq!(distinct.len(), 1, "every caller got the one new token");
    assert!(!distinct.contains(first.access_token.expose()), "a new token, not the expired one");
    assert_eq!(client_credentials_requests(&idp).await, 3, "one request for the thousand");
    tokens.push(results[0].access_token.expose().to_owned());

    let status = daemon.brokerctl(&["status"]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success() && text.contains("ci (default)  machine account, token expires"), "{text}");
    let refused = client.login(Login { account: None, flow: None }).await.unwrap_err();
    assert_eq!(refused.kind(), Some(ErrorKind::NotSupported), "{refused}");
    let refused = client.get_id_token(GetIdToken::default()).await.unwrap_err();
    assert_eq!(refused.kind(), Some(ErrorKind::NotSupported), "{refused}");
    let doctor = daemon.brokerctl(&["doctor"]);
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(report.contains("client_secret_credential \"idp-secret\" can be read"), "{report}");
    assert!(report.contains("offers the client credentials grant and client_secret_basic"), "{report}");
    assert_eq!(bus.keyring_entry("ci"), None, "nothing stored");

    let log = daemon.log();
    assert!(log.contains("TRACE"), "the log is at trace level");
    assert!(!log.contains(SECRET) && !report.contains(SECRET), "the secret is in the log");
    // Nor as it travels, in the Basic header (base64 of client_id:secret).
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("tokenbroker-machine:{SECRET}"));
    assert!(!log.contains(&basic[..basic.len() - 4]), "the Basic header is in the log");
    for t in &tokens {
        assert!(!log.contains(t.as_str()), "a token is in the log");
    }
}

/// The command is run for every token request (so a rotated secret is picked up); a wrong
/// secret is `access_denied`, named as the client's credentials, without the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_secret_is_read_per_request_and_a_wrong_one_is_access_denied() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, SECRET).unwrap();
    let command = format!("client_secret_command = [\"cat\", \"{}\"]\n", file.display());
    let Env { bus: _bus, idp, daemon } = Fixture::new()
        .log_level("trace")
        .account(move |idp| machine_account(idp, "tokenbroker-machine", &command))
        .start()
        .await;
    let client = daemon.client().await;
    token(&client, None).await.unwrap();

    std::fs::write(&file, "wrong-secret-5b7f\n").unwrap();
    let forgot = client.logout(AccountOnly::default()).await.unwrap();
    assert_eq!(forgot.was_logged_in, Some(true));
    let refused = token(&client, None).await.unwrap_err();
    assert_eq!(refused.kind(), Some(ErrorKind::AccessDenied), "{refused}");
    assert!(refused.to_string().contains("refused the client's credentials"), "{refused}");
    assert!(!refused.to_string().contains("wrong-secret"), "{refused}");
    let out = daemon.brokerctl(&["token"]);
    assert_eq!(out.status.code(), Some(6), "brokerctl exits 6, access denied");
    assert_eq!(idp.stats().await["token"]["client_credentials:401"].as_u64(), Some(2));

    std::fs::write(&file, SECRET).unwrap();
    token(&client, None).await.expect("the right secret again, without a restart");
    let log = daemon.log();
    assert!(!log.contains(SECRET) && !log.contains("wrong-secret"), "a secret is in the log");
}

/// A credential named in the config, with the daemon not started by systemd: the request and
/// doctor say what is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_without_credentials_directory_says_so() {
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new()
        .account(|idp| machine_account(idp, "tokenbroker-machine", "client_secret_credential = \"idp-secret\"\n"))
        .start()
        .await;
    let client = daemon.client().await;
    let refused = token(&client, None).await.unwrap_err();
    assert!(refused.to_string().contains("CREDENTIALS_DIRECTORY is not set"), "{refused}");
    let doctor = daemon.brokerctl(&["doctor"]);
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert!(report.contains("LoadCredential=idp-secret"), "{report}");
}

/// private_key_jwt with the ES256 test key: a signed assertion per request, never logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_key_jwt_client_gets_tokens_and_its_assertions_stay_out_of_the_logs() {
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/oidc/test_keys/ec.pem");
    let auth = format!("client_assertion_key = \"{}\"\n", key.display());
    let Env { bus: _bus, idp, daemon } = Fixture::new()
        .log_level("trace")
        .account(move |idp| machine_account(idp, "tokenbroker-machine-jwt", &auth))
        .start()
        .await;
    let client = daemon.client().await;
    let t = token(&client, None).await.unwrap();
    assert_eq!(jwt_claims(t.access_token.expose())["client_id"], "tokenbroker-machine-jwt");
    client.get_access_token(GetAccessToken { audience: Some(REPORTS.into()), ..Default::default() }).await.unwrap();
    assert_eq!(client_credentials_requests(&idp).await, 2);
    let stats = idp.stats().await;
    let assertions: Vec<&str> = stats["secrets"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
    assert_eq!(assertions.len(), 2, "a fresh assertion per request");
    let log = daemon.log();
    for a in assertions {
        assert!(!log.contains(a), "an assertion is in the log");
    }
    assert!(!log.contains(t.access_token.expose()));
}

/// A machine account with `dpop = true`: its client-credentials tokens are bound to a key the
/// daemon holds (in memory, like the tokens), and a resource server takes them only with the
/// broker's proof; the bearer-only adapters refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_machine_account_gets_bound_tokens_and_proofs_for_them() {
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("idp-secret"), SECRET).unwrap();
    let Env { bus: _bus, idp, daemon } = Fixture::new()
        .env("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())
        .account(|idp| {
            machine_account(idp, "tokenbroker-machine", "client_secret_credential = \"idp-secret\"\ndpop = true\n")
        })
        .start()
        .await;
    let resource = Resource::start(&idp, false);
    let client = daemon.client().await;
    let url = format!("{}/jobs", resource.url);
    let ask = GetDpopProof { htm: "GET".into(), htu: url.clone(), ..Default::default() };
    let answer = client.get_dpop_proof(ask).await.unwrap();
    assert_eq!(answer.token_type, "DPoP");
    let jkt = jwt_claims(answer.access_token.expose())["cnf"]["jkt"].clone();
    assert!(jkt.is_string(), "the token is bound to a key: {jkt}");
    let http = reqwest::Client::new();
    let send = |proof: Option<&str>, scheme: &str| {
        let mut request = http.get(&url).header("authorization", format!("{scheme} {}", answer.access_token.expose()));
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        request.send()
    };
    let ok = send(Some(answer.proof.expose()), "DPoP").await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert_eq!(body["jkt"], jkt);
    assert_eq!(send(None, "Bearer").await.unwrap().status().as_u16(), 401, "the token alone");
    assert_eq!(token(&client, None).await.unwrap().token_type, "DPoP");
    assert_eq!(
        idp.stats().await["token"]["client_credentials:200"].as_u64(),
        Some(1),
        "the proof's token is the cached one"
    );
    let out = daemon.brokerctl(&["exec", "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "a bearer-only adapter refuses a DPoP account");
}

/// private_key_jwt with `dpop = true` at an IdP that demands DPoP nonces: the first request is
/// refused for want of one after the IdP has seen its assertion, which is single-use, so the
/// retry carries the nonce and a newly signed assertion (resending the first is refused as a
/// replay: `invalid_client`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_key_jwt_client_answers_a_dpop_nonce_with_a_new_assertion() {
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/oidc/test_keys/ec.pem");
    let auth = format!("client_assertion_key = \"{}\"\ndpop = true\n", key.display());
    let Env { bus: _bus, idp, daemon } = Fixture::new()
        .idp(IdpOptions { dpop_nonce: true, ..Default::default() })
        .account(move |idp| machine_account(idp, "tokenbroker-machine-jwt", &auth))
        .start()
        .await;
    let client = daemon.client().await;
    let t = token(&client, None).await.unwrap();
    assert_eq!(t.token_type, "DPoP");
    let stats = idp.stats().await;
    assert_eq!(stats["dpop_nonce"]["client_credentials"], 1, "one refusal for a nonce: {stats}");
    assert_eq!(stats["token"]["client_credentials:200"], 1, "{stats}");
    let assertions = stats["secrets"].as_array().unwrap();
    assert_eq!(assertions.len(), 2, "a new assertion for the retry: {stats}");
    assert_ne!(assertions[0], assertions[1]);
}
