//! The socket protocol spoken by hand: newline-delimited JSON-RPC on the Unix socket, with no
//! client crate in between. For what the client crate never sends (garbage, huge lines,
//! clients that never read), and for benchmarks that compare the daemon with a bare server
//! answering the same bytes.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// `Status`, as one line.
pub const STATUS: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Status\"}\n";
/// `GetAccessToken` for the default account, as one line.
pub const GET_ACCESS_TOKEN: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"GetAccessToken\"}\n";

/// One blocking connection; a read waits 10 s at most (then panics).
pub struct RawConn {
    conn: BufReader<UnixStream>,
    line: String,
}

impl RawConn {
    pub fn open(path: &Path) -> RawConn {
        let stream = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        RawConn { conn: BufReader::new(stream), line: String::with_capacity(512) }
    }

    /// A connection the daemon admitted, shown by an answer to `Status` (a slot may still be
    /// held a moment by a client that is closing, as a readiness probe's).
    pub fn admitted(path: &Path) -> RawConn {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut conn = RawConn::open(path);
            if conn.roundtrip(STATUS).get("result").is_some() {
                return conn;
            }
            assert!(Instant::now() < deadline, "never admitted");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Write bytes as they are (no newline added).
    pub fn send(&mut self, bytes: &[u8]) {
        self.conn.get_mut().write_all(bytes).unwrap();
    }

    /// The next line from the daemon as it came, newline included; empty once it has closed.
    pub fn read_line(&mut self) -> &str {
        self.line.clear();
        self.conn.read_line(&mut self.line).unwrap();
        &self.line
    }

    /// Send one request line and read one answer line (allocating nothing on the way: the
    /// benchmarks time this).
    pub fn request(&mut self, line: &[u8]) -> &str {
        self.send(line);
        self.read_line()
    }

    /// The next answer, as JSON.
    pub fn answer(&mut self) -> Value {
        let line = self.read_line();
        assert!(!line.is_empty(), "the daemon closed the connection");
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
    }

    /// Send one request line and parse the answer.
    pub fn roundtrip(&mut self, line: &[u8]) -> Value {
        self.send(line);
        self.answer()
    }

    /// `Status`, answered.
    pub fn status(&mut self) -> Value {
        self.roundtrip(STATUS)
    }

    pub fn stream(&self) -> &UnixStream {
        self.conn.get_ref()
    }

    /// One request on a connection of its own; its answer. `line` lacks the newline.
    pub fn ask(path: &Path, line: &str) -> Value {
        RawConn::open(path).roundtrip(format!("{line}\n").as_bytes())
    }
}

/// One connection on tokio, for crowds of thousands.
pub struct AsyncConn {
    read: tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>,
    write: tokio::net::unix::OwnedWriteHalf,
    line: String,
}

impl AsyncConn {
    /// Connect, and again while the listen backlog is full (as a real client would), for a
    /// minute at most.
    pub async fn connect(path: &Path) -> AsyncConn {
        let deadline = Instant::now() + Duration::from_secs(60);
        let stream = loop {
            match tokio::net::UnixStream::connect(path).await {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline && e.kind() == std::io::ErrorKind::WouldBlock => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => panic!("connect: {e}"),
            }
        };
        let (read, write) = stream.into_split();
        AsyncConn { read: tokio::io::BufReader::new(read), write, line: String::new() }
    }

    /// Write bytes as they are; false once the daemon has closed the connection.
    pub async fn send(&mut self, bytes: &[u8]) -> bool {
        self.write.write_all(bytes).await.is_ok()
    }

    /// The next line from the daemon, newline included; empty once it has closed.
    pub async fn read_line(&mut self) -> &str {
        self.line.clear();
        self.read.read_line(&mut self.line).await.unwrap();
        &self.line
    }

    /// Send one request line and read one answer line.
    pub async fn request(&mut self, line: &[u8]) -> &str {
        assert!(self.send(line).await, "the daemon closed the connection");
        self.read_line().await
    }
}
