//! One request line, decoded as the daemon's socket door decodes it: the one place that
//! decides what a line asks for, or why it is refused before anything runs. Fuzzed
//! (`fuzz/`) and property-tested (`daemon/tests/it/input.rs`).

use crate::{Call, ErrorKind, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, RawRequest};

/// What a line asks for.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// A blank line: nothing to do, nothing to answer.
    Blank,
    /// A call to run. `id` is the request's id as raw JSON; `None` for a notification, which
    /// JSON-RPC says must not be answered.
    Call { id: Option<&'a str>, call: Call },
    /// Refused before it ran: answer with this error, under `id` (raw JSON, `null` when the
    /// line had none usable), unless `answer` is false (a notification).
    Refused { id: &'a str, error: Refusal, answer: bool },
}

/// Why a line was refused: a JSON-RPC protocol error, or one of the contract's kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Protocol { code: i64, message: String },
    Kind { kind: ErrorKind, message: String },
}

/// The id of an answer to a line whose own id is missing or unusable.
pub const NULL_ID: &str = "null";

impl Refusal {
    fn protocol(code: i64, message: impl Into<String>) -> Self {
        Refusal::Protocol { code, message: message.into() }
    }
}

/// Decode one line (without its newline).
pub fn decode_line(line: &[u8]) -> Decoded<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return Decoded::Blank;
    }
    let refused = |id, error| Decoded::Refused { id, error, answer: true };
    let req: RawRequest = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return refused(NULL_ID, Refusal::protocol(PARSE_ERROR, "parse error: the line is not valid JSON"));
        }
        Err(_) if line.trim_ascii_start().starts_with(b"[") => {
            return refused(
                NULL_ID,
                Refusal::protocol(INVALID_REQUEST, "a request must be one JSON object (batches are not supported)"),
            );
        }
        Err(_) => {
            return refused(
                NULL_ID,
                Refusal::protocol(INVALID_REQUEST, "a request must be one JSON-RPC 2.0 request object"),
            );
        }
    };
    let id = match req.id.map(|raw| raw.get()) {
        None => None,
        Some(id) if id.starts_with(['"', '-', 'n']) || id.starts_with(|c: char| c.is_ascii_digit()) => Some(id),
        Some(_) => return refused(NULL_ID, Refusal::protocol(INVALID_REQUEST, "id must be a number, string or null")),
    };
    let answer_id = id.unwrap_or(NULL_ID);
    if req.jsonrpc.as_deref() != Some("2.0") {
        return refused(answer_id, Refusal::protocol(INVALID_REQUEST, "jsonrpc must be \"2.0\""));
    }
    let Some(method) = req.method else {
        return refused(answer_id, Refusal::protocol(INVALID_REQUEST, "method is missing"));
    };
    let error = match Call::decode(&method, req.params) {
        Ok(call) => return Decoded::Call { id, call },
        Err(None) => {
            Refusal::protocol(METHOD_NOT_FOUND, format!("no method {method:?}; methods: {}", Call::METHODS.join(", ")))
        }
        Err(Some(why)) => {
            Refusal::Kind { kind: ErrorKind::InvalidParams, message: format!("invalid params for {method}: {why}") }
        }
    };
    Decoded::Refused { id: answer_id, error, answer: id.is_some() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_decode_to_calls_or_reasons() {
        assert!(matches!(decode_line(b"  \r"), Decoded::Blank));
        let ok = decode_line(br#"{"jsonrpc":"2.0","id":7,"method":"Status"}"#);
        assert!(matches!(ok, Decoded::Call { id: Some("7"), call: Call::Status(_) }), "{ok:?}");
        let note = decode_line(br#"{"jsonrpc":"2.0","method":"Status"}"#);
        assert!(matches!(note, Decoded::Call { id: None, .. }), "{note:?}");
        let bad = decode_line(br#"{"jsonrpc":"2.0","id":"x","method":"Nope"}"#);
        assert!(
            matches!(
                bad,
                Decoded::Refused { id: "\"x\"", error: Refusal::Protocol { code: METHOD_NOT_FOUND, .. }, answer: true }
            ),
            "{bad:?}"
        );
        let silent = decode_line(br#"{"jsonrpc":"2.0","method":"GetAccessToken","params":{"min_ttl":"x"}}"#);
        assert!(matches!(silent, Decoded::Refused { answer: false, error: Refusal::Kind { .. }, .. }), "{silent:?}");
        assert!(matches!(decode_line(b"{\"jsonrpc\""), Decoded::Refused { id: "null", answer: true, .. }));
        assert!(matches!(decode_line(b"[1]"), Decoded::Refused { answer: true, .. }));
    }
}
