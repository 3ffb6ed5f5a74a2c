//! The integration tests: one binary, one module per subject. Each test starts its own real
//! parts (see the tokenbroker-testkit crate): a private bus with a keyring, the test IdP behind
//! a fault proxy, the real tokenbrokerd and brokerctl. Tests that need root are
//! `#[ignore = "needs root"]`; `scripts/test` runs them too when it runs as root (CI does).

/// One async test per case, each running its expression: for scenarios that differ only in
/// what they feed a shared check (`name => check(..);`).
macro_rules! cases {
    ($($(#[$meta:meta])* $name:ident => $check:expr;)*) => {$(
        $(#[$meta])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $check.await
        }
    )*};
}

mod audiences;
mod audit;
mod browsers;
mod clients;
mod consent;
mod dbus;
mod device_hygiene;
mod discovery;
mod dpop;
mod durability;
mod failures;
mod faults;
mod foreign_servers;
mod forward;
mod git;
mod hardening;
mod id_tokens;
mod identity;
mod input;
mod kubectl;
mod load;
mod login;
mod login_cancel;
mod login_link;
mod logout;
mod machine;
mod notices;
mod oidc;
mod parity;
mod policy;
mod refresh;
mod reject;
mod resources;
mod scripts;
mod secrets;
mod service;
mod socket;
mod startup;
mod stores;
mod suspend;
mod tools;
