//! The authorization code flow with PKCE (S256) for native apps (RFC 8252): the browser
//! comes back to a loopback listener of ours with the code.

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope};

use super::dpop::DpopKey;
use super::error::{Grant, token_error};
use super::{Audiences, OidcError, Provider, TokenSet};

/// What the flow must remember between the authorization URL and the code: the PKCE
/// verifier, the state and the nonce. None of it leaves the daemon.
pub struct CodeLogin {
    verifier: PkceCodeVerifier,
    state: CsrfToken,
    nonce: Nonce,
    redirect: RedirectUrl,
}

impl CodeLogin {
    pub fn state(&self) -> &str {
        self.state.secret()
    }
}

impl Provider {
    /// The URL to send the user's browser to.
    pub fn start_code(
        &self,
        redirect_uri: &str,
        scopes: &[String],
        audiences: &Audiences,
    ) -> Result<(String, CodeLogin), OidcError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| OidcError::Rejected(e.to_string()))?;
        let client = self.client.clone().set_redirect_uri(redirect.clone());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .set_pkce_challenge(challenge);
        // openidconnect always asks for "openid" itself.
        for s in scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(s.clone()));
        }
        for value in &audiences.values {
            request = request.add_extra_param(audiences.param, value.clone());
        }
        for (name, value) in &self.auth_params {
            request = request.add_extra_param(name.clone(), value.clone());
        }
        let (url, state, nonce) = request.url();
        Ok((url.into(), CodeLogin { verifier, state, nonce, redirect }))
    }

    /// Trade the code for tokens, proving possession of the PKCE verifier; the ID token must
    /// carry our nonce.
    pub async fn finish_code(
        &self,
        login: CodeLogin,
        code: String,
        dpop: Option<&DpopKey>,
    ) -> Result<TokenSet, OidcError> {
        let client = self.client.clone().set_redirect_uri(login.redirect);
        let response = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::NotSupported(e.to_string()))?
            .set_pkce_verifier(login.verifier)
            .request_async(&self.sender(dpop))
            .await
            .map_err(token_error(Grant::Code))?;
        let tokens = self.token_set(response, Some(&login.nonce), dpop).await?;
        if tokens.id_token.is_none() {
            return Err(OidcError::InvalidIdToken("the code flow returned no ID token".into()));
        }
        Ok(tokens)
    }
}
