use clap::{Parser, Subcommand, ValueEnum};

/// Talk to tokenbrokerd: log in, get tokens, see who you are.
#[derive(Parser)]
#[command(name = "brokerctl", version, about)]
pub struct Cli {
    /// Use the D-Bus session bus instead of the Unix socket.
    #[arg(long, global = true)]
    pub dbus: bool,
    /// Print one JSON document per line instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
    /// The account to use [default: the daemon's default account].
    #[arg(long, short = 'a', global = true, value_name = "A")]
    pub account: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Log in (device code or browser flow) and wait until the login is approved.
    Login {
        #[arg(long, value_enum)]
        flow: Option<FlowArg>,
        /// Do not open a browser; just print the URL.
        #[arg(long)]
        no_browser: bool,
    },
    /// Print an access token, fresh for at least --min-ttl seconds.
    Token {
        /// The token is valid for at least this many more seconds (refreshed first if needed).
        #[arg(long, value_name = "SECS")]
        min_ttl: Option<u64>,
        /// Space-separated scopes the token must carry (each granted at login).
        #[arg(long, value_name = "S")]
        scope: Option<String>,
        /// A token for this API (one of the account's `audience`, `audiences`, `management_api`).
        #[arg(long, value_name = "AUD")]
        audience: Option<String>,
        /// Print an HTTP header line instead: `Authorization: Bearer TOKEN` (the token's own
        /// type: `DPoP TOKEN` for DPoP tokens), for `curl -H @-` or `curl -H "$(…)"`.
        #[arg(long, conflicts_with = "json")]
        header: bool,
    },
    /// Run CMD with an access token in its environment ($TOKEN, or --env NAME); exit with CMD's
    /// status.
    ///
    /// brokerctl replaces itself with CMD (execvp): CMD's exit status, or the signal that ended
    /// it, is what the caller sees (a shell reports a signal as 128+N). The token is in CMD's
    /// environment only, never on a command line. A CMD that cannot be run exits 127 (not
    /// found) or 126 (not executable), as shells do; brokerctl's own errors keep their codes
    /// (3: log in first, 5: no daemon, ...).
    Exec {
        /// A token for this API (one of the account's `audience`, `audiences`, `management_api`).
        #[arg(long, value_name = "AUD")]
        audience: Option<String>,
        /// The environment variable that holds the token: letters, digits and `_`, not starting
        /// with a digit.
        #[arg(long = "env", value_name = "NAME", default_value = "TOKEN")]
        env_name: String,
        /// The command and its arguments (after `--`).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
        command: Vec<std::ffi::OsString>,
    },
    /// The kubectl exec credential plugin: print an ExecCredential with a token for kubectl.
    ///
    /// apiVersion is KUBERNETES_EXEC_INFO's (client.authentication.k8s.io/v1 or /v1beta1),
    /// else v1. The token is valid for at least 60 more seconds when the IdP's tokens live that
    /// long (kubectl reuses it until `expirationTimestamp`, the token's own expiry). Never
    /// prompts: without a session it exits 3 and says which `brokerctl login` to run.
    KubeCredential {
        /// A token for this API (one of the account's `audience`, `audiences`, `management_api`).
        #[arg(long, value_name = "AUD", conflicts_with = "id_token")]
        audience: Option<String>,
        /// Give the account's ID token instead (API servers with `--oidc-issuer-url`).
        #[arg(long)]
        id_token: bool,
    },
    /// Print (or apply) the configuration that makes a tool use brokerctl.
    Setup {
        #[command(subcommand)]
        command: SetupCommand,
    },
    /// Print the ID token.
    IdToken {
        #[arg(long, value_name = "SECS")]
        min_ttl: Option<u64>,
    },
    /// Show the user's profile (OIDC userinfo).
    Profile {
        /// Fetch it anew instead of using the daemon's cache.
        #[arg(long)]
        refresh: bool,
    },
    /// Read or change the user's metadata.
    Metadata {
        #[command(subcommand)]
        command: MetadataCommand,
    },
    /// Revoke the session at the identity provider and forget it.
    Logout,
    /// Show every account and its state.
    Status,
    /// Check that the daemon runs, its config parses, the session store answers and each identity
    /// provider is reachable; say what to do about each failure.
    Doctor,
    /// Answer the policy's questions ("ask"): which program may use which account.
    Consent {
        #[command(subcommand)]
        command: ConsentCommand,
    },
    /// Print the audit trail: every grant and refusal of a token, profile or metadata request,
    /// oldest first, with the program that asked and the rule that decided.
    ///
    /// Read from $XDG_STATE_HOME/tokenbroker/audit.jsonl (and the rotated audit.jsonl.1 and .2);
    /// the daemon need not be running. --account keeps one account's records; --json prints the
    /// records as they are written, one JSON object per line.
    Audit {
        /// Only records from the last DURATION: 10m, 2h, 1d, "1h 30m".
        #[arg(long, value_name = "DURATION", value_parser = crate::audit::parse_since)]
        since: Option<std::time::Duration>,
    },
    /// git's credential helper (also installed as git-credential-tokenbroker): reads git's
    /// request on stdin and, for a host a [[git]] entry of the config maps to an account,
    /// answers with the account's access token.
    ///
    /// `get` prints username, password (the token) and password_expiry_utc, or, when git
    /// announced capability[]=authtype (git 2.46+), a Bearer credential; `erase` tells the
    /// broker the token was refused, so the next `get` refreshes it; `store` does nothing;
    /// `capability` lists what the helper understands. Hosts no entry maps, and plain http
    /// to other hosts than this machine, get no answer (exit 0), so that other helpers run.
    /// Never prompts.
    GitCredential {
        #[arg(value_enum)]
        operation: GitOperation,
        /// The config file [default: $TOKENBROKER_CONFIG, else
        /// $XDG_CONFIG_HOME/tokenbroker/config.toml].
        #[arg(long, value_name = "PATH")]
        config: Option<std::path::PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum GitOperation {
    Get,
    Store,
    Erase,
    Capability,
}

#[derive(Subcommand)]
pub enum ConsentCommand {
    /// Show the questions waiting for an answer and the programs always allowed.
    List,
    /// Allow the program of a waiting question (once, or always with --always).
    ///
    /// Exits 1 if no question waits under ID (answered already, ended unanswered, never asked).
    Allow {
        /// The question's ID, as `brokerctl consent list` shows it.
        id: String,
        /// Remember the answer: the program is not asked again for this account and API.
        #[arg(long)]
        always: bool,
    },
    /// Refuse the program of a waiting question: its requests fail with access_denied.
    ///
    /// Exits 1 if no question waits under ID.
    Deny {
        /// The question's ID, as `brokerctl consent list` shows it.
        id: String,
    },
    /// Forget an "always": the program is asked again next time.
    ///
    /// Exits 1 if nothing is remembered under ID.
    Revoke {
        /// The remembered answer's ID, as `brokerctl consent list` shows it.
        id: String,
    },
}

#[derive(Subcommand)]
pub enum SetupCommand {
    /// The kubeconfig `users[].user.exec` stanza that runs `brokerctl kube-credential`.
    ///
    /// Prints the user entry (named tokenbroker-CONTEXT) for the kubeconfig. With --write, applies
    /// it with kubectl itself (`kubectl config set-credentials` and `kubectl config set-context
    /// CONTEXT --user=…`, in the kubeconfig kubectl uses: $KUBECONFIG or ~/.kube/config).
    Kubectl {
        /// The kubeconfig context that is to use the broker's tokens.
        #[arg(long, value_name = "C")]
        context: String,
        /// A token for this API (one of the account's `audience`, `audiences`, `management_api`).
        #[arg(long, value_name = "AUD", conflicts_with = "id_token")]
        audience: Option<String>,
        /// Give kubectl the ID token (API servers with `--oidc-issuer-url`).
        #[arg(long)]
        id_token: bool,
        /// Apply it with kubectl instead of printing it.
        #[arg(long)]
        write: bool,
    },
    /// Map a git host to an account: a `[[git]]` entry in the config and git's helper lines.
    ///
    /// Shows the entry it appends to the config (the account must exist there; comments and
    /// layout stay) and the `git config --global` lines it runs (an empty helper first, so
    /// helpers set before, such as store, neither answer for the host nor keep its tokens),
    /// then writes both: after a yes on a terminal, or with --yes. With no terminal and no
    /// --yes it only shows them and exits 2. Needs --account.
    Git {
        /// The git host as git names it: host or host:port (plain http only on loopback).
        #[arg(long, value_name = "H")]
        host: String,
        /// Tokens for this API (one of the account's `audience`, `audiences`).
        #[arg(long, value_name = "AUD")]
        audience: Option<String>,
        /// The username git sends with the token (default "oauth2").
        #[arg(long, value_name = "U")]
        username: Option<String>,
        /// The config to write (default: TOKENBROKER_CONFIG, else the XDG config path).
        #[arg(long, value_name = "PATH")]
        config: Option<std::path::PathBuf>,
        /// Write without asking.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
pub enum MetadataCommand {
    /// Print user_metadata as JSON.
    Get,
    /// KEY=VALUE... sets string values (KEY= deletes); --json '{...}' merges an object.
    Set {
        #[arg(value_name = "KEY=VALUE | JSON", required = true)]
        values: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FlowArg {
    Device,
    Code,
}
