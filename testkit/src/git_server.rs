//! A git server over HTTP on loopback: git's own `git http-backend` as a CGI program behind a
//! small hyper server that lets a request through only with a token the test IdP's userinfo
//! endpoint accepts, given as the Basic password or as a Bearer token. Anything else gets 401
//! with `WWW-Authenticate: Basic` and `Bearer`, so that git asks its credential helpers.
//! [`GitServer::start_basic_only`] offers and takes Basic alone, as GitLab and Gitea do.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// Debian's git, which the tests drive and whose http-backend serves.
pub const DEBIAN_GIT: &str = "/usr/bin/git";

/// How a request authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Anonymous,
    Basic { username: String, token: String },
    Bearer { token: String },
}

#[derive(Default)]
struct State {
    /// Tokens checked at the IdP, and its verdict: one userinfo call per token.
    verdicts: HashMap<String, bool>,
    /// Tokens the test made this server refuse, whatever the IdP says.
    refused: HashSet<String>,
    seen: Vec<Seen>,
}

pub struct GitServer {
    port: u16,
    root: tempfile::TempDir,
    shared: Arc<Shared>,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl GitServer {
    /// Serve the repositories under a fresh directory; tokens are checked where
    /// [`GitServer::check_tokens_at`] says (until then every request is refused).
    pub async fn start() -> GitServer {
        GitServer::serve(false).await
    }

    /// Like [`GitServer::start`], but the server offers only `WWW-Authenticate: Basic` and
    /// refuses a Bearer token however good it is.
    pub async fn start_basic_only() -> GitServer {
        GitServer::serve(true).await
    }

    async fn serve(basic_only: bool) -> GitServer {
        let root = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::new(Shared {
            root: root.path().to_owned(),
            userinfo: Mutex::new(String::new()),
            http: reqwest::Client::new(),
            state: state.clone(),
            basic_only,
        });
        let shared_handle = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        GitServer { port, root, shared: shared_handle, state, task }
    }

    /// The IdP's userinfo endpoint, which judges the tokens.
    pub fn check_tokens_at(&self, userinfo: &str) {
        *self.shared.userinfo.lock().unwrap() = userinfo.to_owned();
    }

    /// `host:port`, as git sends it to its credential helpers.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self, repo: &str) -> String {
        format!("http://{}/{repo}", self.host())
    }

    /// A bare repository `name` (like `project.git`) with one commit on `main`.
    pub fn create_repo(&self, name: &str) -> PathBuf {
        let bare = self.root.path().join(name);
        let work = tempfile::tempdir().unwrap();
        let git = |dir: &Path, args: &[&str]| {
            let out = std::process::Command::new(DEBIAN_GIT)
                .current_dir(dir)
                .args(args)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        git(self.root.path(), &["init", "-q", "--bare", "-b", "main", name]);
        git(work.path(), &["init", "-q", "-b", "main"]);
        std::fs::write(work.path().join("README"), "hello\n").unwrap();
        git(work.path(), &["add", "README"]);
        git(work.path(), &["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first"]);
        git(work.path(), &["push", "-q", bare.to_str().unwrap(), "main"]);
        bare
    }

    /// From now on refuse `token` (401), as an API does with a token it revoked.
    pub fn refuse(&self, token: &str) {
        self.state.lock().unwrap().refused.insert(token.to_owned());
    }

    /// How each request so far authenticated, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    root: PathBuf,
    userinfo: Mutex<String>,
    http: reqwest::Client,
    state: Arc<Mutex<State>>,
    basic_only: bool,
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let seen = credentials(&req);
    shared.state.lock().unwrap().seen.push(seen.clone());
    let token = match &seen {
        Seen::Bearer { .. } if shared.basic_only => return unauthorized(true),
        Seen::Anonymous => return unauthorized(shared.basic_only),
        Seen::Basic { token, .. } | Seen::Bearer { token } => token.clone(),
    };
    if !accepted(shared, &token).await {
        return unauthorized(shared.basic_only);
    }
    cgi(shared, req).await
}

fn credentials(req: &Request<Incoming>) -> Seen {
    let Some(value) = req.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Seen::Anonymous;
    };
    if let Some(token) = value.strip_prefix("Bearer ") {
        return Seen::Bearer { token: token.to_owned() };
    }
    let decoded = value
        .strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    match decoded.as_deref().and_then(|d| d.split_once(':')) {
        Some((user, token)) => Seen::Basic { username: user.to_owned(), token: token.to_owned() },
        None => Seen::Anonymous,
    }
}

async fn accepted(shared: &Shared, token: &str) -> bool {
    {
        let state = shared.state.lock().unwrap();
        if state.refused.contains(token) {
            return false;
        }
        if let Some(&verdict) = state.verdicts.get(token) {
            return verdict;
        }
    }
    let userinfo = shared.userinfo.lock().unwrap().clone();
    if userinfo.is_empty() {
        return false;
    }
    let answer = shared.http.get(userinfo).bearer_auth(token).send().await;
    let verdict = answer.is_ok_and(|a| a.status().is_success());
    shared.state.lock().unwrap().verdicts.insert(token.to_owned(), verdict);
    verdict
}

fn unauthorized(basic_only: bool) -> Response<Full<Bytes>> {
    let mut answer = Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(hyper::header::WWW_AUTHENTICATE, "Basic realm=\"git\"");
    if !basic_only {
        answer = answer.header(hyper::header::WWW_AUTHENTICATE, "Bearer realm=\"git\"");
    }
    answer.body(Full::new(Bytes::from_static(b"unauthorized\n"))).unwrap()
}

/// Run `git http-backend` for the request (RFC 3875 CGI): headers and body in, its headers
/// and body out.
async fn cgi(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut cmd = tokio::process::Command::new(DEBIAN_GIT);
    cmd.arg("http-backend")
        .env_clear()
        .env("GIT_PROJECT_ROOT", &shared.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        // Set: http-backend then allows pushes (receive-pack) too.
        .env("REMOTE_USER", "tester")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", parts.uri.path())
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("git http-backend");
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let out = child.wait_with_output().await.unwrap();
    let _ = writer.await;
    cgi_response(&out.stdout)
}

fn cgi_response(out: &[u8]) -> Response<Full<Bytes>> {
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    let end = end.or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2)));
    let Some((head_end, body_start)) = end else {
        return Response::builder().status(500).body(Full::new(Bytes::from_static(b"bad CGI output\n"))).unwrap();
    };
    let mut response = Response::builder();
    let mut status = 200;
    for line in String::from_utf8_lossy(&out[..head_end]).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            status = value.split(' ').next().and_then(|s| s.parse().ok()).unwrap_or(500);
        } else {
            response = response.header(name.trim(), value);
        }
    }
    response.status(status).body(Full::new(Bytes::copy_from_slice(&out[body_start..]))).unwrap()
}
