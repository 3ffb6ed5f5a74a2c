//! Machine accounts (`grant = "client_credentials"`): tokens for servers and CI runners, got
//! with the client's own credentials. They ride on the user accounts' machinery: a machine
//! account is always "logged in" with a session that holds no refresh token, its default token
//! is the session's access token, its other audiences' tokens are audience tokens, and
//! `refresh.rs`'s single flight asks [`Broker::machine_grant`] where a user account would
//! spend its refresh token. So any number of callers on an expired token make one request.
//!
//! Nothing of a machine account is stored: its tokens live in memory only. A restart costs one
//! token request, and no credential-derived token waits in a keyring or file for someone else
//! to find; the secret itself is read per request (`oidc::client_auth`), never kept.
//! Nor are its tokens refreshed ahead of time: IdPs meter machine-to-machine tokens (Auth0
//! counts each one), so a token is asked for only when a caller needs one.

use std::sync::Arc;

use tokenbroker::ErrorKind;
use tokenbroker::protocol::{Check, LogoutDone, Revocation};

use super::token::{Life, Token};
use super::{Account, Broker, Error, Event, Result, Session};
use crate::config::MachineSecret;
use crate::oidc::client_auth::client_auth;
use crate::oidc::dpop::DpopKey;
use crate::oidc::{Audiences, ClientCredentials, Offers, OidcError, TokenSet};

/// The session a machine account starts with, and returns to at a logout: no token yet (one
/// that expired at the epoch), so the first caller's request gets one. With `dpop = true` it
/// holds a new key, in memory only like the tokens bound to it.
pub(super) fn empty_session(account: &Account) -> Session {
    let none = Token::new(Default::default(), "Bearer".into(), account.config.scopes.clone(), Life::starting(0, 0));
    let dpop = account.config.dpop.then(|| Arc::new(DpopKey::generate()));
    Session { refresh_token: None, access: Arc::new(none), id: None, id_current: false, subject: None, dpop }
}

/// Whether a machine account's session holds a token yet (a user's session always does).
pub(super) fn has_token(session: &Session) -> bool {
    session.access.life.expires_at > 0
}

/// The refusal of what only a user has (login, ID token, profile, metadata).
pub(super) fn refuse(account: &Account, what: &str) -> Result<()> {
    if !account.config.is_machine() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::NotSupported,
        format!(
            "account {:?} is a machine account (grant = \"client_credentials\"): it has no user, so no {what}; \
             `brokerctl token --account {0}` gets its tokens",
            account.name
        ),
    ))
}

/// Logout of a machine account: its cached tokens are forgotten (the next caller gets a new
/// one); there is no refresh token to revoke and nothing stored.
pub(super) fn forget(broker: &Broker, account: &Account) -> LogoutDone {
    let had = account.read(|s| s.session().is_some_and(|s| has_token(s)) || !s.audience_tokens.is_empty());
    account.write(|s| s.log_in(Arc::new(empty_session(account))));
    tracing::info!(account = %account.name, "forgot the machine account's tokens");
    broker.emit(Event::LoggedOut { account: account.name.clone() });
    LogoutDone {
        account: account.name.clone(),
        revoked: false,
        end_session_url: None,
        was_logged_in: Some(had),
        revocation: Some(Revocation::NoRefreshToken),
        revocation_error: None,
    }
}

impl Broker {
    /// One client-credentials grant, in place of a refresh: for `audiences` (none: the
    /// account's `audience`) and `scope` (none: the account's `scopes`).
    pub(super) async fn machine_grant(
        &self,
        account: &Account,
        audiences: &Audiences,
        scope: Option<&str>,
        dpop: Option<&DpopKey>,
    ) -> Result<TokenSet> {
        let c = &account.config;
        let default = Audiences { param: c.audience_param.name(), values: c.audience.iter().cloned().collect() };
        let audiences = if audiences.values.is_empty() { &default } else { audiences };
        let scopes = c.scopes.join(" ");
        let scope = scope.or((!scopes.is_empty()).then_some(scopes.as_str()));
        let Some(source) = c.machine_secret() else {
            return Err(Error::internal(format!("account {:?} has no client credentials", account.name)));
        };
        let idp = match account.idp(&*self.connect).await {
            Ok(idp) => idp,
            Err(e) => {
                self.emit(Event::RefreshFailed { account: account.name.clone() });
                return Err(e);
            }
        };
        let mut answer = Err(OidcError::UseDpopNonce(String::new()));
        // A second time only when the IdP asked for a DPoP nonce after seeing a single-use
        // client assertion: the nonce is remembered now, and the new request a new assertion.
        for _ in 0..2 {
            let auth = client_auth(&source, &c.client_id, &c.issuer).await.map_err(|why| {
                tracing::warn!(account = %account.name, %why, "no client credentials");
                Error::internal(format!("account {:?}: {why}", account.name))
            })?;
            tracing::debug!(account = %account.name, audiences = ?audiences.values, "client credentials grant");
            answer = idp.client_credentials(ClientCredentials { auth: &auth, audiences, scope, dpop }).await;
            if !matches!(answer, Err(OidcError::UseDpopNonce(_))) {
                break;
            }
        }
        match answer {
            Ok(tokens) => Ok(tokens),
            Err(e) => {
                tracing::warn!(account = %account.name, error = %e, "client credentials grant failed");
                if !matches!(e, OidcError::InvalidClient(_)) {
                    self.emit(Event::RefreshFailed { account: account.name.clone() });
                }
                Err(grant_error(&account.name, e))
            }
        }
    }
}

