//! Token responses: refresh, and the checks every token response goes through.

use openidconnect::core::{CoreTokenResponse, CoreTokenType};
use openidconnect::{Nonce, OAuth2TokenResponse, RefreshToken, RequestTokenError, Scope, TokenResponse};
use secrecy::{ExposeSecret, SecretString};

use super::dpop::{DpopKey, Sender, check_bound};
use super::error::{Grant, token_error};
use super::unreadable_id_token::without_id_token;
use super::{Audiences, OidcError, Provider, TokenSet};

impl Provider {
    /// Trade the refresh token for new tokens (RFC 6749 §6), for the given audiences and, if
    /// asked, a narrower scope. `subject` is the session's: a new ID token must be about the
    /// same user (OIDC Core §12.2).
    ///
    /// Once the IdP has answered, it has rotated the refresh token: an ID token that fails
    /// verification (or cannot be checked, or even parsed) is left out and its reason returned in
    /// `id_token_refused`, so that the rest is kept; dropping it would leave us a spent
    /// refresh token, and the IdP's reuse detection would end the session at the next refresh.
    pub async fn refresh(
        &self,
        refresh_token: &SecretString,
        audiences: &Audiences,
        scope: Option<&str>,
        subject: Option<&str>,
        dpop: Option<&DpopKey>,
    ) -> Result<TokenSet, OidcError> {
        let refresh_token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let mut request =
            self.client.exchange_refresh_token(&refresh_token).map_err(|e| OidcError::NotSupported(e.to_string()))?;
        for value in &audiences.values {
            request = request.add_extra_param(audiences.param, value.clone());
        }
        for s in scope.iter().flat_map(|s| s.split_whitespace()) {
            request = request.add_scope(Scope::new(s.to_owned()));
        }
        let response = match request.request_async(&self.sender(dpop)).await {
            Ok(response) => response,
            Err(RequestTokenError::Parse(e, body)) => match without_id_token(body) {
                Some((response, why)) => return Ok(TokenSet { id_token_refused: Some(why), ..parts(&response) }),
                None => return Err(token_error(Grant::Refresh)(RequestTokenError::Parse(e, Vec::new()))),
            },
            Err(e) => return Err(token_error(Grant::Refresh)(e)),
        };
        let mut tokens = parts(&response);
        if dpop.is_some()
            && let Err(e) = check_bound(&tokens.token_type)
        {
            // The IdP has rotated the refresh token already: keep the tokens, say what is wrong.
            tracing::warn!(error = %e, "a refresh brought a token that is not DPoP-bound");
        }
        if let Some(token) = response.id_token() {
            match self.verify_id_token(token, None, subject).await {
                Ok(verified) => tokens.id_token = Some(verified),
                Err(refused) => tokens.id_token_refused = Some(refused.to_string()),
            }
        }
        Ok(tokens)
    }

    /// Our HTTP client, proving possession of `dpop` on every request when there is a key.
    pub(super) fn sender<'a>(&'a self, dpop: Option<&'a DpopKey>) -> Sender<'a> {
        Sender { http: &self.http, dpop }
    }

    /// Check a login's token response and take it apart. An ID token that fails verification
    /// fails the whole login: nothing of it may be stored.
    pub(super) async fn token_set(
        &self,
        response: CoreTokenResponse,
        nonce: Option<&Nonce>,
        dpop: Option<&DpopKey>,
    ) -> Result<TokenSet, OidcError> {
        let mut tokens = parts(&response);
        if dpop.is_some() {
            check_bound(&tokens.token_type)?;
        }
        if let Some(token) = response.id_token() {
            tokens.id_token = Some(self.verify_id_token(token, nonce, None).await?);
        }
        Ok(tokens)
    }
}

/// A token response without its ID token.
pub(super) fn parts(response: &impl OAuth2TokenResponse<TokenType = CoreTokenType>) -> TokenSet {
    TokenSet {
        access_token: SecretString::from(response.access_token().secret().as_str()),
        token_type: match response.token_type() {
            openidconnect::core::CoreTokenType::Bearer => "Bearer".to_owned(),
            // oauth2 lowercases the types it does not know; RFC 9449 spells it so.
            openidconnect::core::CoreTokenType::Extension(t) if t.eq_ignore_ascii_case("DPoP") => "DPoP".to_owned(),
            other => serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "Bearer".to_owned()),
        },
        expires_in: response.expires_in(),
        refresh_token: response.refresh_token().map(|t| SecretString::from(t.secret().as_str())),
        id_token: None,
        id_token_refused: None,
        scopes: response.scopes().map(|s| s.iter().map(|s| s.to_string()).collect()),
    }
}
