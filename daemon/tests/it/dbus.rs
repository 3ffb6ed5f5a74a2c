//! The D-Bus door on a private session bus: every method through the client crate and
//! through foreign programs (gdbus, busctl), the signals, the error names, the Accounts
//! property, the introspection document, and life without a bus.

use std::time::Duration;

use futures_util::StreamExt;
use tokenbroker::ErrorKind;
use tokenbroker::dbus::Signal;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

async fn expect_signal(signals: &mut (impl futures_util::Stream<Item = Signal> + Unpin), want: Signal) {
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let s = signals.next().await.expect("signal stream ended");
            if s == want {
                return s;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "no {want:?} signal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_and_signal_through_the_client_crate() {
    let Env { bus, idp, daemon } = Fixture::new().access_ttl(60).start().await;
    let client = bus.dbus_client().await;
    let mut signals = client.signals().await.unwrap();
    let mut accounts_changes = client.proxy().receive_accounts_changed().await;

    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::LoggedOut);
    let err = client.get_access_token(GetAccessToken::default()).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotLoggedIn), "{err}");
    let err = client.get_access_token(GetAccessToken { account: Some("nope".into()), ..Default::default() }).await;
    assert_eq!(err.unwrap_err().kind(), Some(ErrorKind::UnknownAccount));

    // Login over D-Bus: the challenge, the approval, AwaitLogin and LoginFinished.
    let challenge = client.login(Login::default()).await.unwrap();
    assert_eq!(challenge.flow, Flow::Device);
    idp.approve(challenge.user_code.as_deref().unwrap(), "alice").await;
    assert_eq!(client.await_login(&challenge.login_id).await.unwrap().account, "work");
    expect_signal(&mut signals, Signal::LoginFinished { account: "work".into(), ok: true, error: String::new() }).await;

    let t = client.get_access_token(GetAccessToken::default()).await.unwrap();
    let via_socket = token(&daemon.client().await, None).await.unwrap();
    assert_eq!(t.access_token, via_socket.access_token, "one core behind both doors");
    assert_eq!(t.expires_at, via_socket.expires_at);
    let id = client.get_id_token(GetIdToken { min_ttl: Some(60), ..Default::default() }).await.unwrap();
    assert_eq!(id.id_token.expose().split('.').count(), 3);
    let profile = client.get_profile(GetProfile::default()).await.unwrap();
    assert_eq!(profile.claims["email"], "alice@example.com");
    assert_eq!(client.proxy().accounts().await.unwrap()["work"], "valid");
    let err = client.get_metadata(AccountOnly::default()).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotSupported), "no management_api configured");

    // A refresh forced by min_ttl is announced.
    next_second().await;
    let fresh = client.get_access_token(GetAccessToken { min_ttl: Some(60), ..Default::default() }).await.unwrap();
    assert_ne!(fresh.access_token, t.access_token);
    expect_signal(&mut signals, Signal::TokenRefreshed { account: "work".into(), expires_at: fresh.expires_at }).await;
    let err = client.get_access_token(GetAccessToken { min_ttl: Some(3600), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::InvalidParams));

    // Logout is announced, and the Accounts property follows.
    client.logout(AccountOnly::default()).await.unwrap();
    expect_signal(&mut signals, Signal::LoggedOut { account: "work".into() }).await;
    assert!(bus.keyring_entry("work").is_none());
    let saw_logged_out = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(change) = accounts_changes.next().await {
            if change.get().await.unwrap().get("work").map(String::as_str) == Some("logged_out") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(saw_logged_out, Ok(true), "PropertiesChanged for Accounts");

    // A revoked session is announced with LoginRequired, whichever door noticed.
    daemon.login(&idp, None, "alice").await;
    idp.revoke_user("alice").await;
    next_second().await;
    let err = token(&daemon.client().await, Some(60)).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::LoginRequired));
    expect_signal(&mut signals, Signal::LoginRequired { account: "work".into() }).await;
    let err = client.get_access_token(GetAccessToken::default()).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::LoginRequired));
}

