//! The oidc-provider harness in `testidp/`, reached through the fault proxy.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::process::{Proc, first_line};
use crate::proxy::Proxy;
use crate::repo_root;

/// The oidc-provider harness, reached through a proxy the test can switch off.
pub struct Idp {
    pub issuer: String,
    pub proxy: Proxy,
    _node: Proc,
    http: reqwest::Client,
}

pub struct IdpOptions {
    pub access_ttl: u64,
    /// Seconds a rotated refresh token stays good (the harness's `--rotation-grace`).
    pub rotation_grace: u64,
    /// Discovery keys listed only in RFC 8414 metadata (the harness's `--rfc8414-only`).
    pub rfc8414_only: &'static [&'static str],
    /// Discovery keys listed nowhere (`--unlisted`).
    pub unlisted: &'static [&'static str],
    /// No RFC 8414 metadata: a 404 where it would be (`--no-rfc8414`).
    pub no_rfc8414: bool,
    /// The first this many requests for RFC 8414 metadata answer 503 (`--rfc8414-unavailable`).
    pub rfc8414_unavailable: u32,
    /// The test client's grant types, when not all of them (`--client-grant-types`).
    pub client_grant_types: Option<&'static [&'static str]>,
    /// The device_code grant answers without an ID token (the harness's `--no-device-id-token`).
    pub no_device_id_token: bool,
    /// Refresh answers carry no ID token, as Google's (`--no-refresh-id-token`).
    pub no_refresh_id_token: bool,
    /// Seconds an ID token lives (`--id-ttl`).
    pub id_ttl: u64,
    /// The ID tokens' signature algorithm (the harness's `--id-token-alg`: RS256 or ES256).
    pub id_token_alg: &'static str,
    /// ID tokens carry the email and profile claims, not only userinfo (`--id-token-claims`).
    pub id_token_claims: bool,
    /// Every DPoP proof at the token endpoint must carry the IdP's nonce (`--dpop-nonce`).
    pub dpop_nonce: bool,
}

impl Default for IdpOptions {
    fn default() -> Self {
        IdpOptions {
            access_ttl: 60,
            rotation_grace: 0,
            rfc8414_only: &[],
            unlisted: &[],
            no_rfc8414: false,
            rfc8414_unavailable: 0,
            client_grant_types: None,
            no_device_id_token: false,
            no_refresh_id_token: false,
            id_ttl: 3600,
            id_token_alg: "RS256",
            id_token_claims: false,
            dpop_nonce: false,
        }
    }
}

