//! The TOML config of the contract: accounts, their issuers and clients.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tokenbroker::protocol::Flow;
use url::Url;

#[cfg(test)]
mod examples_tests;
mod git;
mod machine;
pub use git::GitConfig;
pub use machine::{AccountGrant, MachineSecret, credential_path};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub default_account: Option<String>,
    /// Refresh tokens before they expire (the default). Off, a token is refreshed only when a
    /// caller needs one: an extension, for tests and for IdPs that meter refreshes.
    #[serde(default = "yes")]
    pub proactive_refresh: bool,
    /// Desktop notifications when an account needs a new login or its refreshes keep failing
    /// (at most one per account per hour), with a "Log in" action. Off by default: a daemon
    /// also runs where nobody sits at a desktop.
    #[serde(default)]
    pub notify: bool,
    /// Where sessions are kept: the OS keyring (default) or, by explicit choice, an encrypted
    /// file or memory only.
    #[serde(default)]
    pub store: StoreKind,
    /// `store = "file"`: the file (default: the data dir's `tokenbroker/sessions.sealed`).
    pub store_file: Option<PathBuf>,
    /// `store = "file"`: the name of a systemd credential holding the passphrase.
    pub store_key_credential: Option<String>,
    /// `store = "file"`: a command (argv) that prints the passphrase.
    pub store_passphrase_command: Option<Vec<String>>,
    /// Seconds an IdP request may take in all (connecting, sending, reading the answer)
    /// before it counts as a failure and is retried later.
    #[serde(default = "default_idp_timeout")]
    pub idp_timeout: u64,
    /// The browser `brokerctl login` opens (argv; `%s` stands for the URL, else it goes last).
    /// brokerctl reads it itself; the daemon uses it for a desktop notice's "Log in".
    pub browser_command: Option<Vec<String>>,
    #[serde(default)]
    pub accounts: BTreeMap<String, AccountConfig>,
    /// Which programs may have what; absent, every program of the user may have everything.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `[[git]]`: git hosts served by brokerctl's credential helper.
    #[serde(default)]
    pub git: Vec<GitConfig>,
}

/// `[policy]`: a default for callers no rule matches, and rules, the first match winning.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub default: Action,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleConfig>,
    /// Seconds a caller waits for the person's answer to an `ask` before it is refused (an
    /// extension; the contract's 60 by default).
    #[serde(default = "default_ask_timeout")]
    pub ask_timeout: u64,
}

fn default_ask_timeout() -> u64 {
    60
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig { default: Action::default(), rules: Vec::new(), ask_timeout: default_ask_timeout() }
    }
}

/// `[[policy.rule]]`: matches a caller when every matcher it has matches (`*` in a matcher
/// stands for any run of characters, `/` included).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub exe: Option<String>,
    pub unit: Option<String>,
    pub app_id: Option<String>,
    pub door: Option<String>,
    /// Default: every account.
    pub accounts: Option<Vec<String>>,
    /// Default: every audience the account has.
    pub audiences: Option<Vec<String>>,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Allow,
    Ask,
    Deny,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Ask => "ask",
            Action::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Kept as written: discovery compares it with the IdP's `issuer` character for character.
    pub issuer: String,
    pub client_id: String,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub audience_param: AudienceParam,
    #[serde(default = "default_flow")]
    pub flow: Flow,
    pub management_api: Option<String>,
    /// Endpoints set here win over the IdP's metadata: for IdPs that publish them nowhere
    /// (or only where we do not look).
    pub device_authorization_endpoint: Option<String>,
    pub revocation_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    /// For clients that the IdP gives a secret even when installed on a person's machine
    /// (Google's desktop and TV clients): sent with HTTP Basic authentication (RFC 6749
    /// §2.3.1). Such a secret is not confidential, but it is still kept out of every log.
    pub client_secret: Option<ClientSecret>,
    /// Extra parameters for the code flow's authorization request, such as Google's
    /// `access_type = "offline"`, without which it issues no refresh token.
    #[serde(default)]
    pub auth_params: BTreeMap<String, String>,
    /// `client_credentials`: a machine account, which has no login (see `config/machine.rs`).
    #[serde(default)]
    pub grant: AccountGrant,
    /// A machine account's secret: the name of a systemd credential holding it.
    pub client_secret_credential: Option<String>,
    /// A machine account's secret: a command (argv) that prints it.
    pub client_secret_command: Option<Vec<String>>,
    /// A machine account's private key (PEM) for `private_key_jwt` (RFC 7523).
    pub client_assertion_key: Option<PathBuf>,
    /// DPoP (RFC 9449): tokens bound to a key the broker makes at login and keeps with the
    /// session, so that a copied token is of no use without it.
    #[serde(default)]
    pub dpop: bool,
}

