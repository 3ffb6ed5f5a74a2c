//! Access tokens for the account's other APIs (Auth0 audiences, RFC 8707 resources), got
//! with the refresh token and cached per (audience, scope).

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
