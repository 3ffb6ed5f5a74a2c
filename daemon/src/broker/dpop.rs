//! GetDpopProof: a DPoP-bound access token with a fresh proof for one request to a resource
//! server (RFC 9449 §7), signed with the account's key, which never leaves the daemon.

use std::sync::Arc;

use secrecy::ExposeSecret;
use tokenbroker::protocol::{Check, DpopProof, GetAccessToken, GetDpopProof};
use tokenbroker::{ErrorKind, Secret};

use super::tokens::Grant;
use super::{Broker, Error, Result, tokens};
use crate::oidc::dpop::DpopKey;
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
    let (grant, key) = bound_token(broker, params).await?;
    if !grant.token.token_type.eq_ignore_ascii_case("DPoP") {
        // A refresh that came back unbound is kept (its refresh token is spent), but no proof
        // can make a bearer token a DPoP one: say so rather than pretend.
        return Err(Error::new(
            ErrorKind::NotSupported,
            format!(
                "account {:?}'s identity provider issued a {:?} token, not a DPoP-bound one, at the last refresh; \
                 check that DPoP is enabled for the client, and log in again",
                grant.account.name, grant.token.token_type
            ),
        ));
    }
    let token = grant.token.secret.expose_secret();
    let proof = key.proof(htm, &htu, p.nonce.as_deref(), Some(token));
    Ok(DpopProof {
        account: grant.account.name.clone(),
        access_token: Secret::new(token),
        token_type: "DPoP".into(),
        proof: Secret::new(proof),
        expires_at: grant.token.life.expires_at,
    })
}

/// A token and the key it is bound to, from one look at the account: the session the token
/// belongs to holds the key. Between getting the token and that look, another task may have
/// put a new session (a logout and a login, a machine account's logout, a reload) with a new
/// key in place: then the token is not the account's any more, and is asked for again.
async fn bound_token(broker: &Arc<Broker>, params: GetAccessToken) -> Result<(Grant, Arc<DpopKey>)> {
    for _ in 0..3 {
        let grant = tokens::access_token(broker, params.clone()).await?;
        let key = grant.account.read(|s| {
            let session = s.session()?;
            let current = Arc::ptr_eq(&session.access, &grant.token)
                || s.audience_tokens.values().any(|t| Arc::ptr_eq(t, &grant.token));
            Some(current.then(|| session.dpop.clone()))
        });
        match key {
            None => return Err(grant.account.no_session_error()),
            Some(None) => continue,
            Some(Some(None)) => {
                return Err(Error::internal(format!("account {:?}'s session holds no DPoP key", grant.account.name)));
            }
            Some(Some(Some(key))) => return Ok((grant, key)),
        }
    }
    Err(Error::new(ErrorKind::IdpUnavailable, "the account's session changed while its token was fetched; try again"))
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
