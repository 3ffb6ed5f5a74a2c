//! The typed API, written once and stamped onto the async and the blocking client.

/// `methods!(async)` or `methods!()` inside an `impl` whose `call` is async or blocking.
macro_rules! methods {
    ($($async:ident $(.$await:ident)?)?) => {
        /// An access token valid for at least `min_ttl` more seconds (refreshed first if needed).
        pub $($async)? fn get_access_token(&self, p: GetAccessToken) -> Result<AccessToken> {
            self.call("GetAccessToken", &p)$($(.$await)?)?
        }

        /// The account's ID token (refreshed first if it lives shorter than `min_ttl`).
        pub $($async)? fn get_id_token(&self, p: GetIdToken) -> Result<IdToken> {
            self.call("GetIdToken", &p)$($(.$await)?)?
        }

        /// The OIDC userinfo claims, cached by the daemon until the token changes.
        pub $($async)? fn get_profile(&self, p: GetProfile) -> Result<Profile> {
            self.call("GetProfile", &p)$($(.$await)?)?
        }

        /// The user's `user_metadata` from the account's management API.
        pub $($async)? fn get_metadata(&self, p: AccountOnly) -> Result<Metadata> {
            self.call("GetMetadata", &p)$($(.$await)?)?
        }

        /// Merge into `user_metadata` (a key set to null is deleted); returns the result.
        pub $($async)? fn update_metadata(&self, p: UpdateMetadata) -> Result<Metadata> {
            self.call("UpdateMetadata", &p)$($(.$await)?)?
        }

        /// Start a login; show the challenge to the user, then call `await_login`.
        pub $($async)? fn login(&self, p: Login) -> Result<LoginChallenge> {
            self.call("Login", &p)$($(.$await)?)?
        }

        /// Wait until the user approved the login `login_id` (or it failed or expired).
        pub $($async)? fn await_login(&self, login_id: &str) -> Result<LoginDone> {
            let p = AwaitLogin { login_id: login_id.to_owned() };
            self.call("AwaitLogin", &p)$($(.$await)?)?
        }

        /// End the pending login `login_id` (its `await_login` then fails); whether it was
        /// still pending.
        pub $($async)? fn cancel_login(&self, login_id: &str) -> Result<LoginCancelled> {
            let p = AwaitLogin { login_id: login_id.to_owned() };
            self.call("CancelLogin", &p)$($(.$await)?)?
        }

        /// Revoke the session at the IdP and forget it locally.
        pub $($async)? fn logout(&self, p: AccountOnly) -> Result<LogoutDone> {
            self.call("Logout", &p)$($(.$await)?)?
        }

        /// The daemon's health checks: its config, the keyring, each identity provider.
        pub $($async)? fn diagnose(&self) -> Result<Diagnosis> {
            self.call("Diagnose", &Empty {})$($(.$await)?)?
        }

        /// The daemon's version and every account's state.
        pub $($async)? fn status(&self) -> Result<Status> {
            self.call("Status", &Empty {})$($(.$await)?)?
        }
    };
}

pub(crate) use methods;
