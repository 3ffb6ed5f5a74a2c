//! The D-Bus transport (feature `dbus`): the broker on the session bus, with the same typed API
//! and the same results as [`crate::Client`] (every method goes through the interface's `Call`,
//! which takes and gives the socket's JSON), and a stream of the broker's signals.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{Stream, StreamExt};
use tokio::sync::OnceCell;
use zbus::fdo;
use zbus::names::{BusName, OwnedUniqueName, UniqueName, WellKnownName};
use zbus::zvariant::{OwnedValue, Value};

use crate::protocol::Method;

use crate::error::{Error, Result};
use crate::protocol::*;
use crate::server_uid;

#[zbus::proxy(
    interface = "io.github.tokenbroker.Broker1",
    default_service = "io.github.tokenbroker.Broker1",
    default_path = "/io/github/tokenbroker/Broker1",
    gen_blocking = false
)]
pub trait Broker1 {
    fn get_access_token(&self, account: &str, options: HashMap<&str, Value<'_>>) -> zbus::Result<(String, i64)>;
    fn get_id_token(&self, account: &str, options: HashMap<&str, Value<'_>>) -> zbus::Result<(String, i64)>;
    fn reject_token(&self, account: &str, access_token: &str, options: HashMap<&str, Value<'_>>) -> zbus::Result<bool>;
    fn get_dpop_proof(
        &self,
        account: &str,
        htm: &str,
        htu: &str,
        options: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<(String, String, i64)>;
    fn get_profile(&self, account: &str) -> zbus::Result<String>;
    fn get_metadata(&self, account: &str) -> zbus::Result<String>;
    fn update_metadata(&self, account: &str, user_metadata_json: &str) -> zbus::Result<String>;
    fn login(&self, account: &str, flow: &str) -> zbus::Result<HashMap<String, OwnedValue>>;
    fn await_login(&self, login_id: &str) -> zbus::Result<String>;
    fn await_login_result(&self, login_id: &str) -> zbus::Result<HashMap<String, OwnedValue>>;
    fn cancel_login(&self, login_id: &str) -> zbus::Result<bool>;
    fn logout(&self, account: &str) -> zbus::Result<()>;
    fn status(&self) -> zbus::Result<String>;
    /// Any method of the contract, with the socket's params and result as JSON (an extension).
    fn call(&self, method: &str, params_json: &str) -> zbus::Result<String>;

    #[zbus(signal)]
    fn token_refreshed(&self, account: String, expires_at: i64) -> zbus::Result<()>;
    #[zbus(signal)]
    fn logged_out(&self, account: String) -> zbus::Result<()>;
    #[zbus(signal)]
    fn login_required(&self, account: String) -> zbus::Result<()>;
    #[zbus(signal)]
    fn login_finished(&self, account: String, ok: bool, error: String) -> zbus::Result<()>;
    /// Sent only to the connections that started or awaited the login (see docs/dbus.md).
    #[zbus(signal)]
    fn logged_in_as(&self, account: String, subject: String, email: String, name: String) -> zbus::Result<()>;

    #[zbus(property)]
    fn accounts(&self) -> zbus::Result<HashMap<String, String>>;
}

/// What the broker announces on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    TokenRefreshed { account: String, expires_at: i64 },
    LoggedOut { account: String },
    LoginRequired { account: String },
    LoginFinished { account: String, ok: bool, error: String },
}

/// The broker on the session bus.
pub struct Client {
    proxy: Broker1Proxy<'static>,
    owner: Arc<Owner>,
}

/// Who serves the broker's name. Anyone may take a free name on a bus that lets other users
/// in, so every call goes to the name's owner only once the bus has said that it runs as us (or
/// root), and signals count only from such a sender. Unique names are never reused on a bus: a
/// checked one stays good for as long as it exists.
struct Owner {
    conn: zbus::Connection,
    bus: OnceCell<fdo::DBusProxy<'static>>,
    /// The last owner found to be ours, and a proxy that talks to it alone.
    checked: Mutex<Option<(OwnedUniqueName, Broker1Proxy<'static>)>>,
}

const SERVER: &str = "io.github.tokenbroker.Broker1 on the session bus";
const BUS_FIX: &str = "check DBUS_SESSION_BUS_ADDRESS: it must be your own session bus, where your \
                       own tokenbrokerd runs";

impl Owner {
    async fn bus(&self) -> Result<&fdo::DBusProxy<'static>> {
        self.bus.get_or_try_init(|| fdo::DBusProxy::new(&self.conn)).await.map_err(error)
    }

    /// A proxy bound to an owner of the name whose UID is checked: the one found before unless
    /// `again`, else the name's current owner (started by D-Bus activation if there is none, as
    /// a call to the name would start it).
    async fn broker(&self, again: bool) -> Result<Broker1Proxy<'static>> {
        if self.conn.unique_name().is_none() {
            self.check_peer().await?;
            return Broker1Proxy::new(&self.conn).await.map_err(error);
        }
        if !again && let Some((_, proxy)) = &*self.checked.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(proxy.clone());
        }
        let bus = self.bus().await?;
        let name = BusName::from_static_str(DBUS_NAME).map_err(std::io::Error::other)?;
        let owner = match bus.get_name_owner(name.clone()).await {
            Err(fdo::Error::NameHasNoOwner(_)) => {
                let wanted = WellKnownName::from_static_str(DBUS_NAME).map_err(std::io::Error::other)?;
                bus.start_service_by_name(wanted, 0).await.map_err(fdo_error)?;
                bus.get_name_owner(name).await.map_err(fdo_error)?
            }
            other => other.map_err(fdo_error)?,
        };
        if let Some((checked, proxy)) = &*self.checked.lock().unwrap_or_else(|e| e.into_inner())
            && *checked == owner
        {
            return Ok(proxy.clone());
        }
        self.check(&owner).await?;
        let proxy = Broker1Proxy::builder(&self.conn)
            .destination(owner.clone())
            .map_err(error)?
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(error)?;
        *self.checked.lock().unwrap_or_else(|e| e.into_inner()) = Some((owner, proxy.clone()));
        Ok(proxy)
    }

    /// Peer to peer: no bus and no name; the other end of the socket is the server.
    async fn check_peer(&self) -> Result<()> {
        let creds = self.conn.peer_creds().await?;
        let uid = creds.unix_user_id().ok_or_else(|| std::io::Error::other("the D-Bus peer's UID is unknown"))?;
        server_uid::check(uid, || "the D-Bus peer".into(), BUS_FIX)
    }

    async fn check(&self, unique: &UniqueName<'_>) -> Result<()> {
        let uid =
            self.bus().await?.get_connection_unix_user(BusName::Unique(unique.clone())).await.map_err(fdo_error)?;
        server_uid::check(uid, || SERVER.into(), BUS_FIX)
    }

    /// Whether a signal came from a connection that runs as us (or root).
    async fn trusted_sender(&self, header: &zbus::message::Header<'_>) -> bool {
        let Some(sender) = header.sender() else {
            return self.conn.unique_name().is_none() && self.check_peer().await.is_ok();
        };
        if let Some((checked, _)) = &*self.checked.lock().unwrap_or_else(|e| e.into_inner())
            && checked == sender
        {
            return true;
        }
        self.check(sender).await.is_ok()
    }
}

impl Client {
    /// Connect to the session bus (`DBUS_SESSION_BUS_ADDRESS`).
    pub async fn connect() -> Result<Self> {
        let conn = zbus::Connection::session().await.map_err(|e| Error::Unreachable {
            path: "the D-Bus session bus".into(),
            source: std::io::Error::other(e),
        })?;
        Self::with_connection(conn).await
    }

