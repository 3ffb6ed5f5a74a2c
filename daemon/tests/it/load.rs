//! Floods: ten thousand clients at once, each asking ten times, all served the right token,
//! every one of them served while the others are, and the daemon's memory bounded; silent
//! connections closed after the idle timeout while busy ones stay; a long line leaves no big
//! buffer behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokenbroker_testkit::*;

const CLIENTS: usize = 10_000;
const REQUESTS: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_clients_ten_requests_each_all_served_in_bounded_memory() {
    let limit = raise_fd_limit(CLIENTS as u64 + 1_000);
    // Where the machine allows fewer open files, as many clients as it allows, said plainly.
    let clients = CLIENTS.min(limit.saturating_sub(1_000) as usize);
    if clients < CLIENTS {
        eprintln!("open-file limit {limit}: {clients} clients instead of {CLIENTS}");
    }
    assert!(clients >= 1_000, "an open-file limit of {limit} is too low for a load test");
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new()
        .access_ttl(3600)
        .log_level("info")
        .args(&["--max-connections", &(clients + 100).to_string()])
        .logged_in("alice")
        .await;
    let expected = token(&daemon.client().await, None).await.unwrap().access_token.expose().to_owned();
    let pid = daemon.pid();
    let idle_rss = rss_kib(pid);

    // Peak resident memory, sampled throughout.
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };

    // Everyone connects first, then everyone asks at once.
    let start = Arc::new(tokio::sync::Barrier::new(clients));
    let socket = daemon.socket();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (start, socket, expected) = (start.clone(), socket.clone(), expected.clone());
            tokio::spawn(async move {
                let mut conn = AsyncConn::connect(&socket).await;
                start.wait().await;
                let begun = Instant::now();
                let mut first = None;
                for _ in 0..REQUESTS {
                    let line = conn.request(GET_ACCESS_TOKEN).await;
                    let answer: serde_json::Value = serde_json::from_str(line).expect("an answer line");
                    assert_eq!(answer["result"]["access_token"], expected.as_str(), "{line}");
                    first.get_or_insert(begun.elapsed());
                }
                (first.unwrap(), begun.elapsed())
            })
        })
        .collect();
    let mut firsts = Vec::with_capacity(clients);
    let mut totals = Vec::with_capacity(clients);
    for c in tasks {
        let (first, total) = c.await.expect("a client failed");
        firsts.push(first);
        totals.push(total);
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await.unwrap();

    firsts.sort();
    totals.sort();
    let last_total = *totals.last().unwrap();
    eprintln!(
        "{clients} clients x {REQUESTS}: all done in {last_total:?}; first answers p50 {:?} max {:?}; \
         RSS idle {idle_rss} KiB, peak {peak} KiB",
        firsts[clients / 2],
        firsts.last().unwrap(),
    );
    // Fair service: connections are served side by side, so even the last client to be
    // answered got its first answer before half the clients were through with all ten (one
    // connection served to the end before the next would put it near the very end).
    let median_total = totals[clients / 2];
    assert!(*firsts.last().unwrap() < median_total, "a client waited for the others: {:?}", firsts.last());
    // Bounded memory: a few KiB per connection, not growth per request.
    let per_connection = peak.saturating_sub(idle_rss) * 1024 / clients as u64;
    assert!(per_connection < 16 * 1024, "{per_connection} bytes per connection at peak");
    assert!(peak < 256 * 1024, "peak RSS {peak} KiB");
    // And afterwards the daemon serves as before.
    assert_eq!(token(&daemon.client().await, None).await.unwrap().access_token.expose(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_after_the_idle_timeout_and_busy_ones_stay() {
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().args(&["--idle-timeout", "1"]).start().await;
    let mut silent = AsyncConn::connect(&daemon.socket()).await;
    let mut busy = AsyncConn::connect(&daemon.socket()).await;
    let begun = Instant::now();
    // The busy one asks every 300 ms for 2.5 s: never silent for a whole second.
    while begun.elapsed() < Duration::from_millis(2500) {
        assert!(!busy.request(STATUS).await.is_empty(), "a busy connection was closed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // The silent one was closed: end of stream, no answer.
    let closed = tokio::time::timeout(Duration::from_secs(2), silent.read_line()).await;
    assert!(matches!(closed, Ok("")), "the silent connection is still open: {closed:?}");
    let _ = silent.send(STATUS).await;
}

/// Each of a few hundred connections sends one line just under the 64 KiB cap, gets its answer
/// and stays open: what a connection keeps afterwards is what a small request leaves, not the
/// long line's buffer (before, each kept 64 KiB for its whole life). Lines go one connection
/// at a time, so the daemon's heap can reuse one long buffer for the next: the test measures
/// what is kept, not a burst. When they have all gone the daemon is back near its size before
/// them: their memory was freed, and handed back to the OS (glibc keeps freed pages otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_line_leaves_no_big_buffer_behind_and_a_crowd_leaves_nothing() {
    const CONNS: usize = 600;
    raise_fd_limit(CONNS as u64 + 1_000);
    let mut daemon = Daemon::prepare(SOCKET_ONLY);
    daemon.log_level = "info".into();
    daemon.spawn_without_bus();
    let pid = daemon.pid();
    let mut long = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Status\"".to_vec();
    long.resize(60 * 1024, b' ');
    long.extend(b"}\n");
    let ask = async |conn: &mut AsyncConn, request: &[u8]| {
        let line = conn.request(request).await;
        assert!(line.contains("\"result\""), "{line}");
    };

    let before = rss_kib(pid);
    let mut conns = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        let mut conn = AsyncConn::connect(&daemon.socket()).await;
        ask(&mut conn, STATUS).await;
        conns.push(conn);
    }
    let idle = rss_kib(pid);
    for conn in &mut conns {
        ask(conn, &long).await;
    }
    let after_long = rss_kib(pid);
    drop(conns);

    let back = before + 1536;
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut closed = rss_kib(pid);
    while closed > back && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        closed = rss_kib(pid);
    }
    eprintln!(
        "RSS {before} KiB; {CONNS} connections: {idle} KiB ({} B each); after a 60 KiB line each: {after_long} KiB \
         ({} B more each); closed: {closed} KiB",
        (idle.saturating_sub(before)) * 1024 / CONNS as u64,
        (after_long.saturating_sub(idle)) * 1024 / CONNS as u64,
    );
    // 64 KiB kept per connection would be 37.5 MiB here.
    let kept = after_long.saturating_sub(idle);
    assert!(kept < 4 * 1024, "{kept} KiB more after one long line on each of {CONNS} connections");
    assert!(closed <= back, "{closed} KiB once all {CONNS} closed, {before} KiB before them");
}
