//! The socket door: bad input gets errors and harms nobody, other users are refused (without
//! taking a slot or flooding the log), clients that never read are let go, and SIGTERM stops
//! the daemon cleanly.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokenbroker_testkit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_get_json_rpc_errors_and_the_daemon_keeps_serving() {
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().start().await;
    let mut conn = RawConn::open(&daemon.socket());

    let r = conn.roundtrip(b"{not json\n");
    assert_eq!(r["error"]["code"], -32700);
    assert_eq!(r["id"], Value::Null);
    let r = conn.roundtrip(b"\xff\xfe garbage\n");
    assert_eq!(r["error"]["code"], -32700);
    let r = conn.roundtrip(b"[1,2]\n");
    assert_eq!(r["error"]["code"], -32600);
    let r = conn.roundtrip(b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"Nope\"}\n");
    assert_eq!((r["id"].clone(), r["error"]["code"].clone()), (json!(7), json!(-32601)));
    let r = conn.roundtrip(
        b"{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"GetAccessToken\",\"params\":{\"min_ttl\":\"soon\"}}\n",
    );
    assert_eq!(r["error"]["code"], -32602);
    assert_eq!(r["error"]["data"]["kind"], "invalid_params");
    let r = conn.roundtrip(b"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"Status\"}\n");
    assert_eq!(r["error"]["code"], -32600);

    // A line over 64 KiB: an error, and the same connection still works afterwards.
    let mut huge = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Status\",\"params\":{\"pad\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 70 * 1024));
    huge.extend(b"\"}}\n");
    let r = conn.roundtrip(&huge);
    assert_eq!(r["error"]["code"], -32600);
    assert!(r["error"]["message"].as_str().unwrap().contains("longer than"));

    let r = conn.roundtrip(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"Status\"}\n");
    assert_eq!(r["id"], 2);
    assert_eq!(r["result"]["accounts"][0]["name"], "work");
    // Broker errors carry the stable kind.
    let r = conn
        .roundtrip(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"GetAccessToken\",\"params\":{\"account\":\"nope\"}}\n");
    assert_eq!(r["error"]["data"]["kind"], "unknown_account");
    let r = conn.roundtrip(b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"GetAccessToken\"}\n");
    assert_eq!(r["error"]["data"]["kind"], "not_logged_in");
    // Other connections never noticed.
    assert_eq!(daemon.client().await.status().await.unwrap().accounts.len(), 1);
}

fn assert_private(daemon: &Daemon) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&daemon.socket()), 0o600);
    assert_eq!(mode(daemon.socket().parent().unwrap()), 0o700);
}

