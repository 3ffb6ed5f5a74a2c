//! The socket door: bad input gets errors and harms nobody, other users are refused, and
//! SIGTERM stops the daemon cleanly.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

fn roundtrip(conn: &mut BufReader<UnixStream>, line: &[u8]) -> Value {
    conn.get_mut().write_all(line).unwrap();
    let mut answer = String::new();
    conn.read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("not JSON ({e}): {answer:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_get_json_rpc_errors_and_the_daemon_keeps_serving() {
    let bus = Bus::start();
    let idp = Idp::start(IdpOptions::default()).await;
    let daemon = Daemon::start(&bus, &idp.account_config("work"));
    let mut conn = BufReader::new(UnixStream::connect(daemon.socket()).unwrap());
    conn.get_mut().set_read_timeout(Some(Duration::from_secs(10))).unwrap();

    let r = roundtrip(&mut conn, b"{not json\n");
    assert_eq!(r["error"]["code"], -32700);
    assert_eq!(r["id"], Value::Null);
    let r = roundtrip(&mut conn, b"\xff\xfe garbage\n");
    assert_eq!(r["error"]["code"], -32700);
    let r = roundtrip(&mut conn, b"[1,2]\n");
    assert_eq!(r["error"]["code"], -32600);
    let r = roundtrip(&mut conn, b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"Nope\"}\n");
    assert_eq!((r["id"].clone(), r["error"]["code"].clone()), (json!(7), json!(-32601)));
    let r = roundtrip(
        &mut conn,
        b"{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"GetAccessToken\",\"params\":{\"min_ttl\":\"soon\"}}\n",
    );
    assert_eq!(r["error"]["code"], -32602);
    assert_eq!(r["error"]["data"]["kind"], "invalid_params");
    let r = roundtrip(&mut conn, b"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"Status\"}\n");
    assert_eq!(r["error"]["code"], -32600);

    // A line over 64 KiB: an error, and the same connection still works afterwards.
    let mut huge = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Status\",\"params\":{\"pad\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 70 * 1024));
    huge.extend(b"\"}}\n");
    let r = roundtrip(&mut conn, &huge);
    assert_eq!(r["error"]["code"], -32600);
    assert!(r["error"]["message"].as_str().unwrap().contains("longer than"));

    let r = roundtrip(&mut conn, b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"Status\"}\n");
    assert_eq!(r["id"], 2);
    assert_eq!(r["result"]["accounts"][0]["name"], "work");
    // Broker errors carry the stable kind.
    let r = roundtrip(
        &mut conn,
        b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"GetAccessToken\",\"params\":{\"account\":\"nope\"}}\n",
    );
    assert_eq!(r["error"]["data"]["kind"], "unknown_account");
    let r = roundtrip(&mut conn, b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"GetAccessToken\"}\n");
    assert_eq!(r["error"]["data"]["kind"], "not_logged_in");
    // Other connections never noticed.
    assert_eq!(daemon.client().await.status().await.unwrap().accounts.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_is_private_and_other_users_are_refused() {
    let bus = Bus::start();
    let idp = Idp::start(IdpOptions::default()).await;
    let daemon = Daemon::start(&bus, &idp.account_config("work"));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&daemon.socket()), 0o600);
    assert_eq!(mode(daemon.socket().parent().unwrap()), 0o700);

    if unsafe { libc::getuid() } != 0 {
        eprintln!("not root: cannot run a client as another user; SO_PEERCRED refusal untested here");
        return;
    }
    // Open the file-system door on purpose, so only SO_PEERCRED stands in the way.
    let sock = daemon.socket();
    for dir in sock.ancestors().skip(1).take_while(|d| d.starts_with(daemon.dir.path())) {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let other = other_user();
    let out = std::os::unix::process::CommandExt::uid(&mut std::process::Command::new(brokerctl_path()), other)
        .arg("status")
        .env("TOKENBROKER_SOCKET", daemon.socket())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("serves only its own user"), "{stderr}");
    assert!(daemon.log().contains("refused a connection from another user"));
    // The owner is still served.
    assert!(daemon.brokerctl(&["status"]).status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_what_is_in_flight_removes_the_socket_and_exits_0() {
    let bus = Bus::start();
    let idp = Idp::start(IdpOptions::default()).await;
    let mut daemon = Daemon::start(&bus, &idp.account_config("work"));
    let client = daemon.client().await;
    let challenge = client.login(Default::default()).await.unwrap();
    // AwaitLogin is in flight when the signal comes: it is answered, not cut off.
    let waiter = tokio::spawn(async move { client.await_login(&challenge.login_id).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let proc = daemon.proc.as_mut().unwrap();
    proc.signal(libc::SIGTERM);
    let status = proc.wait_exit(Duration::from_secs(20)).expect("tokenbrokerd did not stop");
    assert_eq!(status.code(), Some(0));
    let answer = waiter.await.unwrap();
    let err = answer.unwrap_err();
    assert!(matches!(err, tokenbroker::Error::Broker { .. }), "an answer, not a broken connection: {err:?}");
    assert!(!daemon.socket().exists(), "socket removed");
    assert!(daemon.log().contains("stopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused_with_an_error_and_others_go_on() {
    let bus = Bus::start();
    let idp = Idp::start(IdpOptions::default()).await;
    let daemon = Daemon::start_with_args(&bus, &idp.account_config("work"), &["--max-connections", "2"]);
    // The readiness probe's connections may still be closing: take the two slots as they free.
    let admitted = || async {
        for _ in 0..100 {
            let client = daemon.client().await;
            if client.status().await.is_ok() {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no slot freed up");
    };
    let first = admitted().await;
    let second = admitted().await;
    let mut third = BufReader::new(UnixStream::connect(daemon.socket()).unwrap());
    third.get_mut().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    third.read_line(&mut answer).unwrap();
    let r: Value = serde_json::from_str(&answer).unwrap();
    assert!(r["error"]["message"].as_str().unwrap().contains("too many connections"), "{r}");
    assert!(first.status().await.is_ok(), "the admitted connections are unaffected");
    // A slot frees when a client leaves.
    drop(second);
    let ok = eventually(Duration::from_secs(5), || async { daemon.client().await.status().await.is_ok() }).await;
    assert!(ok, "a new client is served once a slot is free");
}
