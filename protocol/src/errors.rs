//! The contract's error kinds and what each is called on each door: a JSON-RPC code, a D-Bus
//! error name.

use serde::{Deserialize, Serialize};

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;

/// The contract's stable error kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    UnknownAccount,
    NotLoggedIn,
    LoginRequired,
    IdpUnavailable,
    InvalidParams,
    AccessDenied,
    LoginExpired,
    NotSupported,
    Internal,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::UnknownAccount,
        ErrorKind::NotLoggedIn,
        ErrorKind::LoginRequired,
        ErrorKind::IdpUnavailable,
        ErrorKind::InvalidParams,
        ErrorKind::AccessDenied,
        ErrorKind::LoginExpired,
        ErrorKind::NotSupported,
        ErrorKind::Internal,
    ];

    /// The JSON-RPC code: `invalid_params` shares the standard -32602, the rest sit in the
    /// server-error range.
    pub fn code(self) -> i64 {
        match self {
            ErrorKind::InvalidParams => INVALID_PARAMS,
            ErrorKind::UnknownAccount => -32001,
            ErrorKind::NotLoggedIn => -32002,
            ErrorKind::LoginRequired => -32003,
            ErrorKind::IdpUnavailable => -32004,
            ErrorKind::AccessDenied => -32005,
            ErrorKind::LoginExpired => -32006,
            ErrorKind::NotSupported => -32007,
            ErrorKind::Internal => -32000,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::UnknownAccount => "unknown_account",
            ErrorKind::NotLoggedIn => "not_logged_in",
            ErrorKind::LoginRequired => "login_required",
            ErrorKind::IdpUnavailable => "idp_unavailable",
            ErrorKind::InvalidParams => "invalid_params",
            ErrorKind::AccessDenied => "access_denied",
            ErrorKind::LoginExpired => "login_expired",
            ErrorKind::NotSupported => "not_supported",
            ErrorKind::Internal => "internal",
        }
    }
}

/// The D-Bus names of the contract.
pub const DBUS_NAME: &str = "io.github.tokenbroker.Broker1";
pub const DBUS_PATH: &str = "/io/github/tokenbroker/Broker1";
pub const DBUS_INTERFACE: &str = "io.github.tokenbroker.Broker1";
pub const DBUS_ERROR_PREFIX: &str = "io.github.tokenbroker.Error";

impl ErrorKind {
    /// The D-Bus error name, `io.github.tokenbroker.Error.NotLoggedIn` and so on.
    pub fn dbus_name(self) -> String {
        let camel: String = self
            .as_str()
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
            })
            .collect();
        format!("{DBUS_ERROR_PREFIX}.{camel}")
    }

    pub fn from_dbus_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.dbus_name() == name)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn dbus_error_names_are_camel_case_and_round_trip() {
        assert_eq!(ErrorKind::NotLoggedIn.dbus_name(), "io.github.tokenbroker.Error.NotLoggedIn");
        assert_eq!(ErrorKind::IdpUnavailable.dbus_name(), "io.github.tokenbroker.Error.IdpUnavailable");
        for k in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_dbus_name(&k.dbus_name()), Some(k));
        }
    }

    #[test]
    fn error_kinds_have_distinct_codes_and_snake_case_names() {
        let mut codes: Vec<_> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        for k in ErrorKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), Value::String(k.as_str().into()));
        }
    }
}
