//! Round trips and throughput over a Unix socket, the same client code against the broker
//! and against a bare tokio server that answers every line with a fixed line of the same size.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tokenbroker_testkit::{GET_ACCESS_TOKEN, RawConn};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// The baseline server (run as its own process, like the daemon): no parsing, no work.
pub fn serve_baseline(path: &Path, reply: Vec<u8>) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(path);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::UnixListener::bind(path)?;
        let reply = Arc::new(reply);
        loop {
            let (stream, _) = listener.accept().await?;
            let reply = reply.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = tokio::io::BufReader::new(read);
                let mut line = Vec::new();
                while lines.read_until(b'\n', &mut line).await.unwrap_or(0) > 0 {
                    if write.write_all(&reply).await.is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    })
}

/// `n` round trips on each connection, taking turns call by call.
pub fn alternating(a: &mut RawConn, b: &mut RawConn, n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let (mut sa, mut sb) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        for (conn, samples) in [(&mut *a, &mut sa), (&mut *b, &mut sb)] {
            let t = Instant::now();
            conn.request(GET_ACCESS_TOKEN);
            samples.push(t.elapsed());
        }
    }
    (sa, sb)
}

/// `conns` clients, each on its own connection and thread, as fast as they can for `time`:
/// requests per second and the mean round trip.
pub fn throughput(path: &Path, conns: usize, time: Duration) -> (f64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(conns + 1));
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let (stop, done, start) = (stop.clone(), done.clone(), start.clone());
            let mut conn = RawConn::open(path);
            std::thread::spawn(move || {
                start.wait();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    conn.request(GET_ACCESS_TOKEN);
                    n += 1;
                }
                done.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    start.wait();
    let t = Instant::now();
    std::thread::sleep(time);
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join().unwrap();
    }
    let elapsed = t.elapsed();
    let total = done.load(Ordering::Relaxed) as f64;
    (total / elapsed.as_secs_f64(), elapsed.mul_f64(conns as f64 / total.max(1.0)))
}

pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() - 1) as f64 * p).round() as usize]
}
