//! A token as it crosses the wire: redacted in `Debug`, wiped from memory on drop.

use serde::{Deserialize, Serialize};

/// An access, ID or refresh token. Read it with [`Secret::expose`]; it never prints itself.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_never_shows_the_value() {
        let s = super::Secret::new("eyJhbGciOi.secret");
        assert!(!format!("{s:?}").contains("secret"));
        assert_eq!(s.expose(), "eyJhbGciOi.secret");
    }
}
