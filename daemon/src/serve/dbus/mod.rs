//! The D-Bus door: `io.github.tokenbroker.Broker1` on the session bus. The interface decodes
//! D-Bus arguments into the contract's params and takes the same pipeline as the socket;
//! here it is served, and the core's events become signals. Callers of another UID are
//! refused, as on the socket.

mod args;
mod error;
mod iface;
mod notify;

use std::sync::Arc;

use tokenbroker::protocol::{DBUS_NAME, DBUS_PATH};
use tokio_util::sync::CancellationToken;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, fdo};

use crate::broker::{self, Broker, Event};
use iface::BrokerIface;

/// `LoggedInAs` to each of `callers` alone (a signal with a destination).
async fn tell_who(conn: &Connection, callers: &[String], account: &str, who: &broker::Identity) {
    let text = |t: &Option<String>| t.clone().unwrap_or_default();
    let (subject, email, name) = (text(&who.subject), text(&who.email), text(&who.name));
    for caller in callers {
        let Ok(destination) = zbus::names::BusName::try_from(caller.as_str()) else { continue };
        let sent = match SignalEmitter::new(conn, DBUS_PATH) {
            Ok(emitter) => {
                let emitter = emitter.set_destination(destination);
                BrokerIface::logged_in_as(&emitter, account, &subject, &email, &name).await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "could not tell a login's caller who logged in");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("no D-Bus session bus: {0}")]
    NoBus(zbus::Error),
    #[error("another tokenbrokerd already owns {DBUS_NAME} on the session bus")]
    NameTaken,
    /// Someone else holds the name: on a bus open to other users, anyone can take a free name.
    #[error("{DBUS_NAME} is held on the session bus by {}", holder_text(.holder))]
    NameHeld { holder: Option<u32> },
    #[error("D-Bus: {0}")]
    Other(#[from] zbus::Error),
}

fn holder_text(uid: &Option<u32>) -> String {
    match uid {
        Some(uid) => format!("another user (UID {uid})"),
        None => "a connection whose UID the bus would not tell".into(),
    }
}

/// The UID of whoever owns the name now, if the bus says.
async fn holder(conn: &Connection) -> Option<u32> {
    let bus = fdo::DBusProxy::new(conn).await.ok()?;
    let name = zbus::names::BusName::from_static_str(DBUS_NAME).ok()?;
    bus.get_connection_unix_user(name).await.ok()
}

/// The door while it serves: the bus connection and the task that turns events into signals.
pub struct Door {
    _conn: Connection,
    stop: CancellationToken,
    forwarder: tokio::task::JoinHandle<()>,
    notifier: tokio::task::JoinHandle<()>,
}

impl Door {
    /// Send the signals of everything that happened so far (call it after the core's tasks
    /// have drained, so a refresh finished during the stop is announced), then stop.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.forwarder.await;
        let _ = self.notifier.await;
    }
}

/// Serve the interface on the session bus, take the well-known name, and forward the core's
/// events as signals until the door is stopped.
pub async fn start(broker: Arc<Broker>) -> Result<Door, StartError> {
    let conn = zbus::connection::Builder::session()
        .map_err(StartError::NoBus)?
        .serve_at(DBUS_PATH, BrokerIface::new(broker.clone()))?
        .build()
        .await
        .map_err(StartError::NoBus)?;
    let flags = fdo::RequestNameFlags::DoNotQueue.into();
    match conn.request_name_with_flags(DBUS_NAME, flags).await {
        Ok(fdo::RequestNameReply::PrimaryOwner | fdo::RequestNameReply::AlreadyOwner) => {}
        Ok(_) | Err(zbus::Error::NameTaken) => {
            // SAFETY: getuid has no preconditions and cannot fail.
            let me = unsafe { libc::getuid() };
            // Ours: another tokenbrokerd on the same store, which two daemons must not share.
            return Err(match holder(&conn).await {
                Some(uid) if uid == me => StartError::NameTaken,
                holder => StartError::NameHeld { holder },
            });
        }
        Err(e) => return Err(e.into()),
    }
    let iface = conn.object_server().interface::<_, BrokerIface>(DBUS_PATH).await?;
    let stop = CancellationToken::new();
    let notifier = notify::spawn(&conn, broker.clone(), stop.clone());
    let mut events = broker.subscribe();
    let stopped = stop.clone();
    let forwarder = tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                // Events first: those already sent before the stop still go out.
                biased;
                event = events.recv() => match event {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = stopped.cancelled() => return,
            };
            let emitter = iface.signal_emitter();
            let sent = match &event {
                // Not signals: questions for the person, shown as desktop notifications (notify.rs).
                // Not signals: questions for the person and notices' counts (notify.rs).
                Event::ConsentAsked(_) | Event::ConsentClosed { .. } | Event::RefreshFailed { .. } => continue,
                Event::TokenRefreshed { account, expires_at } => {
                    BrokerIface::token_refreshed(emitter, account, *expires_at).await
                }
                Event::LoggedOut { account } => BrokerIface::logged_out(emitter, account).await,
                Event::LoginRequired { account } => BrokerIface::login_required(emitter, account).await,
                Event::LoginFinished { account, login_id, error, who } => {
                    let callers = iface.get().await.take_login_callers(login_id);
                    if let Some(who) = who {
                        tell_who(emitter.connection(), &callers, account, who).await;
                    }
                    BrokerIface::login_finished(emitter, account, error.is_none(), error.as_deref().unwrap_or("")).await
                }
            };
            let changed = iface.get().await.accounts_changed(emitter).await;
            if let Err(e) = sent.and(changed) {
                tracing::warn!(error = %e, "could not emit a D-Bus signal");
            }
        }
    });
    Ok(Door { _conn: conn, stop, forwarder, notifier })
}
