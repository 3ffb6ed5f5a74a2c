//! The interface `io.github.tokenbroker.Broker1`: each method decodes its D-Bus arguments into
//! the contract's params, takes the one request pipeline, and encodes the typed result.

use std::collections::HashMap;
#[cfg(target_os = "linux")]
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use secrecy::ExposeSecret;
use serde_json::Value as Json;
use tokenbroker::ErrorKind;
use tokenbroker::protocol::*;
use tokio::sync::OnceCell;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedValue, Value};
use zbus::{Connection, fdo};

use super::args::{account, options, to_json};
use super::error::{DbusError, Reply, internal, invalid};
use crate::broker::request::{self, Caller, Handler, handle};
use crate::broker::{self, Broker};
#[cfg(target_os = "linux")]
use crate::identity;
use crate::serve::dispatch::dispatch;

pub struct BrokerIface {
    broker: Arc<Broker>,
    bus: OnceCell<fdo::DBusProxy<'static>>,
    /// Unique names are never reused on a bus, so a sender's credentials can be remembered:
    /// one GetConnectionCredentials per client connection, not per call.
    callers: Mutex<HashMap<String, Caller>>,
    /// Per pending login, the bus connections (of our UID, checked) that started or awaited
    /// it: the only ones told who logged in (`LoggedInAs`), since a broadcast would tell
    /// every client of a bus that lets other users in.
    login_callers: Mutex<HashMap<String, Vec<String>>>,
}

/// Logins whose callers are remembered at once, and callers per login; past these, the
/// oldest knowledge is dropped (those callers still have `AwaitLoginResult`).
const MAX_LOGINS_REMEMBERED: usize = 256;
const MAX_CALLERS_PER_LOGIN: usize = 16;

impl BrokerIface {
    pub fn new(broker: Arc<Broker>) -> Self {
        BrokerIface {
            broker,
            bus: OnceCell::new(),
            callers: Mutex::new(HashMap::new()),
            login_callers: Mutex::new(HashMap::new()),
        }
    }

    /// Remember the sender as one to tell who the login `login_id` logged in, if it is a
    /// caller the pipeline admits: another user's connection is never told.
    fn remember_login_caller(&self, login_id: &str, header: &Header<'_>, caller: &Caller) {
        let Some(sender) = header.sender().filter(|_| request::admit(caller).is_ok()) else { return };
        let mut callers = self.login_callers.lock().unwrap_or_else(|e| e.into_inner());
        if callers.len() >= MAX_LOGINS_REMEMBERED && !callers.contains_key(login_id) {
            callers.clear();
        }
        let names = callers.entry(login_id.to_owned()).or_default();
        if !names.iter().any(|n| n == sender.as_str()) && names.len() < MAX_CALLERS_PER_LOGIN {
            names.push(sender.to_string());
        }
    }

    pub(super) fn take_login_callers(&self, login_id: &str) -> Vec<String> {
        self.login_callers.lock().unwrap_or_else(|e| e.into_inner()).remove(login_id).unwrap_or_default()
    }

