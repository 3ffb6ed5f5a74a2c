//! The D-Bus transport (feature `dbus`): the broker on the session bus, with the typed API of
//! [`crate::Client`] where the D-Bus signatures carry the same data, and a stream of the
//! broker's signals.

use std::collections::HashMap;

use futures_util::{Stream, StreamExt};
use zbus::zvariant::{OwnedValue, Value};

use crate::error::{Error, Result};
use crate::protocol::*;
use crate::secret::Secret;

#[zbus::proxy(
    interface = "io.github.tokenbroker.Broker1",
    default_service = "io.github.tokenbroker.Broker1",
    default_path = "/io/github/tokenbroker/Broker1",
    gen_blocking = false
)]
pub trait Broker1 {
    fn get_access_token(&self, account: &str, options: HashMap<&str, Value<'_>>) -> zbus::Result<(String, i64)>;
    fn get_id_token(&self, account: &str, options: HashMap<&str, Value<'_>>) -> zbus::Result<(String, i64)>;
    fn get_profile(&self, account: &str) -> zbus::Result<String>;
    fn get_metadata(&self, account: &str) -> zbus::Result<String>;
    fn update_metadata(&self, account: &str, user_metadata_json: &str) -> zbus::Result<String>;
    fn login(&self, account: &str, flow: &str) -> zbus::Result<HashMap<String, OwnedValue>>;
    fn await_login(&self, login_id: &str) -> zbus::Result<String>;
    fn await_login_result(&self, login_id: &str) -> zbus::Result<HashMap<String, OwnedValue>>;
    fn cancel_login(&self, login_id: &str) -> zbus::Result<bool>;
    fn logout(&self, account: &str) -> zbus::Result<()>;
    fn status(&self) -> zbus::Result<String>;

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
        Ok(Client { proxy })
    }

    pub fn proxy(&self) -> &Broker1Proxy<'static> {
        &self.proxy
    }

    pub async fn get_access_token(&self, p: GetAccessToken) -> Result<AccessToken> {
        let mut options = HashMap::new();
        if let Some(t) = p.min_ttl {
            options.insert("min_ttl", Value::U32(t.min(u32::MAX as u64) as u32));
        }
        if let Some(s) = &p.scope {
            options.insert("scope", Value::from(s.as_str()));
        }
        if let Some(a) = &p.audience {
            options.insert("audience", Value::from(a.as_str()));
        }
        let account = p.account.unwrap_or_default();
        let (token, expires_at) = self.proxy.get_access_token(&account, options).await.map_err(error)?;
        // The D-Bus signature carries the token and its expiry only.
        Ok(AccessToken {
            account,
            access_token: Secret::new(token),
            token_type: "Bearer".into(),
            expires_at,
            scope: None,
        })
    }

    pub async fn get_id_token(&self, p: GetIdToken) -> Result<IdToken> {
        let mut options = HashMap::new();
        if let Some(t) = p.min_ttl {
            options.insert("min_ttl", Value::U32(t.min(u32::MAX as u64) as u32));
        }
        let account = p.account.unwrap_or_default();
        let (token, expires_at) = self.proxy.get_id_token(&account, options).await.map_err(error)?;
        Ok(IdToken { account, id_token: Secret::new(token), expires_at })
    }

    /// The userinfo claims; over D-Bus always the daemon's cached copy (`refresh` is refused).
    pub async fn get_profile(&self, p: GetProfile) -> Result<Profile> {
        if p.refresh {
            return Err(Error::Broker {
                kind: ErrorKind::NotSupported,
                message: "GetProfile over D-Bus has no refresh option; use the socket".into(),
            });
        }
        let account = p.account.unwrap_or_default();
        let claims = self.proxy.get_profile(&account).await.map_err(error)?;
        Ok(Profile { account, claims: json(&claims)? })
    }

    pub async fn get_metadata(&self, p: AccountOnly) -> Result<Metadata> {
        let account = p.account.unwrap_or_default();
        let text = self.proxy.get_metadata(&account).await.map_err(error)?;
        Ok(Metadata { account, user_metadata: json(&text)? })
    }

