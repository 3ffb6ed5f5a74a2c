//! The socket (default) or the session bus, behind one set of calls. The socket path needs no
//! async runtime; the bus is reached through the opener the binary passes to [`crate::main`],
//! which only brokerctl-dbus implements for real (brokerctl hands `--dbus` over to it), so
//! brokerctl links no D-Bus stack and starts like the small program it is.

use std::sync::OnceLock;

use tokenbroker::protocol::*;
use tokenbroker::{Result, blocking};

/// Feeds the list of calls both transports answer alike to `$then`, so the list is written
/// once (the bus trait, its implementation in brokerctl-dbus, the delegation below).
#[macro_export]
macro_rules! with_calls {
    ($then:ident) => {
        $then! {
            get_access_token(p: GetAccessToken) -> AccessToken;
            get_id_token(p: GetIdToken) -> IdToken;
            get_profile(p: GetProfile) -> Profile;
            get_metadata(p: AccountOnly) -> Metadata;
            update_metadata(p: UpdateMetadata) -> Metadata;
            login(p: Login) -> LoginChallenge;
            await_login(login_id: &str) -> LoginDone;
            cancel_login(login_id: &str) -> LoginCancelled;
            status() -> Status;
        }
    };
}

macro_rules! declare {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        /// The contract's calls over the session bus.
        pub trait Bus {
            $(fn $name(&self, $($arg: $ty),*) -> Result<$out>;)*
            fn logout(&self, p: AccountOnly) -> Result<()>;
        }
    };
}
with_calls!(declare);

/// How this binary reaches the session bus.
pub type OpenBus = fn() -> Result<Box<dyn Bus>>;

static BUS: OnceLock<OpenBus> = OnceLock::new();

pub(crate) fn set_bus(open: OpenBus) {
    let _ = BUS.set(open);
}

pub enum Transport {
    Socket(blocking::Client),
    Bus(Box<dyn Bus>),
}

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        $(pub fn $name(&self, $($arg: $ty),*) -> Result<$out> {
            match self {
                Transport::Socket(c) => c.$name($($arg),*),
                Transport::Bus(b) => b.$name($($arg),*),
            }
        })*
    };
}

impl Transport {
    pub fn connect(dbus: bool) -> Result<Transport> {
        if !dbus {
            return Ok(Transport::Socket(blocking::Client::connect()?));
        }
        let open = BUS.get().expect("the binary sets how to open the bus before anything runs");
        open().map(Transport::Bus)
    }

    with_calls!(delegate);

    /// `Some(revoked)` over the socket; D-Bus's `Logout` does not say.
    pub fn logout(&self, p: AccountOnly) -> Result<Option<LogoutDone>> {
        match self {
            Transport::Socket(c) => c.logout(p).map(Some),
            Transport::Bus(b) => b.logout(p).map(|()| None),
        }
    }
}