    /// Who sent the call, as the bus says (a peer-to-peer connection has no bus and no
    /// sender: its socket is the boundary, and the peer is taken to be us).
    async fn caller(&self, header: &Header<'_>, conn: &Connection) -> Reply<Caller> {
        let Some(sender) = header.sender() else {
            return if conn.unique_name().is_none() {
                Ok(Caller::new(request::me(), None, request::Door::Dbus))
            } else {
                Err(broker::Error::new(ErrorKind::AccessDenied, "a D-Bus call without a sender").into())
            };
        };
        if let Some(caller) = self.callers.lock().unwrap_or_else(|e| e.into_inner()).get(sender.as_str()) {
            return Ok(caller.clone());
        }
        let bus = self.bus.get_or_try_init(|| fdo::DBusProxy::new(conn)).await?;
        let creds = bus.get_connection_credentials(sender.clone().into()).await?;
        let Some(uid) = creds.unix_user_id() else {
            return Err(broker::Error::new(ErrorKind::AccessDenied, "the bus does not say who sent this call").into());
        };
        let pid = creds.process_id().and_then(|p| i32::try_from(p).ok());
        let mut caller = Caller::new(uid, pid, request::Door::Dbus);
        // What the process is, only for a caller the pipeline admits (another user's costs no
        // reading of /proc): pinned by the bus's ProcessFD (a pidfd, from dbus-broker or a
        // recent dbus-daemon) when it offers one, else by the process's start time.
        // (Linux only: elsewhere a bus gives no handle on the process.)
        #[cfg(target_os = "linux")]
        if request::admit(&caller).is_ok() {
            let pin = identity::Pin::from_pidfd(creds.process_fd().and_then(|fd| fd.as_fd().try_clone_to_owned().ok()));
            identity::resolve(pin, pid).await.fill(&mut caller);
            let c = &caller;
            tracing::debug!(pid = ?c.pid, exe = ?c.exe, unit = ?c.unit, app_id = ?c.app_id, door = c.door.name(), sender = %sender, "caller identified");
        }
        let mut callers = self.callers.lock().unwrap_or_else(|e| e.into_inner());
        if callers.len() > 4096 {
            callers.clear();
        }
        callers.insert(sender.to_string(), caller.clone());
        Ok(caller)
    }

    /// One request down the pipeline, tracked like the socket's requests: a stop waits for it
    /// (a logout's keyring delete, a refresh's answer) instead of cutting it off.
    async fn run<M: Handler>(&self, header: &Header<'_>, conn: &Connection, params: M::Params) -> Reply<M::Output> {
        self.run_as::<M>(&self.caller(header, conn).await?, params).await
    }

    async fn run_as<M: Handler>(&self, caller: &Caller, params: M::Params) -> Reply<M::Output> {
        Ok(self.broker.tasks().track_future(handle::<M>(&self.broker, caller, params)).await?)
    }

    /// `AwaitLogin`, its caller remembered first (once admitted) to be told who logged in.
    async fn await_login_as(&self, header: &Header<'_>, conn: &Connection, login_id: &str) -> Reply<LoginDone> {
        let caller = self.caller(header, conn).await?;
        self.remember_login_caller(login_id, header, &caller);
        self.run_as::<method::AwaitLogin>(&caller, login_id.into()).await
    }
}

