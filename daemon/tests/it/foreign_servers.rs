//! Another user serves where our clients look (a socket path under the shared temp directory,
//! a free name on a bus open to other users): the clients refuse it before sending a byte, and
//! the daemon keeps serving its socket when another user took its bus name first.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use tokenbroker::Error;
use tokenbroker::protocol::{DBUS_NAME, DBUS_PATH};
use tokenbroker_testkit::*;

fn group_of(uid: u32) -> u32 {
    let out = Command::new("id").args(["-g", &uid.to_string()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(65534)
}

/// Run `f` on a thread of its own that is `uid`. Linux keeps credentials per thread: libc's
/// setuid changes every thread of the process, the raw system calls only the calling one. What
/// that thread binds or connects, the kernel (and so SO_PEERCRED and the bus) records as `uid`.
pub(crate) fn on_thread_as<T: Send + 'static>(
    uid: u32,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let gid = group_of(uid);
    std::thread::spawn(move || {
        unsafe {
            assert_eq!(libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()), 0);
            assert_eq!(libc::syscall(libc::SYS_setresgid, gid, gid, gid), 0);
            assert_eq!(libc::syscall(libc::SYS_setresuid, uid, uid, uid), 0);
            assert_eq!(libc::syscall(libc::SYS_geteuid), uid as libc::c_long);
        }
        f()
    })
}

const FAKE_TOKEN: &str = "FAKE-TOKEN-FROM-ANOTHER-USER";

/// A broker served by the other user in a directory of theirs: it answers any request with a
/// token of its own, and reports every connection's bytes when the connection ends.
struct FakeBroker {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    received: mpsc::Receiver<Vec<u8>>,
}

impl FakeBroker {
    fn start(uid: u32) -> FakeBroker {
        let dir = tempfile::Builder::new().prefix("tb-foreign").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let theirs = dir.path().join("tokenbroker");
        std::fs::create_dir(&theirs).unwrap();
        std::os::unix::fs::chown(&theirs, Some(uid), Some(group_of(uid))).unwrap();
        let socket = theirs.join("broker.sock");
        let (ready_tx, ready) = mpsc::channel();
        let (tx, received) = mpsc::channel();
        let path = socket.clone();
        on_thread_as(uid, move || {
            let listener = UnixListener::bind(&path).unwrap();
            ready_tx.send(()).unwrap();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut got = Vec::new();
                let _ = BufReader::new(&stream).read_until(b'\n', &mut got);
                if let Ok(request) = serde_json::from_slice::<serde_json::Value>(&got) {
                    let answer = serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": {
                        "account": "work", "access_token": FAKE_TOKEN, "token_type": "Bearer",
                        "expires_at": 4_000_000_000i64,
                    }});
                    let _ = writeln!(stream, "{answer}");
                }
                if tx.send(got).is_err() {
                    return;
                }
            }
        });
        ready.recv_timeout(Duration::from_secs(10)).expect("the fake broker did not start");
        FakeBroker { _dir: dir, socket, received }
    }

    /// What the next connection sent, once it is closed.
    fn next_connection(&self) -> String {
        let got = self.received.recv_timeout(Duration::from_secs(20)).expect("no connection reached the fake broker");
        String::from_utf8_lossy(&got).into_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root"]
async fn clients_send_nothing_to_a_socket_served_by_another_user() {
    let other = other_user();
    let fake = FakeBroker::start(other);
    let refusal = format!("served by another user (UID {other})");

    let out = Command::new(brokerctl_path())
        .arg("token")
        .env("TOKENBROKER_SOCKET", &fake.socket)
        .env_remove("TOKENBROKER_TRANSPORT")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains(FAKE_TOKEN), "brokerctl printed the other user's token: {stdout}");
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    for part in [refusal.as_str(), "nothing was sent", "TOKENBROKER_SOCKET", "XDG_RUNTIME_DIR"] {
        assert!(stderr.contains(part), "{part:?} missing: {stderr}");
    }
    assert_eq!(fake.next_connection(), "", "brokerctl sent a request to the other user");

    // Metadata would go to the other user: nothing of it may.
    let out = Command::new(brokerctl_path())
        .args(["metadata", "set", "secret_note=for-my-eyes"])
        .env("TOKENBROKER_SOCKET", &fake.socket)
        .env_remove("TOKENBROKER_TRANSPORT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fake.next_connection(), "", "brokerctl sent metadata to the other user");

    let e = tokenbroker::Client::connect_to(&fake.socket).await.err().expect("the async client connected");
    assert!(matches!(e, Error::ForeignServer { uid, .. } if uid == other), "{e}");
    assert!(e.to_string().contains(&refusal), "{e}");
    assert_eq!(fake.next_connection(), "", "the async client sent a request to the other user");

    let e = tokenbroker::blocking::Client::connect_to(&fake.socket).err().expect("the blocking client connected");
    assert!(matches!(e, Error::ForeignServer { uid, .. } if uid == other), "{e}");
    assert_eq!(fake.next_connection(), "", "the blocking client sent a request to the other user");

    // doctor says what is wrong, not "start the daemon".
    let out = Command::new(brokerctl_path()).arg("doctor").env("TOKENBROKER_SOCKET", &fake.socket).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("FAIL daemon") && text.contains(&refusal) && text.contains("another user serves"), "{text}");
    assert_eq!(fake.next_connection(), "", "doctor sent a request to the other user");
}

