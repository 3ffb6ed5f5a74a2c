//! The tool adapters as whole brokerctl processes against a real daemon and the test IdP:
//! `token --header`, `exec`, `kube-credential` (kubectl itself: kubectl.rs).

use std::os::unix::process::ExitStatusExt;

use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_header_prints_the_tokens_own_type() {
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().logged_in("alice").await;
    let t = token(&daemon.client().await, None).await.unwrap();
    for args in [&["token", "--header"][..], &["token", "--header", "--account", "work"]] {
        let out = daemon.brokerctl(args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), format!("Authorization: {} {}\n", t.token_type, t.access_token.expose()));
    }
    assert_eq!(t.token_type, "Bearer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_hands_the_token_to_the_command_and_exits_as_it_does() {
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().logged_in("alice").await;
    let t = token(&daemon.client().await, None).await.unwrap();
    let exec = |args: &[&str]| daemon.brokerctl(&[&["exec"][..], args].concat());

    let out = exec(&["--", "sh", "-c", "printf %s \"$TOKEN\""]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), t.access_token.expose());
    let out = exec(&["--env", "API_TOKEN", "--", "sh", "-c", "printf %s \"$API_TOKEN\"; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "the command's status");
    assert_eq!(text(&out.stdout), t.access_token.expose());
    let out = exec(&["--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.status.signal(), Some(libc::SIGTERM), "the signal that ended the command: {:?}", out.status);

    let out = exec(&["--", "/nonexistent/program"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(text(&out.stderr).contains("cannot run /nonexistent/program"), "{}", text(&out.stderr));
    let out = exec(&["--", "/dev/null"]);
    assert_eq!(out.status.code(), Some(126), "not executable");
    for bad in ["2X", "A=B", "A-B", ""] {
        let out = exec(&["--env", bad, "--", "true"]);
        assert_eq!(out.status.code(), Some(2), "--env {bad:?}");
    }
    let out = exec(&["--", "sh", "-c", "cat /proc/$PPID/cmdline /proc/$$/cmdline; printf %s \"$TOKEN\" >/dev/null"]);
    assert!(!text(&out.stdout).contains(t.access_token.expose()), "no token on a command line");
    let out = exec(&["--audience", "https://nowhere.example.com", "--", "true"]);
    assert_eq!(out.status.code(), Some(1), "the daemon's refusal, not the command's status");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_kube_credential_without_a_session_say_how_to_log_in() {
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().start().await;
    for args in [&["exec", "--", "true"][..], &["kube-credential"], &["kube-credential", "--id-token"]] {
        let out = daemon.brokerctl(args);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert!(text(&out.stderr).contains("`brokerctl login --account work`"), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_credential_prints_an_exec_credential_with_the_tokens_expiry() {
    let Env { bus: _bus, idp: _idp, daemon } =
        Fixture::new().access_ttl(600).account(|idp| idp.api_account_config("work")).logged_in("alice").await;
    let client = daemon.client().await;
    let t = token(&client, None).await.unwrap();
    let credential = |args: &[&str], info: Option<&str>| {
        let mut cmd = daemon.brokerctl_command();
        cmd.arg("kube-credential").args(args).env_remove("KUBERNETES_EXEC_INFO");
        if let Some(info) = info {
            cmd.env("KUBERNETES_EXEC_INFO", info);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let rfc3339 = |at: i64| {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(at as u64);
        humantime::format_rfc3339_seconds(at).to_string()
    };

    let c = credential(&[], None);
    assert_eq!(c["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(c["kind"], "ExecCredential");
    assert_eq!(c["status"]["token"], t.access_token.expose());
    assert_eq!(c["status"]["expirationTimestamp"], rfc3339(t.expires_at));
    let beta =
        r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}"#;
    assert_eq!(credential(&[], Some(beta))["apiVersion"], "client.authentication.k8s.io/v1beta1");
    assert_eq!(credential(&[], Some("garbage"))["apiVersion"], "client.authentication.k8s.io/v1");

    let id = client.get_id_token(GetIdToken::default()).await.unwrap();
    let c = credential(&["--id-token"], None);
    assert_eq!(c["status"]["token"], id.id_token.expose());
    assert_eq!(c["status"]["expirationTimestamp"], rfc3339(id.expires_at));

    let api = credential(&["--audience", API], None);
    let api_token = client.get_access_token(GetAccessToken { audience: Some(API.into()), ..Default::default() });
    assert_eq!(api["status"]["token"], api_token.await.unwrap().access_token.expose());

    // The forms brokerctl reads without clap and the rest (through clap) agree.
    let fast = credential(&["--account", "work", "--audience", API], None);
    assert_eq!(fast, credential(&["--account=work", "--audience", API], None));
    assert_eq!(fast, credential(&["--audience", API, "-a", "work"], None));

    let alpha = r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1"}"#;
    let out = daemon.brokerctl_command().arg("kube-credential").env("KUBERNETES_EXEC_INFO", alpha).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("v1alpha1") && out.stdout.is_empty(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_credential_asks_for_a_minute_of_life_when_tokens_live_that_long() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().access_ttl(65).logged_in("alice").await;
    let first = token(&daemon.client().await, None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let out = daemon.brokerctl(&["kube-credential"]);
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(c["status"]["token"], first.access_token.expose(), "refreshed: under 60 s were left");
    assert_eq!(idp.refreshes().await, 1);

    let Env { bus: _bus, idp, daemon } = Fixture::new().access_ttl(30).logged_in("alice").await;
    let first = token(&daemon.client().await, None).await.unwrap();
    let out = daemon.brokerctl(&["kube-credential"]);
    assert!(out.status.success(), "tokens that live under a minute are served as they are: {}", text(&out.stderr));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(c["status"]["token"], first.access_token.expose());
    assert_eq!(idp.refreshes().await, 0);
}
