//! A fault-injecting HTTP proxy in front of the test IdP. Whole-IdP faults work on TCP: "down"
//! (open connections are cut, new ones accepted and dropped at once), "slow" (each request
//! waits). Token-endpoint faults work on HTTP: a `POST .../token` gets the armed fault instead
//! of the IdP's answer, while discovery, JWKS and the rest still pass. Every refresh request is
//! recorded with the time it arrived, so a test can read the daemon's retry schedule.
//!
//! Each connection from the daemon gets its own connection to the IdP, and when the IdP closes
//! that one (its keep-alive ran out), the daemon's is closed too: the daemon sees what it
//! would see talking to the IdP directly.

use std::convert::Infallible;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};

/// What the token endpoint does instead of answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// That status with a JSON error body (500, 502, …).
    Status(u16),
    /// That status (503, 429) with `Retry-After: seconds`.
    RetryAfter(u16, u64),
    /// Never answer.
    Hang,
    /// 200 with a JSON body cut short.
    Malformed,
    /// 200 with a chunked body of 2 MiB (no Content-Length to check up front).
    Oversize,
    /// Reset the connection (RST) instead of answering.
    Reset,
    /// 400 `invalid_grant`: the IdP refuses the refresh token.
    InvalidGrant,
    /// 307 to the given port on loopback, where someone else listens.
    Redirect(u16),
    /// The TLS door (see `serve_token_over_tls`) shows a certificate no one trusts.
    UntrustedCertificate,
}

type Body = BoxBody<Bytes, std::io::Error>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Shared {
    target: AtomicU16,
    down: AtomicBool,
    delay_ms: AtomicU64,
    hold_refresh_ms: AtomicU64,
    fault: Mutex<Option<Fault>>,
    token_requests: Mutex<Vec<Instant>>,
    /// Where the discovery document sends token requests instead, when the TLS door is open.
    tls_port: AtomicU16,
}

pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
    /// Bumped to cut every open connection.
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            target: AtomicU16::new(0),
            down: AtomicBool::new(false),
            delay_ms: AtomicU64::new(0),
            hold_refresh_ms: AtomicU64::new(0),
            fault: Mutex::new(None),
            token_requests: Mutex::new(Vec::new()),
            tls_port: AtomicU16::new(0),
        });
        let (cuts, _) = watch::channel(0u64);
        let (s, c) = (shared.clone(), cuts.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { continue };
                if s.down.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let (s, cut) = (s.clone(), c.subscribe());
                tokio::spawn(async move {
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&inbound);
                    serve(s, fd, inbound, cut).await;
                });
            }
        });
        Proxy { port, shared, cuts, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set_target(&self, port: u16) {
        self.shared.target.store(port, Ordering::SeqCst);
    }

    /// The IdP itself, bypassing the proxy: for the test's own control requests.
    pub fn direct_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.shared.target.load(Ordering::SeqCst))
    }

    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
        if down {
            self.cut_all();
        }
    }

    /// Make the IdP slow: every request waits this long first; open connections are cut so
    /// that no request already on its way slips past.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
        self.cut_all();
    }

    /// Hold the IdP's answers to refresh-token grants this long before passing them on: the
    /// IdP has rotated the refresh token by then, and the daemon does not know the new one yet.
    pub fn hold_refresh_answers(&self, hold: Duration) {
        self.shared.hold_refresh_ms.store(hold.as_millis() as u64, Ordering::SeqCst);
    }

    /// Arm a token-endpoint fault (or clear it with `None`), from the next request on.
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.shared.fault.lock().unwrap() = fault;
        if fault == Some(Fault::UntrustedCertificate) {
            // A TLS connection already open would not show its certificate again.
            self.cut_all();
        }
    }

    /// Open a TLS door for the token endpoint and point the discovery document at it: the
    /// daemon then sends its token requests (and refresh tokens) over TLS. The door's
    /// certificate is signed by a CA made for this proxy; the returned PEM file holds that CA,
    /// for the daemon's `SSL_CERT_FILE`.
    pub async fn serve_token_over_tls(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let (trusted, untrusted, ca_pem) = tls_configs();
        let ca_file = dir.join("test-ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.shared.tls_port.store(listener.local_addr().unwrap().port(), Ordering::SeqCst);
        let (s, c) = (self.shared.clone(), self.cuts.clone());
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { continue };
                let config = if s.fault() == Some(Fault::UntrustedCertificate) { &untrusted } else { &trusted };
                let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                let (s, cut) = (s.clone(), c.subscribe());
                tokio::spawn(async move {
                    let fd = std::os::fd::AsRawFd::as_raw_fd(&inbound);
                    if let Ok(tls) = acceptor.accept(inbound).await {
                        serve(s, fd, tls, cut).await;
                    }
                });
            }
        });
        ca_file
    }

    /// When each refresh-token request (faulted or passed on) arrived.
    pub fn token_requests(&self) -> Vec<Instant> {
        self.shared.token_requests.lock().unwrap().clone()
    }

    fn cut_all(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Shared {
    fn fault(&self) -> Option<Fault> {
        *self.fault.lock().unwrap()
    }
}

/// The IdP's end of one daemon connection: opened at the first request passed on.
#[derive(Default)]
struct Upstream {
    send: tokio::sync::Mutex<Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>,
    /// Told when the IdP has closed its connection.
    closed: Notify,
}

/// HTTP/1.1 on one connection (plain or TLS) until it ends, is cut, or the IdP closes its
/// side (then the answer under way is finished first, as the IdP would).
async fn serve<IO>(shared: Arc<Shared>, fd: RawFd, io: IO, mut cut: watch::Receiver<u64>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let upstream = Arc::new(Upstream::default());
    let up = upstream.clone();
    let service = hyper::service::service_fn(move |req| handle(shared.clone(), up.clone(), fd, req));
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = cut.changed() => return,
            _ = upstream.closed.notified() => conn.as_mut().graceful_shutdown(),
        }
    }
}

