//! Real kubectl (Debian's) against a stand-in API server that takes only tokens the test IdP
//! accepts: `brokerctl setup kubectl --write` configures it, kubectl runs `brokerctl
//! kube-credential` as its exec plugin, and the expiry it is given is the token's own.

use std::path::Path;
use std::process::{Command, Output};

use tokenbroker_testkit::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// kubectl with the kubeconfig in `dir`, and the environment brokerctl needs to reach `daemon`
/// (kubectl hands its environment to the plugin).
fn kubectl(daemon: &Daemon, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("kubectl");
    cmd.args(args)
        .env("KUBECONFIG", dir.join("config"))
        .env("HOME", dir)
        .env("TOKENBROKER_SOCKET", daemon.socket())
        .env_remove("TOKENBROKER_TRANSPORT")
        .env_remove("KUBERNETES_EXEC_INFO");
    cmd.output().expect("kubectl must be on PATH (see .ci/run: from Kubernetes' or Google Cloud's apt repository)")
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_its_token_from_the_broker_and_its_expiry_with_it() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().access_ttl(600).logged_in("alice").await;
    let api = KubeApi::start(&idp);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ca = api.ca.to_str().unwrap();
    ok(kubectl(&daemon, dir, &["config", "set-cluster", "test", "--server", &api.url, "--certificate-authority", ca]));
    ok(kubectl(&daemon, dir, &["config", "set-context", "test", "--cluster", "test"]));
    ok(kubectl(&daemon, dir, &["config", "use-context", "test"]));

    let mut setup = daemon.brokerctl_command();
    setup.args(["setup", "kubectl", "--context", "test", "--account", "work", "--write"]);
    setup.env("KUBECONFIG", dir.join("config")).env("HOME", dir);
    ok(setup.output().unwrap());
    let config = ok(kubectl(&daemon, dir, &["config", "view", "-o", "json"]));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let exec = &config["users"][0]["user"]["exec"];
    assert_eq!(config["users"][0]["name"], "tokenbroker-test");
    assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(exec["command"], brokerctl_path().to_str().unwrap());
    assert_eq!(exec["args"], serde_json::json!(["kube-credential", "--account", "work"]));
    assert_eq!(exec["interactiveMode"], "Never");
    assert_eq!(exec["provideClusterInfo"], false);
    assert_eq!(config["contexts"][0]["context"]["user"], "tokenbroker-test");

    let answer = ok(kubectl(&daemon, dir, &["get", "--raw", "/api"]));
    assert!(answer.contains("APIVersions"), "{answer}");

    // What kubectl got, as the plugin gave it: the same command behind a tee.
    let got = dir.join("credential.json");
    let script = format!("\"$0\" kube-credential --account work | tee {}", got.display());
    let brokerctl = brokerctl_path();
    ok(kubectl(
        &daemon,
        dir,
        &[
            "config",
            "set-credentials",
            "tokenbroker-test",
            "--exec-command=sh",
            "--exec-arg=-c",
            &format!("--exec-arg=\"{}\"", script.replace('"', "\"\"")),
            &format!("--exec-arg={}", brokerctl.display()),
        ],
    ));
    ok(kubectl(&daemon, dir, &["get", "--raw", "/api"]));
    let credential: serde_json::Value = serde_json::from_slice(&std::fs::read(&got).unwrap()).unwrap();
    let t = token(&daemon.client().await, None).await.unwrap();
    assert_eq!(credential["status"]["token"], t.access_token.expose(), "the broker's token");
    let expires = humantime::parse_rfc3339(credential["status"]["expirationTimestamp"].as_str().unwrap()).unwrap();
    let expires = expires.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert_eq!(expires, t.expires_at, "the token's own expiry");

    // A token the IdP never issued: the stand-in refuses it.
    ok(kubectl(&daemon, dir, &["config", "set-credentials", "stranger", "--token=nope"]));
    let out = kubectl(&daemon, dir, &["--user", "stranger", "get", "--raw", "/api"]);
    assert!(!out.status.success() && text(&out.stderr).contains("must be logged in"), "{}", text(&out.stderr));

    // Set up again: the entry is brokerctl's own once more.
    let mut setup = daemon.brokerctl_command();
    setup.args(["setup", "kubectl", "--context", "test", "--account", "work", "--write"]);
    setup.env("KUBECONFIG", dir.join("config")).env("HOME", dir);
    ok(setup.output().unwrap());

    // No session: kubectl fails, and says which login to run.
    ok(daemon.brokerctl_command().arg("logout").output().unwrap());
    let out = kubectl(&daemon, dir, &["get", "--raw", "/api"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("brokerctl login --account work"), "{}", text(&out.stderr));

    // kubectl reads --exec-arg values as CSV: a comma or a quote reaches the kubeconfig whole.
    let odd = r#"https://a.example/x,"y""#;
    let mut setup = daemon.brokerctl_command();
    setup.args(["setup", "kubectl", "--context", "test", "--audience", odd, "--write"]);
    setup.env("KUBECONFIG", dir.join("config")).env("HOME", dir);
    ok(setup.output().unwrap());
    let config: serde_json::Value =
        serde_json::from_str(&ok(kubectl(&daemon, dir, &["config", "view", "-o", "json"]))).unwrap();
    let user = config["users"].as_array().unwrap().iter().find(|u| u["name"] == "tokenbroker-test").unwrap();
    assert_eq!(user["user"]["exec"]["args"], serde_json::json!(["kube-credential", "--audience", odd]));
}
