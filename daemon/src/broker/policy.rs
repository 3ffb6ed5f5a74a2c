//! Which callers may have what: the config's `[policy]`, decided once per request on the one
//! request path (see `request::handle`).

use std::fmt;

/// What decided a request, for the refusal's message and the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// `[policy] default`.
    Default,
    /// `[[policy.rule]]` number N, counted from 1 in the config's order.
    Rule(usize),
    /// The person, asked.
    Consent(Answer),
}

/// How the person answered (or did not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Once,
    Always,
    Denied,
    Unanswered,
}

impl fmt::Display for By {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            By::Default => f.write_str("default"),
            By::Rule(n) => write!(f, "rule {n}"),
            By::Consent(Answer::Once) => f.write_str("consent (once)"),
            By::Consent(Answer::Always) => f.write_str("consent (always)"),
            By::Consent(Answer::Denied) => f.write_str("consent (denied)"),
            By::Consent(Answer::Unanswered) => f.write_str("consent (no answer)"),
        }
    }
}
