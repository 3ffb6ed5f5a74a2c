//! Opening the person's browser on a login the daemon started itself (a desktop notice's
//! "Log in"), with the care brokerctl takes (its handoff.rs): the browser is opened on a
//! one-time address of ours, never on the login's own URL, since an opener's command line is
//! readable by every user in `/proc/PID/cmdline`, and the login's URL (its `state` and PKCE
//! challenge, or a device flow's user code) lets whoever opens it first finish the login as
//! *their* IdP account. Our address redirects once to the real URL, then answers 410 Gone.
//!
//! The opener is the config's `browser_command` (`%s` in an argument stands for the link, else
//! it goes last), else `$BROWSER` when set (its first entry), else `xdg-open` (`open` on macOS):
//! brokerctl's order, less its flag.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A browser sends its request at once; a connection that has not in this time is not one.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// A GET of our one path fits easily; anything bigger is not a browser's.
const MAX_HEAD: usize = 8 * 1024;

/// Serve a one-time redirect to `target` for `lifetime`, and start the opener on it. `target`
/// must be a URL without control characters or spaces (it goes into a header).
pub async fn open(target: &str, lifetime: Duration, command: Option<&[String]>) -> std::io::Result<()> {
    if target.chars().any(|c| c.is_control() || c == ' ') {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "the login's URL is not one to open"));
    }
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let path = format!("/{:032x}", rand::random::<u128>());
    let link = format!("http://{}{path}", listener.local_addr()?);
    let mut child = opener(&link, command).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    // Reaped off the async thread: an opener may run as long as the browser does.
    tokio::task::spawn_blocking(move || child.wait());
    let target: Arc<str> = target.into();
    tokio::spawn(async move {
        let used = Arc::new(AtomicBool::new(false));
        let serving = async {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of descriptors, say: wait a little rather than spin on accept.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                tokio::spawn(answer(stream, path.clone(), target.clone(), used.clone()));
            }
        };
        let _ = tokio::time::timeout(lifetime, serving).await;
    });
    Ok(())
}

fn opener(link: &str, command: Option<&[String]>) -> Command {
    if let Some([program, args @ ..]) = command {
        let mut cmd = Command::new(program);
        cmd.args(args.iter().map(|a| a.replace("%s", link)));
        if !args.iter().any(|a| a.contains("%s")) {
            cmd.arg(link);
        }
        return cmd;
    }
    let browser = std::env::var("BROWSER").ok();
    let program = browser.as_deref().and_then(|b| b.split(':').find(|p| !p.is_empty()));
    let default = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let mut cmd = Command::new(program.unwrap_or(default));
    cmd.arg(link);
    cmd
}

/// Our path, the first time: 303 to the login's URL. Any other request: 404 or 410.
async fn answer(mut stream: TcpStream, path: String, target: Arc<str>, used: Arc<AtomicBool>) {
    let mut head = Vec::new();
    let read = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    });
    if !matches!(read.await, Ok(true)) {
        return;
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let ours = line == format!("GET {path} HTTP/1.1").as_bytes() || line == format!("GET {path} HTTP/1.0").as_bytes();
    let response = match ours {
        true if !used.swap(true, Ordering::SeqCst) => {
            format!(
                "HTTP/1.1 303 See Other\r\nLocation: {target}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
        }
        true => {
            let body = "This login link was used already. If that was not you, cancel the login and start it again.\n";
            format!(
                "HTTP/1.1 410 Gone\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        false => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    fn argv(cmd: &Command) -> Vec<String> {
        std::iter::once(cmd.get_program()).chain(cmd.get_args()).map(|a| a.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn the_configured_browser_command_comes_first_with_the_link_in_its_place() {
        let config = ["firefox".to_owned(), "--new-window".to_owned()];
        assert_eq!(argv(&opener("http://l", Some(&config))), ["firefox", "--new-window", "http://l"]);
        let config = ["sh".to_owned(), "-c".to_owned(), "open '%s'".to_owned()];
        assert_eq!(argv(&opener("http://l", Some(&config))), ["sh", "-c", "open 'http://l'"]);
    }

    #[tokio::test]
    async fn the_link_redirects_once_then_says_it_was_used() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let used = Arc::new(AtomicBool::new(false));
        let target: Arc<str> = "https://idp.example.com/device?user_code=ABCD".into();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                tokio::spawn(answer(stream, "/secret".into(), target.clone(), used.clone()));
            }
        });
        assert!(get(addr, "/guess").await.starts_with("HTTP/1.1 404"));
        let first = get(addr, "/secret").await;
        assert!(
            first.starts_with("HTTP/1.1 303")
                && first.contains("Location: https://idp.example.com/device?user_code=ABCD\r\n")
                && first.contains("\r\nReferrer-Policy: no-referrer\r\n"),
            "{first}"
        );
        assert!(get(addr, "/secret").await.starts_with("HTTP/1.1 410"));
    }
}