    pub async fn update_metadata(&self, p: UpdateMetadata) -> Result<Metadata> {
        let account = p.account.unwrap_or_default();
        let patch = serde_json::to_string(&p.user_metadata).map_err(std::io::Error::other)?;
        let text = self.proxy.update_metadata(&account, &patch).await.map_err(error)?;
        Ok(Metadata { account, user_metadata: json(&text)? })
    }

    pub async fn login(&self, p: Login) -> Result<LoginChallenge> {
        let flow = p.flow.map(|f| f.to_string()).unwrap_or_default();
        let dict = self.proxy.login(&p.account.unwrap_or_default(), &flow).await.map_err(error)?;
        let map: serde_json::Map<String, serde_json::Value> = dict
            .into_iter()
            .filter_map(|(k, v)| {
                let v = match &*v {
                    Value::Str(s) => serde_json::Value::from(s.as_str()),
                    Value::U64(n) => serde_json::Value::from(*n),
                    Value::U32(n) => serde_json::Value::from(*n),
                    _ => return None,
                };
                Some((k, v))
            })
            .collect();
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| Error::Io(std::io::Error::other(e)))
    }

    /// With who logged in, from `AwaitLoginResult`; from a daemon too old to have that, the
    /// account alone (`AwaitLogin`).
    pub async fn await_login(&self, login_id: &str) -> Result<LoginDone> {
        match self.proxy.await_login_result(login_id).await {
            Ok(dict) => {
                let text = |k: &str| match dict.get(k).map(|v| &**v) {
                    Some(Value::Str(s)) if !s.is_empty() => Some(s.to_string()),
                    _ => None,
                };
                Ok(LoginDone {
                    account: text("account").unwrap_or_default(),
                    status: text("status").unwrap_or_else(|| "logged_in".into()),
                    subject: text("subject"),
                    email: text("email"),
                    name: text("name"),
                })
            }
            Err(zbus::Error::MethodError(name, _, _))
                if name.as_str() == "org.freedesktop.DBus.Error.UnknownMethod" =>
            {
                let account = self.proxy.await_login(login_id).await.map_err(error)?;
                Ok(LoginDone { account, status: "logged_in".into(), subject: None, email: None, name: None })
            }
            Err(e) => Err(error(e)),
        }
    }

    pub async fn cancel_login(&self, login_id: &str) -> Result<LoginCancelled> {
        let cancelled = self.proxy.cancel_login(login_id).await.map_err(error)?;
        Ok(LoginCancelled { cancelled })
    }

    /// Log out; D-Bus's `Logout` does not report whether the IdP revoked the session.
    pub async fn logout(&self, p: AccountOnly) -> Result<()> {
        self.proxy.logout(&p.account.unwrap_or_default()).await.map_err(error)
    }

    pub async fn status(&self) -> Result<Status> {
        json(&self.proxy.status().await.map_err(error)?)
    }

    /// Every signal the broker emits from now on, in order per signal kind.
    pub async fn signals(&self) -> Result<impl Stream<Item = Signal> + Unpin + use<>> {
        let p = &self.proxy;
        let refreshed = p.receive_token_refreshed().await.map_err(error)?.filter_map(|s| async move {
            let a = s.args().ok()?;
            Some(Signal::TokenRefreshed { account: a.account, expires_at: a.expires_at })
        });
        let out = p
            .receive_logged_out()
            .await
            .map_err(error)?
            .filter_map(|s| async move { Some(Signal::LoggedOut { account: s.args().ok()?.account }) });
        let required = p
            .receive_login_required()
            .await
            .map_err(error)?
            .filter_map(|s| async move { Some(Signal::LoginRequired { account: s.args().ok()?.account }) });
        let finished = p.receive_login_finished().await.map_err(error)?.filter_map(|s| async move {
            let a = s.args().ok()?;
            Some(Signal::LoginFinished { account: a.account, ok: a.ok, error: a.error })
        });
        Ok(futures_util::stream::select_all([refreshed.boxed(), out.boxed(), required.boxed(), finished.boxed()]))
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
