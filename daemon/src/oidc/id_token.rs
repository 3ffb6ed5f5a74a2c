//! ID-token checks on every receipt: signature against the issuer's JWKS, `iss`, `aud`,
//! `azp`, `exp`/`iat` (openidconnect's verifier, with its small clock leeway) and, in the
//! code flow, the nonce. A key id the JWKS does not have makes us fetch the JWKS once more
//! (the IdP may have rotated its keys since discovery) before refusing.

use openidconnect::core::{CoreIdToken, CoreIdTokenVerifier, CoreJsonWebKeySet};
use openidconnect::{ClaimsVerificationError, ClientId, Nonce, SignatureVerificationError};
use secrecy::SecretString;

use super::{OidcError, Provider, VerifiedIdToken};

impl Provider {
    pub(super) async fn verify_id_token(
        &self,
        token: &CoreIdToken,
        nonce: Option<&Nonce>,
    ) -> Result<VerifiedIdToken, OidcError> {
        let checked = match self.check_id_token(token, nonce) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                tracing::info!("ID token signed with a key we do not know; fetching the issuer's keys again");
                self.refetch_jwks().await?;
                self.check_id_token(token, nonce)
            }
            other => other,
        };
        checked.map_err(|e| OidcError::InvalidIdToken(e.to_string()))
    }

    fn check_id_token(
        &self,
        token: &CoreIdToken,
        nonce: Option<&Nonce>,
    ) -> Result<VerifiedIdToken, ClaimsVerificationError> {
        let jwks = self.jwks.read().unwrap_or_else(|e| e.into_inner()).clone();
        let verifier =
            CoreIdTokenVerifier::new_public_client(ClientId::new(self.client_id.clone()), self.issuer.clone(), jwks);
        let claims = match nonce {
            Some(n) => token.claims(&verifier, n)?,
            None => token.claims(&verifier, |_: Option<&Nonce>| Ok(()))?,
        };
        Ok(VerifiedIdToken {
            token: SecretString::from(token.to_string()),
            subject: claims.subject().to_string(),
            expires_at: claims.expiration().timestamp(),
        })
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
