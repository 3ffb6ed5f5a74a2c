//! Text that must stay text where it is shown as HTML or notification markup: the IdP's words
//! on the login page, a program's path in a desktop notification.

/// `&`, `<`, `>` and quotes as entities; everything else as it is.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