#[zbus::interface(name = "io.github.tokenbroker.Broker1")]
impl BrokerIface {
    /// An access token valid for at least `min_ttl` more seconds; options `min_ttl` (any
    /// integer type), `scope`, `audience`.
    #[zbus(out_args("access_token", "expires_at"))]
    async fn get_access_token(
        &self,
        account: &str,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(String, i64), DbusError> {
        let (min_ttl, scope, audience) = self::options(&options, &["min_ttl", "scope", "audience"])?;
        let p = GetAccessToken { account: self::account(account), min_ttl, scope, audience };
        let grant = self.run::<method::GetAccessToken>(&header, conn, p).await?;
        Ok((grant.token.secret.expose_secret().to_owned(), grant.token.life.expires_at))
    }

    /// A DPoP-bound access token and a fresh proof for one request (`htm` its method, `htu` its
    /// URL); options `nonce` (the resource server's `DPoP-Nonce`) and `audience`.
    #[zbus(out_args("access_token", "proof", "expires_at"))]
    async fn get_dpop_proof(
        &self,
        account: &str,
        htm: String,
        htu: String,
        mut options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(String, String, i64), DbusError> {
        let nonce = match options.remove("nonce") {
            Some(v) => Some(String::try_from(v).map_err(|_| invalid("option \"nonce\" has the wrong type"))?),
            None => None,
        };
        let (_, _, audience) = self::options(&options, &["nonce", "audience"])?;
        let p = GetDpopProof { account: self::account(account), htm, htu, nonce, audience };
        let answer = self.run::<method::GetDpopProof>(&header, conn, p).await?;
        Ok((answer.access_token.expose().to_owned(), answer.proof.expose().to_owned(), answer.expires_at))
    }

    /// An API refused `access_token`: drop it if it is still the one served, so the next
    /// request refreshes; option `audience` (the token's, if it was got for one). Whether it
    /// was dropped.
    #[zbus(out_args("dropped"))]
    async fn reject_token(
        &self,
        account: &str,
        access_token: String,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<bool, DbusError> {
        let access_token = Secret::new(access_token);
        let (_, _, audience) = self::options(&options, &["audience"])?;
        let p = RejectToken { account: self::account(account), access_token, audience };
        Ok(self.run::<method::RejectToken>(&header, conn, p).await?.dropped)
    }

    /// The ID token; option `min_ttl`.
    #[zbus(out_args("id_token", "expires_at"))]
    async fn get_id_token(
        &self,
        account: &str,
        options: HashMap<String, OwnedValue>,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(String, i64), DbusError> {
        let (min_ttl, _, _) = self::options(&options, &["min_ttl"])?;
        let p = GetIdToken { account: self::account(account), min_ttl };
        let t = self.run::<method::GetIdToken>(&header, conn, p).await?;
        Ok((t.id_token.expose().to_owned(), t.expires_at))
    }

    /// The userinfo claims as a JSON object.
    #[zbus(out_args("claims_json"))]
    async fn get_profile(
        &self,
        account: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, DbusError> {
        let p = GetProfile { account: self::account(account), refresh: false };
        let p = self.run::<method::GetProfile>(&header, conn, p).await?;
        to_json(&p.claims)
    }

    /// `user_metadata` as a JSON object.
    #[zbus(out_args("user_metadata_json"))]
    async fn get_metadata(
        &self,
        account: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, DbusError> {
        let p = AccountOnly { account: self::account(account) };
        let m = self.run::<method::GetMetadata>(&header, conn, p).await?;
        to_json(&m.user_metadata)
    }

    /// Merge a JSON object into `user_metadata` (null deletes a key); the result as JSON.
    #[zbus(out_args("user_metadata_json"))]
    async fn update_metadata(
        &self,
        account: &str,
        user_metadata_json: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, DbusError> {
        let Ok(Json::Object(user_metadata)) = serde_json::from_str(user_metadata_json) else {
            return Err(invalid("user_metadata_json must be a JSON object"));
        };
        let update = UpdateMetadata { account: self::account(account), user_metadata };
        let m = self.run::<method::UpdateMetadata>(&header, conn, update).await?;
        to_json(&m.user_metadata)
    }

    /// Start a login ("" flow: the account's default); the challenge as a dictionary with the
    /// keys of the socket's `Login` result. `LoginFinished` tells how it ended.
    #[zbus(out_args("challenge"))]
    async fn login(
        &self,
        account: &str,
        flow: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<HashMap<String, OwnedValue>, DbusError> {
        let flow = match flow {
            "" => None,
            "device" => Some(Flow::Device),
            "code" => Some(Flow::Code),
            other => {
                return Err(invalid(format!("flow {other:?} is neither \"device\" nor \"code\"")));
            }
        };
        let p = Login { account: self::account(account), flow };
        let caller = self.caller(&header, conn).await?;
        let challenge = self.run_as::<method::Login>(&caller, p).await?;
        self.remember_login_caller(&challenge.login_id, &header, &caller);
        let Ok(Json::Object(fields)) = serde_json::to_value(&challenge) else {
            return Err(broker::Error::internal("encoding the challenge").into());
        };
        let mut dict = HashMap::new();
        for (k, v) in fields {
            let v = match v {
                Json::String(s) => OwnedValue::try_from(Value::from(s)),
                Json::Number(n) => OwnedValue::try_from(Value::U64(n.as_u64().unwrap_or(0))),
                _ => continue,
            };
            dict.insert(k, v.map_err(internal)?);
        }
        Ok(dict)
    }

    /// Wait until the login `login_id` is approved; the account name.
    #[zbus(out_args("account"))]
    async fn await_login(
        &self,
        login_id: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, DbusError> {
        Ok(self.await_login_as(&header, conn, login_id).await?.account)
    }

    /// Wait until the login `login_id` is approved; the socket's `AwaitLogin` result as a
    /// dictionary: `account`, `status`, and `subject`, `email`, `name` where known.
    #[zbus(out_args("result"))]
    async fn await_login_result(
        &self,
        login_id: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<HashMap<String, OwnedValue>, DbusError> {
        let done = self.await_login_as(&header, conn, login_id).await?;
        let fields = [
            ("account", Some(done.account)),
            ("status", Some(done.status)),
            ("subject", done.subject),
            ("email", done.email),
            ("name", done.name),
        ];
        let mut dict = HashMap::new();
        for (k, v) in fields {
            if let Some(v) = v {
                dict.insert(k.to_owned(), OwnedValue::try_from(Value::from(v)).map_err(internal)?);
            }
        }
        Ok(dict)
    }

    /// End the pending login `login_id` (its `AwaitLogin` fails); whether it was pending.
    #[zbus(out_args("cancelled"))]
    async fn cancel_login(
        &self,
        login_id: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<bool, DbusError> {
        Ok(self.run::<method::CancelLogin>(&header, conn, login_id.into()).await?.cancelled)
    }

    /// Revoke the session at the IdP and forget it (`Call("Logout", …)` says whether the IdP
    /// revoked it).
    async fn logout(
        &self,
        account: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<(), DbusError> {
        let p = AccountOnly { account: self::account(account) };
        self.run::<method::Logout>(&header, conn, p).await?;
        Ok(())
    }

    /// The socket's `Status` result as JSON.
    #[zbus(out_args("status_json"))]
    async fn status(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, DbusError> {
        to_json(&self.run::<method::Status>(&header, conn, Empty {}).await?)
    }

    /// Any method of the contract by name, with the socket's params and result as JSON: every
    /// method, with every field of its result, through the same pipeline as the socket.
    #[zbus(out_args("result_json"))]
    async fn call(
        &self,
        method: &str,
        params_json: &str,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] conn: &Connection,
    ) -> Result<String, DbusError> {
        let params: &serde_json::value::RawValue =
            serde_json::from_str(params_json).map_err(|_| invalid("params_json must be a JSON object"))?;
        let call = match Call::decode(method, Some(params)) {
            Ok(call) => call,
            Err(None) => return Err(invalid(format!("no method {method:?}; methods: {}", Call::METHODS.join(", ")))),
            Err(Some(why)) => return Err(invalid(format!("invalid params for {method}: {why}"))),
        };
        let caller = self.caller(&header, conn).await?;
        if let Call::AwaitLogin(p) = &call {
            self.remember_login_caller(&p.login_id, &header, &caller);
        }
        let tracked = self.broker.tasks().track_future(dispatch(&self.broker, &caller, call, false));
        let json = tracked.await?;
        String::from_utf8(json.as_bytes().to_vec()).map_err(internal)
    }

    /// Every account and its state (`logged_out`, `valid`, `expired`, `refreshing`,
    /// `login_required`).
    #[zbus(property)]
    async fn accounts(&self) -> HashMap<String, String> {
        self.broker.status().accounts.into_iter().map(|a| (a.name, a.state.as_str().to_owned())).collect()
    }

    #[zbus(signal)]
    pub(super) async fn token_refreshed(
        emitter: &SignalEmitter<'_>,
        account: &str,
        expires_at: i64,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn logged_out(emitter: &SignalEmitter<'_>, account: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn login_required(emitter: &SignalEmitter<'_>, account: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    pub(super) async fn login_finished(
        emitter: &SignalEmitter<'_>,
        account: &str,
        ok: bool,
        error: &str,
    ) -> zbus::Result<()>;

    /// Who a login logged in ("" where unknown); unicast, to the login's own callers.
    #[zbus(signal)]
    pub(super) async fn logged_in_as(
        emitter: &SignalEmitter<'_>,
        account: &str,
        subject: &str,
        email: &str,
        name: &str,
    ) -> zbus::Result<()>;
}
