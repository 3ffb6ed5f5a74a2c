//! D-Bus errors: the core's error under the contract's name for its kind, from the one
//! mapping in the protocol crate (`ErrorKind::dbus_name`).

use zbus::fdo;
use zbus::message::Header;

use crate::broker;

/// A failed call: the core's error under the contract's name for its kind
/// (`io.github.tokenbroker.Error.NotLoggedIn`, …), or the bus's own.
#[derive(Debug)]
pub enum DbusError {
    Broker(broker::Error),
    Bus(zbus::Error),
}

impl From<broker::Error> for DbusError {
    fn from(e: broker::Error) -> Self {
        DbusError::Broker(e)
    }
}

impl From<zbus::Error> for DbusError {
    fn from(e: zbus::Error) -> Self {
        DbusError::Bus(e)
    }
}

impl From<fdo::Error> for DbusError {
    fn from(e: fdo::Error) -> Self {
        DbusError::Bus(e.into())
    }
}

impl zbus::DBusError for DbusError {
    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<zbus::message::Message> {
        zbus::message::Message::error(call, self.name())?.build(&(self.description().unwrap_or_default(),))
    }

    fn name(&self) -> zbus::names::ErrorName<'_> {
        match self {
            DbusError::Broker(e) => zbus::names::ErrorName::try_from(e.kind.dbus_name())
                .expect("the contract's error names are valid D-Bus names"),
            DbusError::Bus(zbus::Error::MethodError(name, _, _)) => name.inner().clone(),
            DbusError::Bus(_) => zbus::names::ErrorName::from_static_str_unchecked("org.freedesktop.zbus.Error"),
        }
    }

    fn description(&self) -> Option<&str> {
        match self {
            DbusError::Broker(e) => Some(&e.message),
            DbusError::Bus(zbus::Error::MethodError(_, message, _)) => message.as_deref(),
            DbusError::Bus(_) => None,
        }
    }
}

impl std::fmt::Display for DbusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use zbus::DBusError as _;
        write!(f, "{}: {}", self.name(), self.description().unwrap_or_default())
    }
}

pub type Reply<T> = Result<T, DbusError>;

pub fn invalid(message: impl Into<String>) -> DbusError {
    broker::Error::invalid_params(message).into()
}

pub fn internal(e: impl std::fmt::Display) -> DbusError {
    broker::Error::internal(e.to_string()).into()
}
