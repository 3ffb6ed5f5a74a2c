//! The one road every request takes, whichever door it came in by: who asks, whether they
//! may, then the method's handler. Doors decode into a method's params and a [`Caller`], call
//! [`handle`], and encode what comes back; nothing about a request is decided in a door.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokenbroker::ErrorKind;
use tokenbroker::protocol::{self as wire, Method, method};

use super::{Broker, Error, Grant, Result, doctor, login, logout, metadata, profile, tokens};

/// The door a request came in by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Socket,
    Dbus,
}

impl Door {
    #[allow(dead_code)]
    /// The contract's name, which policy rules match (`door = "socket"`) and audit records carry.
    pub fn name(self) -> &'static str {
        match self {
            Door::Socket => "socket",
            Door::Dbus => "dbus",
        }
    }
}

/// Who asks: as the kernel (`SO_PEERCRED`) or the bus (`GetConnectionCredentials`) says, and
/// what the process is, as far as it could be told without guessing. Unknown parts are `None`.
/// Cheap to clone: a connection keeps one and every request borrows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub pid: Option<i32>,
    pub door: Door,
    /// The resolved `/proc/PID/exe` of the very process that connected (never of a later
    /// process that reused its pid); `None` when that cannot be made sure of, or not UTF-8.
    pub exe: Option<Arc<str>>,
    /// The systemd unit whose cgroup holds the process (`app-foo@1.service`, `bar.scope`).
    pub unit: Option<Arc<str>>,
    /// The Flatpak application ID, or the snap's name (`snap.NAME`).
    pub app_id: Option<Arc<str>>,
}

impl Caller {
    /// A caller known only by its credentials: what a door has before (or without) looking at
    /// the process.
    pub fn new(uid: u32, pid: Option<i32>, door: Door) -> Caller {
        Caller { uid, pid, door, exe: None, unit: None, app_id: None }
    }
}

/// The daemon's own UID: the only user it serves.
pub fn me() -> u32 {
    static ME: OnceLock<u32> = OnceLock::new();
    *ME.get_or_init(|| rustix::process::getuid().as_raw())
}

/// Whether `caller` may ask anything at all. The socket door also asks this once per
/// connection, before the connection takes a slot.
pub fn admit(caller: &Caller) -> Result<()> {
    if caller.uid == me() {
        return Ok(());
    }
    Err(Error::new(ErrorKind::AccessDenied, "tokenbrokerd serves only its own user"))
}

/// Run one request: admit the caller, then the method's handler.
pub async fn handle<M: Handler>(broker: &Arc<Broker>, caller: &Caller, params: M::Params) -> Result<M::Output> {
    if let Err(e) = admit(caller) {
        tracing::warn!(peer_uid = caller.uid, peer_pid = ?caller.pid, door = ?caller.door, method = M::NAME, "refused a call from another user");
        return Err(e);
    }
    M::run(broker, params).await
}

/// A method's handler: what the core does for it, and the typed result it gives the door.
pub trait Handler: Method {
    /// The contract's result, or what a door encodes it from ([`Grant`] shares the token).
    type Output: Send;
    fn run(broker: &Arc<Broker>, params: Self::Params) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// `Method -> Output: |broker, params| body;`, one handler a line.
macro_rules! handlers {
    ($($name:ident -> $output:ty: |$broker:ident, $params:pat_param| $body:expr;)*) => {
        $(
            impl Handler for method::$name {
                type Output = $output;
                async fn run($broker: &Arc<Broker>, $params: Self::Params) -> Result<$output> {
                    $body
                }
            }
        )*
    };
}

handlers! {
    GetAccessToken -> Grant: |broker, p| tokens::access_token(broker, p).await;
    GetIdToken -> wire::IdToken: |broker, p| tokens::id_token(broker, p).await;
    GetProfile -> wire::Profile: |broker, p| profile::profile(broker, p).await;
    GetMetadata -> wire::Metadata: |broker, p| metadata::metadata(broker, p).await;
    UpdateMetadata -> wire::Metadata: |broker, p| metadata::update_metadata(broker, p).await;
    Login -> wire::LoginChallenge: |broker, p| login::login(broker, p).await;
    AwaitLogin -> wire::LoginDone: |broker, p| login::await_login(broker, &p.login_id).await;
    CancelLogin -> wire::LoginCancelled: |broker, p| Ok(login::cancel_login(broker, &p.login_id));
    Logout -> wire::LogoutDone: |broker, p| logout::logout(broker, p).await;
    Status -> wire::Status: |broker, _| Ok(broker.status());
    Diagnose -> wire::Diagnosis: |broker, _| Ok(doctor::diagnose(broker).await);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_daemons_own_user_is_admitted_at_any_door() {
        for door in [Door::Socket, Door::Dbus] {
            assert!(admit(&Caller::new(me(), None, door)).is_ok());
            let other = Caller::new(me().wrapping_add(1), Some(1), door);
            assert_eq!(admit(&other).unwrap_err().kind, ErrorKind::AccessDenied);
        }
    }
}
