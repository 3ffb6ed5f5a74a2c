//! The socket door's cache of `GetAccessToken` answers: encoded once per token, kept in the
//! token's memo (so it lives and dies with the token, and no lock or table stands between
//! connections), and copied into every answer that token serves. Encoding an answer (a
//! kilobyte of JWT, escaped) costs about a microsecond, an eighth of a request's time in the
//! daemon at full load; copying the encoded bytes costs a hundredth of that.

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::broker::{Grant, Memo, Token};

/// An answer's JSON, wiped from memory when dropped (a token's memo: with the token).
pub enum Json {
    Memo(Arc<Token>),
    Owned(Zeroizing<Vec<u8>>),
}

/// The socket's encoding of an answer, as kept in a token's memo.
struct Encoded(Zeroizing<Vec<u8>>);

impl Json {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Json::Memo(token) => encoded(token).expect("encoded before it is handed out"),
            Json::Owned(bytes) => bytes,
        }
    }
}

fn encoded(token: &Token) -> Option<&[u8]> {
    token.memo.get()?.0.downcast_ref::<Encoded>().map(|e| e.0.as_slice())
}

/// The answer for `grant`, encoded now if its token has none yet.
pub fn cached(grant: &Grant) -> Json {
    grant.token.memo.get_or_init(|| {
        let json = serde_json::to_vec(grant).expect("an access token answer always serializes");
        Memo(Box::new(Encoded(Zeroizing::new(json))))
    });
    Json::Memo(grant.token.clone())
}
