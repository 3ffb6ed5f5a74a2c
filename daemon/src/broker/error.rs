use std::time::Duration;

use tokenbroker::ErrorKind;

use crate::oidc::OidcError;
use crate::store::StoreError;

/// A broker error: one of the contract's stable kinds and a sentence for a person.
/// Messages never contain a token, code or secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// How long the IdP asked us to wait (`Retry-After`); for the scheduler, not the wire.
    pub retry_after: Option<Duration>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), retry_after: None }
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidParams, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    pub fn not_logged_in(account: &str) -> Self {
        Error::new(
            ErrorKind::NotLoggedIn,
            format!("account {account:?} is not logged in; run `brokerctl login --account {account}`"),
        )
    }

    pub fn login_required(account: &str) -> Self {
        Error::new(
            ErrorKind::LoginRequired,
            format!(
                "the identity provider no longer accepts account {account:?}'s session; \
                 log in again with `brokerctl login --account {account}`"
            ),
        )
    }

    /// An IdP failure, in the words of the account it happened to.
    pub fn from_oidc(account: &str, e: OidcError) -> Self {
        match e {
            OidcError::InvalidGrant(_) => Error::login_required(account),
            OidcError::AccessDenied => {
                Error::new(ErrorKind::AccessDenied, "the login was denied at the identity provider")
            }
            OidcError::Expired => Error::new(
                ErrorKind::LoginExpired,
                format!(
                    "the login code expired before it was approved; start again with `brokerctl login --account {account}`"
                ),
            ),
            OidcError::Unavailable { message, retry_after } => Error {
                retry_after,
                ..Error::new(
                    ErrorKind::IdpUnavailable,
                    format!("the identity provider of account {account:?} is unavailable ({message}); try again later"),
                )
            },
            OidcError::NotSupported(m) => Error::new(ErrorKind::NotSupported, m),
            OidcError::InvalidScope(m) => Error::invalid_params(format!(
                "account {account:?}: the identity provider refused: {m}; the login may not have asked for it"
            )),
            OidcError::TokenRefused(m) => Error::internal(format!(
                "account {account:?}: the identity provider refused the access token ({m}); log in again if \
                 this persists (with audience_param = \"resource\" it may bind the login's token to an API)"
            )),
            e @ (OidcError::Rejected(_) | OidcError::InvalidIdToken(_)) => Error::internal(format!(
                "account {account:?}: {e}; check the account's issuer and client_id in the config"
            )),
        }
    }

    pub fn from_store(account: &str, e: StoreError) -> Self {
        Error::internal(format!("account {account:?}: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
