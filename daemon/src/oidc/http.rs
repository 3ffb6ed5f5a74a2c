//! The one HTTP stack: reqwest with our timeouts, no redirects and a body-size cap, offered
//! to `openidconnect`/`oauth2` as their `AsyncHttpClient`.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// The largest IdP response we read; discovery documents and JWKS are a few KiB.
pub const MAX_BODY: usize = 1024 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    /// `timeout` bounds each request as a whole; connecting alone is bounded tighter.
    pub fn new(timeout: Duration) -> Result<Self, HttpError> {
        let client = reqwest::Client::builder()
            // Following redirects on token requests would hand codes and tokens to whoever
            // the IdP (or an attacker on its path) points at.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .user_agent(concat!("tokenbrokerd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpError::Transport(describe(&e)))?;
        Ok(Http { client })
    }

    pub async fn execute(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let request = reqwest::Request::try_from(request).map_err(|e| HttpError::Transport(describe(&e)))?;
        let response = self.client.execute(request).await.map_err(|e| HttpError::Transport(describe(&e)))?;
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
