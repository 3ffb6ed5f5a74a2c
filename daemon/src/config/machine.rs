//! Machine accounts (`grant = "client_credentials"`): servers and CI runners get tokens with
//! the client's own credentials, without a person. Their keys are checked here, against the
//! TOML as written, because what a key's absence means differs for them (no scopes by default)
//! and keys of the user grants are refused rather than silently ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::AccountConfig;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum AccountGrant {
    /// A person logs in (device or code flow) and the refresh token renews the session.
    #[default]
    #[serde(skip_deserializing)]
    User,
    /// OAuth 2.0 client credentials (RFC 6749 §4.4).
    #[serde(rename = "client_credentials")]
    ClientCredentials,
}

/// Where a machine account's client authentication comes from. Read each time a token is
/// needed, so that a rotated secret or key is picked up without a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MachineSecret {
    /// `$CREDENTIALS_DIRECTORY/NAME` (systemd's `LoadCredential=`).
    Credential(String),
    /// The first line of this command's output.
    Command(Vec<String>),
    /// A PEM private key for `private_key_jwt`.
    AssertionKey(PathBuf),
}

impl AccountConfig {
    /// A machine account's secret source (the config check makes sure there is exactly one).
    pub fn machine_secret(&self) -> Option<MachineSecret> {
        if !self.is_machine() {
            return None;
        }
        if let Some(name) = &self.client_secret_credential {
            return Some(MachineSecret::Credential(name.clone()));
        }
        if let Some(argv) = &self.client_secret_command {
            return Some(MachineSecret::Command(argv.clone()));
        }
        self.client_assertion_key.clone().map(MachineSecret::AssertionKey)
    }
}

const SOURCES: [&str; 3] = ["client_secret_credential", "client_secret_command", "client_assertion_key"];

/// Keys of the user grants that mean nothing without a login: refused, so that nobody believes
/// they took effect.
const USER_ONLY: [&str; 7] = [
    "flow",
    "management_api",
    "device_authorization_endpoint",
    "revocation_endpoint",
    "userinfo_endpoint",
    "auth_params",
    "client_secret",
];

/// Check the machine-account keys of every account, and give machine accounts their own
/// default scopes (none: a client-credentials token carries only what is asked for; `openid`
/// and `offline_access` mean nothing without a user).
pub(super) fn settle(accounts: &mut BTreeMap<String, AccountConfig>, text: &str) -> Result<(), String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    let written = |name: &str| -> Vec<String> {
        table
            .get("accounts")
            .and_then(|a| a.get(name))
            .and_then(|a| a.as_table())
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    };
    for (name, a) in accounts.iter_mut() {
        let keys = written(name);
        let has = |key: &str| keys.iter().any(|k| k == key);
        let at = |key: &str| match line_of(text, name, key) {
            Some(line) => format!("[accounts.{name}] {key} (line {line})"),
            None => format!("[accounts.{name}] {key}"),
        };
        let sources: Vec<&str> = SOURCES.into_iter().filter(|k| has(k)).collect();
        if !a.is_machine() {
            if let Some(key) = sources.first() {
                return Err(format!("{}: only for machine accounts, with grant = \"client_credentials\"", at(key)));
            }
            continue;
        }
        if let Some(key) = USER_ONLY.iter().find(|k| has(k)) {
            let why = match *key {
                "client_secret" => {
                    "a machine account's secret goes in client_secret_credential (a systemd \
                                    credential) or client_secret_command, not in the config file"
                }
                _ => "a machine account has no login, so this means nothing for it; remove it",
            };
            return Err(format!("{}: {why}", at(key)));
        }
        match sources[..] {
            [_] => {}
            [] => {
                return Err(format!(
                    "[accounts.{name}] grant = \"client_credentials\" needs exactly one of client_secret_credential \
                     (a systemd credential's name), client_secret_command (a command that prints the secret) and \
                     client_assertion_key (a PEM private key for private_key_jwt)"
                ));
            }
            [first, second, ..] => {
                return Err(format!("{} and {second}: give only one of them", at(first)));
            }
        }
        if let Some(cred) = &a.client_secret_credential
            && !credential_name_ok(cred)
        {
            return Err(format!(
                "{}: {cred:?} is not a credential's name (a plain file name in $CREDENTIALS_DIRECTORY: no '/', \
                 not \".\" or \"..\")",
                at("client_secret_credential")
            ));
        }
        if let Some(argv) = &a.client_secret_command
            && (argv.first().is_none_or(|p| p.trim().is_empty()) || argv.iter().any(|s| s.contains('\0')))
        {
            return Err(format!(
                "{}: a program and its arguments, like [\"vault\", \"read\", \"-field=secret\", \"ci/idp\"]",
                at("client_secret_command")
            ));
        }
        if let Some(path) = &a.client_assertion_key
            && !path.is_absolute()
        {
            return Err(format!("{}: {} is not an absolute path", at("client_assertion_key"), path.display()));
        }
        if !has("scopes") {
            a.scopes = Vec::new();
        }
    }
    Ok(())
}

