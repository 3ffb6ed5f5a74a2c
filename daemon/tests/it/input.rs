//! Garbage on the socket, generated: random bytes, truncated requests and JSON of the wrong
//! shape. Every line that calls for an answer gets exactly one well-formed JSON-RPC answer, the
//! connection it came on keeps working, and other connections never notice.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use tokenbroker_testkit::*;

const SENTINEL: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":\"sentinel\",\"method\":\"Status\"}\n";

/// Well-formed requests, whose every strict prefix is garbage.
const REQUESTS: &[&str] = &[
    r#"{"jsonrpc":"2.0","id":1,"method":"GetAccessToken","params":{"account":"work","min_ttl":60}}"#,
    r#"{"jsonrpc":"2.0","id":"a-string-id","method":"Status"}"#,
    r#"{"jsonrpc":"2.0","id":-7,"method":"Login","params":{"flow":"device"}}"#,
    r#"{"jsonrpc":"2.0","id":2,"method":"GetProfile","params":{"refresh":true}}"#,
];

/// Whether the daemon must stay silent: a blank line, or a notification (JSON-RPC 2.0: a
/// request without an id gets no answer, even when it fails).
fn silent(line: &[u8]) -> bool {
    if line.iter().all(u8::is_ascii_whitespace) {
        return true;
    }
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(line) else { return false };
    o.get("jsonrpc") == Some(&Value::from("2.0"))
        && o.get("method").is_some_and(Value::is_string)
        && !o.contains_key("id")
}

fn well_formed(answer: &Value) -> Result<(), String> {
    let o = answer.as_object().ok_or("not an object")?;
    if o.get("jsonrpc") != Some(&Value::from("2.0")) || !o.contains_key("id") {
        return Err("no jsonrpc 2.0 envelope".into());
    }
    match (o.get("result"), o.get("error")) {
        (Some(_), None) => Ok(()),
        (None, Some(e)) if e["code"].is_i64() && e["message"].is_string() => Ok(()),
        _ => Err("neither one result nor one error with code and message".into()),
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        prop_oneof![Just("2.0".to_owned()), Just("Status".to_owned()), Just("GetAccessToken".to_owned()), ".{0,12}"]
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("jsonrpc".to_owned()),
                    Just("id".to_owned()),
                    Just("method".to_owned()),
                    Just("params".to_owned()),
                    Just("account".to_owned()),
                    Just("min_ttl".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..5,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One line of input, without its newline.
fn garbage() -> impl Strategy<Value = Vec<u8>> {
    let no_newline = any::<u8>().prop_map(|b| if b == b'\n' { b' ' } else { b });
    prop_oneof![
        prop::collection::vec(no_newline, 0..300),
        (0..REQUESTS.len(), any::<prop::sample::Index>()).prop_map(|(i, cut)| {
            let r = REQUESTS[i].as_bytes();
            r[..cut.index(r.len())].to_vec()
        }),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        // Envelopes that are nearly right: a real or made-up method, odd params, and an id
        // that may be missing (a notification), null, or of a wrong type.
        (
            prop_oneof![Just("Status"), Just("GetAccessToken"), Just("Logout"), Just("NoSuchMethod"), Just("")],
            proptest::option::of(json_value()),
            proptest::option::of(prop_oneof![
                any::<i64>().prop_map(Value::from),
                ".{0,6}".prop_map(Value::from),
                Just(Value::Null),
                json_value()
            ]),
        )
            .prop_map(|(method, params, id)| {
                let mut o = serde_json::Map::new();
                o.insert("jsonrpc".into(), "2.0".into());
                o.insert("method".into(), method.into());
                if let Some(p) = params {
                    o.insert("params".into(), p);
                }
                if let Some(id) = id {
                    o.insert("id".into(), id);
                }
                serde_json::to_vec(&Value::Object(o)).unwrap()
            }),
    ]
}

#[test]
fn random_and_truncated_lines_get_errors_and_harm_no_one() {
    let daemon = Daemon::start_without_bus(SOCKET_ONLY);
    let mut bystander = RawConn::open(&daemon.socket());
    let before = bystander.status();
    assert!(well_formed(&before).is_ok() && before["result"].is_object(), "{before}");
    // The runner wants a shareable closure; one case runs at a time.
    let conn = std::cell::RefCell::new(RawConn::open(&daemon.socket()));

    let mut runner = TestRunner::new(Config { cases: 600, failure_persistence: None, ..Config::default() });
    let result = runner.run(&garbage(), |line| {
        let mut conn = conn.borrow_mut();
        conn.send(&line);
        conn.send(b"\n");
        conn.send(SENTINEL);
        let mut answers = Vec::new();
        loop {
            let a = conn.answer();
            if a["id"] == "sentinel" {
                break;
            }
            answers.push(a);
        }
        let expected = if silent(&line) { 0 } else { 1 };
        prop_assert_eq!(answers.len(), expected, "answers to {:?}: {:?}", String::from_utf8_lossy(&line), answers);
        for a in &answers {
            prop_assert!(well_formed(a).is_ok(), "{:?} for {:?}", well_formed(a), String::from_utf8_lossy(&line));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The other connection, open all along, and a new one are served as before.
    assert_eq!(bystander.status(), before);
    assert_eq!(RawConn::open(&daemon.socket()).status(), before);
}
