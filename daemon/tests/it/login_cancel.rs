//! A login nobody can finish must not hold the account: a login with the other flow replaces
//! it, `CancelLogin` ends it (socket and D-Bus), and so does Ctrl-C in `brokerctl login`. An
//! ended code-flow login frees its loopback port.

use std::time::Duration;

use tokenbroker::ErrorKind;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

fn login(flow: Flow) -> Login {
    Login { account: None, flow: Some(flow) }
}

/// The loopback port a code-flow challenge redirects to.
fn redirect_port(challenge: &LoginChallenge) -> u16 {
    let url = url::Url::parse(challenge.authorization_url.as_deref().unwrap()).unwrap();
    let redirect = url.query_pairs().find(|(k, _)| k == "redirect_uri").unwrap().1.into_owned();
    url::Url::parse(&redirect).unwrap().port().unwrap()
}

async fn port_freed(port: u16) -> bool {
    eventually(Duration::from_secs(5), || async move { std::net::TcpStream::connect(("127.0.0.1", port)).is_err() })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_with_the_other_flow_replaces_a_stuck_code_login() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().start().await;
    let client = daemon.client().await;

    let stuck = client.login(login(Flow::Code)).await.unwrap();
    let port = redirect_port(&stuck);
    let waiter = daemon.client().await;
    let stuck_id = stuck.login_id.clone();
    let waiting = tokio::spawn(async move { waiter.await_login(&stuck_id).await });
    // The same flow still joins.
    assert_eq!(client.login(login(Flow::Code)).await.unwrap().login_id, stuck.login_id);

    let device = client.login(login(Flow::Device)).await.unwrap();
    assert_eq!(device.flow, Flow::Device);
    assert_ne!(device.login_id, stuck.login_id);
    let err = waiting.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::LoginExpired), "{err}");
    assert!(err.to_string().contains("replaced by a new one with the device flow"), "{err}");
    assert!(port_freed(port).await, "the stuck login's loopback listener is closed");

    idp.approve(device.user_code.as_deref().unwrap(), "alice").await;
    assert_eq!(client.await_login(&device.login_id).await.unwrap().status, "logged_in");
    assert_eq!(client.status().await.unwrap().accounts[0].state, AccountState::Valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_login_ends_it_on_the_socket_and_on_dbus() {
    let Env { bus, idp: _idp, daemon } = Fixture::new().start().await;
    let client = daemon.client().await;

    let first = client.login(login(Flow::Code)).await.unwrap();
    let port = redirect_port(&first);
    assert!(client.cancel_login(&first.login_id).await.unwrap().cancelled);
    let err = client.await_login(&first.login_id).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::LoginExpired), "{err}");
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(port_freed(port).await, "the cancelled login's loopback listener is closed");
    assert!(!client.cancel_login(&first.login_id).await.unwrap().cancelled, "already over");
    assert!(!client.cancel_login("no-such-login").await.unwrap().cancelled);

    // The account is free again: a new login starts instead of joining the cancelled one.
    let second = client.login(login(Flow::Code)).await.unwrap();
    assert_ne!(second.login_id, first.login_id);
    let dbus = bus.dbus_client().await;
    assert!(dbus.cancel_login(&second.login_id).await.unwrap().cancelled);
    assert_eq!(client.await_login(&second.login_id).await.unwrap_err().kind(), Some(ErrorKind::LoginExpired));
    assert!(port_freed(redirect_port(&second)).await);
}

cases! {
    ctrl_c_in_brokerctl_login_cancels_the_login => ctrl_c_cancels(false);
    ctrl_c_in_brokerctl_dbus_login_cancels_the_login => ctrl_c_cancels(true);
}

async fn ctrl_c_cancels(dbus: bool) {
    let Env { bus, idp: _idp, daemon } = Fixture::new().start().await;
    let mut cmd = std::process::Command::new(brokerctl_path());
    bus.env(&mut cmd);
    let mut ctl = Proc(
        cmd.args(dbus.then_some("--dbus"))
            .args(["login", "--flow", "code", "--no-browser", "--json"])
            .env("TOKENBROKER_SOCKET", daemon.socket())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(ctl.0.stdout.take().unwrap()));
    let challenge: LoginChallenge = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let port = redirect_port(&challenge);

    ctl.signal(libc::SIGINT);
    let status = ctl.wait_exit(Duration::from_secs(10)).expect("brokerctl exits on Ctrl-C");
    assert_eq!(status.code(), Some(130), "{status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(ctl.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("login cancelled"), "{stderr}");

    let client = daemon.client().await;
    let err = client.await_login(&challenge.login_id).await.unwrap_err();
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(port_freed(port).await, "the loopback listener is closed");
    assert_ne!(client.login(login(Flow::Code)).await.unwrap().login_id, challenge.login_id);
}

/// Once the IdP has issued the login's tokens, a cancel is too late: it must say so
/// (`cancelled: false`) and the login finishes, instead of reporting a cancel while the
/// session is installed anyway. The window is held open by a slow userinfo (asked for the
/// subject, as the device grant here brings no ID token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_the_tokens_are_installed_is_refused() {
    let Env { bus: _bus, idp, daemon } =
        Fixture::new().idp(IdpOptions { no_device_id_token: true, ..IdpOptions::default() }).start().await;
    let client = daemon.client().await;

    let challenge = client.login(login(Flow::Device)).await.unwrap();
    idp.proxy.set_delay(Duration::from_secs(2));
    idp.approve(challenge.user_code.as_deref().unwrap(), "alice").await;
    let issued = eventually(Duration::from_secs(10), || async {
        idp.stats().await["token"]["device_code:200"].as_u64() == Some(1)
    })
    .await;
    assert!(issued, "the IdP issued the login's tokens");
    assert_eq!(idp.stats().await["userinfo"], 0, "userinfo is still on its way");

    assert!(!client.cancel_login(&challenge.login_id).await.unwrap().cancelled, "too late to cancel");
    assert_eq!(client.await_login(&challenge.login_id).await.unwrap().status, "logged_in");
    let status = client.status().await.unwrap();
    assert_eq!(status.accounts[0].state, AccountState::Valid);
    assert_eq!(status.accounts[0].subject.as_deref(), Some("alice"));
}
