//! `[[git]]`: git hosts whose credentials are an account's access tokens. brokerctl's
//! credential helper reads these entries itself; the daemon checks them, so that a mistake is
//! found when the config is loaded, not on a git fetch.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::AccountConfig;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitConfig {
    /// `host[:port]`, as git sends it; compared without regard to ASCII case.
    pub host: String,
    pub account: String,
    pub audience: Option<String>,
    #[serde(default = "default_username")]
    pub username: String,
}

fn default_username() -> String {
    "oauth2".into()
}

/// Each entry names a usable host, an account there is, an audience that account has, and no
/// host twice.
pub fn check(entries: &[GitConfig], accounts: &BTreeMap<String, AccountConfig>) -> Result<(), String> {
    let mut seen = HashSet::new();
    for (n, g) in entries.iter().enumerate() {
        let at = format!("[[git]] number {} (host = {:?})", n + 1, g.host);
        if !valid_host(&g.host) {
            return Err(format!(
                "{at}: host must be host[:port] as git sends it, like \"git.example.com\" or \"git.example.com:8443\" (no scheme, path or user)"
            ));
        }
        if !seen.insert(g.host.to_ascii_lowercase()) {
            return Err(format!("{at}: the host is mapped twice; each host maps to one account"));
        }
        let Some(account) = accounts.get(&g.account) else {
            return Err(format!("{at}: account = {:?} names no [accounts.{}] table", g.account, g.account));
        };
        if let Some(aud) = &g.audience
            && !account.audience.iter().chain(&account.audiences).any(|a| a == aud)
        {
            return Err(format!(
                "{at}: audience = {aud:?} is not one of [accounts.{}]'s audience and audiences",
                g.account
            ));
        }
        // git's Basic authentication joins user and password with ':'; git's protocol ends a
        // value at a line break.
        if g.username.is_empty() || g.username.chars().any(|c| c.is_control() || c == ':') {
            return Err(format!("{at}: username must be non-empty, without ':' or control characters"));
        }
    }
    Ok(())
}

/// A DNS name or IPv4 address, or a bracketed IPv6 address, then an optional `:port`.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, "")) => return inside.parse::<std::net::Ipv6Addr>().is_ok(),
            Some((inside, port)) if inside.parse::<std::net::Ipv6Addr>().is_ok() => ("v6", port.strip_prefix(':')),
            _ => return false,
        },
        None => match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    let port_ok = match port {
        None => !host.starts_with('['),
        Some(p) => {
            !p.is_empty()
                && p.len() <= 5
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|p| p > 0)
        }
    };
    name_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_as_git_sends_them() {
        for ok in ["git.example.com", "Git.Example.com:8443", "127.0.0.1:3000", "localhost", "[::1]:80", "[::1]", "h_1"]
        {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            "https://git.example.com",
            "git.example.com/",
            "user@git.example.com",
            "git.example.com:",
            "git.example.com:0",
            "git.example.com:65536",
            "git.example.com:80:80",
            "*.example.com",
            "git..example.com",
            ".example.com",
            "git.example.com ",
            "[::1",
            "[nope]:80",
            "[::1]x",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }
}
