//! The one HTTP stack: reqwest with our timeouts, no redirects and a body-size cap, offered
//! to `openidconnect`/`oauth2` as their `AsyncHttpClient`.
//!
//! Pooled keep-alive connections go stale: the IdP closes them when idle, and a request
//! written to one fails with "connection closed before message completed" — a failure after
//! which a token request must not be resent (see `resend`). So a connection is never kept
//! idle as long as servers keep theirs, and the whole pool is dropped after the machine slept
//! (its idle clock stood still meanwhile; the IdP's did not).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

use super::resend;
use crate::sleep::clock::SleepWatch;

/// The largest IdP response we read; discovery documents and JWKS are a few KiB.
pub const MAX_BODY: usize = 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle connection stays pooled: well below the shortest common server keep-alive
/// (Node and Apache close after 5 s), so that we never pick one the server is closing. Requests
/// that come together (discovery, JWKS, token) still share a connection.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Transport(String),
    #[error("response larger than {MAX_BODY} bytes")]
    TooLarge,
    /// 5xx and 429: the IdP is there but cannot serve us now. Surfaced as an error (not as a
    /// response for oauth2 to parse) so the status and `Retry-After` survive to the scheduler.
    #[error("HTTP {status}")]
    Unavailable { status: u16, retry_after: Option<Duration> },
}

/// Cloned into every provider; the clones share one pool, so dropping it drops it for all.
#[derive(Clone)]
pub struct Http {
    shared: Arc<Shared>,
}

struct Shared {
    timeout: Duration,
    /// Replaced whole to drop every pooled connection; requests under way keep the old one.
    client: RwLock<reqwest::Client>,
    sleep: SleepWatch,
}

impl Http {
    /// `timeout` bounds each request as a whole; connecting alone is bounded tighter.
    pub fn new(timeout: Duration) -> Result<Self, HttpError> {
        let client = build(timeout)?;
        let sleep = SleepWatch::default();
        sleep.slept();
        Ok(Http { shared: Arc::new(Shared { timeout, client: RwLock::new(client), sleep }) })
    }

    /// Drop every pooled connection, for every clone: after a resume from suspend the IdP has
    /// closed them, and nothing here could have noticed.
    pub fn forget_connections(&self) {
        self.renew(&mut self.shared.client.write().unwrap_or_else(|e| e.into_inner()));
    }

    fn renew(&self, client: &mut reqwest::Client) {
        match build(self.shared.timeout) {
            Ok(new) => *client = new,
            Err(e) => tracing::warn!(error = %e, "cannot renew the HTTP client; keeping its pooled connections"),
        }
    }

    fn client(&self) -> reqwest::Client {
        // Asked and answered under one lock: a request made while the first one after a
        // resume renews the pool waits for the new pool instead of taking a stale connection
        // from the old one. Also without logind's word (macOS, containers, a missed signal).
        let mut client = self.shared.client.write().unwrap_or_else(|e| e.into_inner());
        if self.shared.sleep.slept() {
            tracing::info!("the machine slept: dropping pooled connections to identity providers");
            self.renew(&mut client);
        }
        client.clone()
    }

    pub async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let method = request.method().clone();
        let again = copy(&request);
        let response = match send(&self.client(), request).await {
            Err(e) if resend::may_resend(&method, &e) => {
                tracing::debug!(error = %describe(&e), "sending the request again, on a new connection");
                // A pooled connection that broke says the others may be as dead; a connection
                // that could not be made says nothing about them (other IdPs' among them).
                if !e.is_connect() {
                    self.forget_connections();
                }
                send(&self.client(), again).await
            }
            sent => sent,
        };
        let response = response.map_err(|e| HttpError::Transport(describe(&e)))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(HttpError::Unavailable { status: status.as_u16(), retry_after });
        }
        let mut builder = http::Response::builder().status(status);
        for (name, value) in response.headers() {
            builder = builder.header(name, value);
        }
        let body = read_capped(response).await?;
        builder.body(body).map_err(|e| HttpError::Transport(e.to_string()))
    }
}

fn build(timeout: Duration) -> Result<reqwest::Client, HttpError> {
    reqwest::Client::builder()
        // Following redirects on token requests would hand codes and tokens to whoever the IdP
        // (or an attacker on its path) points at.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .user_agent(concat!("tokenbrokerd/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| HttpError::Transport(describe(&e)))
}

async fn send(client: &reqwest::Client, request: HttpRequest) -> Result<reqwest::Response, reqwest::Error> {
    client.execute(reqwest::Request::try_from(request)?).await
}

