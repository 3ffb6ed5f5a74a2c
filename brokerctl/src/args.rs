use clap::{Parser, Subcommand, ValueEnum};

/// Talk to tokenbrokerd: log in, get tokens, see who you are.
#[derive(Parser)]
#[command(name = "brokerctl", version, about, after_help = AFTER_HELP)]
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

/// The exit codes and the environment, under `brokerctl --help` and in brokerctl(1).
pub const AFTER_HELP: &str = "\
Exit codes:
  0    ok
  1    another error (an unknown account, a failed check, ...)
  2    usage error (nothing was sent to the daemon)
  3    not logged in, or the identity provider wants a new login (`brokerctl login`);
       `status`: an account without a valid session
  4    the identity provider is unavailable
  5    the daemon is not reachable
  6    access denied (the policy, or the person asked, refused)
  130  `login` ended by Ctrl-C (the login is cancelled at the daemon)

Environment:
  TOKENBROKER_SOCKET     the daemon's socket
                         [default: $XDG_RUNTIME_DIR/tokenbroker/broker.sock]
  TOKENBROKER_TRANSPORT  `dbus`: use the session bus, as --dbus does
  TOKENBROKER_CONFIG     the config file, read for [[git]] and browser_command
                         [default: $XDG_CONFIG_HOME/tokenbroker/config.toml]
  BROWSER                browsers for `login`, colon-separated, tried in turn (after
                         --browser-command and the config's browser_command)
  NO_COLOR               set and not empty: no colours or bold text
  XDG_STATE_HOME         where `audit` reads the audit trail [default: ~/.local/state]
  KUBERNETES_EXEC_INFO   set by kubectl for `kube-credential`: the apiVersion to answer";

#[derive(Subcommand)]
pub enum Command {
    /// Log in (device code or browser flow) and wait until the login is approved.
    ///
    /// An account whose token is current is left as it is (exit 0) unless --force.
    /// The device flow shows a QR code of the login's address when stdout is a terminal.
    Login {
        /// The login flow [default: the account's `flow`, else device].
        #[arg(long, value_enum)]
        flow: Option<FlowArg>,
        /// Do not open a browser; just print the URL.
        #[arg(long)]
        no_browser: bool,
        /// The browser to open, as a command line split at spaces (`%s` stands for the URL,
        /// else it goes last) [default: the config's browser_command, else $BROWSER, else
        /// xdg-open or open].
        #[arg(long, value_name = "CMD", conflicts_with = "no_browser")]
        browser_command: Option<String>,
        /// Do not show the QR code of the device flow's address.
        #[arg(long)]
        no_qr: bool,
        /// Log in again even if the account's token is current.
        #[arg(long)]
        force: bool,
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
    /// Print the two HTTP headers of one request with a DPoP-bound token (RFC 9449), for an
    /// account with `dpop = true`: `Authorization: DPoP TOKEN` and `DPoP: PROOF`.
    ///
    /// The proof is signed by the daemon with the account's key, for this method and URL only,
    /// and used once: ask again for every request (`curl -H @<(brokerctl dpop …)`).
    Dpop {
        /// The request's HTTP method (GET, POST, …).
        #[arg(long, value_name = "M")]
        method: String,
        /// The request's URL (https, or http to this machine); its query is not part of the proof.
        #[arg(long, value_name = "U")]
        url: String,
        /// The server's DPoP-Nonce, when it answered 401 with use_dpop_nonce.
        #[arg(long, value_name = "N")]
        nonce: Option<String>,
        /// A token for this API (one of the account's `audience`, `audiences`, `management_api`).
        #[arg(long, value_name = "AUD")]
        audience: Option<String>,
    },
    /// Print the ID token.
    IdToken {
        /// The ID token is valid for at least this many more seconds (refreshed first if needed).
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
    /// Show every account (or the --account) and its state.
    ///
    /// Exits 0 when the account shown (without --account: every account) holds a valid
    /// session, 3 when one does not (logged out, or the identity provider wants a new login),
    /// so that scripts can test it.
    Status,
    /// Check that the daemon runs, its config parses, the session store answers and each identity
    /// provider is reachable; say what to do about each failure.
    Doctor,
    /// Answer the policy's questions ("ask"): which program may use which account.
    Consent {
        #[command(subcommand)]
        command: ConsentCommand,
    },
    /// Serve a restricted socket for an SSH session or a container: tokens of one account
    /// (and only the audiences given), nothing else, until its TTL.
    ///
    /// The daemon serves it at $XDG_RUNTIME_DIR/tokenbroker/forward/NAME.sock (beside the main
    /// socket); its callers are `door = "forward:NAME"` for the policy and the audit trail. It
    /// survives daemon restarts until its TTL. `add` prints the `ssh -R` option line to use.
    Forward {
        #[command(subcommand)]
        command: ForwardCommand,
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
        /// What git asks the helper to do.
        #[arg(value_enum)]
        operation: GitOperation,
        /// The config file [default: $TOKENBROKER_CONFIG, else
        /// $XDG_CONFIG_HOME/tokenbroker/config.toml].
        #[arg(long, value_name = "PATH")]
        config: Option<std::path::PathBuf>,
    },
    /// Print the shell completion script for SHELL.
    ///
    /// bash: `brokerctl completions bash > ~/.local/share/bash-completion/completions/brokerctl`;
    /// zsh: `brokerctl completions zsh > ~/.zfunc/_brokerctl` (with ~/.zfunc on $fpath);
    /// fish: `brokerctl completions fish > ~/.config/fish/completions/brokerctl.fish`.
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: ShellArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum GitOperation {
    Get,
    Store,
    Erase,
    Capability,
}

#[derive(Subcommand)]
pub enum ForwardCommand {
    /// Open (or replace) the forward NAME for --account [default: the daemon's default account].
    ///
    /// Without --audience the forward serves only the account's own token; with it, only
    /// tokens for those audiences. Prints the `ssh -R` line and the far side's environment.
    Add {
        /// The forward's name: letters, digits, '-', '_' and '.' (not first), at most 64.
        name: String,
        /// An audience the far side may ask tokens for (repeat for more).
        #[arg(long = "audience", value_name = "AUD")]
        audiences: Vec<String>,
        /// How long it lives: 30m, 8h, 2d [default: 8h; at most 7d].
        #[arg(long, value_name = "DURATION", value_parser = crate::forward::parse_ttl)]
        ttl: Option<u64>,
    },
    /// Show the forwards being served.
    List,
    /// End a forward now: its socket goes and its connections are dropped.
    ///
    /// Exits 1 if there is no forward NAME.
    Remove {
        /// The forward's name, as `brokerctl forward list` shows it.
        name: String,
    },
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
    ///
    /// A VALUE is always a string: `KEY=null` stores the word "null". To delete a key, give
    /// it no value (`KEY=`) or set it to JSON null (`--json '{"KEY":null}'`).
    Set {
        /// KEY=VALUE pairs, or with --json one JSON object.
        #[arg(value_name = "KEY=VALUE | JSON", required = true)]
        values: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FlowArg {
    Device,
    Code,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every option and argument of every command, with the command's path.
    fn all_args(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
        for arg in command.get_arguments() {
            out.push((path.to_owned(), arg.clone()));
        }
        for sub in command.get_subcommands() {
            all_args(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_option_says_what_it_does() {
        let mut command = Cli::command();
        command.build();
        let mut args = Vec::new();
        all_args(&command, "brokerctl", &mut args);
        let undescribed: Vec<String> = args
            .iter()
            .filter(|(_, a)| a.get_help().is_none() && a.get_long_help().is_none())
            .map(|(path, a)| format!("{path} {}", a.get_id()))
            .collect();
        assert!(undescribed.is_empty(), "options without a description: {undescribed:?}");
    }

    #[test]
    fn help_lists_the_exit_codes_and_the_environment() {
        let help = Cli::command().render_help().to_string();
        for part in [
            "Exit codes:",
            "130",
            "TOKENBROKER_SOCKET",
            "TOKENBROKER_TRANSPORT",
            "TOKENBROKER_CONFIG",
            "BROWSER",
            "NO_COLOR",
        ] {
            assert!(help.contains(part), "{part} missing from --help:\n{help}");
        }
        let login = Cli::command().find_subcommand_mut("login").unwrap().render_long_help().to_string();
        for part in ["--force", "--no-qr", "--browser-command", "--flow"] {
            assert!(login.contains(part), "{part}:\n{login}");
        }
    }
}
