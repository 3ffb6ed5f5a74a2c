//! What the core asks of an identity provider, as a trait, so that the core can be tested
//! with a fake one: [`Idp`] is one IdP as one client sees it, [`Connect`] finds one per
//! account. [`Connector`] is the real thing: discovery and [`Provider`] over our one HTTP
//! client, making exactly the requests the core made of `Provider` before the trait.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::client_auth::ClientAuth;
use super::code::CodeLogin;
use super::device::DeviceChallenge;
use super::dpop::DpopKey;
use super::http::Http;
use super::{Audiences, EndpointOverrides, ManagementApi, Offers, OidcError, Provider, TokenSet};

/// An IdP call under way.
pub type IdpFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, OidcError>> + Send + 'a>>;

/// The part of a login that waits for the user and ends with tokens.
pub type Approval = IdpFuture<'static, TokenSet>;

/// A started code flow: where to send the browser, the `state` its redirect must carry, and
/// the exchange of the code it brings back.
pub struct CodeStart {
    pub url: String,
    pub state: String,
    pub exchange: Box<dyn FnOnce(String) -> Approval + Send>,
}

/// A refresh-token grant: see [`Provider::refresh`].
pub struct Refresh<'a> {
    pub refresh_token: &'a SecretString,
    pub audiences: &'a Audiences,
    /// A narrower scope, if asked.
    pub scope: Option<&'a str>,
    /// The session's: a new ID token must be about the same user.
    pub subject: Option<&'a str>,
    /// The session's DPoP key, for an account with `dpop = true`.
    pub dpop: Option<&'a DpopKey>,
}

/// A client-credentials grant of a machine account: see [`Provider::client_credentials`].
pub struct ClientCredentials<'a> {
    pub auth: &'a ClientAuth,
    pub audiences: &'a Audiences,
    pub scope: Option<&'a str>,
    /// The account's DPoP key, for an account with `dpop = true`.
    pub dpop: Option<&'a DpopKey>,
}

/// One IdP as one client (an account) sees it.
pub trait Idp: Send + Sync {
    fn refresh<'a>(&'a self, grant: Refresh<'a>) -> IdpFuture<'a, TokenSet>;

    /// A machine account's token (no user, no refresh token).
    fn client_credentials<'a>(&'a self, grant: ClientCredentials<'a>) -> IdpFuture<'a, TokenSet>;

    /// Start a device login: what the user is shown, and the polling that ends it (with
    /// proofs of `dpop`, the new session's key, when there is one).
    fn start_device<'a>(
        self: Arc<Self>,
        scopes: &'a [String],
        audiences: &'a Audiences,
        dpop: Option<Arc<DpopKey>>,
    ) -> IdpFuture<'a, (DeviceChallenge, Approval)>;

    /// Start a code flow whose browser comes back to `redirect_uri`.
    fn start_code(
        self: Arc<Self>,
        redirect_uri: &str,
        scopes: &[String],
        audiences: &Audiences,
        dpop: Option<Arc<DpopKey>>,
    ) -> Result<CodeStart, OidcError>;

    /// Revoke a refresh token; `Ok(false)` when the IdP has no revocation endpoint.
    fn revoke<'a>(&'a self, refresh_token: &'a SecretString) -> IdpFuture<'a, bool>;

    /// The userinfo claims, refused when about another `subject`.
    fn userinfo<'a>(
        &'a self,
        access_token: &'a SecretString,
        subject: Option<&'a str>,
        dpop: Option<&'a DpopKey>,
    ) -> IdpFuture<'a, Map<String, Value>>;

    /// Where the user can end their browser session at the IdP.
    fn end_session_url(&self) -> Option<String>;

    /// What the IdP offers (for `doctor`).
    fn offers(&self) -> &Offers;
}

/// Who we are at one IdP: what an account's config says of it.
pub struct ClientSettings<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub client_secret: Option<&'a str>,
    pub auth_params: &'a BTreeMap<String, String>,
    pub overrides: EndpointOverrides,
}

