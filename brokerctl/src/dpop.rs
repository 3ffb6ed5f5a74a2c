//! `brokerctl dpop`: the two headers of one DPoP request (RFC 9449), the proof signed by the
//! daemon with the account's key. And the refusal the bearer-only tools give a DPoP account:
//! its token alone, without a proof for each request, is refused by the servers that bound it.

use tokenbroker::protocol::{AccessToken, DpopProof, GetDpopProof};

use crate::app::{Failure, print_json};
use crate::transport::Transport;

/// What `brokerctl dpop` was asked.
pub struct Request {
    pub account: Option<String>,
    pub method: String,
    pub url: String,
    pub nonce: Option<String>,
    pub audience: Option<String>,
}

pub fn dpop(client: &Transport, r: Request, json: bool) -> Result<(), Failure> {
    let p = GetDpopProof { account: r.account, htm: r.method, htu: r.url, nonce: r.nonce, audience: r.audience };
    let answer = client.get_dpop_proof(p)?;
    if json {
        print_json(&answer);
        return Ok(());
    }
    let lines = headers(&answer).ok_or_else(|| {
        Failure::Other(
            "the token or the proof has characters that do not belong in an HTTP header; not printing them".into(),
        )
    })?;
    crate::kube::print_secret(lines.into_bytes());
    Ok(())
}

/// `Authorization: DPoP TOKEN` and `DPoP: PROOF`, one a line; `None` if either has characters
/// that would end a header (a CR or LF would start one of the IdP's choosing).
fn headers(answer: &DpopProof) -> Option<String> {
    let fits = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b));
    let [(a, token), (d, proof)] = answer.headers();
    let (token, proof) = (token.strip_prefix("DPoP ")?, proof.as_str());
    (fits(token) && fits(proof)).then(|| format!("{a}: DPoP {token}\n{d}: {proof}\n"))
}

/// Whether the token is DPoP-bound (RFC 9449 §5: the type is compared without case).
pub fn is_dpop(token: &AccessToken) -> bool {
    token.token_type.eq_ignore_ascii_case("dpop")
}

/// `token --header`'s note for a DPoP-bound token, whose header alone servers refuse.
pub const NEEDS_PROOF: &str = "note: this account's tokens are DPoP-bound (dpop = true): a server takes this header only \
                               with a DPoP proof for the request; `brokerctl dpop --method METHOD --url URL` prints both";

/// For the tools that can send only a bearer token (`exec`, `kube-credential`, git's helper):
/// a DPoP-bound token is refused, with what to use instead.
pub fn bearer_only(token: &AccessToken, tool: &str) -> Result<(), String> {
    if !is_dpop(token) {
        return Ok(());
    }
    Err(format!(
        "account {:?} has DPoP-bound tokens (dpop = true): {tool} can send only a bearer token, which servers \
         refuse without a proof for each request; use `brokerctl dpop --method METHOD --url URL` for the two \
         headers of one request, or an account without dpop",
        token.account
    ))
}

#[cfg(test)]
mod tests {
    use tokenbroker::Secret;

    use super::*;

    fn answer(token: &str, proof: &str) -> DpopProof {
        DpopProof {
            account: "a".into(),
            access_token: Secret::new(token),
            token_type: "DPoP".into(),
            proof: Secret::new(proof),
            expires_at: 0,
        }
    }

    #[test]
    fn the_two_headers_are_printed_only_when_they_are_headers() {
        assert_eq!(headers(&answer("ey.J-_x", "a.b.c")).unwrap(), "Authorization: DPoP ey.J-_x\nDPoP: a.b.c\n");
        assert!(headers(&answer("tok\r\nX-Evil: 1", "a.b.c")).is_none());
        assert!(headers(&answer("tok", "a.b\nc")).is_none());
        assert!(headers(&answer("", "a.b.c")).is_none());
    }

    #[test]
    fn bearer_only_tools_refuse_a_dpop_token_and_say_what_to_use() {
        let token = |kind: &str| AccessToken {
            account: "work".into(),
            access_token: Secret::new("t"),
            token_type: kind.into(),
            expires_at: 0,
            scope: None,
        };
        assert!(bearer_only(&token("Bearer"), "exec").is_ok());
        let why = bearer_only(&token("DPoP"), "exec").unwrap_err();
        assert!(why.contains("brokerctl dpop --method") && why.contains("\"work\""), "{why}");
    }
}
