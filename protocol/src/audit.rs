//! One line of `audit.jsonl`: who asked for what, and what the policy decided. Never a token.

use serde::{Deserialize, Serialize};

/// A grant or a refusal, as the daemon writes it and `brokerctl audit` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339, UTC, milliseconds: `2026-12-02T15:40:00.123Z`.
    pub time: String,
    pub uid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// `socket`, `dbus` or `forward:NAME`.
    pub door: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    pub decision: AuditDecision,
    /// What decided: `rule 2`, `default`, `consent (always)`, `consent (once)`, `consent
    /// (denied)`, `consent (no answer)`.
    pub rule: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditDecision {
    Allow,
    Deny,
}