/// Finds the IdP of an account.
pub trait Connect: Send + Sync {
    /// Discover the IdP (every call asks it again; the core caches the answer per account).
    fn connect<'a>(&'a self, client: &'a ClientSettings<'a>) -> IdpFuture<'a, Arc<dyn Idp>>;

    /// The user-metadata API at `base`. Not behind the trait: a thin HTTP client, used only
    /// with a token the core got through [`Idp::refresh`].
    fn management(&self, base: &str) -> Result<ManagementApi, OidcError>;

    /// After a resume from suspend: forget pooled connections (the IdPs have closed them).
    fn resumed(&self);
}

/// The real IdPs, reached over one HTTP client.
pub struct Connector {
    http: Http,
}

impl Connector {
    pub fn new(http: Http) -> Connector {
        Connector { http }
    }
}

impl Connect for Connector {
    fn connect<'a>(&'a self, client: &'a ClientSettings<'a>) -> IdpFuture<'a, Arc<dyn Idp>> {
        Box::pin(async move {
            let provider =
                Provider::discover(self.http.clone(), client.issuer, client.client_id, &client.overrides).await?;
            let provider = provider.with_client_secret(client.client_secret).with_auth_params(client.auth_params);
            Ok(Arc::new(provider) as Arc<dyn Idp>)
        })
    }

    fn management(&self, base: &str) -> Result<ManagementApi, OidcError> {
        ManagementApi::new(self.http.clone(), base)
    }

    fn resumed(&self) {
        self.http.forget_connections();
    }
}

impl Idp for Provider {
    fn refresh<'a>(&'a self, grant: Refresh<'a>) -> IdpFuture<'a, TokenSet> {
        Box::pin(Provider::refresh(self, grant.refresh_token, grant.audiences, grant.scope, grant.subject, grant.dpop))
    }

    fn client_credentials<'a>(&'a self, grant: ClientCredentials<'a>) -> IdpFuture<'a, TokenSet> {
        Box::pin(Provider::client_credentials(self, grant.auth, grant.audiences, grant.scope, grant.dpop))
    }

    fn start_device<'a>(
        self: Arc<Self>,
        scopes: &'a [String],
        audiences: &'a Audiences,
        dpop: Option<Arc<DpopKey>>,
    ) -> IdpFuture<'a, (DeviceChallenge, Approval)> {
        Box::pin(async move {
            let (challenge, device) = Provider::start_device(&self, scopes, audiences).await?;
            let approval: Approval = Box::pin(async move { self.finish_device(&device, dpop.as_deref()).await });
            Ok((challenge, approval))
        })
    }

    fn start_code(
        self: Arc<Self>,
        redirect_uri: &str,
        scopes: &[String],
        audiences: &Audiences,
        dpop: Option<Arc<DpopKey>>,
    ) -> Result<CodeStart, OidcError> {
        let (url, login): (String, CodeLogin) = Provider::start_code(&self, redirect_uri, scopes, audiences)?;
        let state = login.state().to_owned();
        let exchange = Box::new(move |code: String| -> Approval {
            Box::pin(async move { self.finish_code(login, code, dpop.as_deref()).await })
        });
        Ok(CodeStart { url, state, exchange })
    }

    fn revoke<'a>(&'a self, refresh_token: &'a SecretString) -> IdpFuture<'a, bool> {
        Box::pin(Provider::revoke(self, refresh_token))
    }

    fn userinfo<'a>(
        &'a self,
        access_token: &'a SecretString,
        subject: Option<&'a str>,
        dpop: Option<&'a DpopKey>,
    ) -> IdpFuture<'a, Map<String, Value>> {
        Box::pin(Provider::userinfo(self, access_token, subject, dpop))
    }

    fn end_session_url(&self) -> Option<String> {
        Provider::end_session_url(self)
    }

    fn offers(&self) -> &Offers {
        &self.offers
    }
}
