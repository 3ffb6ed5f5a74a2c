//! GetMetadata and UpdateMetadata: the user's `user_metadata` through the account's
//! management API, with an access token for that API got like any other audience's.

use std::sync::Arc;

use tokenbroker::ErrorKind;
use tokenbroker::protocol::{AccountOnly, Metadata, UpdateMetadata};

use super::audience::AudienceKey;
use super::{Account, Broker, Error, Result};
use crate::oidc::ManagementApi;

/// Seconds a management token must still live when used.
const MIN_TTL: i64 = 10;

impl Broker {
    pub async fn metadata(self: &Arc<Self>, p: AccountOnly) -> Result<Metadata> {
        let account = &self.account(p.account.as_deref())?;
        let (api, token, user) = self.management(account).await?;
        let user_metadata =
            api.user_metadata(&user, &token.access_token).await.map_err(|e| Error::from_oidc(&account.name, e))?;
        Ok(Metadata { account: account.name.clone(), user_metadata })
    }

    pub async fn update_metadata(self: &Arc<Self>, p: UpdateMetadata) -> Result<Metadata> {
        let account = &self.account(p.account.as_deref())?;
        let (api, token, user) = self.management(account).await?;
        let user_metadata = api
            .update_user_metadata(&user, &token.access_token, &p.user_metadata)
            .await
            .map_err(|e| Error::from_oidc(&account.name, e))?;
        Ok(Metadata { account: account.name.clone(), user_metadata })
    }

    async fn management(
        self: &Arc<Self>,
        account: &Arc<Account>,
    ) -> Result<(ManagementApi, Arc<super::audience::AudienceToken>, String)> {
        let Some(base) = &account.config.management_api else {
            return Err(Error::new(
                ErrorKind::NotSupported,
                format!("account {:?} has no management_api in the config; user metadata needs one", account.name),
            ));
        };
        let api = ManagementApi::new(self.http.clone(), base).map_err(|e| Error::from_oidc(&account.name, e))?;
        let key = AudienceKey::new(base, None);
        let token = self.fresh_audience(account, &key, |t, now| t.remaining(now) >= MIN_TTL).await?;
        let user = account
            .session()
            .and_then(|s| s.subject.clone())
            .ok_or_else(|| Error::internal("the session has no subject (no ID token was issued)"))?;
        Ok((api, token, user))
    }
}