impl Idp {
    pub async fn start(opts: IdpOptions) -> Idp {
        let proxy = Proxy::start().await;
        let issuer = format!("http://127.0.0.1:{}", proxy.port());
        // A rare start-up hang of node has been seen under load: one retry.
        for attempt in 0..2 {
            let mut child = Command::new("node")
                .arg(repo_root().join("testidp/idp.mjs"))
                .args(["--issuer", &issuer, "--access-ttl", &opts.access_ttl.to_string()])
                .args(["--rotation-grace", &opts.rotation_grace.to_string()])
                .args(["--rfc8414-only", &opts.rfc8414_only.join(","), "--unlisted", &opts.unlisted.join(",")])
                .args(opts.client_grant_types.iter().flat_map(|g| ["--client-grant-types".to_owned(), g.join(",")]))
                .args(opts.no_rfc8414.then_some("--no-rfc8414"))
                .args(["--rfc8414-unavailable", &opts.rfc8414_unavailable.to_string()])
                .args(opts.no_device_id_token.then_some("--no-device-id-token"))
                .args(opts.no_refresh_id_token.then_some("--no-refresh-id-token"))
                .args(["--id-ttl", &opts.id_ttl.to_string()])
                .args(["--id-token-alg", opts.id_token_alg])
                .args(opts.id_token_claims.then_some("--id-token-claims"))
                .args(opts.dpop_nonce.then_some("--dpop-nonce"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("node must be installed (and `npm ci` run in testidp/)");
            match first_line(&mut child, Duration::from_secs(20)) {
                Some(line) => {
                    let info: Value = serde_json::from_str(&line).expect("harness prints JSON");
                    proxy.set_target(info["port"].as_u64().unwrap() as u16);
                    let http = reqwest::Client::new();
                    return Idp { issuer, proxy, _node: Proc(child), http };
                }
                None => {
                    let _ = child.kill();
                    eprintln!("test IdP did not start (attempt {attempt}); retrying");
                }
            }
        }
        panic!("the test IdP did not start");
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.proxy.direct_url());
        let resp = self.http.post(url).json(&body).send().await.unwrap();
        resp.json().await.unwrap()
    }

    /// What a person does in the browser: enter the code, log in as `account`, consent.
    pub async fn approve(&self, user_code: &str, account: &str) {
        let r = self.post("/__test/approve", serde_json::json!({"user_code": user_code, "account": account})).await;
        assert_eq!(r["ok"], true, "approval failed: {r}");
    }

    /// The code flow's browser: open the authorization URL, log in, consent, land on the
    /// daemon's loopback redirect. The harness's JSON report.
    pub async fn browse_code(&self, authorization_url: &str, account: &str, deny: bool) -> Value {
        let body = serde_json::json!({"url": authorization_url, "account": account, "deny": deny});
        self.post("/__test/approve-code", body).await
    }

    /// Make the next token response carry a bad ID token (see testidp/faults.mjs).
    pub async fn arm_id_token_fault(&self, kind: &str) {
        let r = self.post("/__test/id-token-fault", serde_json::json!({"kind": kind})).await;
        assert_eq!(r["armed"], true, "{r}");
    }

    /// Make the next device authorization answer hostile (see testidp/device_faults.mjs).
    pub async fn arm_device_fault(&self, kind: &str) {
        let r = self.post("/__test/device-fault", serde_json::json!({"kind": kind})).await;
        assert_eq!(r["armed"], true, "{r}");
    }

    /// Make the next refresh response (only) carry a bad ID token.
    pub async fn arm_refresh_id_token_fault(&self, kind: &str) {
        let body = serde_json::json!({"kind": kind, "grant": "refresh_token"});
        let r = self.post("/__test/id-token-fault", body).await;
        assert_eq!(r["armed"], true, "{r}");
    }

    pub async fn deny(&self, user_code: &str) {
        let r = self.post("/__test/approve", serde_json::json!({"user_code": user_code, "deny": true})).await;
        assert_eq!(r["ok"], true, "denial failed: {r}");
    }

    /// Revoke every grant of `account`, as an admin would.
    pub async fn revoke_user(&self, account: &str) -> u64 {
        self.post("/__test/revoke", serde_json::json!({"account": account})).await["revoked_grants"].as_u64().unwrap()
    }

    /// Forget every access token of `account` at the IdP, leaving its refresh tokens good.
    pub async fn revoke_access_tokens(&self, account: &str) -> u64 {
        let r = self.post("/__test/revoke-access", serde_json::json!({"account": account})).await;
        r["revoked_access_tokens"].as_u64().unwrap()
    }

    pub async fn stats(&self) -> Value {
        let url = format!("{}/__test/stats", self.proxy.direct_url());
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// Start counting from zero.
    pub async fn reset_stats(&self) {
        let url = format!("{}/__test/stats", self.proxy.direct_url());
        self.http.post(url).send().await.unwrap();
    }

    /// Successful refresh-token grants the IdP answered.
    pub async fn refreshes(&self) -> u64 {
        self.stats().await["token"]["refresh_token:200"].as_u64().unwrap_or(0)
    }

    /// Refresh-token grants of any outcome.
    pub async fn refresh_attempts(&self) -> u64 {
        let stats = self.stats().await;
        stats["token"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("refresh_token:"))
            .map(|(_, v)| v.as_u64().unwrap())
            .sum()
    }

    /// Use a refresh token directly at the token endpoint; the IdP's JSON answer.
    pub async fn try_refresh(&self, refresh_token: &str) -> Value {
        let url = format!("{}/token", self.proxy.direct_url());
        let form =
            [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", "tokenbroker-test")];
        self.http.post(url).form(&form).send().await.unwrap().json().await.unwrap()
    }

    /// An account that may ask for the harness's two APIs and its management API.
    pub fn api_account_config(&self, name: &str) -> String {
        format!(
            "[accounts.{name}]\nissuer = \"{iss}\"\nclient_id = \"tokenbroker-test\"\n\
             scopes = [\"openid\", \"profile\", \"email\", \"offline_access\", \"api:read\", \"reports:read\", \
             \"read:current_user\", \"update:current_user_metadata\"]\n\
             audience_param = \"resource\"\n\
             audiences = [\"{API}\", \"{REPORTS}\"]\nmanagement_api = \"{iss}/api/v2/\"\n",
            iss = self.issuer
        )
    }

    /// An account that asks for no `offline_access`: the IdP issues it no refresh token.
    pub fn account_config_without_refresh(&self, name: &str) -> String {
        format!("{}scopes = [\"openid\", \"profile\"]\n", self.account_config(name))
    }

    /// The userinfo endpoint (oidc-provider's `/me`), through the proxy.
    pub fn userinfo_url(&self) -> String {
        format!("{}/me", self.issuer)
    }

    pub fn account_config(&self, name: &str) -> String {
        format!("[accounts.{name}]\nissuer = \"{}\"\nclient_id = \"tokenbroker-test\"\n", self.issuer)
    }
}

pub const API: &str = "https://api.example.test/";
pub const REPORTS: &str = "https://reports.example.test/";
