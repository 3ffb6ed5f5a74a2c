//! Whether a request that failed may be sent once more, judged from what hyper and reqwest
//! say about the failure. A token request is resent only when it provably never reached the
//! IdP: a refresh token presented twice is, under rotation with reuse detection, a dead
//! session. What is provable:
//!
//! - no connection was made (`is_connect`: refused, reset or closed during the TCP or TLS
//!   handshake), so nothing was written;
//! - hyper gave the request back unwritten (`is_canceled`: the connection closed before the
//!   request was taken up). hyper-util already resends those on a reused connection
//!   (`retry_canceled_requests`) but not on a fresh one.
//!
//! Not provable: "connection closed before message completed" (`is_incomplete_message`) and a
//! reset after the request went out. The request was written; the IdP may have read it and
//! acted on it. That is the stale keep-alive connection's failure: it is prevented (a short
//! pool idle time, the pool dropped after a suspend), not retried. Only idempotent requests
//! (discovery, JWKS, userinfo: RFC 9110 §9.2.2) are sent again after it.

use std::error::Error as _;
use std::io::ErrorKind;

use http::Method;

/// What became of a request that failed.
#[derive(Debug, PartialEq, Eq)]
enum Fate {
    /// It never left: safe to send again.
    NotSent,
    /// The connection broke under it after it may have been written.
    MaybeSent,
    /// Anything else (a timeout, a bad answer): not ours to repeat; the caller backs off.
    Other,
}

pub(super) fn may_resend(method: &Method, e: &reqwest::Error) -> bool {
    match fate(e) {
        Fate::NotSent => true,
        Fate::MaybeSent => method.is_idempotent(),
        Fate::Other => false,
    }
}

fn fate(e: &reqwest::Error) -> Fate {
    // A slow IdP gets no second request to be slow with (a connect timeout is one too).
    if e.is_timeout() {
        return Fate::Other;
    }
    if e.is_connect() {
        return Fate::NotSent;
    }
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_canceled() {
                return Fate::NotSent;
            }
            if h.is_incomplete_message() {
                return Fate::MaybeSent;
            }
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe)
        {
            return Fate::MaybeSent;
        }
        source = s.source();
    }
    Fate::Other
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server on loopback that treats every connection with `serve`; its URL.
    async fn server<F, Fut>(serve: F) -> String
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        });
        url
    }

    async fn fail(url: &str, timeout: Duration) -> reqwest::Error {
        let client = reqwest::Client::builder().timeout(timeout).build().unwrap();
        client.post(url).body("grant_type=refresh_token").send().await.unwrap_err()
    }

    #[tokio::test]
    async fn no_connection_means_not_sent() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        drop(listener);
        let e = fail(&url, Duration::from_secs(5)).await;
        assert_eq!(fate(&e), Fate::NotSent, "{e:?}");
        assert!(may_resend(&Method::POST, &e));
    }

    #[tokio::test]
    async fn a_connection_closed_after_the_request_was_read_may_have_delivered_it() {
        let url = server(|mut s| async move {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
        })
        .await;
        let e = fail(&url, Duration::from_secs(5)).await;
        assert_eq!(fate(&e), Fate::MaybeSent, "{e:?}");
        assert!(!may_resend(&Method::POST, &e), "a refresh is never replayed on a maybe");
        assert!(may_resend(&Method::GET, &e), "a GET may be");
    }

    #[tokio::test]
    async fn a_reset_after_the_request_was_read_may_have_delivered_it() {
        let url = server(|mut s| async move {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            s.set_zero_linger().unwrap();
        })
        .await;
        let e = fail(&url, Duration::from_secs(5)).await;
        assert_eq!(fate(&e), Fate::MaybeSent, "{e:?}");
        assert!(!may_resend(&Method::POST, &e));
    }

    #[tokio::test]
    async fn a_timeout_is_not_resent() {
        let url = server(|mut s| async move {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
        })
        .await;
        let e = fail(&url, Duration::from_millis(200)).await;
        assert_eq!(fate(&e), Fate::Other, "{e:?}");
        assert!(!may_resend(&Method::GET, &e));
    }
}