/// A broker the other user serves on the bus: it answers `Status`, counts the calls it got,
/// and sends `LoggedOut` when told to.
struct FakeBus {
    calls: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    emit: tokio::sync::mpsc::UnboundedSender<()>,
}

struct FakeIface {
    calls: Arc<AtomicUsize>,
}

#[zbus::interface(name = "io.github.tokenbroker.Broker1")]
impl FakeIface {
    async fn status(&self) -> String {
        self.calls.fetch_add(1, Ordering::SeqCst);
        r#"{"version":"fake","accounts":[]}"#.into()
    }

    #[zbus(signal)]
    async fn logged_out(emitter: &zbus::object_server::SignalEmitter<'_>, account: &str) -> zbus::Result<()>;
}

impl FakeBus {
    /// A bus open to other users where the second user already holds the broker's name: that
    /// user's UID, the bus, and the fake.
    fn on_an_open_bus() -> (u32, Bus, FakeBus) {
        let other = other_user();
        let bus = Bus::start_open_to_all_users();
        let fake = FakeBus::start(&bus, other);
        (other, bus, fake)
    }

    /// The other user takes the broker's name on `bus` (which must be open to other users).
    fn start(bus: &Bus, uid: u32) -> FakeBus {
        let calls = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (emit, mut emits) = tokio::sync::mpsc::unbounded_channel::<()>();
        let (ready_tx, ready) = mpsc::channel();
        let address = bus.address.clone();
        let iface = FakeIface { calls: calls.clone() };
        on_thread_as(uid, move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let conn = zbus::connection::Builder::address(address.as_str())
                    .unwrap()
                    .serve_at(DBUS_PATH, iface)
                    .unwrap()
                    .name(DBUS_NAME)
                    .unwrap()
                    .build()
                    .await
                    .expect("the other user could not take the name");
                ready_tx.send(()).unwrap();
                let iface = conn.object_server().interface::<_, FakeIface>(DBUS_PATH).await.unwrap();
                tokio::select! {
                    _ = stopped => {}
                    _ = async {
                        while emits.recv().await.is_some() {
                            FakeIface::logged_out(iface.signal_emitter(), "work").await.unwrap();
                        }
                    } => {}
                }
            });
        });
        ready.recv_timeout(Duration::from_secs(20)).expect("the other user's fake broker did not start");
        FakeBus { calls, stop: Some(stop), emit }
    }
}

