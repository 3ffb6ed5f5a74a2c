//! Forwards (an extension): restricted doors the daemon serves beside its socket, for an SSH
//! session or a container, each limited to some accounts and audiences until it ends.

use serde::{Deserialize, Serialize};

/// `AddForward`: open (or replace) the forward `name`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddForward {
    /// The forward's name: its socket is `forward/NAME.sock`, its callers' door `forward:NAME`.
    pub name: String,
    /// The accounts served on it; none: the daemon's default account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<String>,
    /// The audiences it may ask tokens for; none: only each account's own token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Seconds it lives; none: the daemon's default (8 hours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

/// `RemoveForward`: the forward to end.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardName {
    pub name: String,
}

impl From<&str> for ForwardName {
    fn from(name: &str) -> ForwardName {
        ForwardName { name: name.into() }
    }
}

/// One forward as the daemon serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    pub name: String,
    pub accounts: Vec<String>,
    /// Empty: only each account's own token.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Unix seconds when it ends.
    pub expires_at: i64,
    /// The socket's path, when the daemon serves it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
}

/// `ListForwards`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forwards {
    pub forwards: Vec<Forward>,
}

/// `RemoveForward`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardRemoved {
    pub name: String,
    /// False when there was no such forward.
    pub removed: bool,
}
