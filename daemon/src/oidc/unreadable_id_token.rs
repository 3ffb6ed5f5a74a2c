//! A token response whose ID token cannot even be parsed (an `alg` openidconnect does not
//! know, a JWE, bad base64, a required claim missing). openidconnect parses the ID token
//! while it parses the response, so such a response fails whole, and a refresh would lose
//! the refresh token the IdP has just rotated. Read again with the ID token left as text, the
//! rest of the response is kept and the ID token refused, as one that fails verification is.

use std::str::FromStr;

use openidconnect::core::{CoreIdToken, CoreTokenType};
use openidconnect::{ExtraTokenFields, StandardTokenResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

use super::idp_text::printable;

/// The ID token as the IdP sent it, unparsed.
#[derive(Deserialize, Serialize)]
pub(super) struct RawIdToken {
    #[serde(default)]
    id_token: Option<Value>,
}

// By hand: a derived Debug would print the token.
impl std::fmt::Debug for RawIdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawIdToken { .. }")
    }
}

impl ExtraTokenFields for RawIdToken {}

pub(super) type WithoutIdToken = StandardTokenResponse<RawIdToken, CoreTokenType>;

/// The token response in `body` (which is wiped) and why its ID token cannot be read, when
/// the ID token is all that is wrong with it; None when something else is.
pub(super) fn without_id_token(body: Vec<u8>) -> Option<(WithoutIdToken, String)> {
    let body = Zeroizing::new(body);
    let response: WithoutIdToken = serde_json::from_slice(&body).ok()?;
    let why = match &response.extra_fields().id_token {
        // openidconnect's messages leave the token out (they may quote a header's `alg`).
        Some(Value::String(raw)) => printable(&CoreIdToken::from_str(raw).err()?.to_string()),
        Some(Value::Null) | None => return None,
        Some(_) => "it is not a string".to_owned(),
    };
    Some((response, format!("the ID token cannot be read: {why}")))
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use openidconnect::OAuth2TokenResponse;
    use serde_json::json;

    use super::*;

    fn body(id_token: Value) -> Vec<u8> {
        let response = json!({
            "access_token": "at-secret", "token_type": "Bearer", "expires_in": 60,
            "refresh_token": "rt-secret", "id_token": id_token,
        });
        serde_json::to_vec(&response).unwrap()
    }

    fn jwt(header: Value, claims: Value) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        format!("{}.{}.c2ln", part(&header), part(&claims))
    }

    #[test]
    fn an_unreadable_id_token_leaves_the_other_tokens_and_says_why_without_the_token() {
        let claims = json!({"iss": "https://i", "aud": "c", "sub": "alice", "exp": 2, "iat": 1});
        let mut no_iat = claims.clone();
        no_iat.as_object_mut().unwrap().remove("iat");
        let cases = [
            (json!("garbled-token-text"), "parts"),
            (json!(jwt(json!({"alg": "ES256K"}), claims.clone())), "ES256K"),
            (json!(jwt(json!({"alg": "RS1"}), claims.clone())), "RS1"),
            (json!("eyJh.eyJi.eyJj.eyJk.eyJl"), "5 parts"),
            (json!(jwt(json!({"alg": "RS256"}), no_iat)), "iat"),
            (json!(42), "not a string"),
        ];
        for (id_token, why) in cases {
            let (response, reason) = without_id_token(body(id_token.clone())).unwrap_or_else(|| panic!("{id_token}"));
            assert_eq!(response.access_token().secret(), "at-secret");
            assert_eq!(response.refresh_token().unwrap().secret(), "rt-secret");
            assert!(reason.contains(why), "{id_token}: {reason}");
            assert!(!reason.contains("garbled-token-text") && !reason.contains("eyJ"), "{reason}");
            assert!(!format!("{response:?}").contains("eyJ"), "no token in Debug");
        }
    }

    #[test]
    fn a_response_wrong_elsewhere_or_with_a_readable_id_token_is_not_rescued() {
        let good =
            jwt(json!({"alg": "RS256"}), json!({"iss": "https://i", "aud": "c", "sub": "a", "exp": 2, "iat": 1}));
        assert!(without_id_token(body(json!(good))).is_none());
        assert!(without_id_token(body(Value::Null)).is_none());
        assert!(without_id_token(br#"{"token_type":"Bearer","id_token":"x"}"#.to_vec()).is_none(), "no access token");
        assert!(without_id_token(b"not json".to_vec()).is_none());
    }
}