impl AccountConfig {
    /// A machine account: tokens by the client-credentials grant, no login, no session.
    pub fn is_machine(&self) -> bool {
        self.grant == AccountGrant::ClientCredentials
    }
}

/// A client secret from the config: never printed, wiped from memory when dropped.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ClientSecret(zeroize::Zeroizing<String>);

impl ClientSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret([REDACTED])")
    }
}

/// Authorization-request parameters that the flow itself sets: `auth_params` cannot replace
/// them (a config must not be able to switch off PKCE, the state or the nonce).
const RESERVED_AUTH_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "audience",
    "resource",
    "request",
    "request_uri",
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Keyring,
    /// An encrypted file, for machines without a keyring, chosen on purpose.
    File,
    /// Lost when the daemon exits; for machines without a keyring, chosen on purpose.
    Memory,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudienceParam {
    /// Auth0's `audience` parameter.
    #[default]
    Audience,
    /// RFC 8707 resource indicators.
    Resource,
}

impl AudienceParam {
    pub fn name(self) -> &'static str {
        match self {
            AudienceParam::Audience => "audience",
            AudienceParam::Resource => "resource",
        }
    }
}

fn default_idp_timeout() -> u64 {
    15
}

fn yes() -> bool {
    true
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email", "offline_access"].map(String::from).to_vec()
}

fn default_flow() -> Flow {
    Flow::Device
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Nothing at the path: a newcomer's first start; [`sample`] is what to write there.
    #[error("no config file at {path}")]
    Missing { path: PathBuf },
    #[error("cannot read config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// The path by the contract's rules: `--config`, `TOKENBROKER_CONFIG`, the config dir.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("TOKENBROKER_CONFIG").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        // On Linux `directories` honours XDG_CONFIG_HOME; elsewhere the platform's place.
        directories::ProjectDirs::from("", "", "tokenbroker")
            .map(|d| d.config_dir().join("config.toml"))
            .unwrap_or_else(|| PathBuf::from("tokenbroker.toml"))
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => ConfigError::Missing { path: path.into() },
            _ => ConfigError::Read { path: path.into(), source },
        })?;
        Config::parse(&text).map_err(|message| ConfigError::Invalid { path: path.into(), message })
    }

    /// Parse and check. toml's errors name the line, column and key; our own checks name the
    /// account and key.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut config: Config = toml::from_str(text).map_err(|e| describe(text, &e))?;
        machine::settle(&mut config.accounts, text)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        let key_sources = self.store_key_credential.is_some() as u8 + self.store_passphrase_command.is_some() as u8;
        match self.store {
            StoreKind::File if key_sources != 1 => {
                return Err("store = \"file\" needs exactly one of store_key_credential (a systemd credential's \
                            name) and store_passphrase_command (a command that prints the passphrase)"
                    .into());
            }
            StoreKind::File if self.store_passphrase_command.as_ref().is_some_and(Vec::is_empty) => {
                return Err("store_passphrase_command is empty".into());
            }
            StoreKind::Keyring | StoreKind::Memory if key_sources > 0 || self.store_file.is_some() => {
                return Err(
                    "store_file, store_key_credential and store_passphrase_command go with store = \"file\"".into()
                );
            }
            _ => {}
        }
        if let Some(d) = &self.default_account
            && !self.accounts.contains_key(d)
        {
            return Err(format!("default_account = {d:?} names no [accounts.{d}] table"));
        }
        for (name, a) in &self.accounts {
            if name.is_empty() || name.chars().any(|c| c.is_control() || c == '/') {
                return Err(format!("account name {name:?} is not usable"));
            }
            check_url(name, "issuer", &a.issuer)?;
            let urls = [
                ("management_api", &a.management_api),
                ("device_authorization_endpoint", &a.device_authorization_endpoint),
                ("revocation_endpoint", &a.revocation_endpoint),
                ("userinfo_endpoint", &a.userinfo_endpoint),
            ];
            for (key, url) in urls {
                if let Some(url) = url {
                    check_url(name, key, url)?;
                }
            }
            if a.client_id.is_empty() {
                return Err(format!("[accounts.{name}] client_id is empty"));
            }
            if a.is_machine() {
                continue;
            }
            if !a.scopes.iter().any(|s| s == "openid") {
                return Err(format!("[accounts.{name}] scopes must include \"openid\""));
            }
            if a.client_secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
                return Err(format!("[accounts.{name}] client_secret is empty; remove it for a public client"));
            }
            if let Some(key) = a.auth_params.keys().find(|k| RESERVED_AUTH_PARAMS.contains(&k.as_str())) {
                return Err(format!(
                    "[accounts.{name}] auth_params.{key}: set by the login flow itself; use the account's own keys (scopes, audience, …)"
                ));
            }
        }
        git::check(&self.git, &self.accounts)?;
        if let Some(argv) = &self.browser_command
            && (argv.first().is_none_or(|p| p.trim().is_empty()) || argv.iter().any(|a| a.contains('\0')))
        {
            return Err(
                "browser_command must be a program and its arguments, like [\"firefox\", \"--new-window\"]".into()
            );
        }
        if !(1..=3600).contains(&self.policy.ask_timeout) {
            return Err("[policy] ask_timeout must be between 1 and 3600 seconds".into());
        }
        for (n, rule) in self.policy.rules.iter().enumerate() {
            let matchers = [("exe", &rule.exe), ("unit", &rule.unit), ("app_id", &rule.app_id), ("door", &rule.door)];
            for (key, value) in matchers {
                if value.as_deref().is_some_and(str::is_empty) {
                    return Err(format!("[[policy.rule]] number {}: {key} is empty; leave it out to match any", n + 1));
                }
            }
            if rule.accounts.as_ref().is_some_and(Vec::is_empty) || rule.audiences.as_ref().is_some_and(Vec::is_empty) {
                return Err(format!(
                    "[[policy.rule]] number {}: an empty accounts or audiences list matches nothing; leave it out to match all",
                    n + 1
                ));
            }
        }
        Ok(())
    }

    /// The account used when a request names none.
    pub fn default_account(&self) -> Option<&str> {
        match &self.default_account {
            Some(d) => Some(d),
            None if self.accounts.len() == 1 => self.accounts.keys().next().map(String::as_str),
            None => None,
        }
    }
}

