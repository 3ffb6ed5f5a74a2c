//! Tokens, codes and secrets never cross the network in the clear: an URL the daemon sends
//! them to, or shows a user to open, is https, or plain http to this machine only.

use url::Url;

/// Whether `url` names this machine: a loopback address, or `localhost` itself.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

/// https anywhere, or plain http to this machine.
pub fn is_secure(url: &Url) -> bool {
    url.scheme() == "https" || url.scheme() == "http" && is_loopback(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn only_this_machine_is_loopback() {
        for here in ["http://127.0.0.1:8080/", "http://127.9.9.9/", "http://[::1]/", "http://localhost/"] {
            assert!(is_loopback(&url(here)) && is_secure(&url(here)), "{here}");
        }
        for away in ["http://localhost.example.com/", "http://10.0.0.1/", "http://[::2]/", "http://0.0.0.0/"] {
            assert!(!is_loopback(&url(away)) && !is_secure(&url(away)), "{away}");
        }
        assert!(is_secure(&url("https://idp.example.com/")));
        assert!(!is_secure(&url("ftp://127.0.0.1/")), "loopback, but not http");
    }
}
