//! GetMetadata and UpdateMetadata: the user's `user_metadata` through the account's
//! management API, with an access token for that API got like any other audience's, asked
//! with the scopes the API wants (Auth0 grants a Management API token no others).

use std::sync::Arc;

use tokenbroker::ErrorKind;
use tokenbroker::protocol::{AccountOnly, Metadata, UpdateMetadata};

use super::account::MANAGEMENT_SCOPES;
use super::audience::AudienceKey;
use super::ttl::MinTtl;
use super::{Account, Broker, Error, Result};
use crate::oidc::{ApiError, ManagementApi};

/// Seconds a management token must still live when used.
const MIN_TTL: MinTtl = MinTtl::secs(10);

impl Broker {
    async fn management(
        self: &Arc<Self>,
        account: &Arc<Account>,
    ) -> Result<(ManagementApi, Arc<super::token::Token>, String)> {
        let Some(base) = &account.config.management_api else {
            return Err(Error::new(
                ErrorKind::NotSupported,
                format!("account {:?} has no management_api in the config; user metadata needs one", account.name),
            ));
        };
        let api = self.connect.management(base).map_err(|e| Error::from_oidc(&account.name, e))?;
        let key = AudienceKey::new(base, Some(MANAGEMENT_SCOPES));
        let token = self
            .fresh_audience(account, &key, |t, now| MIN_TTL.met_by(t.life, now))
            .await
            .map_err(|e| login_again(&account.name, e))?;
        let session = account.session();
        let user = session
            .as_ref()
            .and_then(|s| s.subject.clone())
            .ok_or_else(|| Error::internal("the session has no subject (no ID token was issued)"))?;
        Ok((api.with_dpop(session.and_then(|s| s.dpop.clone())), token, user))
    }
}

/// A session from a login that did not ask for the management API or its scopes (logged in
/// before `management_api` was set) cannot get such a token by refresh: the IdP refuses the
/// scope or target until the user logs in again, which asks for both. Other errors (no
/// refresh token, say) are not about the scopes and stay as they are.
fn login_again(account: &str, e: Error) -> Error {
    if !e.scope_refused {
        return e;
    }
    Error::internal(format!(
        "account {account:?}: the identity provider will not give this session a token for the management API \
         with the scopes {MANAGEMENT_SCOPES}: its login did not ask for them; \
         log in again with `brokerctl login --account {account}`"
    ))
}

/// A refusal from the management API is about the account's `management_api` (or the scopes
/// the application may ask for), not its issuer or client id: say which key to look at.
fn api_error(account: &str, api: &ManagementApi, e: ApiError) -> Error {
    let (status, reason) = match e {
        ApiError::Idp(e) => return Error::from_oidc(account, e),
        ApiError::Refused { status, reason } => (status, reason),
    };
    const AUDIENCE: &str = "`management_api` must be the API's audience (for Auth0, https://TENANT/api/v2/)";
    let hint = match status {
        401 => format!("it did not take the token: {AUDIENCE}; then log in again"),
        403 => format!("{AUDIENCE}, and the application must be allowed {MANAGEMENT_SCOPES}; then log in again"),
        _ => format!("check the account's `management_api` in the config: {AUDIENCE}"),
    };
    Error::internal(format!(
        "account {account:?}: the management API at {} answered HTTP {status} ({reason}); {hint}",
        api.base()
    ))
}

pub async fn metadata(broker: &Arc<Broker>, p: AccountOnly) -> Result<Metadata> {
    let account = &broker.account(p.account.as_deref())?;
    super::machine::refuse(account, "user metadata")?;
    let (api, token, user) = broker.management(account).await?;
    let user_metadata = api.user_metadata(&user, &token.secret).await.map_err(|e| api_error(&account.name, &api, e))?;
    Ok(Metadata { account: account.name.clone(), user_metadata })
}

pub async fn update_metadata(broker: &Arc<Broker>, p: UpdateMetadata) -> Result<Metadata> {
    let account = &broker.account(p.account.as_deref())?;
    super::machine::refuse(account, "user metadata")?;
    let (api, token, user) = broker.management(account).await?;
    let user_metadata = api
        .update_user_metadata(&user, &token.secret, &p.user_metadata)
        .await
        .map_err(|e| api_error(&account.name, &api, e))?;
    Ok(Metadata { account: account.name.clone(), user_metadata })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::oidc::OidcError;
    use crate::oidc::http::Http;

    #[test]
    fn refusals_name_the_management_api_key_not_the_issuer() {
        let http = Http::new(Duration::from_secs(1)).unwrap();
        let api = ManagementApi::new(http, "https://t.example/api/v2/").unwrap();
        for status in [401, 403, 404, 400] {
            let e = api_error("work", &api, ApiError::Refused { status, reason: "Insufficient scope".into() });
            assert_eq!(e.kind, ErrorKind::Internal);
            let m = &e.message;
            assert!(m.contains("`management_api`") && m.contains(&format!("HTTP {status}")), "{m}");
            assert!(m.contains("Insufficient scope") && m.contains("https://t.example/api/v2/"), "{m}");
            assert!(!m.contains("issuer") && !m.contains("client_id"), "{m}");
        }
        let e = api_error("work", &api, ApiError::Idp(OidcError::unavailable("down")));
        assert_eq!(e.kind, ErrorKind::IdpUnavailable);
    }

    #[test]
    fn only_a_refused_scope_or_audience_asks_for_a_new_login() {
        for refusal in [OidcError::InvalidScope("invalid_scope".into()), OidcError::InvalidTarget("nope".into())] {
            let e = login_again("work", Error::from_oidc("work", refusal));
            assert!(e.message.contains("its login did not ask for them"), "{}", e.message);
        }
        let no_refresh_token = Error::invalid_params("account \"work\" has no refresh token");
        let e = login_again("work", no_refresh_token);
        assert_eq!(e.kind, ErrorKind::InvalidParams);
        assert!(e.message.contains("no refresh token"), "{}", e.message);
    }
}
