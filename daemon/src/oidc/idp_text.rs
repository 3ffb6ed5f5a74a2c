//! Text an IdP chose (error descriptions, claim values, API messages) on its way into our
//! errors and logs: printable and short, since the IdP may send anything of any size.

/// The most characters of IdP text we repeat.
pub(super) const MAX_CHARS: usize = 200;

/// `text` without control characters (no forged log lines, no terminal escapes), cut to
/// `MAX_CHARS` with a `…` where it was cut.
pub fn printable(text: &str) -> String {
    let mut clean: String = text.chars().filter(|c| !c.is_control()).take(MAX_CHARS).collect();
    if text.chars().filter(|c| !c.is_control()).nth(MAX_CHARS).is_some() {
        clean.push('…');
    }
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idp_text_is_printable_and_short() {
        let long = format!("Insufficient\nscope\u{1b}[31m{}", "x".repeat(500));
        let clean = printable(&long);
        assert!(clean.starts_with("Insufficientscope[31mx") && clean.ends_with('…'), "{clean}");
        assert_eq!(clean.chars().count(), MAX_CHARS + 1);
        assert_eq!(printable("fine"), "fine");
        assert_eq!(printable(&"y".repeat(MAX_CHARS)), "y".repeat(MAX_CHARS), "nothing cut, no …");
    }
}