/// A systemd credential's name: one path component, nothing that leaves the directory.
fn credential_name_ok(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.chars().any(|c| c == '/' || c.is_control())
}

/// The line of `key` in `[accounts.NAME]`, when the table is written the usual way.
fn line_of(text: &str, account: &str, key: &str) -> Option<usize> {
    let headers = [format!("[accounts.{account}]"), format!("[accounts.\"{account}\"]")];
    let mut inside = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = headers.iter().any(|h| line.starts_with(h.as_str()));
            continue;
        }
        let written = line.split('=').next().map(str::trim);
        if inside && written == Some(key) {
            return Some(n + 1);
        }
    }
    None
}

/// For the doctor: whether a credential's name resolves to a file we may read.
pub fn credential_path(name: &str) -> Result<PathBuf, String> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()).ok_or_else(|| {
        format!(
            "client_secret_credential = {name:?} needs the daemon started by systemd with LoadCredential={name}:… \
             (CREDENTIALS_DIRECTORY is not set)"
        )
    })?;
    Ok(Path::new(&dir).join(name))
}

#[cfg(test)]
mod tests {
    use super::super::Config;
    use super::*;

    const BASE: &str = "[accounts.ci]\nissuer = \"https://x/\"\nclient_id = \"m2m\"\ngrant = \"client_credentials\"\n";

    #[test]
    fn a_machine_account_has_one_secret_source_and_no_scopes_by_default() {
        let c = Config::parse(&format!("{BASE}client_secret_credential = \"idp-secret\"\n")).unwrap();
        let a = &c.accounts["ci"];
        assert!(a.is_machine() && a.scopes.is_empty(), "{a:?}");
        assert_eq!(a.machine_secret(), Some(MachineSecret::Credential("idp-secret".into())));
        let c = Config::parse(&format!("{BASE}client_secret_command = [\"pass\", \"idp\"]\nscopes = [\"api:read\"]\n"))
            .unwrap();
        assert_eq!(c.accounts["ci"].scopes, ["api:read"]);
        let c = Config::parse(&format!("{BASE}client_assertion_key = \"/etc/tb/key.pem\"\n")).unwrap();
        assert_eq!(c.accounts["ci"].machine_secret(), Some(MachineSecret::AssertionKey("/etc/tb/key.pem".into())));
    }

    #[test]
    fn contradictions_are_refused_naming_key_and_line() {
        let refused = [
            ("", "exactly one of"),
            ("client_secret_credential = \"a\"\nclient_secret_command = [\"b\"]\n", "client_secret_command"),
            ("client_secret_credential = \"../etc/shadow\"\n", "client_secret_credential (line 5)"),
            ("client_secret_credential = \"..\"\n", "not a credential"),
            ("client_secret_command = []\n", "client_secret_command (line 5)"),
            ("client_assertion_key = \"key.pem\"\n", "absolute"),
            ("client_secret_credential = \"s\"\nflow = \"code\"\n", "flow (line 6)"),
            ("client_secret_credential = \"s\"\nmanagement_api = \"https://x/api/v2/\"\n", "management_api"),
            ("client_secret_credential = \"s\"\nclient_secret = \"inline\"\n", "client_secret (line 6)"),
        ];
        for (extra, named) in refused {
            let err = Config::parse(&format!("{BASE}{extra}")).unwrap_err();
            assert!(err.contains(named) && err.contains("[accounts.ci]"), "{extra}: {err}");
            assert!(!err.contains("inline"), "the secret is not repeated: {err}");
        }
        let user = "[accounts.me]\nissuer = \"https://x/\"\nclient_id = \"c\"\nclient_secret_command = [\"x\"]\n";
        let err = Config::parse(user).unwrap_err();
        assert!(err.contains("client_secret_command (line 4)") && err.contains("client_credentials"), "{err}");
        let err = Config::parse(&BASE.replace("client_credentials", "password")).unwrap_err();
        assert!(err.contains("line 4"), "{err}");
    }
}
