use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreEdDsaPrivateSigningKey, CoreIdToken, CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::{ClaimsVerificationError, IssuerUrl, JsonWebKeyId, PrivateSigningKey};
use serde_json::{Value, json};

use super::{Expected, IAT_LEEWAY_SECS, accepted_algs, check, now};

// A throwaway Ed25519 key (openidconnect's own test key): EdDSA is one of the algorithms
// real IdPs sign with that RS256-only verification refused.
const KEY: &str = "-----BEGIN PRIVATE KEY-----\n\
    MC4CAQAwBQYDK2VwBCIEICWeYPLxoZKHZlQ6rkBi11E9JwchynXtljATLqym/XS9\n\
    -----END PRIVATE KEY-----";
const ISSUER: &str = "https://idp.example.com/";
const CLIENT: &str = "our-client";

fn key() -> CoreEdDsaPrivateSigningKey {
    CoreEdDsaPrivateSigningKey::from_ed25519_pem(KEY, Some(JsonWebKeyId::new("k1".into()))).unwrap()
}

fn jwks() -> CoreJsonWebKeySet {
    CoreJsonWebKeySet::new(vec![key().as_verification_key()])
}

fn claims() -> Value {
    let now = now();
    json!({"iss": ISSUER, "aud": CLIENT, "sub": "alice", "iat": now, "exp": now + 600})
}

/// A JWT over `claims`, signed with the test key.
fn signed(claims: &Value) -> CoreIdToken {
    let header = json!({"alg": "EdDSA", "kid": "k1", "typ": "JWT"});
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = key().sign(&CoreJwsSigningAlgorithm::EdDsa, input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)).parse().unwrap()
}

fn verify(claims: &Value, subject: Option<&str>) -> Result<String, ClaimsVerificationError> {
    let issuer = IssuerUrl::new(ISSUER.into()).unwrap();
    let algs = accepted_algs(&[CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256, CoreJwsSigningAlgorithm::EdDsa]);
    let expected = Expected { client_id: CLIENT, issuer: &issuer, algs: &algs, nonce: None, subject };
    check(&signed(claims), &expected, jwks(), now()).map(|v| v.subject)
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

#[test]
fn a_good_eddsa_token_passes() {
    assert_eq!(verify(&claims(), None).unwrap(), "alice");
    assert_eq!(verify(&claims(), Some("alice")).unwrap(), "alice");
    let ours = with(json!({"aud": [CLIENT, "https://api.example.com"], "azp": CLIENT}));
    assert_eq!(verify(&ours, None).unwrap(), "alice", "several audiences are fine when azp names us");
}

#[test]
fn azp_must_name_us_and_must_be_there_with_several_audiences() {
    let foreign = with(json!({"azp": "someone-else"}));
    assert!(matches!(verify(&foreign, None), Err(ClaimsVerificationError::InvalidAudience(_))));
    let foreign_multi = with(json!({"aud": [CLIENT, "someone-else"], "azp": "someone-else"}));
    assert!(matches!(verify(&foreign_multi, None), Err(ClaimsVerificationError::InvalidAudience(_))));
    let no_azp = with(json!({"aud": [CLIENT, "someone-else"]}));
    assert!(matches!(verify(&no_azp, None), Err(ClaimsVerificationError::InvalidAudience(_))));
}

#[test]
fn a_foreign_azp_is_named_printable_and_short() {
    let hostile = format!("evil\nINFO forged log line\u{1b}[2J{}", "x".repeat(10_000));
    let err = verify(&with(json!({"azp": hostile})), None).unwrap_err().to_string();
    assert!(err.contains("evilINFO forged log line[2Jxxx"), "{err}");
    assert!(!err.chars().any(char::is_control), "{err:?}");
    assert!(err.len() < 400, "{} bytes", err.len());
}

#[test]
fn iat_in_the_future_beyond_the_leeway_is_refused() {
    let now = now();
    let slightly_ahead = with(json!({"iat": now + IAT_LEEWAY_SECS - 10}));
    assert!(verify(&slightly_ahead, None).is_ok(), "clock skew within the leeway");
    let future = with(json!({"iat": now + IAT_LEEWAY_SECS + 60, "exp": now + 7200}));
    let err = verify(&future, None).unwrap_err();
    assert!(err.to_string().contains("future"), "{err}");
}

#[test]
fn on_refresh_the_subject_must_be_the_sessions() {
    let err = verify(&claims(), Some("bob")).unwrap_err();
    assert!(matches!(err, ClaimsVerificationError::InvalidSubject(_)), "{err}");
}

#[test]
fn only_asymmetric_algorithms_the_idp_lists_are_accepted() {
    use CoreJwsSigningAlgorithm::*;
    assert_eq!(accepted_algs(&[EcdsaP256Sha256, None, HmacSha256]), vec![EcdsaP256Sha256]);
    assert_eq!(accepted_algs(&[None, HmacSha256]), vec![RsaSsaPkcs1V15Sha256], "OIDC's default");
    assert_eq!(accepted_algs(&[RsaSsaPssSha256, EdDsa]), vec![RsaSsaPssSha256, EdDsa]);

    // An EdDSA token from an IdP that lists only RS256 is refused.
    let issuer = IssuerUrl::new(ISSUER.into()).unwrap();
    let algs = accepted_algs(&[RsaSsaPkcs1V15Sha256]);
    let expected =
        Expected { client_id: CLIENT, issuer: &issuer, algs: &algs, nonce: Option::None, subject: Option::None };
    let err = check(&signed(&claims()), &expected, jwks(), now()).map(|v| v.subject).unwrap_err();
    assert!(matches!(err, ClaimsVerificationError::SignatureVerification(_)), "{err}");
}

#[test]
fn unsigned_and_shared_secret_tokens_are_refused() {
    use openidconnect::core::CoreHmacKey;
    let issuer = IssuerUrl::new(ISSUER.into()).unwrap();
    // Even were an IdP to list them, `none` and HS256 never make it into the accepted set.
    let algs = accepted_algs(&[CoreJwsSigningAlgorithm::None, CoreJwsSigningAlgorithm::HmacSha256]);
    let expected = Expected { client_id: CLIENT, issuer: &issuer, algs: &algs, nonce: None, subject: None };
    let body = URL_SAFE_NO_PAD.encode(claims().to_string());

    // HS256 with a good MAC under a key the JWKS holds: only the algorithm rule refuses it.
    let hmac = CoreHmacKey::new(b"a shared secret of thirty-two by".to_vec());
    let mut keys = jwks().keys().clone();
    keys.push(hmac.as_verification_key());
    let with_hmac = CoreJsonWebKeySet::new(keys);
    let input = format!("{}.{body}", URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string()));
    let mac = hmac.sign(&CoreJwsSigningAlgorithm::HmacSha256, input.as_bytes()).unwrap();
    let hs256: CoreIdToken = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac)).parse().unwrap();
    let err = check(&hs256, &expected, with_hmac.clone(), now()).map(|v| v.subject).unwrap_err();
    assert!(matches!(err, ClaimsVerificationError::SignatureVerification(_)), "{err}");

    // `none`: refused when parsed, or else when checked.
    let unsigned = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()));
    if let Ok(token) = unsigned.parse::<CoreIdToken>() {
        assert!(check(&token, &expected, with_hmac, now()).is_err());
    }
}
