//! ID-token checks on every receipt: signature against the issuer's JWKS with an algorithm
//! its discovery lists, `iss`, `aud`, `exp`, and in the code flow the nonce (openidconnect's
//! verifier); and what that verifier leaves undone: `azp` (OIDC Core §3.1.3.7 steps 4–5),
//! `iat` in the future, and on refresh the session's `sub` (§12.2). A key id the JWKS does
//! not have makes us fetch the JWKS once more (the IdP may have rotated its keys since
//! discovery) before refusing.

use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use openidconnect::{ClaimsVerificationError, ClientId, IssuerUrl, Nonce, SignatureVerificationError};
use secrecy::SecretString;

use super::idp_text::printable;
use super::{OidcError, Provider, VerifiedIdToken};

/// How far ahead of our clock an IdP's `iat` may be: the usual clock skew allowance
/// (Kerberos', Microsoft's), so that a slightly fast IdP clock does not refuse every login.
pub const IAT_LEEWAY_SECS: i64 = 300;

/// The signature algorithms we verify. Never `none`, never HS* (a public client has no
/// secret, so anyone could make such a signature); ES512 is not verifiable by openidconnect.
const VERIFIABLE: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// The algorithms to accept from an IdP whose discovery lists `advertised`: those of them we
/// can verify safely, or RS256 (OIDC's default) if it lists none of those.
pub fn accepted_algs(advertised: &[CoreJwsSigningAlgorithm]) -> Vec<CoreJwsSigningAlgorithm> {
    let algs: Vec<_> = VERIFIABLE.iter().filter(|a| advertised.contains(a)).cloned().collect();
    if algs.is_empty() { vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256] } else { algs }
}

/// What an ID token must match besides its signature.
pub struct Expected<'a> {
    pub client_id: &'a str,
    pub issuer: &'a IssuerUrl,
    pub algs: &'a [CoreJwsSigningAlgorithm],
    /// The nonce of the authorization request (code flow).
    pub nonce: Option<&'a Nonce>,
    /// The session's subject (refresh): a new ID token must be about the same user.
    pub subject: Option<&'a str>,
}

impl Provider {
    pub(super) async fn verify_id_token(
        &self,
        token: &CoreIdToken,
        nonce: Option<&Nonce>,
        subject: Option<&str>,
    ) -> Result<VerifiedIdToken, OidcError> {
        let expected =
            Expected { client_id: &self.client_id, issuer: &self.issuer, algs: &self.id_token_algs, nonce, subject };
        let jwks = || self.jwks.read().unwrap_or_else(|e| e.into_inner()).clone();
        let checked = match check(token, &expected, jwks(), now()) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                tracing::info!("ID token signed with a key we do not know; fetching the issuer's keys again");
                self.refetch_jwks().await?;
                check(token, &expected, jwks(), now())
            }
            other => other,
        };
        checked.map_err(|e| OidcError::InvalidIdToken(e.to_string()))
    }

    async fn refetch_jwks(&self) -> Result<(), OidcError> {
        let jwks = CoreJsonWebKeySet::fetch_async(&self.jwks_uri, &self.http).await.map_err(|e| match e {
            openidconnect::DiscoveryError::Request(h) => h.into(),
            other => OidcError::unavailable(format!("fetching the issuer's keys: {other}")),
        })?;
        *self.jwks.write().unwrap_or_else(|e| e.into_inner()) = jwks;
        Ok(())
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Every check of an ID token, at time `now` (unix seconds).
pub fn check(
    token: &CoreIdToken,
    expected: &Expected,
    jwks: CoreJsonWebKeySet,
    now: i64,
) -> Result<VerifiedIdToken, ClaimsVerificationError> {
    let verifier = CoreIdTokenVerifier::new_public_client(
        ClientId::new(expected.client_id.to_owned()),
        expected.issuer.clone(),
        jwks,
    )
    .set_allowed_algs(expected.algs.iter().cloned())
    // Other audiences beside ours are allowed only with `azp` naming us, checked below.
    .set_other_audience_verifier_fn(|_| true)
    .set_issue_time_verifier_fn(move |iat| match iat.timestamp() - now {
        ahead if ahead > IAT_LEEWAY_SECS => Err(format!("issued {ahead}s in the future")),
        _ => Ok(()),
    });
    let claims = match expected.nonce {
        Some(n) => token.claims(&verifier, n)?,
        None => token.claims(&verifier, |_: Option<&Nonce>| Ok(()))?,
    };
    match claims.authorized_party() {
        Some(azp) if azp.as_str() != expected.client_id => {
            return Err(ClaimsVerificationError::InvalidAudience(format!(
                "authorized party (azp) is `{}`, not this client",
                printable(azp.as_str())
            )));
        }
        None if claims.audiences().len() > 1 => {
            return Err(ClaimsVerificationError::InvalidAudience(
                "several audiences and no authorized party (azp)".into(),
            ));
        }
        _ => {}
    }
    if let Some(want) = expected.subject
        && claims.subject().as_str() != want
    {
        return Err(ClaimsVerificationError::InvalidSubject("the ID token is about another user (sub)".into()));
    }
    Ok(VerifiedIdToken {
        token: SecretString::from(token.to_string()),
        subject: claims.subject().to_string(),
        expires_at: claims.expiration().timestamp(),
        issued_at: claims.issue_time().timestamp(),
        email: claims.email().map(|e| e.as_str().to_owned()),
        name: claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned()),
    })
}

#[cfg(test)]
#[path = "id_token_tests.rs"]
mod tests;
