//! DPoP (RFC 9449) end to end: oidc-provider binds the tokens to the account's key, and a
//! resource server (`testidp/resource.mjs`) takes a token only with a fresh proof of that key.

use serde_json::Value;
use tokenbroker::protocol::{AccountOnly, GetAccessToken, GetDpopProof};
use tokenbroker_testkit::*;

fn dpop_account(idp: &Idp) -> String {
    format!("{}dpop = true\n", idp.api_account_config("work"))
}

fn ask(htu: &str) -> GetDpopProof {
    GetDpopProof { htm: "GET".into(), htu: htu.into(), ..Default::default() }
}

/// GET `url` with the headers of `proof`: the status and the JSON answer.
async fn call(url: &str, authorization: &str, proof: Option<&str>) -> (u16, Value, Option<String>) {
    let mut request = reqwest::Client::new().get(url).header("authorization", authorization);
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    let response = request.send().await.unwrap();
    let nonce = response.headers().get("dpop-nonce").map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), response.json().await.unwrap(), nonce)
}

/// A proof from the broker for GET `url`, used at once: the answer.
async fn use_proof(daemon: &Daemon, p: GetDpopProof) -> (u16, Value, Option<String>) {
    let url = p.htu.clone();
    let answer = daemon.client().await.get_dpop_proof(p).await.unwrap();
    assert_eq!(answer.token_type, "DPoP");
    call(&url, &format!("DPoP {}", answer.access_token.expose()), Some(answer.proof.expose())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_token_works_only_with_a_fresh_proof_of_the_brokers_key() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().account(dpop_account).logged_in("alice").await;
    let resource = Resource::start(&idp, false);
    let client = daemon.client().await;
    assert_eq!(client.get_access_token(GetAccessToken::default()).await.unwrap().token_type, "DPoP");

    let url = format!("{}/things?page=2", resource.url);
    let answer = client.get_dpop_proof(ask(&url)).await.unwrap();
    let authorization = format!("DPoP {}", answer.access_token.expose());
    let (status, body, _) = call(&url, &authorization, Some(answer.proof.expose())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub"], "alice");

    let (status, body, _) = call(&url, &authorization, Some(answer.proof.expose())).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_dpop_proof")), "a replayed proof: {body}");
    let bearer = format!("Bearer {}", answer.access_token.expose());
    assert_eq!(call(&url, &bearer, None).await.0, 401, "the token alone, as a bearer token");
    let (status, body, _) = call(&url, &authorization, None).await;
    assert_eq!(status, 401, "the token without a proof: {body}");
    let other = format!("{}/elsewhere", resource.url);
    let (status, body, _) = call(&other, &authorization, Some(answer.proof.expose())).await;
    assert_eq!(status, 401, "a proof for another URL: {body}");

    // A token for another API: got with a DPoP-proven refresh, bound to the same key.
    let api = GetDpopProof { audience: Some(API.into()), ..ask(&url) };
    let (status, api_body, _) = use_proof(&daemon, api).await;
    assert_eq!(status, 200, "{api_body}");
    assert_eq!(api_body["jkt"], body_jkt(&daemon, &url).await);
}

async fn body_jkt(daemon: &Daemon, url: &str) -> Value {
    let (status, body, _) = use_proof(daemon, ask(url)).await;
    assert_eq!(status, 200, "{body}");
    body["jkt"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonces_demanded_by_the_idp_and_by_the_resource_server_each_cost_one_retry() {
    let idp = IdpOptions { dpop_nonce: true, ..Default::default() };
    let Env { bus: _bus, idp, daemon } = Fixture::new().idp(idp).account(dpop_account).logged_in("alice").await;
    // The device poll's first request was refused for want of a nonce, and only the first:
    // the retry carried it, and later polls the nonce remembered.
    assert_eq!(idp.stats().await["dpop_nonce"], serde_json::json!({"device_code": 1}));

    let resource = Resource::start(&idp, true);
    let url = format!("{}/r", resource.url);
    let (status, body, nonce) = use_proof(&daemon, ask(&url)).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("use_dpop_nonce")), "{body}");
    let p = GetDpopProof { nonce: nonce.clone(), ..ask(&url) };
    let (status, body, _) = use_proof(&daemon, p).await;
    assert_eq!(status, 200, "the retry with the resource server's nonce: {body}");

    // A refresh (for another API) at the IdP that demands nonces.
    let api = GetDpopProof { audience: Some(API.into()), nonce, ..ask(&url) };
    let (status, body, _) = use_proof(&daemon, api).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(idp.refreshes().await, 1);
    assert_eq!(idp.stats().await["dpop_nonce"]["refresh_token"], Value::Null, "the refresh used the nonce known");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_survives_a_kill_and_goes_with_logout() {
    let Env { bus, idp, mut daemon } = Fixture::new().account(dpop_account).logged_in("alice").await;
    let resource = Resource::start(&idp, false);
    let url = format!("{}/r", resource.url);
    let first = body_jkt(&daemon, &url).await;

    let stored = bus.keyring_entry("work").unwrap();
    let key = stored["dpop_key"].as_str().expect("the key is kept with the session").to_owned();
    daemon.kill9();
    daemon.spawn(&bus);
    assert_eq!(body_jkt(&daemon, &url).await, first, "the same key after SIGKILL and a restart");

    let client = daemon.client().await;
    let status = serde_json::to_string(&client.status().await.unwrap()).unwrap();
    let answer = client.get_dpop_proof(ask(&url)).await.unwrap();
    let answers = format!("{status}{}{}", answer.access_token.expose(), answer.proof.expose());
    assert!(!answers.contains(&key) && !daemon.log().contains(&key), "the key is in no answer and no log");

    client.logout(AccountOnly::default()).await.unwrap();
    assert!(bus.keyring_entry("work").is_none());
    daemon.login(&idp, None, "alice").await;
    assert_ne!(body_jkt(&daemon, &url).await, first, "a new login, a new key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_without_dpop_gets_a_clear_refusal() {
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().logged_in("alice").await;
    let e = daemon.client().await.get_dpop_proof(ask("https://api.example.test/")).await.unwrap_err();
    assert_eq!(e.kind(), Some(tokenbroker::ErrorKind::NotSupported), "{e}");
    assert!(e.to_string().contains("dpop = true"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokerctl_prints_the_two_headers_and_bearer_only_tools_refuse_a_dpop_account() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().account(dpop_account).logged_in("alice").await;
    let resource = Resource::start(&idp, false);
    let url = format!("{}/r?x=1", resource.url);
    let out = daemon.brokerctl(&["dpop", "--method", "GET", "--url", &url]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    let (Some(authorization), Some(proof)) =
        (lines[0].strip_prefix("Authorization: "), lines.get(1).and_then(|l| l.strip_prefix("DPoP: ")))
    else {
        panic!("two header lines: {text:?}")
    };
    let (status, body, _) = call(&url, authorization, Some(proof)).await;
    assert_eq!(status, 200, "{body}");

    // The contract's header for the token's type, with a note of what must go with it.
    let out = daemon.brokerctl(&["token", "--header"]);
    let header = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success() && header.starts_with("Authorization: DPoP ") && header.len() > 30, "{header:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("brokerctl dpop --method"));
    for args in [&["exec", "--", "true"][..], &["kube-credential"]] {
        let out = daemon.brokerctl(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("brokerctl dpop --method"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: no token printed");
    }
    let out = daemon.brokerctl(&["token"]);
    assert!(out.status.success(), "a bare token is still printed (to inspect it)");
    let bad = daemon.brokerctl(&["dpop", "--method", "get", "--url", &url]);
    assert_eq!(bad.status.code(), Some(1), "{}", String::from_utf8_lossy(&bad.stderr));
}

/// The client crate's recipe for a resource server's nonce challenge (RFC 9449 §9), and the
/// same proofs over D-Bus: the typed `GetDpopProof` and the client's `Call`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_answers_a_nonce_challenge_and_d_bus_gives_proofs_too() {
    let Env { bus, idp, daemon } = Fixture::new().account(dpop_account).logged_in("alice").await;
    let resource = Resource::start(&idp, true);
    let url = format!("{}/r", resource.url);
    let client = daemon.client().await;
    let send = |d: tokenbroker::protocol::DpopProof| {
        let url = url.clone();
        async move {
            let [(_, authorization), (_, proof)] = d.headers();
            let response = reqwest::Client::new()
                .get(&url)
                .header("authorization", authorization)
                .header("dpop", proof)
                .send()
                .await
                .unwrap();
            let header = |n: &str| response.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
            (response.status().as_u16(), header("www-authenticate"), header("dpop-nonce"))
        }
    };
    let (status, www, nonce) = send(client.dpop_headers("GET", &url).await.unwrap()).await;
    let nonce = tokenbroker::dpop::nonce_challenge(status, www.as_deref(), nonce.as_deref()).expect("a challenge");
    let (status, _, _) = send(client.dpop_headers_with_nonce("GET", &url, Some(nonce)).await.unwrap()).await;
    assert_eq!(status, 200);

    let dbus = bus.dbus_client().await;
    let options = std::collections::HashMap::from([("nonce", zbus::zvariant::Value::from(nonce))]);
    let (token, proof, expires_at) = dbus.proxy().get_dpop_proof("", "GET", &url, options).await.unwrap();
    assert!(expires_at > 0);
    let (status, body, _) = call(&url, &format!("DPoP {token}"), Some(&proof)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = send(dbus.dpop_headers("GET", &url).await.unwrap()).await;
    assert_eq!(status, 401, "no nonce: challenged again");
}

/// The code flow proves the key at its code exchange, and userinfo (the daemon's own request
/// to a resource) sends the bound token with a proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_flow_binds_the_token_and_userinfo_is_asked_with_a_proof() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().account(dpop_account).start().await;
    let client = daemon.client().await;
    let login = tokenbroker::protocol::Login { account: None, flow: Some(tokenbroker::protocol::Flow::Code) };
    let challenge = client.login(login).await.unwrap();
    let report = idp.browse_code(challenge.authorization_url.as_deref().unwrap(), "alice", false).await;
    assert_eq!(report["ok"], true, "{report}");
    client.await_login(&challenge.login_id).await.unwrap();
    assert_eq!(client.get_access_token(GetAccessToken::default()).await.unwrap().token_type, "DPoP");
    let profile = client.get_profile(tokenbroker::protocol::GetProfile { refresh: true, ..Default::default() });
    assert_eq!(profile.await.unwrap().claims["sub"], "alice", "userinfo took the DPoP token with its proof");
}

/// The policy judges GetDpopProof as GetAccessToken, and the audit trail records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_judges_and_the_audit_trail_records_proofs() {
    let Env { bus: _bus, idp: _idp, daemon } =
        Fixture::new().account(dpop_account).policy("default = \"deny\"\n").logged_in("alice").await;
    let e = daemon.client().await.get_dpop_proof(ask("https://api.example.test/")).await.unwrap_err();
    assert_eq!(e.kind(), Some(tokenbroker::ErrorKind::AccessDenied), "{e}");
    // The writer writes whenever it has a moment.
    let found = || daemon.audit_records().into_iter().find(|r| r["method"] == "GetDpopProof");
    eventually(std::time::Duration::from_secs(10), || std::future::ready(found().is_some())).await;
    let refused = found().expect("a record of the refusal");
    assert_eq!((refused["decision"].as_str(), refused["account"].as_str()), (Some("deny"), Some("work")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_says_the_idp_takes_es256_proofs() {
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().account(dpop_account).start().await;
    let out = daemon.brokerctl(&["doctor", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("DPoP of work")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("takes DPoP proofs signed with ES256"), "{line}");
}

/// User metadata of a DPoP account: the management API's token is bound like the others, and
/// the test's management API (like a real one that checks DPoP) takes it only with a proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_metadata_calls_prove_the_key_too() {
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().account(dpop_account).logged_in("alice").await;
    let set = daemon.brokerctl(&["metadata", "set", "theme=dark"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let got = daemon.brokerctl(&["metadata", "get"]);
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    let got: Value = serde_json::from_slice(&got.stdout).unwrap();
    assert_eq!(got["theme"], "dark");
}
