//! The loopback redirect listener of the code flow (RFC 8252 §7.3): 127.0.0.1 on a random
//! port, one purpose, closed when the browser has come back.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

use super::OidcError;
use super::error::{Grant, refusal};
use super::idp_text::printable;

/// A browser's redirect is one short GET; anything bigger is not one.
const MAX_REQUEST: usize = 16 * 1024;
/// Per connection: a browser sends its request at once, so a connection that has not sent a
/// whole request head in this time (or will not read our answer) is not the browser.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections read at once. Each costs a socket and a small task; past this many, the
/// oldest is dropped for the newest (only another local program can be that busy with this
/// port), which keeps the daemon's file descriptors for its real work. The browser sends its
/// request as soon as it connects, so it is never the oldest for long.
const MAX_IN_FLIGHT: usize = 64;
/// After a failed `accept` (out of file descriptors, say): try again after this, not at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub struct Loopback {
    listener: TcpListener,
    port: u16,
}

/// A connection whose request head was read: the redirect to `/callback` with its query.
struct Callback {
    stream: TcpStream,
    params: HashMap<String, String>,
}

impl Loopback {
    pub async fn bind() -> std::io::Result<Loopback> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        Ok(Loopback { listener, port })
    }

    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/callback", self.port)
    }

    /// Wait for the browser's return to `/callback` with our `state`; answer it with a page
    /// the user can read, and give back the code. Connections are read side by side, each
    /// within `REQUEST_TIMEOUT`, so silent or slow ones cannot hold up the browser's.
    /// Requests for anything else, or with another state (which only someone else can have
    /// sent), are answered and ignored. The listener closes when this returns (and the
    /// connections still being read are dropped with it).
    pub async fn wait(self, state: &str) -> Result<String, OidcError> {
        let mut reading: JoinSet<Option<Callback>> = JoinSet::new();
        // The tasks in `reading`, oldest first (some of them finished).
        let mut started: VecDeque<AbortHandle> = VecDeque::new();
        loop {
            let callback = tokio::select! {
                accepted = self.listener.accept() => {
                    match accepted {
                        Ok((stream, _)) => {
                            while started.front().is_some_and(AbortHandle::is_finished) {
                                started.pop_front();
                            }
                            if reading.len() >= MAX_IN_FLIGHT
                                && let Some(oldest) = started.pop_front()
                            {
                                oldest.abort();
                            }
                            started.push_back(reading.spawn(read_callback(stream)));
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "the login's redirect listener could not accept");
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                        }
                    }
                    continue;
                }
                Some(done) = reading.join_next() => match done {
                    Ok(Some(callback)) => callback,
                    _ => continue,
                },
            };
            let Callback { mut stream, params } = callback;
            if params.get("state").map(String::as_str) != Some(state) {
                tracing::warn!("ignored a login redirect with a wrong state");
                reading.spawn(async move {
                    let why = "This redirect does not belong to the login in progress.";
                    respond(&mut stream, 400, "Login not completed", why).await;
                    None
                });
                continue;
            }
            if let Some(error) = params.get("error") {
                let why = printable(params.get("error_description").unwrap_or(error));
                let text = format!("The identity provider said: {why}. You can close this tab.");
                respond(&mut stream, 200, "Login not completed", &text).await;
                return Err(match error.as_str() {
                    "access_denied" | "invalid_scope" | "unauthorized_client" => refusal(Grant::Code, error, why),
                    _ => OidcError::Rejected(why),
                });
            }
            let Some(code) = params.get("code") else {
                respond(&mut stream, 400, "Login not completed", "The redirect carried no code.").await;
                return Err(OidcError::Rejected("the redirect carried no code".into()));
            };
            let text = "tokenbroker has your login. You can close this tab.";
            respond(&mut stream, 200, "You are logged in", text).await;
            return Ok(code.clone());
        }
    }
}

/// Read one connection's request: a `/callback` redirect is handed back; anything else is
/// answered here and dropped.
async fn read_callback(mut stream: TcpStream) -> Option<Callback> {
    let Some(target) = read_target(&mut stream).await else {
        respond(&mut stream, 400, "Bad request", "This address only takes the login's redirect.").await;
        return None;
    };
    let Some(query) = target.strip_prefix("/callback?") else {
        respond(&mut stream, 404, "Not found", "This address only takes the login's redirect.").await;
        return None;
    };
    let params = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    Some(Callback { stream, params })
}

/// The request target of a `GET`, from a request head of at most `MAX_REQUEST` bytes read
/// within `REQUEST_TIMEOUT`.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let read = async {
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            if head.len() >= MAX_REQUEST {
                return None;
            }
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Some(())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read).await.ok()??;
    let line = head.split(|&b| b == b'\r').next()?;
    let mut parts = std::str::from_utf8(line).ok()?.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_owned()),
        _ => None,
    }
}

/// Answer with a small page, within `REQUEST_TIMEOUT` (a peer that does not read it is
/// given up on); a failed answer changes nothing, so it is not reported.
async fn respond(stream: &mut TcpStream, status: u16, title: &str, text: &str) {
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, write_page(stream, status, title, text)).await;
}

async fn write_page(stream: &mut TcpStream, status: u16, title: &str, text: &str) -> std::io::Result<()> {
    // The IdP's `error_description` is put in the page, and must stay text.
    let (title, text) = (crate::markup::escape(title), crate::markup::escape(text));
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;text-align:center;margin-top:15%\"><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The IdP's `error_description` reaches the browser as text and our errors (and so the
    /// terminal and the log) without control characters.
    #[tokio::test]
    async fn the_idps_error_is_escaped_on_the_page_and_printable_in_the_error() {
        let loopback = super::Loopback::bind().await.unwrap();
        let addr = loopback.redirect_uri().replace("http://", "").replace("/callback", "");
        let waiting = tokio::spawn(loopback.wait("st"));
        let mut browser = tokio::net::TcpStream::connect(addr).await.unwrap();
        let query = "state=st&error=server_error&error_description=%3Cimg%20src%3Dx%3E%1B%5B31mred%0Aline";
        browser.write_all(format!("GET /callback?{query} HTTP/1.1\r\n\r\n").as_bytes()).await.unwrap();
        let mut page = String::new();
        browser.read_to_string(&mut page).await.unwrap();
        assert!(page.contains("&lt;img src=x&gt;[31mredline"), "{page}");
        assert!(!page.contains("<img") && !page.contains('\u{1b}'), "{page}");
        let error = waiting.await.unwrap().unwrap_err().to_string();
        assert!(error.contains("<img src=x>[31mredline") && !error.chars().any(char::is_control), "{error}");
    }

    /// Only this machine's own programs can reach it: Linux routes all of 127/8 to `lo`, so a
    /// listener on every address would answer 127.0.0.2 too.
    #[tokio::test]
    async fn it_listens_on_127_0_0_1_only() {
        let loopback = super::Loopback::bind().await.unwrap();
        let port = loopback.port;
        assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok());
        assert!(tokio::net::TcpStream::connect(("127.0.0.2", port)).await.is_err(), "bound to more than 127.0.0.1");
    }

    #[test]
    fn the_idps_words_stay_text_on_the_page() {
        let page = crate::markup::escape("<script>alert('x')</script> & \"more\"");
        assert_eq!(page, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;");
    }
}
