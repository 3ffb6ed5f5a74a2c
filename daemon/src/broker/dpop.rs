//! GetDpopProof: a DPoP-bound access token with a fresh proof for one request to a resource
//! server (RFC 9449 §7), signed with the account's key, which never leaves the daemon.

use std::sync::Arc;

use secrecy::ExposeSecret;
use tokenbroker::protocol::{Check, DpopProof, GetAccessToken, GetDpopProof};
use tokenbroker::{ErrorKind, Secret};

use super::{Broker, Error, Result, tokens};
use crate::oidc::{Offers, dpop};

pub async fn dpop_proof(broker: &Arc<Broker>, p: GetDpopProof) -> Result<DpopProof> {
    let htm = dpop::htm(&p.htm).map_err(Error::invalid_params)?;
    let htu = dpop::htu(&p.htu).map_err(Error::invalid_params)?;
    if let Some(nonce) = &p.nonce
        && !dpop::is_nonce(nonce)
    {
        return Err(Error::invalid_params("nonce is not a DPoP nonce (printable ASCII without quotes or backslashes)"));
    }
    let account = broker.account(p.account.as_deref())?;
    if !account.config.dpop {
        return Err(Error::new(
            ErrorKind::NotSupported,
            format!(
                "account {:?} does not use DPoP: its tokens are bearer tokens (GetAccessToken); set dpop = true \
                 in its config and log in again to have them bound to a key",
                account.name
            ),
        ));
    }
    let params = GetAccessToken { account: p.account, min_ttl: None, scope: None, audience: p.audience };
    let grant = tokens::access_token(broker, params).await?;
    // The key of the session the token came from: a session keeps its key through every
    // refresh; only a new login makes another (and drops the tokens bound to this one).
    let key = account.session().and_then(|s| s.dpop.clone()).ok_or_else(|| account.no_session_error())?;
    let token = grant.token.secret.expose_secret();
    let proof = key.proof(htm, &htu, p.nonce.as_deref(), Some(token));
    Ok(DpopProof {
        account: account.name.clone(),
        access_token: Secret::new(token),
        token_type: "DPoP".into(),
        proof: Secret::new(proof),
        expires_at: grant.token.life.expires_at,
    })
}

/// `doctor` for an account with `dpop = true`: does the IdP say it takes our proofs (ES256)?
/// An IdP that lists no DPoP algorithms may still take them: a warning, and the login tells.
pub fn doctor_check(name: &str, offers: &Offers) -> Check {
    let check = |ok, detail: &str, fix: Option<&str>| Check {
        name: format!("DPoP of {name}"),
        ok,
        detail: detail.into(),
        fix: fix.map(Into::into),
    };
    match offers.dpop_es256 {
        Some(true) => check(true, "the identity provider takes DPoP proofs signed with ES256", None),
        Some(false) => check(
            false,
            "the identity provider lists DPoP algorithms, but not ES256, the one tokenbroker signs with",
            Some("allow ES256 for DPoP at the identity provider, or set dpop = false for this account"),
        ),
        None => check(
            true,
            "the identity provider does not list dpop_signing_alg_values_supported",
            Some("make sure DPoP is enabled for this client at the identity provider; a login fails if it is not"),
        ),
    }
}
