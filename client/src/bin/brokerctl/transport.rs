//! The socket (default) or the session bus, behind one set of calls. The socket path needs no
//! async runtime; one is built only for D-Bus.

use tokenbroker::protocol::*;
use tokenbroker::{Result, blocking};

pub enum Transport {
    Socket(blocking::Client),
    Dbus(tokio::runtime::Runtime, tokenbroker::dbus::Client),
}

macro_rules! delegate {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        $(pub fn $name(&self, $($arg: $ty),*) -> Result<$out> {
            match self {
                Transport::Socket(c) => c.$name($($arg),*),
                Transport::Dbus(rt, c) => rt.block_on(c.$name($($arg),*)),
            }
        })*
    };
}

impl Transport {
    pub fn connect(dbus: bool) -> Result<Transport> {
        if !dbus {
            return Ok(Transport::Socket(blocking::Client::connect()?));
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client = rt.block_on(tokenbroker::dbus::Client::connect())?;
        Ok(Transport::Dbus(rt, client))
    }

    delegate! {
        get_access_token(p: GetAccessToken) -> AccessToken;
        get_id_token(p: GetIdToken) -> IdToken;
        get_profile(p: GetProfile) -> Profile;
        get_metadata(p: AccountOnly) -> Metadata;
        update_metadata(p: UpdateMetadata) -> Metadata;
        login(p: Login) -> LoginChallenge;
        await_login(login_id: &str) -> LoginDone;
        status() -> Status;
    }

    /// `Some(revoked)` over the socket; D-Bus's `Logout` does not say.
    pub fn logout(&self, p: AccountOnly) -> Result<Option<LogoutDone>> {
        match self {
            Transport::Socket(c) => c.logout(p).map(Some),
            Transport::Dbus(rt, c) => rt.block_on(c.logout(p)).map(|()| None),
        }
    }
}