/// A refused client-credentials grant in a machine account's words: there is no login to
/// redo, so the user-grant wording of [`Error::from_oidc`] ("the login was denied", "log in
/// again") would send people the wrong way.
fn grant_error(account: &str, e: OidcError) -> Error {
    let refused = |what: &str| {
        Error::new(
            ErrorKind::AccessDenied,
            format!("account {account:?}: the identity provider {what}; no login can change that"),
        )
    };
    match e {
        OidcError::InvalidClient(why) => refused(&format!(
            "refused the client's credentials ({why}); check client_id and the secret or key of \
             [accounts.{account}], and that the IdP knows them"
        )),
        OidcError::AccessDenied => refused(
            "refused to issue this client a token (access_denied); authorize the application for the API \
             at the IdP (Auth0: the API's Machine to Machine Applications)",
        ),
        OidcError::InvalidGrant(why) => refused(&format!(
            "refused the client credentials grant ({why}); check that the client may use it for this audience"
        )),
        e => Error::from_oidc(account, e),
    }
}

/// `doctor` and `tokenbrokerd --check` on a machine account: its secret or key can be read
/// (and the key signs), without showing it; the IdP offers the grant and the way we
/// authenticate.
pub(super) async fn checks(name: &str, c: &crate::config::AccountConfig, offers: Option<&Offers>) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some(source) = c.machine_secret() {
        let what = match &source {
            MachineSecret::Credential(n) => format!("client_secret_credential {n:?} can be read"),
            MachineSecret::Command(argv) => format!("client_secret_command {:?} prints a secret", argv[0]),
            MachineSecret::AssertionKey(p) => format!("client_assertion_key {} signs an assertion", p.display()),
        };
        let (ok, detail, fix) = match client_auth(&source, &c.client_id, &c.issuer).await {
            Ok(_) => (true, what, None),
            Err(why) => {
                (false, why, Some("fix the secret's source; the daemon reads it at every token request".into()))
            }
        };
        checks.push(Check { name: format!("client credentials of {name}"), ok, detail, fix });
    }
    let Some(offers) = offers else { return checks };
    let method = match c.machine_secret() {
        Some(MachineSecret::AssertionKey(_)) => "private_key_jwt",
        _ if offers.secret_in_body() => "client_secret_post",
        _ => "client_secret_basic",
    };
    let listed = offers.client_auth_methods.as_ref().is_none_or(|m| m.iter().any(|x| x == method));
    let (ok, detail, fix) = match (offers.client_credentials_grant, listed) {
        (Some(false), _) => (
            false,
            "the IdP's grant_types_supported does not list client_credentials".to_owned(),
            Some("use an IdP (or a client there) that offers the client credentials grant".to_owned()),
        ),
        (_, false) => (
            false,
            format!("the IdP's token_endpoint_auth_methods_supported does not list {method}"),
            Some(format!("authenticate [accounts.{name}] another way (a secret, or a key for private_key_jwt)")),
        ),
        (None, true) => (true, format!("the IdP does not list its grants; authenticating with {method}"), None),
        (Some(true), true) => (true, format!("offers the client credentials grant and {method}"), None),
    };
    checks.push(Check { name: format!("features of {name}"), ok, detail, fix });
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_speak_of_the_client_not_of_a_login() {
        for e in [
            OidcError::InvalidClient("invalid_client".into()),
            OidcError::AccessDenied,
            OidcError::InvalidGrant("invalid_grant".into()),
        ] {
            let e = grant_error("ci", e);
            assert_eq!(e.kind, ErrorKind::AccessDenied);
            assert!(!e.message.contains("log in again") && !e.message.contains("login was denied"), "{}", e.message);
            assert!(e.message.contains("no login can change that"), "{}", e.message);
        }
    }
}
