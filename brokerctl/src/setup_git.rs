//! `brokerctl setup git`: the `[[git]]` entry appended to the config and the git config lines
//! that make git ask `git-credential-tokenbroker` for that host, shown before they are written.
//!
//! The entry is appended as text (the user's comments and layout stay), after checks that keep
//! the daemon's next reload from refusing the file: the account exists, the host is not mapped
//! yet, and every value is plain enough to need no TOML escaping.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::git_hosts;

/// What `setup git` will write.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub config: PathBuf,
    /// Appended to the config as it is.
    pub entry: String,
    /// Arguments of `git`, run in order.
    pub git: Vec<Vec<String>>,
}

pub struct Wanted<'a> {
    pub host: &'a str,
    pub account: &'a str,
    pub audience: Option<&'a str>,
    pub username: Option<&'a str>,
}

#[derive(Deserialize)]
struct OnlyAccounts {
    #[serde(default)]
    accounts: HashMap<String, IgnoredAny>,
}

/// The plan for `wanted` against the config text `text` (empty: no config yet).
pub fn plan(config: &Path, text: &str, wanted: &Wanted) -> Result<Plan, String> {
    let host = wanted.host.to_ascii_lowercase();
    let host_ok = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
    if host.is_empty() || !host.chars().all(host_ok) {
        return Err(format!(
            "--host {:?} is not a host[:port] (letters, digits, '.', '-', ':', '[', ']')",
            wanted.host
        ));
    }
    for (flag, value) in
        [("--account", Some(wanted.account)), ("--audience", wanted.audience), ("--username", wanted.username)]
    {
        if let Some(v) = value
            && (v.is_empty() || v.chars().any(|c| c.is_control() || c == '"' || c == '\\'))
        {
            return Err(format!("{flag} must be non-empty, without quotes, backslashes or control characters"));
        }
    }
    let accounts = toml::from_str::<OnlyAccounts>(text)
        .map_err(|e| format!("the config {} does not parse; fix it first ({})", config.display(), e.message().trim()))?
        .accounts;
    if !accounts.contains_key(wanted.account) {
        let mut known: Vec<&str> = accounts.keys().map(String::as_str).collect();
        known.sort_unstable();
        let known = if known.is_empty() { "none yet".into() } else { known.join(", ") };
        return Err(format!(
            "the config {} has no account {:?} (its accounts: {known}); add it first",
            config.display(),
            wanted.account
        ));
    }
    let mapped = git_hosts::parse(text).map_err(|e| format!("config {}: {e}", config.display()))?;
    if let Some(h) = mapped.iter().find(|h| h.host.eq_ignore_ascii_case(&host)) {
        return Err(format!("{host} is already mapped to account {:?} in {}", h.account, config.display()));
    }
    let mut entry = format!("\n[[git]]\nhost = \"{host}\"\naccount = \"{}\"\n", wanted.account);
    if let Some(aud) = wanted.audience {
        entry.push_str(&format!("audience = \"{aud}\"\n"));
    }
    if let Some(user) = wanted.username {
        entry.push_str(&format!("username = \"{user}\"\n"));
    }
    // Plain http only where the helper would answer it: this machine.
    let schemes: &[&str] = if git_hosts::is_loopback(&host) { &["https", "http"] } else { &["https"] };
    let mut git = Vec::new();
    for scheme in schemes {
        let key = format!("credential.{scheme}://{host}.helper");
        // An empty helper first: helpers configured before (store, cache) are not asked, and
        // are not handed our short-lived token to keep after a successful push.
        git.push(vec!["config".into(), "--global".into(), "--replace-all".into(), key.clone(), String::new()]);
        git.push(vec!["config".into(), "--global".into(), "--add".into(), key, "tokenbroker".into()]);
    }
    Ok(Plan { config: config.to_owned(), entry, git })
}

/// The plan, as shown before writing.
pub fn describe(plan: &Plan) -> String {
    let mut out = format!("Append to {}:\n{}\nRun:\n", plan.config.display(), plan.entry);
    for args in &plan.git {
        let shown: Vec<String> =
            args.iter().map(|a| if a.is_empty() || a.contains(' ') { format!("'{a}'") } else { a.clone() }).collect();
        out.push_str(&format!("  git {}\n", shown.join(" ")));
    }
    out
}

/// Append the entry (the config and its directory created private if missing), then run git.
pub fn apply(plan: &Plan) -> Result<(), String> {
    if let Some(dir) = plan.config.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&plan.config)
        .map_err(|e| format!("cannot open {}: {e}", plan.config.display()))?;
    file.write_all(plan.entry.as_bytes()).map_err(|e| format!("cannot write {}: {e}", plan.config.display()))?;
    for args in &plan.git {
        let status = std::process::Command::new("git").args(args).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(format!("`git {}` failed ({s}); the [[git]] entry is written", args.join(" "))),
            Err(e) => return Err(format!("cannot run git: {e}; the [[git]] entry is written")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "# mine\n[accounts.work]\nissuer = \"https://idp.example.com/\"\nclient_id = \"x\"\n";

    fn want<'a>(host: &'a str, account: &'a str) -> Wanted<'a> {
        Wanted { host, account, audience: None, username: None }
    }

    #[test]
    fn the_entry_reads_back_as_the_host_wanted() {
        let wanted = Wanted { audience: Some("https://git.example.com"), ..want("Git.Example.com:8443", "work") };
        let plan = plan(Path::new("c.toml"), CONFIG, &wanted).unwrap();
        let text = format!("{CONFIG}{}", plan.entry);
        let hosts = git_hosts::parse(&text).unwrap();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].host, "git.example.com:8443");
        assert_eq!(hosts[0].audience.as_deref(), Some("https://git.example.com"));
        assert_eq!(hosts[0].username, "oauth2");
        assert_eq!(plan.git.len(), 2, "https only for a host on the network");
        assert_eq!(plan.git[0][3], "credential.https://git.example.com:8443.helper");
        assert_eq!((plan.git[0][4].as_str(), plan.git[1][4].as_str()), ("", "tokenbroker"));
    }

    #[test]
    fn refuses_what_would_break_the_config_or_map_a_host_twice() {
        let p = Path::new("c.toml");
        assert!(plan(p, CONFIG, &want("git.example.com", "home")).unwrap_err().contains("no account \"home\""));
        let mapped = format!("{CONFIG}[[git]]\nhost = \"git.example.com\"\naccount = \"work\"\n");
        assert!(plan(p, &mapped, &want("GIT.example.com", "work")).unwrap_err().contains("already mapped"));
        assert!(plan(p, CONFIG, &want("git.example.com/evil", "work")).is_err());
        assert!(plan(p, CONFIG, &want("a\"b", "work")).is_err());
        let quote = Wanted { audience: Some("x\"\n[accounts.evil]"), ..want("h", "work") };
        assert!(plan(p, CONFIG, &quote).is_err());
        assert!(plan(p, "not toml [", &want("h", "work")).is_err());
    }

    #[test]
    fn loopback_hosts_also_get_plain_http() {
        let plan = plan(Path::new("c.toml"), CONFIG, &want("127.0.0.1:3000", "work")).unwrap();
        let keys: Vec<&str> = plan.git.iter().map(|a| a[3].as_str()).collect();
        assert!(keys.contains(&"credential.http://127.0.0.1:3000.helper"), "{keys:?}");
    }
}
