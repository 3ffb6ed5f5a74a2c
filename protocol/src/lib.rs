//! The wire protocol of tokenbroker: newline-delimited JSON-RPC 2.0 over a Unix socket.
//!
//! These types are shared by the daemon (which decodes requests and encodes results) and the
//! clients (which do the opposite), so the two can never disagree about a field name. Only
//! types, the token type [`Secret`] and the request decoder live here: no runtime, no HTTP, no
//! D-Bus, so that every side can depend on it and the decoder can be fuzzed alone.

pub mod request;
mod secret;
pub mod ttl;

pub use secret::Secret;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The longest line either side accepts, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;

/// A request line as it arrives, before its method is known. Borrowed and raw: the daemon
/// decodes `params` straight into the method's own type, with no JSON tree in between.
#[derive(Debug, Deserialize)]
pub struct RawRequest<'a> {
    #[serde(default, borrow)]
    pub jsonrpc: Option<Cow<'a, str>>,
    /// `None` when absent (a notification); `Some("null")` when null.
    #[serde(default, borrow, deserialize_with = "present")]
    pub id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub method: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "present")]
    pub params: Option<&'a RawValue>,
}

/// A field that is there, even as `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Serialized requests, borrowed, so the client builds them without copying params.
#[derive(Serialize)]
pub struct RequestRef<'a, P: Serialize> {
    pub jsonrpc: &'static str,
    pub id: u64,
    pub method: &'a str,
    pub params: &'a P,
}

/// A response line. Exactly one of `result` and `error` is present.
#[derive(Debug, Serialize, Deserialize)]
pub struct Response<R> {
    pub jsonrpc: String,
    pub id: Value,
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    pub result: Option<R>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

/// A JSON-RPC error object; broker errors carry their stable kind in `data.kind`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ErrorData>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorData {
    pub kind: ErrorKind,
}

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

/// Every method the broker serves, with its params; the one place method names are spelled.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", content = "params")]
pub enum Call {
    GetAccessToken(GetAccessToken),
    GetIdToken(GetIdToken),
    GetProfile(GetProfile),
    GetMetadata(AccountOnly),
    UpdateMetadata(UpdateMetadata),
    Login(Login),
    AwaitLogin(AwaitLogin),
    /// End a pending login (its `AwaitLogin` fails); whether there was one to end.
    CancelLogin(AwaitLogin),
    Logout(AccountOnly),
    Status(Empty),
    /// An extension: the daemon's own health checks, for `brokerctl doctor`.
    Diagnose(Empty),
}

impl Call {
    pub const METHODS: [&'static str; 11] = [
        "GetAccessToken",
        "GetIdToken",
        "GetProfile",
        "GetMetadata",
        "UpdateMetadata",
        "Login",
        "AwaitLogin",
        "CancelLogin",
        "Logout",
        "Status",
        "Diagnose",
    ];

    /// Decode `params` for `method`. `Err(None)` means the method is unknown; `Err(Some(msg))`
    /// that the params do not fit it.
    pub fn decode(method: &str, params: Option<&RawValue>) -> Result<Call, Option<String>> {
        let text = params.map(RawValue::get).map(str::trim).filter(|p| *p != "null").unwrap_or("{}");
        if !text.starts_with('{') {
            return Err(Some("params must be an object".into()));
        }
        fn parse<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, Option<String>> {
            serde_json::from_str(text).map_err(|e| Some(e.to_string()))
        }
        Ok(match method {
            "GetAccessToken" => Call::GetAccessToken(parse(text)?),
            "GetIdToken" => Call::GetIdToken(parse(text)?),
            "GetProfile" => Call::GetProfile(parse(text)?),
            "GetMetadata" => Call::GetMetadata(parse(text)?),
            "UpdateMetadata" => Call::UpdateMetadata(parse(text)?),
            "Login" => Call::Login(parse(text)?),
            "AwaitLogin" => Call::AwaitLogin(parse(text)?),
            "CancelLogin" => Call::CancelLogin(parse(text)?),
            "Logout" => Call::Logout(parse(text)?),
            "Status" => Call::Status(parse(text)?),
            "Diagnose" => Call::Diagnose(parse(text)?),
            _ => return Err(None),
        })
    }

