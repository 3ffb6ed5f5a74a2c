//! Token lifetimes in seconds, as the broker believes an IdP's `expires_in` and as callers ask
//! for them with `min_ttl`: one bound for both, checked where a request is decoded (the socket's
//! JSON and the D-Bus options alike).

/// The longest token lifetime the broker believes, a year: a larger `expires_in` from an IdP
/// is cut to it, and a larger `min_ttl` could never be served, so it is refused.
pub const MAX_TTL_SECS: u64 = 365 * 24 * 3600;

/// A caller's `min_ttl`, or why it is out of range.
pub fn check_min_ttl(secs: u64) -> Result<u64, String> {
    if secs > MAX_TTL_SECS {
        return Err(format!(
            "min_ttl {secs}s is more than a year ({MAX_TTL_SECS}s), longer than any token the broker keeps"
        ));
    }
    Ok(secs)
}

/// serde's side of [`check_min_ttl`], for the `min_ttl` fields of requests.
pub(crate) fn min_ttl<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let secs: Option<u64> = serde::Deserialize::deserialize(d)?;
    secs.map(check_min_ttl).transpose().map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use crate::Call;

    #[test]
    fn a_min_ttl_beyond_a_year_is_refused_when_decoded() {
        let decode = |method, v: serde_json::Value| {
            Call::decode(method, Some(&serde_json::value::to_raw_value(&v).unwrap())).map(|c| c.method())
        };
        for method in ["GetAccessToken", "GetIdToken"] {
            assert!(decode(method, serde_json::json!({"min_ttl": super::MAX_TTL_SECS})).is_ok());
            for huge in [super::MAX_TTL_SECS + 1, 1 << 63, u64::MAX] {
                let err = decode(method, serde_json::json!({"min_ttl": huge})).unwrap_err().unwrap();
                assert!(err.contains("more than a year"), "{method} {huge}: {err}");
            }
        }
    }
}
