//! The contract's methods, listed once: [`for_each_method!`] holds the table (name, Rust name,
//! params, result, what it does), and everything that must know every method is stamped from
//! it: the [`Method`] markers and [`Call`] here, the typed methods of each client, the daemon's
//! dispatcher.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// One method of the contract, by its marker type in [`method`].
pub trait Method {
    /// The name on the wire (the socket's `method`, the D-Bus method where there is one).
    const NAME: &'static str;
    type Params: Serialize + DeserializeOwned + std::fmt::Debug + Send;
    type Result: Serialize + DeserializeOwned + std::fmt::Debug + Send;
}

/// Hands the table of methods to a macro: `for_each_method!((my_macro) extra tokens)` expands
/// to `my_macro! { extra tokens <the table> }`. Each row is
/// `#[doc] Name rust_name [Params] (argument: Type) -> Result;`: the wire name, the clients'
/// method, the params on the wire, what the clients' method takes (anything that converts
/// into the params; nothing for `{}`), the result.
#[macro_export]
macro_rules! for_each_method {
    (($($then:tt)*) $($extra:tt)*) => {
        $($then)*! { $($extra)*
            /// An access token valid for at least `min_ttl` more seconds (refreshed first if needed).
            GetAccessToken get_access_token [$crate::GetAccessToken] (p: $crate::GetAccessToken) -> $crate::AccessToken;
            /// An access token of a `dpop = true` account with a fresh DPoP proof for one request (RFC 9449).
            GetDpopProof get_dpop_proof [$crate::GetDpopProof] (p: $crate::GetDpopProof) -> $crate::DpopProof;
            /// The account's ID token (refreshed first if it lives shorter than `min_ttl`).
            GetIdToken get_id_token [$crate::GetIdToken] (p: $crate::GetIdToken) -> $crate::IdToken;
            /// The OIDC userinfo claims, cached by the daemon until the token changes.
            GetProfile get_profile [$crate::GetProfile] (p: $crate::GetProfile) -> $crate::Profile;
            /// The user's `user_metadata` from the account's management API.
            GetMetadata get_metadata [$crate::AccountOnly] (p: $crate::AccountOnly) -> $crate::Metadata;
            /// Merge into `user_metadata` (a key set to null is deleted); returns the result.
            UpdateMetadata update_metadata [$crate::UpdateMetadata] (p: $crate::UpdateMetadata) -> $crate::Metadata;
            /// An API refused this access token: drop it if it is still the one served, so the next request refreshes.
            RejectToken reject_token [$crate::RejectToken] (p: $crate::RejectToken) -> $crate::TokenRejected;
            /// Start a login; show the challenge to the user, then call `await_login`.
            Login login [$crate::Login] (p: $crate::Login) -> $crate::LoginChallenge;
            /// Wait until the user approved the login (or it failed or expired).
            AwaitLogin await_login [$crate::AwaitLogin] (login_id: &str) -> $crate::LoginDone;
            /// End a pending login (its `await_login` then fails); whether it was still pending.
            CancelLogin cancel_login [$crate::AwaitLogin] (login_id: &str) -> $crate::LoginCancelled;
            /// Revoke the session at the IdP and forget it locally.
            Logout logout [$crate::AccountOnly] (p: $crate::AccountOnly) -> $crate::LogoutDone;
            /// The daemon's version and every account's state.
            Status status [$crate::Empty] () -> $crate::Status;
            /// The daemon's health checks (an extension): its config, the store, each IdP.
            Diagnose diagnose [$crate::Empty] () -> $crate::Diagnosis;
            /// The questions waiting for the person, and the remembered "always" answers.
            ListConsents list_consents [$crate::Empty] () -> $crate::Consents;
            /// Answer a waiting question: allow (once, or always) or deny.
            AnswerConsent answer_consent [$crate::AnswerConsent] (p: $crate::AnswerConsent) -> $crate::ConsentAnswered;
            /// Forget a remembered "always".
            RevokeConsent revoke_consent [$crate::ConsentId] (id: &str) -> $crate::ConsentRevoked;
            /// Open (or replace) a forward: a restricted socket for some accounts and audiences, until its TTL.
            AddForward add_forward [$crate::AddForward] (p: $crate::AddForward) -> $crate::Forward;
            /// The forwards being served.
            ListForwards list_forwards [$crate::Empty] () -> $crate::Forwards;
            /// End a forward now: its socket goes and its connections are dropped.
            RemoveForward remove_forward [$crate::ForwardName] (name: &str) -> $crate::ForwardRemoved;
        }
    };
}

/// The params of a call of a row's method: the argument, or `Empty {}`.
#[doc(hidden)]
#[macro_export]
macro_rules! __params_value {
    () => {
        $crate::Empty {}
    };
    ($arg:ident) => {
        $arg.into()
    };
}

