//! Suspend and resume. Tokio's clock stops while the machine sleeps, so after a resume the
//! refresh schedulers are woken to look at the wall clock again. logind announces both edges
//! with `PrepareForSleep` on the system bus; without one (macOS, containers) expiry is still
//! judged by wall-clock time whenever a token is asked for.

pub mod clock;

use std::sync::Arc;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1",
    gen_blocking = false
)]
trait Login1 {
    #[zbus(signal)]
    fn prepare_for_sleep(&self, start: bool) -> zbus::Result<()>;
}

/// Watch until `stop`: it only waits, so a stop need not wait for it.
pub async fn watch(broker: Arc<Broker>, stop: CancellationToken) {
    tokio::select! {
        _ = watch_until_the_bus_goes(broker) => {}
        _ = stop.cancelled() => {}
    }
}

async fn watch_until_the_bus_goes(broker: Arc<Broker>) {
    let stream = async {
        let conn = zbus::Connection::system().await?;
        let proxy = Login1Proxy::new(&conn).await?;
        zbus::Result::Ok((conn, proxy.receive_prepare_for_sleep().await?))
    };
    let (_conn, mut signals) = match stream.await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, "no logind on the system bus; not watching for suspend");
            return;
        }
    };
    while let Some(signal) = signals.next().await {
        match signal.args() {
            Ok(args) if !args.start => {
                tracing::info!("resumed from suspend; checking what needs a refresh");
                broker.resumed();
            }
            Ok(_) => tracing::debug!("going to sleep"),
            Err(e) => tracing::debug!(error = %e, "unreadable PrepareForSleep"),
        }
    }
}
