//! The config's `[[git]]` entries, read without the daemon's config parser: the credential
//! helper runs on every git fetch, so it reads the file and deserializes only this array
//! (the daemon checks the rest, and these entries too, when it loads the same file).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `[[git]]`: a git host whose credentials are the account's access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHost {
    /// `host[:port]` as git sends it, compared without regard to ASCII case.
    pub host: String,
    pub account: String,
    pub audience: Option<String>,
    #[serde(default = "default_username")]
    pub username: String,
}

fn default_username() -> String {
    "oauth2".into()
}

#[derive(Deserialize)]
struct OnlyGit {
    #[serde(default)]
    git: Vec<GitHost>,
}

/// The config file by the daemon's rules: `--config`, `TOKENBROKER_CONFIG`, then
/// `$XDG_CONFIG_HOME/tokenbroker/config.toml` (`~/.config/…`; macOS: `~/Library/Application
/// Support/tokenbroker/config.toml`).
pub fn config_path(explicit: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p);
    }
    if let Some(p) = std::env::var_os("TOKENBROKER_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    let base = match absolute("XDG_CONFIG_HOME") {
        Some(config) if !cfg!(target_os = "macos") => config,
        _ if cfg!(target_os = "macos") => absolute("HOME")?.join("Library/Application Support"),
        _ => absolute("HOME")?.join(".config"),
    };
    Some(base.join("tokenbroker").join("config.toml"))
}

/// The `[[git]]` entries of the file at `path`; none when there is no file.
pub fn load(path: &Path) -> Result<Vec<GitHost>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read config {}: {e}", path.display())),
    };
    parse(&text).map_err(|e| format!("config {}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<Vec<GitHost>, String> {
    toml::from_str::<OnlyGit>(text).map(|c| c.git).map_err(|e| describe(text, &e))
}

/// toml's own `Display` quotes the offending line, which may hold a client secret: only the
/// place and the kind.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let line = e.span().map(|s| text.get(..s.start).unwrap_or(text).matches('\n').count() + 1);
    match line {
        Some(line) => format!("line {line}: {}", e.message().trim()),
        None => e.message().trim().to_owned(),
    }
}

/// The entry for a request to `host` over `protocol`: https, or plain http to this machine
/// only (a token must not cross the network in the clear); the host matched whole, port
/// included, without regard to ASCII case. No suffix, prefix or pattern matching.
pub fn find<'a>(hosts: &'a [GitHost], protocol: &str, host: &str) -> Option<&'a GitHost> {
    let allowed = match protocol {
        "https" => true,
        "http" => is_loopback(host),
        _ => false,
    };
    allowed.then(|| hosts.iter().find(|h| h.host.eq_ignore_ascii_case(host))).flatten()
}

/// `localhost`, `127.0.0.0/8` or `[::1]`, with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, port)) if port.is_empty() || port.starts_with(':') => inside,
            _ => return false,
        },
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str) -> GitHost {
        GitHost { host: host.into(), account: "work".into(), audience: None, username: default_username() }
    }

    #[test]
    fn reads_only_the_git_entries_and_ignores_the_rest() {
        let text = "default_account = \"work\"\n[accounts.work]\nissuer = \"https://x/\"\nfuture_key = 1\n\
                    [[git]]\nhost = \"git.example.com\"\naccount = \"work\"\n\
                    [[git]]\nhost = \"gitlab.example.com:8443\"\naccount = \"work\"\naudience = \"https://gitlab\"\nusername = \"x\"\n";
        let hosts = parse(text).unwrap();
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].username, "oauth2");
        assert_eq!((hosts[1].audience.as_deref(), hosts[1].username.as_str()), (Some("https://gitlab"), "x"));
        assert!(parse("").unwrap().is_empty());
        let err = parse("[[git]]\nhost = \"h\"\naccount = \"a\"\nacount = \"typo\"\n").unwrap_err();
        assert!(err.contains("line 4") && err.contains("acount"), "{err}");
    }

    #[test]
    fn a_syntax_error_does_not_quote_the_line() {
        let err = parse("[accounts.g]\nclient_secret = \"s3cr3t\" oops\n").unwrap_err();
        assert!(err.contains("line 2") && !err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn the_host_matches_whole_port_included_case_aside() {
        let hosts = [entry("git.example.com"), entry("git.example.com:8443"), entry("127.0.0.1:9418")];
        assert_eq!(find(&hosts, "https", "git.example.com"), Some(&hosts[0]));
        assert_eq!(find(&hosts, "https", "GIT.Example.COM"), Some(&hosts[0]));
        assert_eq!(find(&hosts, "https", "git.example.com:8443"), Some(&hosts[1]));
        for other in [
            "git.example.com:443",
            "git.example.com.evil",
            "evil-git.example.com",
            "sub.git.example.com",
            "example.com",
            "git.example.co",
            "git.example.com.",
            "",
            "git.example.com:8443x",
        ] {
            assert_eq!(find(&hosts, "https", other), None, "{other:?}");
        }
    }

    #[test]
    fn plain_http_only_to_this_machine_and_no_other_protocol() {
        let hosts = [entry("git.example.com"), entry("127.0.0.1:9418"), entry("localhost:80"), entry("[::1]:3000")];
        assert_eq!(find(&hosts, "http", "git.example.com"), None);
        assert_eq!(find(&hosts, "http", "127.0.0.1:9418"), Some(&hosts[1]));
        assert_eq!(find(&hosts, "http", "localhost:80"), Some(&hosts[2]));
        assert_eq!(find(&hosts, "http", "[::1]:3000"), Some(&hosts[3]));
        for protocol in ["ssh", "git", "HTTPS", "https ", "", "file", "cert"] {
            assert_eq!(find(&hosts, protocol, "git.example.com"), None, "{protocol:?}");
        }
        for not_here in ["127.0.0.1.evil.com", "localhost.evil.com", "[::2]:1", "10.0.0.1:80", "[::1]x"] {
            assert!(!is_loopback(not_here), "{not_here}");
        }
        for here in ["127.0.0.1", "127.1.2.3:8080", "LOCALHOST", "[::1]"] {
            assert!(is_loopback(here), "{here}");
        }
    }
}