/// A config to start from, for `path`: one account, its IdP's issuer and client ID to fill in.
/// It parses as it stands (a test says so), so the daemon's next complaint is about the IdP.
pub fn sample(path: &Path) -> String {
    format!(
        "# {}\n\
         [accounts.work]\n\
         issuer = \"https://idp.example.com/\"   # your identity provider's issuer URL (OIDC discovery)\n\
         client_id = \"YOUR-CLIENT-ID\"          # a public client (no secret) that allows the device flow\n",
        path.display()
    )
}

/// What to tell someone whose config is missing: where, how to name another, what to write.
pub fn missing_advice(path: &Path) -> String {
    format!(
        "no config file at {}\nWrite one there (or name another with --config or TOKENBROKER_CONFIG). \
         A minimal one to start from, with your identity provider's issuer and client ID put in:\n\n{}",
        path.display(),
        sample(path)
    )
}

/// A TOML error by its place and kind. toml's own `Display` quotes the offending line, which
/// may be `client_secret = "…"`; that goes to the log and to whoever ran the daemon.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim();
    let Some(span) = e.span() else { return message.to_owned() };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    format!("TOML parse error at line {line}, column {column}: {message}")
}

/// Tokens must not cross the network in the clear: plain http only to this machine.
fn check_url(account: &str, key: &str, url: &str) -> Result<(), String> {
    let url = Url::parse(url).map_err(|e| format!("[accounts.{account}] {key} = {url:?}: {e}"))?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::oidc::is_loopback(&url) => Ok(()),
        "http" => Err(format!(
            "[accounts.{account}] {key} = \"{url}\": plain http is allowed only for loopback hosts; use https"
        )),
        other => Err(format!("[accounts.{account}] {key}: unsupported scheme {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
default_account = "work"
[accounts.work]
issuer = "https://tenant.eu.auth0.com/"
client_id = "AbC123"
audience = "https://api.example.com"
audience_param = "audience"
flow = "device"
[accounts.home]
issuer = "http://127.0.0.1:8080"
client_id = "x"
"#;

    #[test]
    fn parses_the_contract_example() {
        let c = Config::parse(GOOD).unwrap();
        assert_eq!(c.default_account(), Some("work"));
        assert_eq!(c.accounts["home"].scopes, default_scopes());
        assert_eq!(c.accounts["work"].audience.as_deref(), Some("https://api.example.com"));
        assert!(c.proactive_refresh);
    }

    #[test]
    fn the_sample_parses_and_a_missing_file_is_told_apart() {
        let path = Path::new("/nowhere/tokenbroker/config.toml");
        let c = Config::parse(&sample(path)).unwrap();
        assert_eq!(c.default_account(), Some("work"));
        assert!(matches!(Config::load(path), Err(ConfigError::Missing { .. })));
        assert!(missing_advice(path).contains(&sample(path)));
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = "[accounts.a]\nissuer = \"https://x/\"\nclient_id = \"c\"\nclientid = \"typo\"\n";
        let err = Config::parse(text).unwrap_err();
        assert!(err.contains("clientid"), "{err}");
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn plain_http_only_for_loopback() {
        let text = "[accounts.a]\nissuer = \"http://idp.example.com/\"\nclient_id = \"c\"\n";
        let err = Config::parse(text).unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        for ok in ["http://localhost:1/", "http://[::1]:2/", "http://127.0.0.1/"] {
            let text = format!("[accounts.a]\nissuer = \"{ok}\"\nclient_id = \"c\"\n");
            assert!(Config::parse(&text).is_ok(), "{ok}");
        }
    }

    #[test]
    fn endpoint_overrides_are_https_unless_loopback() {
        let base = "[accounts.a]\nissuer = \"https://x/\"\nclient_id = \"c\"\n";
        for key in ["device_authorization_endpoint", "revocation_endpoint", "userinfo_endpoint", "management_api"] {
            let ok = format!("{base}{key} = \"https://x/{key}\"\n");
            let a = &Config::parse(&ok).unwrap().accounts["a"];
            assert!(
                [&a.device_authorization_endpoint, &a.revocation_endpoint, &a.userinfo_endpoint, &a.management_api]
                    .iter()
                    .any(|v| v.is_some())
            );
            assert!(Config::parse(&format!("{base}{key} = \"http://127.0.0.1:9/{key}\"\n")).is_ok());
            let err = Config::parse(&format!("{base}{key} = \"http://x/{key}\"\n")).unwrap_err();
            assert!(err.contains(key) && err.contains("loopback"), "{err}");
        }
    }

    #[test]
    fn browser_command_is_a_program_and_its_arguments() {
        let one = "[accounts.only]\nissuer = \"https://x/\"\nclient_id = \"c\"\n";
        let c = Config::parse(&format!("browser_command = [\"firefox\", \"--new-window\"]\n{one}")).unwrap();
        assert_eq!(c.browser_command, Some(vec!["firefox".to_owned(), "--new-window".to_owned()]));
        for bad in ["[]", "[\"\"]", "[\" \", \"x\"]", "[\"a\\u0000b\"]"] {
            let err = Config::parse(&format!("browser_command = {bad}\n{one}")).unwrap_err();
            assert!(err.contains("browser_command"), "{bad}: {err}");
        }
        assert!(Config::parse(&format!("browser_command = \"firefox --new-window\"\n{one}")).is_err(), "a list");
    }

    #[test]
    fn default_account_rules() {
        let one = "[accounts.only]\nissuer = \"https://x/\"\nclient_id = \"c\"\n";
        assert_eq!(Config::parse(one).unwrap().default_account(), Some("only"));
        let err = Config::parse(&format!("default_account = \"nope\"\n{one}")).unwrap_err();
        assert!(err.contains("nope"), "{err}");
        let two = format!("{one}[accounts.other]\nissuer = \"https://y/\"\nclient_id = \"d\"\n");
        assert_eq!(Config::parse(&two).unwrap().default_account(), None);
    }

    #[test]
    fn client_secret_is_never_printed_and_auth_params_cannot_replace_the_flows_own() {
        let text = "[accounts.g]\nissuer = \"https://x/\"\nclient_id = \"c\"\nclient_secret = \"s3cr3t\"\n\
                    auth_params = { access_type = \"offline\" }\n";
        let c = Config::parse(text).unwrap();
        assert_eq!(c.accounts["g"].client_secret.as_ref().unwrap().expose(), "s3cr3t");
        assert_eq!(c.accounts["g"].auth_params["access_type"], "offline");
        assert!(!format!("{c:?}").contains("s3cr3t"));
        for reserved in ["code_challenge_method", "state", "redirect_uri"] {
            let text = format!(
                "[accounts.g]\nissuer = \"https://x/\"\nclient_id = \"c\"\nauth_params = {{ {reserved} = \"x\" }}\n"
            );
            let err = Config::parse(&text).unwrap_err();
            assert!(err.contains(reserved), "{err}");
        }
        let empty = "[accounts.g]\nissuer = \"https://x/\"\nclient_id = \"c\"\nclient_secret = \"\"\n";
        assert!(Config::parse(empty).unwrap_err().contains("client_secret"));
    }

    #[test]
    fn a_syntax_error_names_its_place_without_quoting_the_line() {
        let text = "[accounts.g]\nissuer = \"https://x/\"\nclient_id = \"c\"\nclient_secret = \"s3cr3t\" oops\n";
        let err = Config::parse(text).unwrap_err();
        assert!(err.contains("line 4"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn git_entries_name_an_account_one_of_its_audiences_and_each_host_once() {
        let base = "[accounts.work]\nissuer = \"https://x/\"\nclient_id = \"c\"\naudiences = [\"https://git\"]\n";
        let ok = format!(
            "{base}[[git]]\nhost = \"git.example.com\"\naccount = \"work\"\n\
             [[git]]\nhost = \"git.example.com:8443\"\naccount = \"work\"\naudience = \"https://git\"\nusername = \"me\"\n"
        );
        let c = Config::parse(&ok).unwrap();
        assert_eq!((c.git[0].username.as_str(), c.git[1].username.as_str()), ("oauth2", "me"));
        let refused = [
            ("[[git]]\nhost = \"h\"\naccount = \"home\"\n", "home"),
            ("[[git]]\nhost = \"h\"\naccount = \"work\"\naudience = \"https://other\"\n", "https://other"),
            ("[[git]]\nhost = \"h\"\naccount = \"work\"\n[[git]]\nhost = \"H\"\naccount = \"work\"\n", "twice"),
            ("[[git]]\nhost = \"https://h\"\naccount = \"work\"\n", "host[:port]"),
            ("[[git]]\nhost = \"h\"\naccount = \"work\"\nusername = \"a:b\"\n", "username"),
            ("[[git]]\nhost = \"h\"\naccount = \"work\"\nprotocol = \"http\"\n", "protocol"),
            ("[[git]]\naccount = \"work\"\n", "host"),
        ];
        for (entry, named) in refused {
            let err = Config::parse(&format!("{base}{entry}")).unwrap_err();
            assert!(err.contains(named), "{entry}: {err}");
        }
        let err = Config::parse(&format!("{base}[[git]]\nhost = \"h\"\naccount = \"work\"\nhots = 1\n")).unwrap_err();
        assert!(err.contains("hots") && err.contains("line 8"), "{err}");
    }

    /// Lines a hand-edited config might hold by mistake.
    const MISTAKES: &[&str] = &[
        "clientid = \"typo\"",
        "client_id = 5",
        "scopes = \"openid\"",
        "scopes = [\"profile\"]",
        "issuer = \"ftp://x\"",
        "issuer = \"http://idp.example.com\"",
        "flow = \"carrier-pigeon\"",
        "store = \"plaintext\"",
        "idp_timeout = -1",
        "[accounts.\"\"]",
        "[accounts.work]",
        "default_account = \"nobody\"",
        "proactive_refresh = \"yes\"",
        "= 1",
        "[[accounts]]",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 2000, failure_persistence: None, ..Default::default() })]

        /// Whatever the damage, parsing never panics, and a refusal names where the problem
        /// is: a line (TOML's own errors) or the account and key (our checks).
        #[test]
        fn a_damaged_config_is_refused_with_its_place_named(
            edits in proptest::collection::vec((0usize..400, 0usize..3, proptest::char::any(), 0..MISTAKES.len()), 1..4)
        ) {
            let mut text: Vec<char> = GOOD.chars().collect();
            for (at, kind, c, mistake) in edits {
                let at = at % (text.len() + 1);
                match kind {
                    0 => text.insert(at, c),
                    1 if at < text.len() => { text.remove(at); }
                    _ => {
                        // A whole mistaken line, at the start of some line.
                        let line_start = text[..at].iter().rposition(|&c| c == '\n').map_or(0, |i| i + 1);
                        let line: Vec<char> = format!("{}\n", MISTAKES[mistake]).chars().collect();
                        text.splice(line_start..line_start, line);
                    }
                }
            }
            let text: String = text.into_iter().collect();
            if let Err(message) = Config::parse(&text) {
                let named = message.contains("line ")
                    || message.contains("store")
                    || message.contains("[accounts.")
                    || message.contains("default_account")
                    || message.contains("account name");
                proptest::prop_assert!(named, "{message}\n--- for ---\n{text}");
            }
        }
    }
}