/// A second copy of a request, for when `resend` allows sending it again.
pub(super) fn copy(request: &HttpRequest) -> HttpRequest {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// Read a body, refusing to buffer more than `MAX_BODY`.
pub async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, HttpError> {
    if response.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(HttpError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| HttpError::Transport(describe(&e)))? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(HttpError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// What went wrong, without reqwest's URL (a query string may carry secrets).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "bad response body"
    } else {
        "request failed"
    };
    let mut out = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl<'c> AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.execute(request))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use super::*;

    /// An IdP on its own thread (it runs while the test's runtime is blocked, as an IdP runs
    /// while the daemon is stopped). Connection `n` is served by `serve(n, stream)`.
    struct Server {
        url: String,
        connections: Arc<AtomicUsize>,
        requests: Arc<AtomicUsize>,
    }

    impl Server {
        fn start(serve: fn(usize, &mut TcpStream, &AtomicUsize)) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}/token", listener.local_addr().unwrap());
            let (connections, requests) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let (c, r) = (connections.clone(), requests.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    let r = r.clone();
                    std::thread::spawn(move || serve(n, &mut stream.unwrap(), &r));
                }
            });
            Server { url, connections, requests }
        }
    }

    /// Read one request (head and a small body, in one go on loopback); false at EOF.
    fn read_request(stream: &mut TcpStream, requests: &AtomicUsize) -> bool {
        let mut buf = [0u8; 8192];
        let n = stream.read(&mut buf).unwrap_or(0);
        if n > 0 {
            requests.fetch_add(1, Ordering::SeqCst);
        }
        n > 0
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

    /// Answers with keep-alive, and closes a connection idle for 100 ms (a keep-alive timeout).
    fn keep_alive_100ms(_: usize, stream: &mut TcpStream, requests: &AtomicUsize) {
        stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        while read_request(stream, requests) {
            stream.write_all(OK).unwrap();
        }
    }

    fn request(method: http::Method, url: &str) -> HttpRequest {
        http::Request::builder().method(method).uri(url).body(b"grant_type=refresh_token".to_vec()).unwrap()
    }

    #[tokio::test]
    async fn forgetting_the_pool_in_one_clone_spares_every_clone_a_connection_the_server_closed() {
        let server = Server::start(keep_alive_100ms);
        let http = Http::new(Duration::from_secs(5)).unwrap();
        let resumed = http.clone();
        http.execute(request(http::Method::POST, &server.url)).await.unwrap();
        // Stopped (the runtime blocked, as in a suspend) while the server closes the idle
        // connection: the pool has not seen the close when we come back.
        std::thread::sleep(Duration::from_millis(400));
        resumed.forget_connections();
        http.execute(request(http::Method::POST, &server.url)).await.expect("a new connection");
        assert_eq!(server.connections.load(Ordering::SeqCst), 2);
        assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn no_connection_is_reused_after_idling_as_long_as_servers_keep_theirs() {
        assert!(POOL_IDLE_TIMEOUT < Duration::from_secs(5), "Node closes idle connections after 5 s");
        // A server that never closes: is the connection reused?
        let server = Server::start(|_, stream, requests| {
            while read_request(stream, requests) {
                stream.write_all(OK).unwrap();
            }
        });
        let http = Http::new(Duration::from_secs(5)).unwrap();
        http.execute(request(http::Method::POST, &server.url)).await.unwrap();
        http.execute(request(http::Method::POST, &server.url)).await.unwrap();
        assert_eq!(server.connections.load(Ordering::SeqCst), 1, "requests close together share one");
        let idle = Instant::now();
        std::thread::sleep(POOL_IDLE_TIMEOUT + Duration::from_millis(200));
        http.execute(request(http::Method::POST, &server.url)).await.unwrap();
        assert!(idle.elapsed() < Duration::from_secs(5));
        assert_eq!(server.connections.load(Ordering::SeqCst), 2, "an idle one is not kept");
    }

    /// The first connection is closed once the request is read (it may have been acted on);
    /// later ones are answered.
    fn first_closes_after_reading(n: usize, stream: &mut TcpStream, requests: &AtomicUsize) {
        if n == 0 {
            read_request(stream, requests);
            return;
        }
        while read_request(stream, requests) {
            stream.write_all(OK).unwrap();
        }
    }

    #[tokio::test]
    async fn a_post_that_may_have_arrived_is_not_sent_again() {
        let server = Server::start(first_closes_after_reading);
        let http = Http::new(Duration::from_secs(5)).unwrap();
        let err = http.execute(request(http::Method::POST, &server.url)).await.unwrap_err();
        assert!(err.to_string().contains("connection closed before message completed"), "{err}");
        assert_eq!(server.requests.load(Ordering::SeqCst), 1, "a refresh token is never replayed");
    }

    #[tokio::test]
    async fn a_get_whose_connection_broke_is_sent_again_once() {
        let server = Server::start(first_closes_after_reading);
        let http = Http::new(Duration::from_secs(5)).unwrap();
        http.execute(request(http::Method::GET, &server.url)).await.expect("answered the second time");
        assert_eq!(server.requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_idp_that_cannot_be_reached_costs_no_other_idp_its_pooled_connection() {
        let up = Server::start(|_, stream, requests| {
            while read_request(stream, requests) {
                stream.write_all(OK).unwrap();
            }
        });
        let down = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/token", listener.local_addr().unwrap())
        };
        let http = Http::new(Duration::from_secs(5)).unwrap();
        http.execute(request(http::Method::POST, &up.url)).await.unwrap();
        http.execute(request(http::Method::POST, &down)).await.expect_err("nobody listens");
        http.execute(request(http::Method::POST, &up.url)).await.unwrap();
        assert_eq!(up.connections.load(Ordering::SeqCst), 1, "the pooled connection to the other IdP was kept");
    }

    #[tokio::test]
    async fn a_connection_that_is_never_accepted_fails_after_the_connect_timeout() {
        // A listener whose accept queue is full: the kernel drops further SYNs, so a connect
        // hangs, as to an IdP behind a black-holing firewall.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fillers = Vec::new();
        for _ in 0..4 {
            if let Ok(Ok(s)) =
                tokio::time::timeout(Duration::from_millis(300), tokio::net::TcpStream::connect(addr)).await
            {
                fillers.push(s);
            }
        }
        let http = Http::new(Duration::from_secs(30)).unwrap();
        let started = Instant::now();
        let err = http.execute(request(http::Method::POST, &format!("http://{addr}/token"))).await.unwrap_err();
        let took = started.elapsed();
        assert!(
            took >= CONNECT_TIMEOUT - Duration::from_millis(500) && took < Duration::from_secs(12),
            "{took:?}: {err}"
        );
        drop((listener, fillers));
    }
}
