//! The daemon's request decoder on arbitrary bytes, line by line: it never panics, and what
//! it hands on is safe to answer with. The id is spliced raw into the answer line, so it must
//! be one JSON value of an allowed type; every refusal has a JSON-RPC code and a message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tokenbroker_protocol::request::{Decoded, Refusal, decode_line};

fn check_id(id: &str) {
    let value: Value = serde_json::from_str(id).expect("the id is one JSON value");
    assert!(value.is_string() || value.is_number() || value.is_null(), "id {id}");
    assert!(!id.contains('\n'), "an id cannot break the answer line");
}

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        match decode_line(line) {
            Decoded::Blank => assert!(line.iter().all(u8::is_ascii_whitespace)),
            Decoded::Call { id, .. } => {
                if let Some(id) = id {
                    check_id(id);
                }
            }
            Decoded::Refused { id, error, .. } => {
                check_id(id);
                match error {
                    Refusal::Protocol { code, message } => assert!(code < 0 && !message.is_empty()),
                    Refusal::Kind { message, .. } => assert!(!message.is_empty()),
                }
            }
        }
    }
});
