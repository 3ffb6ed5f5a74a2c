//! The browser is opened on a one-time address of ours, never on the login's own URL: an
//! opener's command line (`xdg-open URL`) is in `/proc/PID/cmdline`, which every user can
//! read, and the login's URL (its `state` and PKCE challenge, or a device flow's user code)
//! lets whoever opens it first finish the login as *their* IdP account, silently logging us
//! in as them. Our address redirects once to the real URL and then only says it was used, so
//! a stolen link makes the real login fail where the user can see it.
//!
//! std only: one thread on 127.0.0.1 with non-blocking sockets, reading every connection a
//! little at a time, so no number of silent connections holds up the browser's; it stops
//! when the `Handoff` is dropped (the login is over).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A browser sends its request at once; a connection that has not in this time is not one.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// A GET of our one path fits easily; anything bigger is not a browser's.
const MAX_HEAD: usize = 8 * 1024;
/// Connections read at once. When full, the oldest is dropped for the newest: the browser
/// sends its request as soon as it connects, so it is never the oldest for long.
const MAX_PENDING: usize = 128;
/// How often the thread looks at its sockets when nothing happens.
const TICK: Duration = Duration::from_millis(10);

pub struct Handoff {
    url: String,
    stop: Arc<AtomicBool>,
    serving: Option<JoinHandle<()>>,
    #[cfg(test)]
    addr: SocketAddr,
}

struct Shared {
    /// `/` and 32 random hex digits: unguessable, so only who reads the opener's command
    /// line can know it.
    path: String,
    target: String,
    used: bool,
    warned: bool,
}

struct Pending {
    stream: TcpStream,
    head: Vec<u8>,
    deadline: Instant,
}

impl Handoff {
    /// Serve a one-time redirect to `target`, which must already be a checked URL (no
    /// control characters or spaces: it goes into a header).
    pub fn start(target: &str) -> std::io::Result<Handoff> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr: SocketAddr = listener.local_addr()?;
        let path = format!("/{}", random_hex()?);
        let url = format!("http://{addr}{path}");
        let shared = Shared { path, target: target.to_owned(), used: false, warned: false };
        let stop = Arc::new(AtomicBool::new(false));
        let serving = {
            let stop = stop.clone();
            std::thread::Builder::new().name("handoff".into()).spawn(move || serve(listener, shared, &stop))?
        };
        Ok(Handoff {
            url,
            stop,
            serving: Some(serving),
            #[cfg(test)]
            addr,
        })
    }

    /// The one-time address to give the browser.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.serving.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: TcpListener, mut shared: Shared, stop: &AtomicBool) {
    let mut pending: Vec<Pending> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let mut busy = false;
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    busy = true;
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    if pending.len() >= MAX_PENDING {
                        pending.remove(0);
                    }
                    let deadline = Instant::now() + REQUEST_TIMEOUT;
                    pending.push(Pending { stream, head: Vec::with_capacity(512), deadline });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // Out of file descriptors, say: the next tick tries again, no spinning.
                Err(_) => break,
            }
        }
        let now = Instant::now();
        pending.retain_mut(|p| {
            if now > p.deadline {
                return false;
            }
            match read_more(p) {
                Progress::Waiting => true,
                Progress::Moved => {
                    busy = true;
                    true
                }
                Progress::Done(target) => {
                    busy = true;
                    answer(&mut p.stream, target.as_deref(), &mut shared);
                    false
                }
            }
        });
        if !busy {
            std::thread::sleep(TICK);
        }
    }
}

enum Progress {
    Waiting,
    Moved,
    /// The request head is complete (the target of a `GET`), or never will be (`None`).
    Done(Option<String>),
}

fn read_more(p: &mut Pending) -> Progress {
    let mut buf = [0u8; 1024];
    match p.stream.read(&mut buf) {
        Ok(0) => Progress::Done(None),
        Ok(n) => {
            p.head.extend_from_slice(&buf[..n]);
            if p.head.windows(4).any(|w| w == b"\r\n\r\n") {
                Progress::Done(Some(target(&p.head).unwrap_or_default()))
            } else if p.head.len() >= MAX_HEAD {
                Progress::Done(None)
            } else {
                Progress::Moved
            }
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => Progress::Waiting,
        Err(_) => Progress::Done(None),
    }
}

/// The target of a `GET` request line.
fn target(head: &[u8]) -> Option<String> {
    let line = head.split(|&b| b == b'\r').next()?;
    let mut parts = std::str::from_utf8(line).ok()?.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_owned()),
        _ => None,
    }
}

fn answer(stream: &mut TcpStream, target: Option<&str>, shared: &mut Shared) {
    match target {
        None | Some("") => respond(stream, "400 Bad Request", None, "This address only opens a login page.\n"),
        Some(t) if t != shared.path => {
            respond(stream, "404 Not Found", None, "This address only opens a login page.\n")
        }
        Some(_) if !shared.used => {
            shared.used = true;
            respond(stream, "303 See Other", Some(&shared.target), "");
        }
        Some(_) => {
            respond(stream, "410 Gone", None, USED);
            if !shared.warned {
                shared.warned = true;
                eprintln!(
                    "brokerctl: the login link was opened a second time and refused. If your browser says \
                     \"already used\", someone else opened it first: approve nothing, press Ctrl-C and log in again."
                );
            }
        }
    }
}

const USED: &str = "This login link was already used.\n\n\
If you did not open it before, someone else on this machine may have opened it first.\n\
Do not log in from another page: go back to the terminal, press Ctrl-C, and log in again.\n";

fn respond(stream: &mut TcpStream, status: &str, location: Option<&str>, body: &str) {
    let location = location.map(|l| format!("Location: {l}\r\n")).unwrap_or_default();
    // no-store: a cached redirect would replay the login's URL; no-referrer: the IdP need not
    // learn our one-time address.
    let response = format!(
        "HTTP/1.1 {status}\r\n{location}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // Small enough for any socket buffer; a peer that reads nothing cannot make us wait.
    let _ = stream.write_all(response.as_bytes());
}

/// 128 bits from the kernel, as hex.
fn random_hex() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str, path: &str) -> String {
        let addr = url.trim_start_matches("http://").split('/').next().unwrap();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn redirects_once_then_says_used_and_silent_peers_hold_up_no_one() {
        let target = "https://idp.example/auth?state=s3cret";
        let h = Handoff::start(target).unwrap();
        let path = h.url().split_once("127.0.0.1:").unwrap().1.split_once('/').unwrap().1;
        assert_eq!(path.len(), 32, "{}", h.url());
        let addr = h.addr;
        let _silent: Vec<_> = (0..(MAX_PENDING + 20)).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let started = Instant::now();
        assert!(get(h.url(), "/other").starts_with("HTTP/1.1 404"));
        let first = get(h.url(), &format!("/{path}"));
        assert!(first.starts_with("HTTP/1.1 303"), "{first}");
        assert!(first.contains(&format!("\r\nLocation: {target}\r\n")), "{first}");
        assert!(
            first.contains("\r\nCache-Control: no-store\r\n") && first.contains("\r\nReferrer-Policy: no-referrer\r\n")
        );
        let second = get(h.url(), &format!("/{path}"));
        assert!(second.starts_with("HTTP/1.1 410") && second.contains("already used"), "{second}");
        assert!(!second.contains("s3cret"));
        // One after the other, they would take 2 s each.
        assert!(started.elapsed() < Duration::from_secs(5), "waited behind silent connections");
        drop(h);
        assert!(TcpStream::connect(addr).is_err(), "closed once dropped");
    }
}
