//! GetAccessToken over D-Bus against a bare zbus method that returns the same bytes, on the
//! same (private) session bus, called by the same client code.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use zbus::zvariant::{OwnedValue, Value};

pub const BASELINE_NAME: &str = "io.github.tokenbroker.BenchBaseline";

struct Bare {
    token: String,
    expires_at: i64,
}

#[zbus::interface(name = "io.github.tokenbroker.Broker1")]
impl Bare {
    fn get_access_token(&self, _account: &str, _options: HashMap<String, OwnedValue>) -> (String, i64) {
        (self.token.clone(), self.expires_at)
    }
}

/// The baseline service (its own process, like the daemon).
pub fn serve_baseline(token: String, expires_at: i64) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let _conn = zbus::connection::Builder::session()?
            .serve_at(tokenbroker::protocol::DBUS_PATH, Bare { token, expires_at })?
            .name(BASELINE_NAME)?
            .build()
            .await?;
        std::future::pending::<anyhow::Result<()>>().await
    })
}

/// `n` calls of GetAccessToken("", {}) on the broker and on the bare service, taking turns.
pub async fn alternating(conn: &zbus::Connection, n: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let proxy = |dest: &'static str| {
        zbus::Proxy::new(conn, dest, tokenbroker::protocol::DBUS_PATH, tokenbroker::protocol::DBUS_INTERFACE)
    };
    let (broker, bare) = (proxy(tokenbroker::protocol::DBUS_NAME).await?, proxy(BASELINE_NAME).await?);
    let (mut sa, mut sb) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        for (p, samples) in [(&broker, &mut sa), (&bare, &mut sb)] {
            let t = Instant::now();
            let (token, _): (String, i64) = p.call("GetAccessToken", &("", HashMap::<&str, Value>::new())).await?;
            samples.push(t.elapsed());
            std::hint::black_box(token);
        }
    }
    Ok((sa, sb))
}
