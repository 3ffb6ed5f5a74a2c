//! Asking the person: the questions waiting for an answer and the remembered "always".

use serde::{Deserialize, Serialize};

/// A question waiting for the person: one per program, account and audience, however many of
/// that program's requests wait on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentQuestion {
    pub id: String,
    /// The program as the person knows it: its app ID, else its executable, else `pid N`.
    pub program: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    pub pids: Vec<i32>,
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// What the waiting requests ask for (`GetAccessToken`, …).
    pub methods: Vec<String>,
    /// How many requests wait on it.
    pub waiting: u32,
    /// Unix seconds when it ends unanswered (the requests are then refused).
    pub expires_at: i64,
}

/// An "Always allow" the person gave, until revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RememberedConsent {
    pub id: String,
    pub program: String,
    pub account: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Unix seconds when it was given.
    pub since: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consents {
    pub pending: Vec<ConsentQuestion>,
    pub remembered: Vec<RememberedConsent>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerConsent {
    pub id: String,
    pub allow: bool,
    /// With `allow`: remember it for this program, account and audience.
    #[serde(default)]
    pub always: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsentAnswered {
    pub id: String,
    /// False when no such question waits (answered already, or ended unanswered).
    pub answered: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentId {
    pub id: String,
}

impl From<&str> for ConsentId {
    fn from(id: &str) -> ConsentId {
        ConsentId { id: id.into() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsentRevoked {
    pub id: String,
    /// False when nothing was remembered under that ID.
    pub revoked: bool,
}