/// A trusted server config (its CA in the returned PEM), and one whose certificate comes from
/// a CA nobody trusts; both for 127.0.0.1.
fn tls_configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ServerConfig>, String) {
    let server = |ca_name: &str| {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name.push(rcgen::DnType::CommonName, ca_name);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &issuer).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        (Arc::new(config), ca_cert.pem())
    };
    let (trusted, ca_pem) = server("tokenbroker test CA");
    let (untrusted, _) = server("nobody's CA");
    (trusted, untrusted, ca_pem)
}

async fn handle(
    shared: Arc<Shared>,
    upstream: Arc<Upstream>,
    fd: RawFd,
    req: Request<Incoming>,
) -> Result<Response<Body>, BoxError> {
    let delay = Duration::from_millis(shared.delay_ms.load(Ordering::SeqCst));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let is_token = req.method() == hyper::Method::POST && req.uri().path().ends_with("/token");
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let mut hold = Duration::ZERO;
    if is_token {
        let needle = b"grant_type=refresh_token";
        if body.windows(needle.len()).any(|w| w == needle) {
            shared.token_requests.lock().unwrap().push(Instant::now());
            hold = Duration::from_millis(shared.hold_refresh_ms.load(Ordering::SeqCst));
        }
        if let Some(fault) = shared.fault() {
            if fault == Fault::Reset {
                zero_linger(fd);
            }
            return inject(fault).await;
        }
    }
    let answer = forward(&shared, &upstream, parts, body).await;
    tokio::time::sleep(hold).await;
    answer
}

async fn inject(fault: Fault) -> Result<Response<Body>, BoxError> {
    let json = |status: u16, body: &'static str| {
        Response::builder().status(status).header("content-type", "application/json").body(full(body))
    };
    Ok(match fault {
        Fault::Status(status) => json(status, r#"{"error":"server_error","error_description":"injected"}"#)?,
        Fault::RetryAfter(status, secs) => Response::builder()
            .status(status)
            .header("retry-after", secs.to_string())
            .header("content-type", "application/json")
            .body(full(r#"{"error":"temporarily_unavailable"}"#))?,
        Fault::Hang => std::future::pending().await,
        // Cut off inside a token: a daemon that quoted the body would show the canary.
        Fault::Malformed => json(200, r#"{"access_token":"leak-canary-eyJhbGciOi"#)?,
        Fault::Oversize => {
            let chunk = Bytes::from(vec![b' '; 64 * 1024]);
            let frames = (0..32).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone())));
            let body = StreamBody::new(futures_util::stream::iter(frames));
            Response::builder().status(200).header("content-type", "application/json").body(BodyExt::boxed(body))?
        }
        // An error from the service makes hyper drop the connection without an answer.
        Fault::Reset => return Err("injected reset".into()),
        Fault::InvalidGrant => {
            json(400, r#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#)?
        }
        // Not an HTTP answer: the TLS door refuses the handshake instead (see above).
        Fault::UntrustedCertificate => return Err("no plain answer for this fault".into()),
        Fault::Redirect(port) => Response::builder()
            .status(307)
            .header("location", format!("http://127.0.0.1:{port}/token"))
            .body(full(""))?,
    })
}

/// With a zero linger, closing the socket sends RST instead of FIN.
fn zero_linger(fd: RawFd) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: `fd` is the connection being served (it outlives this request), and the option
    // value is a valid `linger` of the size passed.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"];

async fn forward(
    shared: &Shared,
    upstream: &Arc<Upstream>,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Result<Response<Body>, BoxError> {
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
    let mut out = Request::builder().method(parts.method).uri(&path);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out = out.header(name, value);
        }
    }
    let Some(answer) = send_upstream(shared, upstream, out.body(Full::new(body))?).await? else {
        return Ok(Response::builder().status(StatusCode::BAD_GATEWAY).body(full(""))?);
    };
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response = response.header(name, value);
        }
    }
    let mut bytes = answer.into_body().collect().await?.to_bytes();
    let tls_port = shared.tls_port.load(Ordering::SeqCst);
    if tls_port != 0 && path.ends_with("/.well-known/openid-configuration") {
        let mut doc: serde_json::Value = serde_json::from_slice(&bytes)?;
        doc["token_endpoint"] = format!("https://127.0.0.1:{tls_port}/token").into();
        bytes = serde_json::to_vec(&doc)?.into();
    }
    Ok(response.body(full(bytes))?)
}

/// Pass a request on over this daemon connection's own IdP connection, opening it first if
/// there is none (or the IdP closed it). `None`: the IdP cannot be reached at all (a gateway
/// answers 502). An error drops the daemon's connection unanswered, as the IdP's own closing
/// of a connection the request was already on would.
async fn send_upstream(
    shared: &Shared,
    upstream: &Arc<Upstream>,
    request: Request<Full<Bytes>>,
) -> Result<Option<Response<Incoming>>, BoxError> {
    let mut send = upstream.send.lock().await;
    if send.as_ref().is_none_or(|s| s.is_closed()) {
        let target = ("127.0.0.1", shared.target.load(Ordering::SeqCst));
        let Ok(stream) = TcpStream::connect(target).await else { return Ok(None) };
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let up = Arc::downgrade(upstream);
        tokio::spawn(async move {
            let _ = conn.await;
            if let Some(up) = up.upgrade() {
                up.closed.notify_one();
            }
        });
        *send = Some(sender);
    }
    let sender = send.as_mut().expect("just opened");
    sender.ready().await?;
    Ok(Some(sender.send_request(request).await?))
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never: Infallible| match never {}).boxed()
}