fn run(cmd: &mut std::process::Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn gdbus(bus: &Bus, method: &str, args: &[&str]) -> (bool, String, String) {
    let mut cmd = bus.command("gdbus");
    cmd.args(["call", "--session", "--dest", DBUS_NAME, "--object-path", DBUS_PATH, "--method"])
        .arg(format!("{DBUS_INTERFACE}.{method}"))
        .args(args);
    run(&mut cmd)
}

fn busctl(bus: &Bus, args: &[&str]) -> (bool, String, String) {
    run(bus.command("busctl").arg("--user").args(args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_programs_gdbus_and_busctl_use_every_method() {
    let Env { bus, idp, daemon } = Fixture::new().access_ttl(60).start().await;

    let (ok, out, _) = gdbus(&bus, "Status", &[]);
    assert!(ok && out.contains("logged_out"), "{out}");
    // Errors arrive under the documented names.
    let (ok, _, err) = gdbus(&bus, "GetAccessToken", &["", "{}"]);
    assert!(!ok && err.contains("io.github.tokenbroker.Error.NotLoggedIn"), "{err}");
    let (ok, _, err) = gdbus(&bus, "GetAccessToken", &["nope", "{}"]);
    assert!(!ok && err.contains("io.github.tokenbroker.Error.UnknownAccount"), "{err}");
    let (ok, _, err) = gdbus(&bus, "GetAccessToken", &["", "{'min_ttl': <'soon'>}"]);
    assert!(!ok && err.contains("io.github.tokenbroker.Error.InvalidParams"), "{err}");

    let (ok, out, err) = gdbus(&bus, "Login", &["", "device"]);
    assert!(ok, "{err}");
    let field = |name: &str| {
        let start = out.find(&format!("'{name}': <'")).unwrap_or_else(|| panic!("{name} in {out}")) + name.len() + 6;
        out[start..].split('\'').next().unwrap().to_owned()
    };
    let (login_id, user_code) = (field("login_id"), field("user_code"));
    idp.approve(&user_code, "alice").await;
    let (ok, out, err) = gdbus(&bus, "AwaitLogin", &[&login_id]);
    assert!(ok && out.contains("'work'"), "{out} {err}");

    let expected = token(&daemon.client().await, None).await.unwrap();
    // min_ttl as gdbus's default int32, and as uint32.
    let (ok, out, err) = gdbus(&bus, "GetAccessToken", &["", "{'min_ttl': <30>}"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("('{}', int64 {})", expected.access_token.expose(), expected.expires_at));
    let (ok, out, _) = gdbus(&bus, "GetAccessToken", &["work", "{'min_ttl': <uint32 30>, 'scope': <'openid email'>}"]);
    assert!(ok && out.contains(expected.access_token.expose()), "{out}");
    let (ok, out, _) = gdbus(&bus, "GetIdToken", &["", "{}"]);
    assert!(ok && out.contains("eyJ"), "{out}");

    let (ok, out, err) = busctl(
        &bus,
        &["call", DBUS_NAME, DBUS_PATH, DBUS_INTERFACE, "GetAccessToken", "sa{sv}", "", "1", "min_ttl", "u", "30"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), format!("sx \"{}\" {}", expected.access_token.expose(), expected.expires_at));
    let (ok, out, _) = busctl(&bus, &["call", DBUS_NAME, DBUS_PATH, DBUS_INTERFACE, "GetProfile", "s", ""]);
    assert!(ok && out.contains("alice@example.com"), "{out}");
    let (ok, out, _) = busctl(&bus, &["call", DBUS_NAME, DBUS_PATH, DBUS_INTERFACE, "Status"]);
    assert!(ok && out.contains("valid"), "{out}");
    let (ok, out, _) = busctl(&bus, &["get-property", DBUS_NAME, DBUS_PATH, DBUS_INTERFACE, "Accounts"]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "a{ss} 1 \"work\" \"valid\"");
    let (ok, _, err) = busctl(&bus, &["call", DBUS_NAME, DBUS_PATH, DBUS_INTERFACE, "GetMetadata", "s", ""]);
    assert!(!ok && err.contains("management_api"), "{err}");

    let (ok, out, err) = gdbus(&bus, "Logout", &[""]);
    assert!(ok && out.trim() == "()", "{out} {err}");
    assert!(bus.keyring_entry("work").is_none());
    let (ok, out, _) = busctl(&bus, &["get-property", DBUS_NAME, DBUS_PATH, DBUS_INTERFACE, "Accounts"]);
    assert!(ok && out.contains("logged_out"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokerctl_dbus_uses_the_bus() {
    let Env { bus, idp, daemon } = Fixture::new().access_ttl(60).start().await;
    // The socket path is wrong on purpose: only the bus can answer.
    let ctl = |args: &[&str]| {
        let mut cmd = bus.command(brokerctl_path().to_str().unwrap());
        cmd.args(args).env("TOKENBROKER_SOCKET", "/nonexistent/broker.sock");
        cmd.output().unwrap()
    };
    let out = ctl(&["--dbus", "token"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    daemon.login(&idp, None, "alice").await;
    let expected = token(&daemon.client().await, None).await.unwrap();
    let out = ctl(&["token", "--dbus"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{}\n", expected.access_token.expose()));
    let mut cmd = bus.command(brokerctl_path().to_str().unwrap());
    let out = cmd
        .args(["status"])
        .env("TOKENBROKER_SOCKET", "/nonexistent")
        .env("TOKENBROKER_TRANSPORT", "dbus")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("as alice"));
    let out = ctl(&["--dbus", "--json", "profile"]);
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["claims"]["sub"], "alice");
    let out = ctl(&["--dbus", "logout"]);
    assert!(out.status.success());
    assert!(bus.keyring_entry("work").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_introspection_document_in_docs_matches_what_the_daemon_serves() {
    let Env { bus, idp: _idp, daemon: _daemon } = Fixture::new().start().await;
    let (ok, xml, err) = run(bus.command("gdbus").args([
        "introspect",
        "--session",
        "--dest",
        DBUS_NAME,
        "--object-path",
        DBUS_PATH,
        "--xml",
    ]));
    assert!(ok, "{err}");
    let start = xml.find(&format!("<interface name=\"{DBUS_INTERFACE}\">")).expect("our interface is served");
    let end = start + xml[start..].find("</interface>").unwrap() + "</interface>".len();
    let indent = xml[..start].rsplit('\n').next().unwrap().len();
    let block: String =
        xml[start - indent..end].lines().map(|l| l.get(indent..).unwrap_or(l.trim_start()).to_owned() + "\n").collect();
    let path = repo_root().join("docs/io.github.tokenbroker.Broker1.xml");
    if std::env::var_os("TOKENBROKER_BLESS").is_some() {
        std::fs::write(&path, &block).unwrap();
    }
    // Compared line by line without indentation, so an editor's reflow does not matter.
    let normal = |t: &str| t.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n");
    let documented = normal(&std::fs::read_to_string(&path).unwrap_or_default());
    let served = normal(&block);
    assert_eq!(documented, served, "docs/ is out of date: rerun this test with TOKENBROKER_BLESS=1 and commit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_dbus_keeps_off_the_bus_on_purpose() {
    let Env { bus, idp: _idp, daemon } = Fixture::new().args(&["--no-dbus"]).start().await;
    let (ok, _, err) = gdbus(&bus, "Status", &[]);
    assert!(!ok && err.contains("ServiceUnknown"), "{err}");
    // Served, and not logged in (status exits 3 for that).
    assert_eq!(daemon.brokerctl(&["status"]).status.code(), Some(3), "the socket still serves");
    assert!(daemon.log().contains("--no-dbus"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_bus_the_socket_is_served_alone() {
    let idp = Idp::start(IdpOptions::default()).await;
    let config = format!("store = \"memory\"\n{}", idp.account_config("work"));
    let daemon = Daemon::start_without_bus(&config);
    daemon.login(&idp, None, "alice").await;
    assert!(token(&daemon.client().await, None).await.is_ok());
    let log = daemon.log();
    assert_eq!(log.matches("D-Bus is off").count(), 1, "said once: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root"]
async fn calls_from_another_user_are_refused() {
    let Env { bus, idp: _idp, daemon } = Fixture::new().open_bus().logged_in("alice").await;
    let other = other_user();
    // Every method, with arguments it would accept from the owner.
    for (method, args) in [
        ("Status", &[][..]),
        ("GetAccessToken", &["work", "{}"]),
        ("GetIdToken", &["work", "{}"]),
        ("RejectToken", &["work", "some-token", "{}"]),
        ("GetProfile", &["work"]),
        ("GetMetadata", &["work"]),
        ("UpdateMetadata", &["work", "{}"]),
        ("Login", &["work", "device"]),
        ("AwaitLogin", &["l1"]),
        ("CancelLogin", &["l1"]),
        ("Logout", &["work"]),
        ("AwaitLoginResult", &["l1"]),
        ("Call", &["GetAccessToken", "{}"]),
        ("Call", &["Logout", "{}"]),
    ] {
        let mut cmd = bus.command("gdbus");
        std::os::unix::process::CommandExt::uid(&mut cmd, other)
            .env("HOME", "/tmp")
            .args(["call", "--session", "--dest", DBUS_NAME, "--object-path", DBUS_PATH, "--method"])
            .arg(format!("{DBUS_INTERFACE}.{method}"))
            .args(args);
        let (ok, out, err) = run(&mut cmd);
        assert!(!ok, "another user was served {method}: {out}");
        assert!(
            err.contains("io.github.tokenbroker.Error.AccessDenied") && err.contains("only its own user"),
            "{method}: {err}"
        );
    }
    assert!(daemon.log().contains("refused a call from another user"));
    assert!(daemon.client().await.get_access_token(Default::default()).await.is_ok(), "the Logout was refused");
    // The owner still is served.
    let (ok, out, _) = gdbus(&bus, "Status", &[]);
    assert!(ok && out.contains("work"), "{out}");
}

fn json(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

/// Both doors are one pipeline: every method over D-Bus answers with the socket's result, field
/// for field (the token's type and scope, the logout's revocation, the health checks), and a
/// foreign program reaches all of them through `Call`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_doors_give_every_method_the_same_result() {
    let bus = Bus::start();
    let idp = Idp::start(IdpOptions::default()).await;
    let daemon = Daemon::start(&bus, &idp.account_config("work"));
    daemon.login(&idp, None, "alice").await;
    let (dbus, socket) = (bus.dbus_client().await, daemon.client().await);

    let (a, b) = (
        dbus.get_access_token(GetAccessToken::default()).await,
        socket.get_access_token(GetAccessToken::default()).await,
    );
    assert_eq!(json(&a.unwrap()), json(&b.unwrap()), "GetAccessToken");
    let p = || GetIdToken::default();
    assert_eq!(json(&dbus.get_id_token(p()).await.unwrap()), json(&socket.get_id_token(p()).await.unwrap()));
    let p = || GetProfile { refresh: true, ..Default::default() };
    assert_eq!(json(&dbus.get_profile(p()).await.unwrap()), json(&socket.get_profile(p()).await.unwrap()));
    assert_eq!(json(&dbus.status().await.unwrap()), json(&socket.status().await.unwrap()));
    let names = |d: Diagnosis| d.checks.into_iter().map(|c| (c.name, c.ok)).collect::<Vec<_>>();
    assert_eq!(names(dbus.diagnose().await.unwrap()), names(socket.diagnose().await.unwrap()));
    let err = dbus.get_metadata(AccountOnly::default()).await.unwrap_err();
    assert_eq!(err.kind(), socket.get_metadata(AccountOnly::default()).await.unwrap_err().kind());

    let done = dbus.logout(AccountOnly::default()).await.unwrap();
    assert!(done.revoked && done.account == "work", "{done:?}");

    // A foreign program: the same JSON through Call; a method the contract lacks is refused.
    let (ok, out, err) = gdbus(&bus, "Call", &["Status", "{}"]);
    assert!(ok && out.contains(r#""state":"logged_out""#), "{out}{err}");
    let (ok, _, err) = gdbus(&bus, "Call", &["Nope", "{}"]);
    assert!(!ok && err.contains("io.github.tokenbroker.Error.InvalidParams") && err.contains("no method"), "{err}");
}