/// Stamps the typed methods of a client inside its `impl`, each a call of its
/// `request::<M>(params)` (async with `typed_methods!(async .await)`).
#[macro_export]
macro_rules! typed_methods {
    (@rows $how:tt $( $(#[$doc:meta])* $name:ident $fn_name:ident [$params:ty] $args:tt -> $result:ty; )*) => {
        $( $crate::__typed_method!($how $(#[$doc])* $name $fn_name $args -> $result); )*
    };
    ($($how:tt)*) => { $crate::for_each_method!(($crate::typed_methods) @rows ($($how)*)); };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __typed_method {
    (($($async:ident $(.$await:ident)?)?)
        $(#[$doc:meta])* $name:ident $fn_name:ident ($($arg:ident: $type:ty)?) -> $result:ty
    ) => {
        $(#[$doc])*
        pub $($async)? fn $fn_name(&self $(, $arg: $type)?) -> Result<$result> {
            self.request::<$crate::method::$name>($crate::__params_value!($($arg)?))$($(.$await)?)?
        }
    };
}

macro_rules! define {
    ($( $(#[$doc:meta])* $name:ident $fn_name:ident [$params:ty] $args:tt -> $result:ty; )*) => {
        /// One marker type per method, for [`Method`] and the clients' `request::<M>`.
        pub mod method {
            $(
                $(#[$doc])*
                #[derive(Debug)]
                pub enum $name {}

                impl $crate::Method for $name {
                    const NAME: &'static str = stringify!($name);
                    type Params = $params;
                    type Result = $result;
                }
            )*
        }

        /// Any call of the contract, with its params: what a door decodes and hands on.
        #[derive(Debug)]
        pub enum Call {
            $( $name(<method::$name as Method>::Params), )*
        }

        impl Call {
            /// Every method's name, in the table's order.
            pub const METHODS: &'static [&'static str] = &[$(stringify!($name)),*];

            /// Decode `params` for `method`. `Err(None)` means the method is unknown;
            /// `Err(Some(msg))` that the params do not fit it. Absent or null params are `{}`.
            pub fn decode(method: &str, params: Option<&RawValue>) -> Result<Call, Option<String>> {
                let text = params.map(RawValue::get).map(str::trim).filter(|p| *p != "null").unwrap_or("{}");
                if !text.starts_with('{') {
                    return Err(Some("params must be an object".into()));
                }
                fn parse<T: DeserializeOwned>(text: &str) -> Result<T, Option<String>> {
                    serde_json::from_str(text).map_err(|e| Some(e.to_string()))
                }
                match method {
                    $( stringify!($name) => Ok(Call::$name(parse(text)?)), )*
                    _ => Err(None),
                }
            }

            pub fn method(&self) -> &'static str {
                match self {
                    $( Call::$name(_) => stringify!($name), )*
                }
            }
        }
    };
}

for_each_method!((define));

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn raw(v: Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&v).unwrap()
    }

    #[test]
    fn decode_fills_missing_params_and_rejects_unknown_fields() {
        assert_eq!(Call::decode("Status", None).unwrap().method(), "Status");
        assert_eq!(Call::decode("Status", Some(&raw(Value::Null))).unwrap().method(), "Status");
        match Call::decode("GetAccessToken", Some(&raw(json!({"min_ttl": 30})))).unwrap() {
            Call::GetAccessToken(p) => assert_eq!(p.min_ttl, Some(30)),
            other => panic!("decoded {other:?}"),
        }
        assert!(matches!(Call::decode("Nope", None), Err(None)));
        let bad = Call::decode("GetAccessToken", Some(&raw(json!({"min_tl": 30}))));
        assert!(bad.unwrap_err().unwrap().contains("min_tl"));
        assert!(matches!(Call::decode("Status", Some(&raw(json!([1])))), Err(Some(_))));
    }

    #[test]
    fn every_method_round_trips_through_its_name() {
        assert_eq!(Call::METHODS.len(), 19);
        for m in Call::METHODS {
            let params = match *m {
                "AwaitLogin" | "CancelLogin" => Some(json!({"login_id": "x"})),
                "UpdateMetadata" => Some(json!({"user_metadata": {}})),
                "AnswerConsent" => Some(json!({"id": "x", "allow": true})),
                "RevokeConsent" => Some(json!({"id": "x"})),
                "AddForward" | "RemoveForward" => Some(json!({"name": "x"})),
                "RejectToken" => Some(json!({"access_token": "t"})),
                "GetDpopProof" => Some(json!({"htm": "GET", "htu": "https://api.example.com/"})),
                _ => None,
            };
            assert_eq!(Call::decode(m, params.map(raw).as_deref()).unwrap().method(), *m);
        }
        assert_eq!(<method::GetAccessToken as Method>::NAME, "GetAccessToken");
    }
}