    pub fn method(&self) -> &'static str {
        match self {
            Call::GetAccessToken(_) => "GetAccessToken",
            Call::GetIdToken(_) => "GetIdToken",
            Call::GetProfile(_) => "GetProfile",
            Call::GetMetadata(_) => "GetMetadata",
            Call::UpdateMetadata(_) => "UpdateMetadata",
            Call::Login(_) => "Login",
            Call::AwaitLogin(_) => "AwaitLogin",
            Call::CancelLogin(_) => "CancelLogin",
            Call::Logout(_) => "Logout",
            Call::Status(_) => "Status",
            Call::Diagnose(_) => "Diagnose",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountOnly {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetAccessToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, deserialize_with = "crate::ttl::min_ttl", skip_serializing_if = "Option::is_none")]
    pub min_ttl: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessToken {
    pub account: String,
    pub access_token: Secret,
    pub token_type: String,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetIdToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, deserialize_with = "crate::ttl::min_ttl", skip_serializing_if = "Option::is_none")]
    pub min_ttl: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdToken {
    pub account: String,
    pub id_token: Secret,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refresh: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub account: String,
    pub claims: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub user_metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metadata {
    pub account: String,
    pub user_metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    Device,
    Code,
}

impl std::fmt::Display for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flow::Device => "device",
            Flow::Code => "code",
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
}

/// What the user must do to approve a login. The user code is meant to be shown, not hidden.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginChallenge {
    pub login_id: String,
    pub flow: Flow,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwaitLogin {
    pub login_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginDone {
    pub account: String,
    pub status: String,
    /// Who is now logged in: the `sub`, `email` and `name` of the login's verified ID token
    /// (of userinfo when the IdP issued no ID token), where known, without control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginCancelled {
    /// False when there was no pending login with that id (unknown, or already over).
    pub cancelled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutDone {
    pub account: String,
    pub revoked: bool,
    /// The IdP's RP-initiated logout page, to end the browser's session there too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    LoggedOut,
    Valid,
    Expired,
    Refreshing,
    LoginRequired,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::LoggedOut => "logged_out",
            AccountState::Valid => "valid",
            AccountState::Expired => "expired",
            AccountState::Refreshing => "refreshing",
            AccountState::LoginRequired => "login_required",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountStatus {
    pub name: String,
    pub issuer: String,
    pub state: AccountState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub scopes: Vec<String>,
    /// Whether this is the account used when a request names none (an extension).
    #[serde(default)]
    pub default: bool,
    /// With a session: whether the store holds it. `false` means the store refused the write
    /// (a locked keyring): the session lives in memory only until a retried write lands, and
    /// is lost if the daemon stops (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persisted: Option<bool>,
}

/// One health check of `Diagnose`: what was checked, whether it is fine, and if not, what
/// to do about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Diagnosis {
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub accounts: Vec<AccountStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_fills_missing_params_and_rejects_unknown_fields() {
        let raw = |v: Value| serde_json::value::to_raw_value(&v).unwrap();
        let call = Call::decode("Status", None).unwrap();
        assert_eq!(call.method(), "Status");
        assert_eq!(Call::decode("Status", Some(&raw(Value::Null))).unwrap().method(), "Status");
        let call = Call::decode("GetAccessToken", Some(&raw(serde_json::json!({"min_ttl": 30}))));
        match call.unwrap() {
            Call::GetAccessToken(p) => assert_eq!(p.min_ttl, Some(30)),
            other => panic!("decoded {other:?}"),
        }
        assert!(matches!(Call::decode("Nope", None), Err(None)));
        let bad = Call::decode("GetAccessToken", Some(&raw(serde_json::json!({"min_tl": 30}))));
        assert!(bad.unwrap_err().unwrap().contains("min_tl"));
        assert!(matches!(Call::decode("Status", Some(&raw(serde_json::json!([1])))), Err(Some(_))));
    }

    #[test]
    fn every_method_round_trips_through_its_name() {
        for m in Call::METHODS {
            let params = match m {
                "AwaitLogin" | "CancelLogin" => Some(serde_json::json!({"login_id": "x"})),
                "UpdateMetadata" => Some(serde_json::json!({"user_metadata": {}})),
                _ => None,
            };
            let params = params.map(|p| serde_json::value::to_raw_value(&p).unwrap());
            assert_eq!(Call::decode(m, params.as_deref()).unwrap().method(), m);
        }
    }

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
