//! The device flow treats the IdP's answer as hostile: only https (or loopback http)
//! verification URIs and printable user codes reach the user; `openid` is asked for once; a
//! login without an ID token still knows who logged in.

use tokenbroker::ErrorKind;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

fn device() -> Login {
    Login { account: None, flow: Some(Flow::Device) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_device_answers_are_refused_before_anyone_sees_them() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().start().await;
    let client = daemon.client().await;

    for (kind, field) in [
        ("file_uri", "verification_uri"),
        ("http_uri", "verification_uri"),
        ("file_uri_complete", "verification_uri_complete"),
        ("control_code", "user code"),
    ] {
        idp.arm_device_fault(kind).await;
        let err = client.login(device()).await.unwrap_err();
        assert_eq!(err.kind(), Some(ErrorKind::NotSupported), "{kind}: {err}");
        assert!(err.to_string().contains(field) && err.to_string().contains("refusing"), "{kind}: {err}");
    }

    idp.arm_device_fault("file_uri").await;
    let out = daemon.brokerctl(&["login", "--no-browser"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("file:"), "never shown");
    assert!(String::from_utf8_lossy(&out.stderr).contains("verification_uri"));

    // Each fault was one answer: the next login is a normal one.
    daemon.login(&idp, None, "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openid_is_asked_for_once() {
    let Env { bus: _bus, idp, daemon: _daemon } = Fixture::new().logged_in("alice").await;
    let stats = idp.stats().await;
    let scope = stats["device_scopes"][0].as_str().unwrap();
    assert_eq!(scope.split(' ').filter(|s| *s == "openid").count(), 1, "{scope}");
    assert!(scope.split(' ').any(|s| s == "offline_access"), "{scope}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_login_without_an_id_token_gets_its_subject_from_userinfo() {
    let Env { bus, idp: _idp, daemon } =
        Fixture::new().idp(IdpOptions { no_device_id_token: true, ..Default::default() }).logged_in("alice").await;
    let client = daemon.client().await;

    let status = client.status().await.unwrap();
    assert_eq!(status.accounts[0].subject.as_deref(), Some("alice"));
    assert!(bus.keyring_entry("work").unwrap()["id_token"].is_null(), "the IdP issued none");
    assert_eq!(client.get_profile(GetProfile::default()).await.unwrap().claims["sub"], "alice");
    token(&client, None).await.unwrap();

    let err = client.get_id_token(GetIdToken::default()).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotSupported));
    assert!(err.to_string().contains("issued no ID token for this login"), "{err}");
    let out = daemon.brokerctl(&["id-token"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("issued no ID token for this login"));
}

/// An `expires_in` of 10^19 seconds (beyond i64) is capped at an hour: the challenge says so,
/// the login still completes, and brokerctl shows it without overflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_device_expires_in_is_capped() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().start().await;
    let client = daemon.client().await;

    idp.arm_device_fault("huge_expires_in").await;
    let challenge = client.login(device()).await.unwrap();
    assert_eq!(challenge.expires_in, 3600);
    idp.approve(challenge.user_code.as_deref().unwrap(), "alice").await;
    assert_eq!(client.await_login(&challenge.login_id).await.unwrap().status, "logged_in");

    idp.arm_device_fault("huge_expires_in").await;
    let mut ctl = Proc(
        std::process::Command::new(brokerctl_path())
            // Logged in already (above): --force starts the login again.
            .args(["login", "--no-browser", "--force"])
            .env("TOKENBROKER_SOCKET", daemon.socket())
            .env_remove("TOKENBROKER_TRANSPORT")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The user code is the indented line that is not an address. The pipe stays open for the
    // lines that follow.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(ctl.0.stdout.take().unwrap()));
    let code = lines
        .by_ref()
        .map(Result::unwrap)
        .find_map(|l| l.strip_prefix("    ").filter(|c| !c.contains("://")).map(str::to_owned));
    idp.approve(&code.expect("brokerctl shows the user code"), "alice").await;
    let status = ctl.wait_exit(std::time::Duration::from_secs(10)).expect("brokerctl exits once approved");
    let mut stderr = String::new();
    std::io::Read::read_to_string(ctl.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("the code expires in 60 minutes"), "{stderr}");
    assert!(lines.any(|l| l.unwrap().starts_with("Logged in")));
}

/// brokerctl checks a challenge again itself, whoever answered it: a daemon of an older
/// version, or one with a bug, must not get a `file:` URL opened or a terminal escape printed.
#[test]
fn brokerctl_refuses_a_hostile_challenge_from_the_daemon_itself() {
    use std::io::{BufRead, BufReader, Write};
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("fake.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let methods = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = methods.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut writer = stream;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let request: serde_json::Value = serde_json::from_str(&line).unwrap();
                let method = request["method"].as_str().unwrap().to_owned();
                let result = match method.as_str() {
                    "Login" => serde_json::json!({
                        "login_id": "l1", "flow": "device", "expires_in": 600,
                        "verification_uri": "file:///etc/passwd",
                        "verification_uri_complete": "file:///etc/passwd?code=X",
                        "user_code": "AB\u{1b}[2JCD",
                    }),
                    "CancelLogin" => serde_json::json!({"cancelled": true}),
                    // Nobody logged in, so `login` goes on to start one.
                    "Status" => serde_json::json!({"version": "0", "accounts": []}),
                    _ => serde_json::json!({}),
                };
                seen.lock().unwrap().push(method);
                let answer = serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": result});
                writeln!(writer, "{answer}").unwrap();
                line.clear();
            }
        }
    });
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let opened = dir.path().join("opened");
    for opener in ["xdg-open", "open"] {
        let script = bin.join(opener);
        std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" >> {}\n", opened.display())).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let out = std::process::Command::new(brokerctl_path())
        .arg("login")
        .env("TOKENBROKER_SOCKET", &socket)
        .env_remove("TOKENBROKER_TRANSPORT")
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}{stderr}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains("file:") && !text.contains('\u{1b}'), "shown: {text:?}");
    }
    assert!(!opened.exists(), "a browser was asked to open {:?}", std::fs::read_to_string(&opened));
    assert!(methods.lock().unwrap().contains(&"CancelLogin".to_owned()), "the refused login is cancelled");
}
