//! `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9): a short-lived JWT signed with the
//! machine account's private key, sent as `client_assertion` instead of a secret.
//!
//! The claims: `iss` = `sub` = the client ID, `aud` = the issuer, a random `jti`, `iat` and a
//! one-minute `exp`. The audience is the issuer rather than the token endpoint: Auth0 takes
//! only its tenant's issuer (`https://TENANT/`), Keycloak and oidc-provider take the issuer or
//! the token endpoint, and a single issuer-valued `aud` is what the 2025 "audience injection"
//! fixes of RFC 7523 recommend. ES256 (P-256) and RS256 keys, in PKCS#8, SEC1 or PKCS#1 PEM.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use secrecy::SecretString;
use zeroize::Zeroizing;

/// How long an assertion is good for: one request's worth.
const LIFETIME: i64 = 60;

enum Key {
    Es256(p256::ecdsa::SigningKey),
    Rs256(Box<rsa::pkcs1v15::SigningKey<sha2::Sha256>>),
}

impl Key {
    fn parse(pem: &str) -> Result<Key, &'static str> {
        use p256::pkcs8::DecodePrivateKey as _;
        use rsa::pkcs1::DecodeRsaPrivateKey as _;
        use rsa::pkcs8::DecodePrivateKey as _;
        if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            return Ok(Key::Es256(key));
        }
        if let Ok(key) = p256::SecretKey::from_sec1_pem(pem) {
            return Ok(Key::Es256(key.into()));
        }
        let rsa = rsa::RsaPrivateKey::from_pkcs8_pem(pem).or_else(|_| rsa::RsaPrivateKey::from_pkcs1_pem(pem));
        match rsa {
            Ok(key) => Ok(Key::Rs256(Box::new(rsa::pkcs1v15::SigningKey::new(key)))),
            Err(_) => Err("not a P-256 (ES256) or RSA (RS256) private key in PEM (PKCS#8, SEC1 or PKCS#1)"),
        }
    }

    fn alg(&self) -> &'static str {
        match self {
            Key::Es256(_) => "ES256",
            Key::Rs256(_) => "RS256",
        }
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            Key::Es256(key) => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature = key.sign(input);
                signature.to_bytes().to_vec()
            }
            Key::Rs256(key) => {
                use rsa::signature::{SignatureEncoding as _, Signer as _};
                key.sign(input).to_vec()
            }
        }
    }
}

/// A signed assertion of `client_id` for the IdP `issuer`, issued at `now` (Unix seconds).
/// The error says what is wrong with the key, never what it holds.
pub fn sign(pem: &str, client_id: &str, issuer: &str, now: i64) -> Result<SecretString, String> {
    let key = Key::parse(pem)?;
    let header = serde_json::json!({ "alg": key.alg(), "typ": "JWT" });
    let jti = B64.encode(rand::random::<[u8; 16]>());
    let claims = serde_json::json!({
        "iss": client_id, "sub": client_id, "aud": issuer, "jti": jti, "iat": now, "exp": now + LIFETIME,
    });
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let signature = key.sign(input.as_bytes());
    let jwt = Zeroizing::new(format!("{input}.{}", B64.encode(signature)));
    Ok(SecretString::from(jwt.as_str()))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    /// Test keys made with `openssl genpkey` (P-256, PKCS#8) and `openssl genrsa` (PKCS#1).
    const EC_PEM: &str = include_str!("test_keys/ec.pem");
    const RSA_PEM: &str = include_str!("test_keys/rsa.pem");

    fn parts(jwt: &SecretString) -> (serde_json::Value, serde_json::Value, Vec<u8>) {
        let mut it = jwt.expose_secret().split('.');
        let mut json = || serde_json::from_slice(&B64.decode(it.next().unwrap()).unwrap()).unwrap();
        let (header, claims) = (json(), json());
        (header, claims, B64.decode(it.next().unwrap()).unwrap())
    }

    #[test]
    fn es256_and_rs256_assertions_carry_the_claims_and_verify() {
        use p256::ecdsa::signature::Verifier as _;
        let jwt = sign(EC_PEM, "m2m", "https://idp.example/", 1000).unwrap();
        let (header, claims, signature) = parts(&jwt);
        assert_eq!(header["alg"], "ES256");
        assert_eq!((claims["iss"].as_str(), claims["sub"].as_str()), (Some("m2m"), Some("m2m")));
        assert_eq!(
            (claims["aud"].as_str(), claims["iat"].as_i64(), claims["exp"].as_i64()),
            (Some("https://idp.example/"), Some(1000), Some(1060))
        );
        let Key::Es256(key) = Key::parse(EC_PEM).unwrap() else { panic!() };
        let input = jwt.expose_secret().rsplit_once('.').unwrap().0;
        let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
        key.verifying_key().verify(input.as_bytes(), &signature).expect("a valid ES256 signature");
        let again = sign(EC_PEM, "m2m", "https://idp.example/", 1000).unwrap();
        assert_ne!(parts(&again).1["jti"], claims["jti"], "a fresh jti each time");

        let jwt = sign(RSA_PEM, "m2m", "https://idp.example/", 1000).unwrap();
        let (header, _, signature) = parts(&jwt);
        assert_eq!((header["alg"].as_str(), signature.len()), (Some("RS256"), 256));
        let Key::Rs256(key) = Key::parse(RSA_PEM).unwrap() else { panic!() };
        let input = jwt.expose_secret().rsplit_once('.').unwrap().0;
        let signature = rsa::pkcs1v15::Signature::try_from(&signature[..]).unwrap();
        use rsa::signature::{Keypair as _, Verifier as _};
        key.verifying_key().verify(input.as_bytes(), &signature).expect("a valid RS256 signature");
    }

    #[test]
    fn a_file_that_is_no_key_is_refused_without_being_quoted() {
        let err = sign("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n", "c", "i", 0).unwrap_err();
        assert!(err.contains("not a P-256") && !err.contains("c2VjcmV0"), "{err}");
    }
}