impl Drop for FakeBus {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root"]
async fn clients_call_no_bus_name_owned_by_another_user() {
    let (other, bus, fake) = FakeBus::on_an_open_bus();
    let refusal = format!("served by another user (UID {other})");

    let out = bus.command(brokerctl_path().to_str().unwrap()).args(["--dbus", "status"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}{}", String::from_utf8_lossy(&out.stdout));
    for part in [refusal.as_str(), "nothing was sent", "DBUS_SESSION_BUS_ADDRESS"] {
        assert!(stderr.contains(part), "{part:?} missing: {stderr}");
    }

    let client = bus.dbus_client().await;
    let e = client.status().await.expect_err("the D-Bus client called the other user's broker");
    assert!(matches!(e, Error::ForeignServer { uid, .. } if uid == other), "{e}");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0, "the other user's broker was called");

    // Its signals are not believed either. The stream ends nowhere, so the check is that the
    // signal sent before a bounded wait has not arrived; with the check gone it arrives at once.
    let mut signals = client.signals().await.unwrap();
    fake.emit.send(()).unwrap();
    let got = tokio::time::timeout(Duration::from_secs(2), futures_util::StreamExt::next(&mut signals)).await;
    assert!(got.is_err(), "a signal from the other user's broker was delivered: {got:?}");
}

/// The D-Bus client calls the owner it checked, by its unique name; a restarted daemon has
/// another, which the client checks and then calls in place of the gone one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dbus_client_follows_its_daemon_across_a_restart() {
    let Env { bus, idp: _idp, mut daemon } = Fixture::new().start().await;
    let client = bus.dbus_client().await;
    assert_eq!(client.status().await.unwrap().accounts[0].name, "work");
    daemon.kill9();
    daemon.spawn(&bus);
    assert_eq!(client.status().await.unwrap().accounts[0].name, "work", "the client kept calling the gone daemon");
    let e = client.get_access_token(Default::default()).await.unwrap_err();
    assert_eq!(e.kind(), Some(tokenbroker::ErrorKind::NotLoggedIn), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root"]
async fn the_socket_keeps_serving_when_another_user_holds_the_bus_name() {
    let (other, bus, _fake) = FakeBus::on_an_open_bus();
    let idp = Idp::start(IdpOptions::default()).await;
    // Waits until the socket answers; fails if the daemon exits.
    let daemon = Daemon::start(&bus, &idp.account_config("work"));
    let out = daemon.brokerctl(&["status"]);
    // Served, and not logged in (status exits 3 for that).
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("work"));
    let log = daemon.log();
    assert!(log.contains("D-Bus is off") && log.contains(&format!("another user (UID {other})")), "{log}");
    assert!(log.contains("serving the socket only"), "{log}");
}

/// What the other user picks up on a bus open to them: every signal the broker sends, and the
/// `Accounts` property (which, unlike the methods, anyone may read). Ends at `LoggedOut`.
fn watch_as(bus: &Bus, uid: u32) -> (mpsc::Receiver<()>, std::thread::JoinHandle<Vec<String>>) {
    let address = bus.address.clone();
    let (ready_tx, ready) = mpsc::channel();
    let watcher = on_thread_as(uid, move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            use futures_util::StreamExt;
            let conn = zbus::connection::Builder::address(address.as_str()).unwrap().build().await.unwrap();
            let rule =
                zbus::MatchRule::builder().msg_type(zbus::message::Type::Signal).sender(DBUS_NAME).unwrap().build();
            let mut stream = zbus::MessageStream::for_match_rule(rule, &conn, None).await.unwrap();
            ready_tx.send(()).unwrap();
            let mut seen = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, stream.next()).await {
                let header = message.header();
                let member = header.member().map(|m| m.to_string()).unwrap_or_default();
                let body = message.body();
                let fields: zbus::zvariant::Structure = body.deserialize().unwrap();
                // One argument or several: "s" and "(sbs)" alike as "s" and "sbs".
                let signature = body.signature().to_string();
                let signature = signature.strip_prefix('(').and_then(|s| s.strip_suffix(')')).unwrap_or(&signature);
                seen.push(format!("{member}{signature:?} {fields}"));
                if member == "LoggedOut" {
                    break;
                }
            }
            let props = zbus::fdo::PropertiesProxy::builder(&conn)
                .destination(DBUS_NAME)
                .unwrap()
                .path(DBUS_PATH)
                .unwrap()
                .build()
                .await
                .unwrap();
            let iface = zbus::names::InterfaceName::from_static_str(DBUS_NAME).unwrap();
            let accounts = props.get(iface, "Accounts").await.unwrap();
            seen.push(format!("Accounts {}", zbus::zvariant::Value::from(accounts)));
            seen
        })
    });
    (ready, watcher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root"]
async fn another_user_on_an_open_bus_sees_account_names_states_and_expiry_only() {
    let Env { bus, idp, daemon } = Fixture::new().open_bus().access_ttl(60).start().await;
    let (ready, watcher) = watch_as(&bus, other_user());
    ready.recv_timeout(Duration::from_secs(20)).expect("the watcher did not start");

    // A login that fails, one that succeeds, a refresh and a logout: every signal there is.
    let client = daemon.client().await;
    let challenge = client.login(tokenbroker::protocol::Login::default()).await.unwrap();
    idp.deny(challenge.user_code.as_deref().unwrap()).await;
    assert!(client.await_login(&challenge.login_id).await.is_err());
    daemon.login(&idp, None, "alice").await;
    let first = token(&client, None).await.unwrap();
    next_second().await;
    let fresh = token(&client, Some(60)).await.unwrap();
    assert_ne!(first.access_token, fresh.access_token, "refreshed");
    let id = client.get_id_token(Default::default()).await.unwrap();
    let kept = bus.keyring_entry("work").unwrap();
    client.logout(Default::default()).await.unwrap();

    let seen = watcher.join().unwrap();
    let text = seen.join("\n");
    for kind in ["LoginFinished", "TokenRefreshed", "LoggedOut", "PropertiesChanged", "Accounts"] {
        assert!(text.contains(kind), "no {kind} seen:\n{text}");
    }
    // The shapes: names, states, expiry, a login's outcome; nothing else.
    for line in &seen {
        let shape = line.split(' ').next().unwrap();
        let allowed = [
            "LoginFinished\"sbs\"",
            "TokenRefreshed\"sx\"",
            "LoggedOut\"s\"",
            "LoginRequired\"s\"",
            "PropertiesChanged\"sa{sv}as\"",
            "Accounts",
        ];
        assert!(allowed.contains(&shape), "another user saw {line}");
    }
    let secrets = [
        first.access_token.expose(),
        fresh.access_token.expose(),
        id.id_token.expose(),
        kept["refresh_token"].as_str().unwrap(),
    ];
    for secret in secrets {
        assert!(!text.contains(secret), "another user saw a token:\n{text}");
    }
    // Nor who is logged in.
    for who in ["alice", "example.com"] {
        assert!(!text.contains(who), "another user saw {who:?}:\n{text}");
    }
}

/// Another user on an open bus who awaits the owner's pending login is refused, and is not
/// remembered as one of the login's callers: `LoggedInAs` (who logged in) never reaches them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root"]
async fn another_user_awaiting_a_login_is_not_told_who_logged_in() {
    let idp = IdpOptions { id_token_claims: true, ..Default::default() };
    let Env { bus, idp, daemon: _daemon } = Fixture::new().open_bus().idp(idp).start().await;
    let client = bus.dbus_client().await;
    let challenge = client.login(tokenbroker::protocol::Login::default()).await.unwrap();
    let (address, login_id) = (bus.address.clone(), challenge.login_id.clone());
    let (refused_tx, refused) = mpsc::channel();
    let other = on_thread_as(other_user(), move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            use futures_util::StreamExt;
            let conn = zbus::connection::Builder::address(address.as_str()).unwrap().build().await.unwrap();
            let signals = zbus::MatchRule::builder().msg_type(zbus::message::Type::Signal);
            let rule = signals.member("LoggedInAs").unwrap().build();
            let mut told = zbus::MessageStream::for_match_rule(rule, &conn, None).await.unwrap();
            let iface = Some(DBUS_NAME);
            let args = (login_id.as_str(),);
            let call = conn.call_method(Some(DBUS_NAME), DBUS_PATH, iface, "AwaitLoginResult", &args);
            refused_tx.send(call.await.is_err()).unwrap();
            tokio::time::timeout(Duration::from_secs(10), told.next()).await.is_ok()
        })
    });
    assert!(refused.recv_timeout(Duration::from_secs(20)).unwrap(), "another user's AwaitLoginResult was served");
    idp.approve(challenge.user_code.as_deref().unwrap(), "alice").await;
    assert_eq!(client.await_login(&challenge.login_id).await.unwrap().email.as_deref(), Some("alice@example.com"));
    assert!(!other.join().unwrap(), "another user was told who logged in");
}