    pub async fn with_connection(conn: zbus::Connection) -> Result<Self> {
        let proxy = Broker1Proxy::new(&conn).await.map_err(error)?;
        let owner = Arc::new(Owner { conn, bus: OnceCell::new(), checked: Mutex::new(None) });
        Ok(Client { proxy, owner })
    }

    /// The interface under its well-known name, for what this client does not wrap (the
    /// `Accounts` property). Unlike this client's own calls and signals, it does not check who
    /// serves the name: it talks to whoever owns the name at the time.
    pub fn proxy(&self) -> &Broker1Proxy<'static> {
        &self.proxy
    }

    /// `f` on the checked owner. One that has gone since (the daemon restarted) got nothing:
    /// the bus answers for a unique name that no longer exists. Then `f` goes once to the
    /// name's new owner, once that is checked too.
    async fn call<T>(&self, f: impl AsyncFn(Broker1Proxy<'static>) -> zbus::Result<T>) -> Result<T> {
        match f(self.owner.broker(false).await?).await {
            Err(zbus::Error::MethodError(name, _, _)) if name == "org.freedesktop.DBus.Error.ServiceUnknown" => {
                f(self.owner.broker(true).await?).await.map_err(error)
            }
            other => other.map_err(error),
        }
    }

    /// One method of the contract through the interface's `Call`, with the socket's params and
    /// result: the typed D-Bus methods carry less (no `token_type`, no logout result).
    pub async fn request<M: Method>(&self, params: M::Params) -> Result<M::Result> {
        let params = serde_json::to_string(&params).map_err(std::io::Error::other)?;
        json(&self.call_json(M::NAME, &params).await?)
    }

    /// `Call` with params and result as JSON text, for callers that hold no typed params.
    pub async fn call_json(&self, method: &str, params_json: &str) -> Result<String> {
        match self.call(async |b| b.call(method, params_json).await).await {
            Err(Error::Rpc { message, .. }) if message.starts_with("org.freedesktop.DBus.Error.UnknownMethod") => {
                Err(Error::Broker {
                    kind: ErrorKind::NotSupported,
                    message: "the tokenbrokerd on the session bus predates this client (it has no Call method); \
                              restart it: systemctl --user restart tokenbrokerd"
                        .into(),
                })
            }
            other => other,
        }
    }

    tokenbroker_protocol::typed_methods!(async.await);

    /// Every signal the broker emits from now on, in order per signal kind.
    pub async fn signals(&self) -> Result<impl Stream<Item = Signal> + Unpin + use<>> {
        // On the well-known name, so that the stream follows the daemon across restarts; each
        // sender is checked as calls are.
        let p = &self.proxy;
        let refreshed = p.receive_token_refreshed().await.map_err(error)?.map(|s| {
            let a = s.args().ok();
            (a.map(|a| Signal::TokenRefreshed { account: a.account, expires_at: a.expires_at }), s.message().clone())
        });
        let out = p
            .receive_logged_out()
            .await
            .map_err(error)?
            .map(|s| (s.args().ok().map(|a| Signal::LoggedOut { account: a.account }), s.message().clone()));
        let required = p
            .receive_login_required()
            .await
            .map_err(error)?
            .map(|s| (s.args().ok().map(|a| Signal::LoginRequired { account: a.account }), s.message().clone()));
        let finished = p.receive_login_finished().await.map_err(error)?.map(|s| {
            let a = s.args().ok();
            (a.map(|a| Signal::LoginFinished { account: a.account, ok: a.ok, error: a.error }), s.message().clone())
        });
        let all =
            futures_util::stream::select_all([refreshed.boxed(), out.boxed(), required.boxed(), finished.boxed()]);
        let owner = self.owner.clone();
        Ok(all
            .filter_map(move |(signal, message)| {
                let owner = owner.clone();
                async move {
                    let signal = signal?;
                    owner.trusted_sender(&message.header()).await.then_some(signal)
                }
            })
            .boxed())
    }
}

fn json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// D-Bus errors back into the contract's kinds.
fn error(e: zbus::Error) -> Error {
    match e {
        zbus::Error::MethodError(name, message, _) => match ErrorKind::from_dbus_name(name.as_str()) {
            Some(kind) => Error::Broker { kind, message: message.unwrap_or_default() },
            None if name.as_str() == "org.freedesktop.DBus.Error.ServiceUnknown" => Error::Unreachable {
                path: "the D-Bus session bus".into(),
                source: std::io::Error::other(message.unwrap_or_default()),
            },
            None => Error::Rpc { code: -32000, message: format!("{name}: {}", message.unwrap_or_default()) },
        },
        other => Error::Io(std::io::Error::other(other)),
    }
}

/// The bus's own errors (no owner, no activatable service) as the contract's.
fn fdo_error(e: fdo::Error) -> Error {
    match e {
        fdo::Error::NameHasNoOwner(message) | fdo::Error::ServiceUnknown(message) => {
            Error::Unreachable { path: "the D-Bus session bus".into(), source: std::io::Error::other(message) }
        }
        fdo::Error::ZBus(e) => error(e),
        other => Error::Io(std::io::Error::other(other)),
    }
}
