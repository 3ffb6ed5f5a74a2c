//! Talking to the identity provider: discovery, the device flow, refresh, revocation,
//! userinfo and ID-token checks. It knows nothing of accounts, callers or storage.

mod client_assertion;
pub mod client_auth;
mod client_credentials;
mod code;
pub mod device;
mod discovery;
pub mod dpop;
mod error;
pub mod http;
mod id_token;
pub mod idp;
mod idp_text;
mod loopback;
mod management;
mod resend;
mod revoke;
mod secure_url;
mod server_metadata;
mod settings;
mod token;
mod unreadable_id_token;
mod userinfo;

use std::time::Duration;

use secrecy::SecretString;

pub use discovery::{EndpointOverrides, Offers, Provider};
pub use error::{Grant, OidcError};
pub use idp::{Approval, ClientCredentials, ClientSettings, Connect, Connector, Idp, Refresh};
pub use idp_text::printable;
pub use loopback::Loopback;
pub use management::{ApiError, ManagementApi};
pub use secure_url::is_loopback;

/// What a token endpoint handed us, checked.
pub struct TokenSet {
    pub access_token: SecretString,
    pub token_type: String,
    pub expires_in: Option<Duration>,
    pub refresh_token: Option<SecretString>,
    pub id_token: Option<VerifiedIdToken>,
    /// Why the ID token that came with a refresh was refused (the rest of it is kept).
    pub id_token_refused: Option<String>,
    /// The granted scopes, when the IdP said (RFC 6749 §5.1: absent means as requested).
    pub scopes: Option<Vec<String>>,
}

/// An ID token whose signature, issuer, audience and lifetime were checked on receipt.
pub struct VerifiedIdToken {
    pub token: SecretString,
    pub subject: String,
    pub expires_at: i64,
    /// `iat`, refused when more than a small leeway in the future.
    pub issued_at: i64,
    /// The `email` and (default-locale) `name` claims, when the IdP put them in the token:
    /// said after a login, to name who logged in. The IdP's words, unfiltered.
    pub email: Option<String>,
    pub name: Option<String>,
}

/// Extra parameters for audience-bound requests (Auth0's `audience`, RFC 8707's `resource`).
#[derive(Debug, Clone, Default)]
pub struct Audiences {
    pub param: &'static str,
    pub values: Vec<String>,
}
