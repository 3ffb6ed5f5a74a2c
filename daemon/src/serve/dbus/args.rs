//! D-Bus arguments into the contract's params, and results into D-Bus values.

use std::collections::HashMap;

use zbus::zvariant::{OwnedValue, Value};

use super::error::{Reply, internal, invalid};

/// `""` is the default account.
pub fn account(name: &str) -> Option<String> {
    (!name.is_empty()).then(|| name.to_owned())
}

/// `min_ttl` as any integer type, `scope` and `audience` as strings; anything else is refused.
pub fn options(
    options: &HashMap<String, OwnedValue>,
    allowed: &[&str],
) -> Reply<(Option<u64>, Option<String>, Option<String>)> {
    let (mut min_ttl, mut scope, mut audience) = (None, None, None);
    for (key, value) in options {
        if !allowed.contains(&key.as_str()) {
            return Err(invalid(format!("unknown option {key:?}; known: {}", allowed.join(", "))));
        }
        let bad = || invalid(format!("option {key:?} has the wrong type"));
        match key.as_str() {
            "min_ttl" => {
                let n: i128 = match &**value {
                    Value::U8(n) => (*n).into(),
                    Value::U16(n) => (*n).into(),
                    Value::U32(n) => (*n).into(),
                    Value::U64(n) => (*n).into(),
                    Value::I16(n) => (*n).into(),
                    Value::I32(n) => (*n).into(),
                    Value::I64(n) => (*n).into(),
                    _ => return Err(bad()),
                };
                let n = u64::try_from(n).map_err(|_| bad())?;
                min_ttl = Some(tokenbroker::ttl::check_min_ttl(n).map_err(invalid)?);
            }
            "scope" | "audience" => {
                let Value::Str(s) = &**value else { return Err(bad()) };
                let slot = if key == "scope" { &mut scope } else { &mut audience };
                *slot = Some(s.to_string());
            }
            _ => unreachable!("filtered above"),
        }
    }
    Ok((min_ttl, scope, audience))
}

pub fn to_json<T: serde::Serialize>(v: &T) -> Reply<String> {
    serde_json::to_string(v).map_err(internal)
}
