//! Access tokens for the account's other APIs (Auth0 audiences, RFC 8707 resources), got
//! with the refresh token and cached per (audience, scope).

use secrecy::SecretString;

use crate::oidc::TokenSet;

use super::session::{now, refresh_at};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AudienceKey {
    pub audience: String,
    /// The requested scopes, sorted and space-separated; `None` for whatever was granted.
    pub scope: Option<String>,
}

impl AudienceKey {
    pub fn new(audience: &str, scope: Option<&str>) -> Self {
        let scope = scope.map(|s| {
            let mut parts: Vec<&str> = s.split_whitespace().collect();
            parts.sort_unstable();
            parts.dedup();
            parts.join(" ")
        });
        AudienceKey { audience: audience.to_owned(), scope: scope.filter(|s| !s.is_empty()) }
    }
}

#[derive(Debug)]
pub struct AudienceToken {
    pub access_token: SecretString,
    pub token_type: String,
    pub expires_at: i64,
    pub issued_at: i64,
    pub refresh_at: i64,
    pub scopes: Vec<String>,
}

impl AudienceToken {
    /// The access-token half of a refresh response; the caller keeps the refresh token.
    pub fn from_response(t: &TokenSet, key: &AudienceKey) -> AudienceToken {
        let issued_at = now();
        let lifetime = super::ttl::lifetime(t.expires_in);
        let requested = || key.scope.iter().flat_map(|s| s.split(' ')).map(str::to_owned).collect();
        AudienceToken {
            access_token: t.access_token.clone(),
            token_type: t.token_type.clone(),
            expires_at: issued_at + lifetime,
            issued_at,
            refresh_at: refresh_at(issued_at, lifetime),
            scopes: t.scopes.clone().unwrap_or_else(requested),
        }
    }

    pub fn lifetime(&self) -> i64 {
        self.expires_at - self.issued_at
    }

    pub fn remaining(&self, now: i64) -> i64 {
        self.expires_at - now
    }
}

#[cfg(test)]
mod tests {
    use super::AudienceKey;

    #[test]
    fn scope_order_and_repeats_do_not_make_new_keys() {
        assert_eq!(AudienceKey::new("a", Some("y x x")), AudienceKey::new("a", Some("x y")));
        assert_eq!(AudienceKey::new("a", Some("  ")), AudienceKey::new("a", None));
        assert_ne!(AudienceKey::new("a", Some("x")), AudienceKey::new("b", Some("x")));
    }
}
