//! The loopback redirect listener of the code flow (RFC 8252 §7.3): 127.0.0.1 on a random
//! port, one purpose, closed when the browser has come back.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::OidcError;
use super::error::{Grant, refusal};
use super::idp_text::printable;

const MAX_REQUEST: usize = 16 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Loopback {
    listener: TcpListener,
    port: u16,
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
    /// the user can read, and give back the code. Requests for anything else, or with another
    /// state (which only someone else can have sent), are answered and ignored. The listener
    /// closes when this returns.
    pub async fn wait(self, state: &str) -> Result<String, OidcError> {
        loop {
            let Ok((mut stream, _)) = self.listener.accept().await else { continue };
            let Some(target) = read_target(&mut stream).await else {
                let _ = respond(&mut stream, 400, "Bad request", "This address only takes the login's redirect.").await;
                continue;
            };
            let Some(query) = target.strip_prefix("/callback?") else {
                let _ = respond(&mut stream, 404, "Not found", "This address only takes the login's redirect.").await;
                continue;
            };
            let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            if params.get("state").map(String::as_str) != Some(state) {
                tracing::warn!("ignored a login redirect with a wrong state");
                let _ = respond(
                    &mut stream,
                    400,
                    "Login not completed",
                    "This redirect does not belong to the login in progress.",
                )
                .await;
                continue;
            }
            if let Some(error) = params.get("error") {
                let why = printable(params.get("error_description").unwrap_or(error));
                let _ = respond(
                    &mut stream,
                    200,
                    "Login not completed",
                    &format!("The identity provider said: {why}. You can close this tab."),
                )
                .await;
                return Err(match error.as_str() {
                    "access_denied" | "invalid_scope" | "unauthorized_client" => refusal(Grant::Code, error, why),
                    _ => OidcError::Rejected(why),
                });
            }
            let Some(code) = params.get("code") else {
                let _ = respond(&mut stream, 400, "Login not completed", "The redirect carried no code.").await;
                return Err(OidcError::Rejected("the redirect carried no code".into()));
            };
            let _ =
                respond(&mut stream, 200, "You are logged in", "tokenbroker has your login. You can close this tab.")
                    .await;
            return Ok(code.clone());
        }
    }
}

/// The request target of a `GET`, from a request head of bounded size read within a timeout.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let read = async {
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Some(())
    };
    tokio::time::timeout(READ_TIMEOUT, read).await.ok()??;
    let line = head.split(|&b| b == b'\r').next()?;
    let mut parts = std::str::from_utf8(line).ok()?.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Some(target.to_owned()),
        _ => None,
    }
}

/// Text for the page: the IdP's `error_description` is put in it, and must stay text.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

async fn respond(stream: &mut TcpStream, status: u16, title: &str, text: &str) -> std::io::Result<()> {
    let (title, text) = (escape_html(title), escape_html(text));
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
    #[test]
    fn the_idps_words_stay_text_on_the_page() {
        let page = super::escape_html("<script>alert('x')</script> & \"more\"");
        assert_eq!(page, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;");
    }
}