/// What any user can check; the refusal of another user needs root (below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_and_its_directory_are_the_owners_alone() {
    assert_private(&Fixture::new().start().await.daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root"]
async fn the_socket_is_private_and_other_users_are_refused() {
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().start().await;
    assert_private(&daemon);
    use std::os::unix::fs::PermissionsExt;
    // Open the file-system door on purpose, so only SO_PEERCRED stands in the way.
    let sock = daemon.socket();
    for dir in sock.ancestors().skip(1).take_while(|d| d.starts_with(daemon.dir.path())) {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let other = other_user();
    let out = std::os::unix::process::CommandExt::uid(&mut daemon.brokerctl_command(), other).arg("status").output();
    let out = out.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // access_denied, as D-Bus answers it: the refusal takes the one error mapping.
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("serves only its own user"), "{stderr}");
    // Logged after the refusal is written: the client may have read it before the line lands.
    let logged = || async { daemon.log().contains("refused a connection from another user") };
    assert!(eventually(Duration::from_secs(5), logged).await, "{}", daemon.log());
    // The owner is still served (status exits 3: not logged in).
    assert_eq!(daemon.brokerctl(&["status"]).status.code(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_what_is_in_flight_removes_the_socket_and_exits_0() {
    let Env { bus: _bus, idp: _idp, mut daemon } = Fixture::new().start().await;
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
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().args(&["--max-connections", "2"]).start().await;
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
    let r = RawConn::open(&daemon.socket()).answer();
    assert!(r["error"]["message"].as_str().unwrap().contains("too many connections"), "{r}");
    // Each is refused, but the log says so once a minute, with a count.
    for _ in 0..20 {
        let mut more = RawConn::open(&daemon.socket());
        let answer = more.read_line();
        assert!(answer.contains("too many connections"), "{answer}");
    }
    let warnings = daemon.log().lines().filter(|l| l.contains("connection refused: too many connections")).count();
    assert_eq!(warnings, 1, "{warnings} warnings for 21 refusals");
    assert!(first.status().await.is_ok(), "the admitted connections are unaffected");
    // A slot frees when a client leaves.
    drop(second);
    let ok = eventually(Duration::from_secs(5), || async { daemon.client().await.status().await.is_ok() }).await;
    assert!(ok, "a new client is served once a slot is free");
}

fn daemon_without_bus(args: &[&str]) -> Daemon {
    let mut daemon = Daemon::prepare(SOCKET_ONLY);
    daemon.args = args.iter().map(|a| a.to_string()).collect();
    daemon.spawn_without_bus();
    daemon
}

/// A client that sends requests as fast as it can and never reads an answer. Returns once the
/// socket's buffers are full both ways, so the daemon's write to it cannot finish; the
/// connection stays open (a thread keeps writing into it until the daemon lets go).
fn stuck_reader(socket: &Path) -> RawConn {
    let conn = RawConn::admitted(socket);
    let writer = conn.stream().try_clone().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    std::thread::spawn({
        let sent = sent.clone();
        move || {
            while (&writer).write_all(STATUS).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = 0;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = sent.load(Ordering::Relaxed);
        if now > 0 && now == seen {
            return conn;
        }
        seen = now;
        assert!(Instant::now() < deadline, "the daemon kept reading: {now} requests sent");
    }
}

#[test]
fn sigterm_is_prompt_while_a_client_never_reads_its_answers() {
    let mut daemon = daemon_without_bus(&[]);
    let _stuck = stuck_reader(&daemon.socket());
    let proc = daemon.proc.as_mut().unwrap();
    let begun = Instant::now();
    proc.signal(libc::SIGTERM);
    // Before the fix the stop waited out its whole 20 s drain for the blocked write.
    let status = proc.wait_exit(Duration::from_secs(10)).expect("tokenbrokerd did not stop within 10 s");
    assert_eq!(status.code(), Some(0));
    eprintln!("stopped in {:?}", begun.elapsed());
    assert!(daemon.log().contains("stopped"));
    assert!(!daemon.log().contains("did not finish"), "{}", daemon.log());
}

#[test]
fn a_client_that_never_reads_is_closed_after_the_idle_timeout_and_frees_its_slot() {
    let daemon = daemon_without_bus(&["--max-connections", "1", "--idle-timeout", "1"]);
    let _stuck = stuck_reader(&daemon.socket());
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokenbroker::blocking::Client::connect_to(daemon.socket()).and_then(|c| c.status()).is_err() {
        assert!(Instant::now() < deadline, "the stuck client still holds the only slot");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Not a test of its own: the body of the process that
/// `another_users_connection_loops_take_no_slot_stall_nothing_and_log_a_count` runs as another user.
/// Connects and hangs up as fast as it can for 4 s, and prints how many times.
#[test]
fn connect_loop_helper() {
    let Some(socket) = std::env::var_os("TB_CONNECT_LOOP_SOCKET") else { return };
    let begun = Instant::now();
    let mut connected = 0;
    while begun.elapsed() < Duration::from_secs(4) {
        if UnixStream::connect(&socket).is_ok() {
            connected += 1;
        }
    }
    // libtest prints its own words around this.
    println!("connected {connected}");
}

#[test]
#[ignore = "needs root"]
fn another_users_connection_loops_take_no_slot_stall_nothing_and_log_a_count() {
    let mut daemon = daemon_without_bus(&["--max-connections", "3"]);
    use std::os::unix::fs::PermissionsExt;
    let sock = daemon.socket();
    for dir in sock.ancestors().skip(1).take_while(|d| d.starts_with(daemon.dir.path())) {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    // More loops than the daemon refuses alone: its backlog never empties while they run.
    let loopers: Vec<_> = (0..3)
        .map(|_| {
            std::os::unix::process::CommandExt::uid(
                &mut std::process::Command::new(std::env::current_exe().unwrap()),
                other_user(),
            )
            .args(["--exact", "socket::connect_loop_helper", "--nocapture", "--test-threads=1"])
            .env("TB_CONNECT_LOOP_SOCKET", &sock)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();

    // Meanwhile the owner's clients are all served, promptly: none is told there are too many,
    // and none waits for the loops to end (4 s) as when the daemon stalled on refusals.
    std::thread::sleep(Duration::from_millis(300));
    let mut failed = Vec::new();
    let mut slowest = Duration::ZERO;
    for _ in 0..40 {
        let begun = Instant::now();
        if let Err(e) = tokenbroker::blocking::Client::connect_to(&sock).and_then(|c| c.status()) {
            failed.push(e.to_string());
        }
        slowest = slowest.max(begun.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut connected = 0;
    for looper in loopers {
        let out = looper.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        connected += stdout
            .lines()
            .find_map(|l| l.split("connected ").nth(1)?.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("the loop said: {stdout}"));
    }
    assert!(failed.is_empty(), "{} of 40 status calls failed: {:?}", failed.len(), failed.first());
    assert!(slowest < Duration::from_secs(2), "a status call took {slowest:?}");

    // Served after every one of the loop's connections (the backlog is first come, first
    // served), then stopped: the counts not yet logged are logged at the stop.
    assert!(tokenbroker::blocking::Client::connect_to(&sock).and_then(|c| c.status()).is_ok());
    let proc = daemon.proc.as_mut().unwrap();
    proc.signal(libc::SIGTERM);
    assert!(proc.wait_exit(Duration::from_secs(10)).is_some(), "tokenbrokerd did not stop");
    let log = daemon.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("refused a connection from another user")).collect();
    assert!((1..=3).contains(&lines.len()), "{} refusal lines for {connected} connections", lines.len());
    let counted: u64 = lines
        .iter()
        .map(|l| l.split("count=").nth(1).and_then(|c| c.split_whitespace().next()?.parse::<u64>().ok()).unwrap())
        .sum();
    assert_eq!(counted, connected, "{lines:?}");
    assert!(!log.contains("too many connections"), "the owner was never refused: {log}");
    eprintln!("{connected} connections from another user, logged as: {lines:#?}");
}
