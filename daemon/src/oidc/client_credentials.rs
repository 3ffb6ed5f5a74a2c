//! The client-credentials grant (RFC 6749 §4.4) of machine accounts: no user, no refresh
//! token, no ID token; one access token per audience.

use openidconnect::{AuthType, ClientSecret, Scope};
use secrecy::ExposeSecret;

use super::client_auth::ClientAuth;
use super::dpop::{DpopKey, check_bound};
use super::error::{Grant, token_error};
use super::token::parts;
use super::{Audiences, OidcError, Provider, TokenSet};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

impl Provider {
    /// A token for `audiences` (one, in practice) and `scope`, authenticated by `auth`. A
    /// secret goes by HTTP Basic when the IdP lists `client_secret_basic` or lists nothing (the
    /// default of RFC 8414), else in the body when it lists `client_secret_post`.
    pub async fn client_credentials(
        &self,
        auth: &ClientAuth,
        audiences: &Audiences,
        scope: Option<&str>,
        dpop: Option<&DpopKey>,
    ) -> Result<TokenSet, OidcError> {
        let client = match auth {
            ClientAuth::Secret(secret) => self
                .client
                .clone()
                .set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()))
                .set_auth_type(if self.offers.secret_in_body() { AuthType::RequestBody } else { AuthType::BasicAuth }),
            // No secret: oauth2 sends client_id in the body, which RFC 7523 allows.
            ClientAuth::Assertion(_) => self.client.clone().set_auth_type(AuthType::RequestBody),
        };
        let mut request = client.exchange_client_credentials().map_err(|e| OidcError::NotSupported(e.to_string()))?;
        if let ClientAuth::Assertion(jwt) = auth {
            request = request
                .add_extra_param("client_assertion_type", JWT_BEARER)
                .add_extra_param("client_assertion", jwt.expose_secret().to_owned());
        }
        for value in &audiences.values {
            request = request.add_extra_param(audiences.param, value.clone());
        }
        for s in scope.iter().flat_map(|s| s.split_whitespace()) {
            request = request.add_scope(Scope::new(s.to_owned()));
        }
        let response =
            request.request_async(&self.sender(dpop)).await.map_err(token_error(Grant::ClientCredentials))?;
        let tokens = parts(&response);
        if dpop.is_some() {
            check_bound(&tokens.token_type)?;
        }
        Ok(tokens)
    }
}
