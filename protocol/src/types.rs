//! Every method's params and result, as they cross the wire.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Secret;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountOnly {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetAccessToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, deserialize_with = "crate::ttl::min_ttl", skip_serializing_if = "Option::is_none")]
    pub min_ttl: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessToken {
    pub account: String,
    pub access_token: Secret,
    pub token_type: String,
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetIdToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, deserialize_with = "crate::ttl::min_ttl", skip_serializing_if = "Option::is_none")]
    pub min_ttl: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdToken {
    pub account: String,
    pub id_token: Secret,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refresh: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Profile {
    pub account: String,
    pub claims: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub user_metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metadata {
    pub account: String,
    pub user_metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    Device,
    Code,
}

impl std::fmt::Display for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flow::Device => "device",
            Flow::Code => "code",
        })
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
}

/// What the user must do to approve a login. The user code is meant to be shown, not hidden.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginChallenge {
    pub login_id: String,
    pub flow: Flow,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwaitLogin {
    pub login_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginDone {
    pub account: String,
    pub status: String,
    /// Who is now logged in: the `sub`, `email` and `name` of the login's verified ID token
    /// (of userinfo when the IdP issued no ID token), where known, without control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An API refused `access_token` (HTTP 401): drop it from the cache if it is still the one
/// served for the account and audience, so the next `GetAccessToken` refreshes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub access_token: Secret,
    /// The audience the token was got for; none: the account's own token (`GetAccessToken`
    /// without `audience`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRejected {
    pub account: String,
    /// True when the token was the one served and is now dropped (the next request
    /// refreshes); false when it did not match, or its predecessor was dropped too recently
    /// (an API that refuses every token gets no refresh per request).
    pub dropped: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginCancelled {
    /// False when there was no pending login with that id (unknown, or already over).
    pub cancelled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogoutDone {
    pub account: String,
    pub revoked: bool,
    /// The IdP's RP-initiated logout page, to end the browser's session there too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_url: Option<String>,
    /// Whether the account held a session to log out of (absent from daemons before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was_logged_in: Option<bool>,
    /// What became of the refresh token at the IdP, when there was a session (absent from
    /// daemons before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Revocation>,
    /// With `revocation: "failed"`: why, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_error: Option<String>,
}

/// What a logout did with the refresh token at the IdP. The session is forgotten here in
/// every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Revocation {
    /// The IdP revoked it (RFC 7009).
    Revoked,
    /// The IdP has no revocation endpoint: the token stays valid there until it expires.
    Unsupported,
    /// The IdP could not be reached, or refused: the token stays valid there until it expires.
    Failed,
    /// The session held no refresh token.
    NoRefreshToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    LoggedOut,
    Valid,
    Expired,
    Refreshing,
    LoginRequired,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::LoggedOut => "logged_out",
            AccountState::Valid => "valid",
            AccountState::Expired => "expired",
            AccountState::Refreshing => "refreshing",
            AccountState::LoginRequired => "login_required",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountStatus {
    pub name: String,
    pub issuer: String,
    pub state: AccountState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub scopes: Vec<String>,
    /// Whether this is the account used when a request names none (an extension).
    #[serde(default)]
    pub default: bool,
    /// With a session: whether the store holds it. `false` means the store refused the write
    /// (a locked keyring): the session lives in memory only until a retried write lands, and
    /// is lost if the daemon stops (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persisted: Option<bool>,
    /// `"machine"` for a machine account (`grant = "client_credentials"`): no login, no
    /// user; absent for accounts a person logs in to (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// One health check of `Diagnose`: what was checked, whether it is fine, and if not, what
/// to do about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Diagnosis {
    pub checks: Vec<Check>,
}

impl Diagnosis {
    /// The checks as `brokerctl doctor` and `tokenbrokerd --check` print them.
    pub fn report(&self) -> String {
        report(&self.checks)
    }
}

/// `ok`, `warn` (passed, with a fix: worth a look, not a failure) or `FAIL`, each check's name
/// and detail, then what to do.
pub fn report(checks: &[Check]) -> String {
    let mut text = String::new();
    for c in checks {
        let tag = match (c.ok, c.fix.is_some()) {
            (false, _) => "FAIL",
            (true, true) => "warn",
            (true, false) => "ok  ",
        };
        text.push_str(&format!("{tag} {}: {}\n", c.name, c.detail));
        if let Some(fix) = &c.fix {
            text.push_str(&format!("     -> {}\n", fix.replace('\n', "\n        ")));
        }
    }
    text
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub accounts: Vec<AccountStatus>,
    /// The `[policy]` in force, and the questions out (an extension; absent from daemons
    /// that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyStatus>,
    /// The forwards being served (an extension; absent on a forward's own door).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwards: Option<Vec<crate::Forward>>,
}

/// `Status`'s summary of the policy: its default action, how many rules, how many questions
/// wait for the person, how many "always" answers are remembered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatus {
    /// `allow`, `ask` or `deny`.
    pub default: String,
    pub rules: u32,
    pub asking: u32,
    pub remembered: u32,
}

/// `await_login("id")`: a login is named by its id alone.
impl From<&str> for AwaitLogin {
    fn from(login_id: &str) -> Self {
        AwaitLogin { login_id: login_id.to_owned() }
    }
}
