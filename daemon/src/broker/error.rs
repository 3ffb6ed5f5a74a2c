use std::time::Duration;

use tokenbroker::ErrorKind;

use crate::oidc::{Grant, OidcError};
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
    /// The IdP refused a scope or audience (`invalid_scope`, `invalid_target`), as opposed to
    /// other `invalid_params`; not on the wire.
    pub scope_refused: bool,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), retry_after: None, scope_refused: false }
    }

    pub fn invalid_params(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidParams, message)
    }

    fn scope_refused(message: String) -> Self {
        Error { scope_refused: true, ..Error::invalid_params(message) }
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
            // Asked for a nonce again after the retry that carried one: a server whose nonces
            // turn over faster than a round trip. Transient, as far as we can tell.
            OidcError::UseDpopNonce(m) => Error::new(
                ErrorKind::IdpUnavailable,
                format!(
                    "the identity provider of account {account:?} kept asking for a new DPoP nonce ({m}); try again"
                ),
            ),
            OidcError::InvalidScope(m) => Error::scope_refused(format!(
                "account {account:?}: the identity provider refused a scope ({m}); ask only for scopes it offers \
                 this client: change `scopes` in [accounts.{account}] (`brokerctl doctor` compares them with the \
                 IdP's list), or the scope asked for"
            )),
            OidcError::InvalidTarget(m) => Error::scope_refused(format!(
                "account {account:?}: the identity provider refused the audience ({m}); the login may not have \
                 asked for it: check `audience`, `audiences` and `management_api` in [accounts.{account}]"
            )),
            OidcError::UnauthorizedClient { grant, message } => {
                let remedy = match grant {
                    Grant::Device => format!(
                        "allow the device code grant for this client at the IdP, or set flow = \"code\" in \
                         [accounts.{account}] (or log in with `--flow code`)"
                    ),
                    Grant::Code => format!(
                        "allow the authorization code grant for this client at the IdP, or set flow = \"device\" \
                         in [accounts.{account}] (or log in with `--flow device`)"
                    ),
                    Grant::ClientCredentials => {
                        format!(
                            "allow the client credentials grant for this client at the IdP (a machine-to-machine application), or remove grant = \"client_credentials\" from [accounts.{account}]"
                        )
                    }
                    Grant::Refresh => "allow the refresh token grant for this client at the IdP (and keep \
                         offline_access in `scopes`); until then, log in again when the session ends"
                        .to_owned(),
                };
                Error::new(
                    ErrorKind::NotSupported,
                    format!(
                        "account {account:?}: the identity provider does not let this client_id use the {grant} \
                         grant ({message}); {remedy}"
                    ),
                )
            }
            OidcError::TokenRefused(m) => Error::internal(format!(
                "account {account:?}: the identity provider refused the access token ({m}); log in again if \
                 this persists (with audience_param = \"resource\" it may bind the login's token to an API)"
            )),
            e @ (OidcError::Rejected(_) | OidcError::InvalidIdToken(_) | OidcError::InvalidClient(_)) => {
                Error::internal(format!(
                    "account {account:?}: {e}; check the account's issuer and client_id in the config"
                ))
            }
        }
    }

    pub fn from_store(account: &str, e: StoreError) -> Self {
        Error::internal(format!("account {account:?}: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The JSON-RPC form (the socket, and D-Bus `Call`'s error names come from the same kind).
impl From<Error> for tokenbroker::protocol::RpcError {
    fn from(e: Error) -> Self {
        let data = Some(tokenbroker::protocol::ErrorData { kind: e.kind });
        tokenbroker::protocol::RpcError { code: e.kind.code(), message: e.message, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(e: OidcError) -> String {
        Error::from_oidc("work", e).message
    }

    #[test]
    fn invalid_scope_names_the_scopes_key() {
        let m = message(OidcError::InvalidScope("invalid_scope: no such scope".into()));
        assert!(m.contains("`scopes` in [accounts.work]") && m.contains("no such scope"), "{m}");
        assert!(!m.contains("client_id in the config"), "{m}");
    }

    #[test]
    fn unauthorized_client_names_the_flow_or_the_grant() {
        let refused = |grant| {
            let e = Error::from_oidc(
                "work",
                OidcError::UnauthorizedClient { grant, message: "unauthorized_client".into() },
            );
            assert_eq!(e.kind, ErrorKind::NotSupported);
            assert!(!e.message.contains("issuer and client_id"), "{}", e.message);
            e.message
        };
        let device = refused(Grant::Device);
        assert!(
            device.contains("device code grant") && device.contains("flow = \"code\" in [accounts.work]"),
            "{device}"
        );
        let code = refused(Grant::Code);
        assert!(code.contains("authorization code grant") && code.contains("flow = \"device\""), "{code}");
        let refresh = refused(Grant::Refresh);
        assert!(refresh.contains("refresh token grant") && refresh.contains("offline_access"), "{refresh}");
    }
}
