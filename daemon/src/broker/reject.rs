//! RejectToken: an API answered 401 to a token, and its caller says so. If the token is still
//! the one served for that account and audience, it is served no more, so the next request
//! refreshes (one refresh, single flight as always). Not in a loop: an API that refuses every
//! token gets at most one drop per account and audience per [`WINDOW_MS`].

use std::sync::Arc;

use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;
use tokenbroker::protocol::{RejectToken, TokenRejected};

use super::session::now_ms;
use super::token::Token;
use super::{Broker, Result};

/// After a drop, another token of the same account and audience is not dropped for this long:
/// the one that replaced a rejected token being refused too says the API refuses them all
/// (or the caller is confused), and a refresh would not help.
pub const WINDOW_MS: i64 = 60_000;

/// When a token of one account and audience was last dropped, and whether a refusal to drop
/// its successor has been logged since (once per window, so a refusing API cannot flood the log).
#[derive(Debug, Clone, Copy)]
pub(super) struct Dropped {
    at_ms: i64,
    warned: bool,
}

/// What became of a rejection.
enum Outcome {
    /// Not the token served (or no session): nothing changes.
    NoMatch,
    /// Dropped now.
    Dropped,
    /// Dropped already, by an earlier rejection of the same token (another caller's 401).
    DroppedBefore,
    /// The token served, but the one before it was dropped within the window; `warn`: the
    /// first such refusal of that window.
    TooSoon { warn: bool },
}

pub fn reject_token(broker: &Arc<Broker>, p: RejectToken) -> Result<TokenRejected> {
    let account = broker.account(p.account.as_deref())?;
    let audience = p.audience.filter(|a| !a.is_empty());
    let given = p.access_token.expose().as_bytes();
    let now = now_ms();
    let outcome = account.write(|s| {
        let Some(session) = s.session() else { return Outcome::NoMatch };
        let served = match &audience {
            None => Some(&session.access).filter(|t| same(t, given)),
            Some(a) => s.audience_tokens.iter().find(|(k, t)| &k.audience == a && same(t, given)).map(|(_, t)| t),
        };
        let Some(token) = served.cloned() else { return Outcome::NoMatch };
        if token.rejected() {
            return Outcome::DroppedBefore;
        }
        if let Some(last) = s.rejections.get_mut(&audience)
            && now - last.at_ms < WINDOW_MS
        {
            let warn = !last.warned;
            last.warned = true;
            return Outcome::TooSoon { warn };
        }
        token.reject();
        s.rejections.insert(audience.clone(), Dropped { at_ms: now, warned: false });
        Outcome::Dropped
    });
    let audience = audience.as_deref().unwrap_or("(the account's own token)");
    let dropped = match outcome {
        Outcome::NoMatch => {
            tracing::debug!(account = %account.name, audience, "a rejected token that is not the one served: nothing to drop");
            false
        }
        Outcome::Dropped => {
            tracing::info!(account = %account.name, audience, "an API refused the token; the next request refreshes");
            true
        }
        Outcome::DroppedBefore => {
            tracing::debug!(account = %account.name, audience, "a token already dropped was rejected again");
            true
        }
        Outcome::TooSoon { warn } => {
            if warn {
                tracing::warn!(
                    account = %account.name,
                    audience,
                    window_s = WINDOW_MS / 1000,
                    "an API refused the token that replaced one it refused less than a minute ago; not refreshing \
                     again (does the API take this IdP's tokens for this audience?)"
                );
            }
            false
        }
    };
    Ok(TokenRejected { account: account.name.clone(), dropped })
}

/// Whether `token` is `given`, in time that does not depend on where they differ.
fn same(token: &Token, given: &[u8]) -> bool {
    token.secret.expose_secret().as_bytes().ct_eq(given).into()
}
