//! What `brokerctl login` shows and opens, checked again on this side (the daemon checks the
//! IdP's answer first): a URL handed to xdg-open must be https, or http to this machine, and a
//! code printed to a terminal must not carry escape sequences.

use crate::human::is_bidi;

/// The longest user code shown; RFC 8628 codes are about 8 characters.
const MAX_USER_CODE: usize = 64;

/// https, or plain http to a loopback host; nothing with spaces, control characters or
/// bidirectional overrides, which no valid URL has, which an opener might split or interpret,
/// and which would reorder the address on the terminal.
pub fn safe_url(url: &str) -> bool {
    if url.chars().any(|c| c.is_control() || c.is_whitespace() || is_bidi(c)) {
        return false;
    }
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return true;
    }
    let Some(rest) = lower.strip_prefix("http://") else { return false };
    // Browsers read `\` as `/` in http URLs (WHATWG URL), so `http://evil.com\@127.0.0.1/`
    // goes to evil.com; and a verification URI has no business carrying user info.
    let authority = rest.split(['/', '\\', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return false;
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    host == "localhost" || host == "::1" || is_loopback_v4(host)
}

fn is_loopback_v4(host: &str) -> bool {
    host.parse::<std::net::Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Fit for a terminal: not empty, short, no control characters or bidirectional overrides.
pub fn printable_code(code: &str) -> bool {
    let count = code.chars().count();
    count > 0 && count <= MAX_USER_CODE && !code.chars().any(|c| c.is_control() || is_bidi(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_that_would_reorder_the_terminal_is_refused() {
        assert!(!safe_url("https://idp.example.com/\u{202e}evil"));
        assert!(!safe_url("https://idp.example.com/\u{2066}x\u{2069}"));
    }

    #[test]
    fn urls_are_https_or_loopback_http() {
        for ok in [
            "https://idp.example.com/device",
            "HTTPS://x/",
            "http://127.0.0.1:8080/a",
            "http://[::1]:1/",
            "http://localhost/x?y",
        ] {
            assert!(safe_url(ok), "{ok}");
        }
        for bad in [
            "file:///etc/passwd",
            "http://idp.example.com/device",
            "http://127.0.0.1.evil.com/",
            "http://evil.com@/x",
            "javascript:alert(1)",
            "https://x/\n--help",
            "-https://x",
            "",
        ] {
            assert!(!safe_url(bad), "{bad}");
        }
        for bad in ["http://evil.com\\@127.0.0.1/", "http://user@127.0.0.1/", "http://evil.com\\x.127.0.0.1/"] {
            assert!(!safe_url(bad), "{bad}");
        }
    }

    #[test]
    fn codes_are_printable() {
        assert!(printable_code("WDJB-MJHT"));
        for bad in ["", "AB\u{1b}[2J", "A\u{7}", "AB\u{202e}CD", &"A".repeat(65)] {
            assert!(!printable_code(bad), "{bad:?}");
        }
    }
}
