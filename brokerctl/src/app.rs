//! The command line itself, shared by brokerctl and brokerctl-dbus (which differ only in how
//! they reach the session bus).

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use serde::Serialize;
use serde_json::{Map, Value};
use tokenbroker::protocol::*;
use tokenbroker::{Error, ErrorKind};

use crate::args::{Cli, Command, ConsentCommand, FlowArg, ForwardCommand, GitOperation, MetadataCommand, SetupCommand};
use crate::exec;
use crate::human;
use crate::kube;
use crate::login::{self, LoginOptions};
use crate::transport::Transport;

/// The whole command line; `open_bus` is how this binary reaches the session bus.
pub fn main(open_bus: crate::transport::OpenBus) -> ExitCode {
    crate::transport::set_bus(open_bus);
    if let Some(exit) = git_credential_request() {
        return exit;
    }
    let result = match plain_request() {
        Some(Plain::Token(p, print)) => {
            Transport::connect(false).map_err(Failure::from).and_then(|client| token(&client, p, print))
        }
        Some(Plain::Kube { account, audience, id_token }) => Transport::connect(false)
            .map_err(Failure::from)
            .and_then(|client| kube_credential(&client, account, audience, id_token)),
        None => run(parse_cli()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brokerctl: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// `brokerctl git-credential …`, recognised without clap: git runs it on every fetch and push.
fn git_credential_request() -> Option<ExitCode> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let args: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
    match args[..] {
        ["git-credential", ref rest @ ..] => Some(crate::git_credential::main(rest)),
        ["--config", path, "git-credential", ref rest @ ..] => {
            let rest: Vec<&str> = ["--config", path].into_iter().chain(rest.iter().copied()).collect();
            Some(crate::git_credential::main(&rest))
        }
        _ => None,
    }
}

/// The command line through clap. brokerctl-dbus takes brokerctl's arguments as they are
/// (`--dbus` included: brokerctl hands them over) but does not offer `--dbus` in its help,
/// where it would mean nothing.
fn parse_cli() -> Cli {
    let mut command = Cli::command();
    if std::env::current_exe().is_ok_and(|p| p.ends_with("brokerctl-dbus")) {
        command = command.mut_arg("dbus", |a| a.hide(true));
    }
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// A request recognised without clap.
enum Plain {
    Token(GetAccessToken, Print),
    Kube { account: Option<String>, audience: Option<String>, id_token: bool },
}

/// `brokerctl token`, `brokerctl token --min-ttl N`, `brokerctl token --header` and
/// `brokerctl kube-credential` with the options `setup kubectl` writes, over the socket,
/// recognised without clap: scripts, git and kubectl run them once per API call, and building
/// clap's whole command tree is most of brokerctl's start-up. Anything else (other flags or
/// forms, D-Bus, help) goes through clap.
fn plain_request() -> Option<Plain> {
    if std::env::var_os("TOKENBROKER_TRANSPORT").is_some() {
        return None;
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let args: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
    match args[..] {
        ["token"] => Some(Plain::Token(GetAccessToken::default(), Print::Bare)),
        ["token", "--header"] => Some(Plain::Token(GetAccessToken::default(), Print::Header)),
        ["token", "--min-ttl", n] => {
            let p = GetAccessToken { min_ttl: Some(n.parse().ok()?), ..Default::default() };
            Some(Plain::Token(p, Print::Bare))
        }
        ["kube-credential", ref rest @ ..] => plain_kube(rest),
        _ => None,
    }
}

/// `kube-credential`'s options, each at most once, values that are no options themselves;
/// `--audience` and `--id-token` not together (clap says why).
fn plain_kube(mut rest: &[&str]) -> Option<Plain> {
    let (mut account, mut audience, mut id_token) = (None, None, false);
    loop {
        match rest {
            [] => break,
            ["--account", a, more @ ..] if account.is_none() && !a.starts_with('-') => {
                (account, rest) = (Some(a.to_string()), more)
            }
            ["--audience", a, more @ ..] if audience.is_none() && !a.starts_with('-') => {
                (audience, rest) = (Some(a.to_string()), more)
            }
            ["--id-token", more @ ..] if !id_token => (id_token, rest) = (true, more),
            _ => return None,
        }
    }
    (!(id_token && audience.is_some())).then_some(Plain::Kube { account, audience, id_token })
}

/// How `brokerctl token` prints the token.
#[derive(Clone, Copy)]
enum Print {
    Bare,
    Json,
    Header,
}

fn token(client: &Transport, p: GetAccessToken, print: Print) -> Result<(), Failure> {
    let t = client.get_access_token(p)?;
    match print {
        Print::Json => print_json(&t),
        Print::Bare => println!("{}", t.access_token.expose()),
        Print::Header => {
            // The contract's header for the token's type (`DPoP TOKEN`); alone it is refused by
            // a server that checks DPoP, so say what goes with it (stderr: stdout is the header).
            if crate::dpop::is_dpop(&t) {
                eprintln!("{}", crate::dpop::NEEDS_PROOF);
            }
            let Some(line) = exec::header(&t) else {
                return Err(Failure::Other(
                    "the token or its type has characters that do not belong in an HTTP header; not printing it".into(),
                ));
            };
            kube::print_secret((line + "\n").into_bytes());
        }
    }
    Ok(())
}

fn dropped_unanswered(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind::*;
    matches!(kind, ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof)
}

/// The contract's exit codes.
fn exit_code(e: &Failure) -> u8 {
    match e {
        Failure::Usage(_) => 2,
        Failure::NeedsLogin(_) => 3,
        // Not done: the question was not waiting, or nothing was remembered under the ID.
        Failure::Unhealthy | Failure::Unsafe(_) | Failure::NotFound(_) | Failure::Unreadable(_) | Failure::Other(_) => {
            1
        }
        Failure::CannotRun(code, _) => *code,
        Failure::Unreachable => 5,
        // The IdP could not be reached (or refused) to revoke: the token stays valid there.
        Failure::Unrevoked(_) => 4,
        // What a shell reports for a command ended by SIGINT.
        Failure::Interrupted => 130,
        // Another user's server is no daemon of ours: none is reachable, and what a script
        // does for that (start ours, fix the path, fall back) is the right thing here too.
        Failure::Broker(Error::Unreachable { .. } | Error::ForeignServer { .. }) => 5,
        // The connection was taken and then dropped unanswered: a daemon that stopped, or a
        // forwarded socket whose far end (sshd) accepts while the forward behind it is gone.
        Failure::Broker(Error::Io(e)) if dropped_unanswered(e.kind()) => 5,
        Failure::Broker(e) => match e.kind() {
            Some(ErrorKind::NotLoggedIn | ErrorKind::LoginRequired) => 3,
            Some(ErrorKind::IdpUnavailable) => 4,
            Some(ErrorKind::AccessDenied) => 6,
            _ => 1,
        },
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Broker(#[from] Error),
    #[error("some checks failed")]
    Unhealthy,
    #[error("the daemon is not reachable")]
    Unreachable,
    #[error("login cancelled")]
    Interrupted,
    #[error("{0}")]
    Unsafe(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unreadable(std::io::Error),
    #[error("{0}")]
    Other(String),
    /// Logged out here, but the IdP could not be told to revoke the refresh token.
    #[error("{0}")]
    Unrevoked(String),
    /// `exec`'s command could not be run: the shell's code for it, and why.
    #[error("{1}")]
    CannotRun(u8, String),
    /// `status`: an account without a valid session (exit 3, for scripts).
    #[error("{0}")]
    NeedsLogin(String),
}

fn run(cli: Cli) -> Result<(), Failure> {
    let dbus = cli.dbus || std::env::var("TOKENBROKER_TRANSPORT").is_ok_and(|t| t == "dbus");
    refuse_account(&cli)?;
    // Usage errors are found before the daemon is asked: exit 2 whether it runs or not.
    let metadata = match &cli.command {
        Command::Metadata { command: MetadataCommand::Set { values } } => Some(metadata_patch(cli.json, values)?),
        _ => None,
    };
    match cli.command {
        Command::Completions { shell } => {
            crate::completions::print(shell, &mut Cli::command());
            return Ok(());
        }
        Command::Doctor => return doctor(cli.json, dbus),
        // Read from the files: no daemon needed.
        Command::Audit { since } => return audit(since, cli.account.as_deref(), cli.json),
        // Reached only with other words than its own (`--json`, say): the same helper.
        Command::GitCredential { operation, config } => return git_credential(operation, config),
        Command::Setup { command } => return setup(command, cli.account.as_deref()),
        Command::Exec { ref env_name, .. } if !exec::env_name_ok(env_name) => {
            return Err(Failure::Usage(format!(
                "--env {:?} is no portable environment variable name (letters, digits and _, not starting with a digit)",
                human::terminal_text(env_name)
            )));
        }
        _ => {}
    }
    let client = Transport::connect(dbus)?;
    let account = cli.account.clone();
    match cli.command {
        Command::Token { min_ttl, scope, audience, header } => {
            let print = match (cli.json, header) {
                (_, true) => Print::Header,
                (true, false) => Print::Json,
                (false, false) => Print::Bare,
            };
            token(&client, GetAccessToken { account, min_ttl, scope, audience }, print)?
        }
        Command::Exec { audience, env_name, command } => {
            let t = client.get_access_token(GetAccessToken { account, audience, ..Default::default() })?;
            crate::dpop::bearer_only(&t, "exec").map_err(Failure::Other)?;
            drop(client);
            let (code, why) = exec::exec(&t, &env_name, &command);
            return Err(Failure::CannotRun(code, why));
        }
        Command::KubeCredential { audience, id_token } => kube_credential(&client, account, audience, id_token)?,
        Command::Dpop { method, url, nonce, audience } => {
            let request = crate::dpop::Request { account, method, url, nonce, audience };
            crate::dpop::dpop(&client, request, cli.json)?
        }
        Command::IdToken { min_ttl } => {
            let t = client.get_id_token(GetIdToken { account, min_ttl })?;
            if cli.json { print_json(&t) } else { println!("{}", t.id_token.expose()) }
        }
        Command::Profile { refresh } => {
            let p = client.get_profile(GetProfile { account, refresh })?;
            if cli.json { print_json(&p) } else { print!("{}", human::profile(&p)) }
        }
        Command::Status => {
            let s = crate::status::select(client.status()?, account.as_deref()).map_err(Failure::Other)?;
            if cli.json {
                print_json(&s)
            } else {
                print!("{}", human::status(&s))
            }
            if let Some(why) = crate::status::not_valid(&s) {
                return Err(Failure::NeedsLogin(why));
            }
        }
        Command::Logout => {
            let done = client.logout(AccountOnly { account })?;
            let told = crate::logout::tell(&done);
            if cli.json {
                print_json(&done)
            } else {
                print!("{}", told.text)
            }
            if let Some(why) = told.unrevoked {
                return Err(Failure::Unrevoked(why));
            }
        }
        Command::Metadata { command: MetadataCommand::Get } => {
            let m = client.get_metadata(AccountOnly { account })?;
            print_json(&m.user_metadata);
        }
        Command::Metadata { command: MetadataCommand::Set { .. } } => {
            let user_metadata = metadata.unwrap_or_default();
            let m = client.update_metadata(UpdateMetadata { account, user_metadata })?;
            print_json(&m.user_metadata);
        }
        Command::Doctor
        | Command::Audit { .. }
        | Command::GitCredential { .. }
        | Command::Setup { .. }
        | Command::Completions { .. } => {
            unreachable!("handled above")
        }
        Command::Consent { command } => consent(&client, command, cli.json)?,
        Command::Forward { command } => crate::forward::run(&client, command, account, cli.json)?,
        Command::Login { flow, no_browser, browser_command, no_qr, force } => {
            let flow = flow.map(|f| match f {
                FlowArg::Device => Flow::Device,
                FlowArg::Code => Flow::Code,
            });
            let options = LoginOptions { dbus, json: cli.json, no_browser, browser_command, no_qr, force };
            login::login(&client, Login { account, flow }, &options)?;
        }
    }
    Ok(())
}

/// `--account` is global, so clap takes it everywhere: refused, before anything is asked,
/// by the commands that have no use for it, rather than silently ignored.
fn refuse_account(cli: &Cli) -> Result<(), Failure> {
    let Some(account) = &cli.account else { return Ok(()) };
    let why = match cli.command {
        Command::Doctor => "doctor checks every account",
        Command::Consent { .. } => "consent answers questions by their ID, whatever the account",
        Command::GitCredential { .. } => {
            "git-credential takes the account from the config's [[git]] entry for the host"
        }
        Command::Completions { .. } => "completions are the same for every account",
        Command::Forward { command: ForwardCommand::List | ForwardCommand::Remove { .. } } => {
            "forwards are named, whatever their account"
        }
        _ => return Ok(()),
    };
    Err(Failure::Usage(format!("--account {:?} is not used here: {why}", human::terminal_text(account))))
}

fn git_credential(operation: GitOperation, config: Option<std::path::PathBuf>) -> Result<(), Failure> {
    use crate::git_credential::Operation;
    let op = match operation {
        GitOperation::Get => Operation::Get,
        GitOperation::Store => Operation::Store,
        GitOperation::Erase => Operation::Erase,
        GitOperation::Capability => Operation::Capability,
    };
    std::process::exit(i32::from(crate::git_credential::serve(op, config)))
}

/// `brokerctl kube-credential`: the ExecCredential kubectl asked for, with a token that lasts
/// at least [`kube::MIN_TTL`] when the IdP's tokens live that long (else as long as they do).
fn kube_credential(
    client: &Transport,
    account: Option<String>,
    audience: Option<String>,
    id_token: bool,
) -> Result<(), Failure> {
    let exec_info = std::env::var("KUBERNETES_EXEC_INFO").ok();
    let version = kube::api_version(exec_info.as_deref()).map_err(Failure::Other)?;
    let lasting = |ask: &dyn Fn(Option<u64>) -> tokenbroker::Result<(Secret, i64)>| match ask(Some(kube::MIN_TTL)) {
        Err(e) if e.kind() == Some(ErrorKind::InvalidParams) => ask(None),
        other => other,
    };
    let (token, expires_at) = if id_token {
        lasting(&|min_ttl| {
            let t = client.get_id_token(GetIdToken { account: account.clone(), min_ttl })?;
            Ok((t.id_token, t.expires_at))
        })?
    } else {
        lasting(&|min_ttl| {
            let p = GetAccessToken { account: account.clone(), audience: audience.clone(), min_ttl, scope: None };
            let t = client.get_access_token(p)?;
            crate::dpop::bearer_only(&t, "kubectl")
                .map_err(|message| Error::Broker { kind: ErrorKind::NotSupported, message })?;
            Ok((t.access_token, t.expires_at))
        })?
    };
    kube::print_secret(kube::credential(version, token.expose(), expires_at));
    Ok(())
}

/// `brokerctl setup …`: print, or apply with the tool itself, what makes a tool use brokerctl.
fn setup(command: SetupCommand, account: Option<&str>) -> Result<(), Failure> {
    let (context, audience, id_token, write) = match command {
        SetupCommand::Kubectl { context, audience, id_token, write } => (context, audience, id_token, write),
        SetupCommand::Git { host, audience, username, config, yes } => {
            return setup_git(&host, account, audience.as_deref(), username.as_deref(), config, yes);
        }
    };
    let setup =
        kube::Setup { context: &context, account, audience: audience.as_deref(), id_token, command: own_path() };
    if !write {
        print!("{}", setup.yaml());
        return Ok(());
    }
    for args in setup.kubectl_commands().map_err(Failure::Usage)? {
        let status = std::process::Command::new("kubectl").args(&args).stdout(std::process::Stdio::null()).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(Failure::Other(format!("`kubectl {}` failed ({s})", args.join(" ")))),
            Err(e) => return Err(Failure::Other(format!("cannot run kubectl: {e}"))),
        }
    }
    println!(
        "Context {context:?} now uses user {:?}, which runs `{} {}`.",
        setup.user(),
        setup.command,
        setup.args().join(" ")
    );
    Ok(())
}

/// `brokerctl setup git`: show the plan, then write it (after a yes, or with `--yes`).
fn setup_git(
    host: &str,
    account: Option<&str>,
    audience: Option<&str>,
    username: Option<&str>,
    config: Option<std::path::PathBuf>,
    yes: bool,
) -> Result<(), Failure> {
    use std::io::{BufRead, IsTerminal};
    let account =
        account.ok_or_else(|| Failure::Usage("setup git needs --account A (the account for this host)".into()))?;
    let path = crate::git_hosts::config_path(config)
        .ok_or_else(|| Failure::Usage("no config path: set --config, TOKENBROKER_CONFIG or HOME".into()))?;
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Failure::Other(format!("cannot read {}: {e}", path.display()))),
    };
    let wanted = crate::setup_git::Wanted { host, account, audience, username };
    let plan = crate::setup_git::plan(&path, &text, &wanted).map_err(Failure::Usage)?;
    print!("{}", crate::setup_git::describe(&plan));
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Failure::Usage("nothing written: no terminal to ask; --yes writes it".into()));
        }
        print!("Write both? [y/N] ");
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(Failure::Usage("nothing written".into()));
        }
    }
    crate::setup_git::apply(&plan).map_err(Failure::Other)?;
    println!("git now asks tokenbroker for {} (account {account}).", host.to_ascii_lowercase());
    Ok(())
}

/// This brokerctl's own path, for a tool to run (brokerctl-dbus's sibling when that is what
/// runs: tools call brokerctl).
fn own_path() -> String {
    let exe = std::env::current_exe().ok();
    let exe = exe.map(|p| if p.ends_with("brokerctl-dbus") { p.with_file_name("brokerctl") } else { p });
    exe.and_then(|p| p.to_str().map(str::to_owned)).unwrap_or_else(|| "brokerctl".into())
}

/// `brokerctl consent …`: the questions of the policy's "ask", answered from a terminal.
fn consent(client: &Transport, command: ConsentCommand, json: bool) -> Result<(), Failure> {
    let not_waiting = |id: &str| {
        Failure::NotFound(format!(
            "no question {:?} is waiting (answered already, ended unanswered, or never asked); \
             `brokerctl consent list` shows those that wait",
            human::terminal_text(id)
        ))
    };
    match command {
        ConsentCommand::List => {
            let c = client.list_consents()?;
            if json { print_json(&c) } else { print!("{}", human::consents(&c, human::now())) }
        }
        ConsentCommand::Allow { id, always } => {
            let done = client.answer_consent(AnswerConsent { id: id.clone(), allow: true, always })?;
            if json {
                print_json(&done);
            }
            if !done.answered {
                return Err(not_waiting(&id));
            }
            if !json {
                let how = if always { "always (until `brokerctl consent revoke`)" } else { "once" };
                println!("Allowed {how}: question {}.", human::terminal_text(&id));
            }
        }
        ConsentCommand::Deny { id } => {
            let done = client.answer_consent(AnswerConsent { id: id.clone(), allow: false, always: false })?;
            if json {
                print_json(&done);
            }
            if !done.answered {
                return Err(not_waiting(&id));
            }
            if !json {
                println!("Denied: question {}; its requests are refused.", human::terminal_text(&id));
            }
        }
        ConsentCommand::Revoke { id } => {
            let done = client.revoke_consent(&id)?;
            if json {
                print_json(&done);
            }
            if !done.revoked {
                return Err(Failure::NotFound(format!(
                    "nothing is remembered under {:?}; `brokerctl consent list` shows what is",
                    human::terminal_text(&id)
                )));
            }
            if !json {
                println!("Forgotten: {}; that program is asked again next time.", human::terminal_text(&id));
            }
        }
    }
    Ok(())
}

/// `brokerctl doctor` (see `doctor`): its verdict as an exit code.
fn doctor(json: bool, dbus: bool) -> Result<(), Failure> {
    match crate::doctor::doctor(json, dbus) {
        crate::doctor::Verdict::Healthy => Ok(()),
        crate::doctor::Verdict::Unhealthy => Err(Failure::Unhealthy),
        crate::doctor::Verdict::Unreachable => Err(Failure::Unreachable),
    }
}

/// `brokerctl audit`: the trail's records, filtered, as a table or as their JSON lines.
fn audit(since: Option<std::time::Duration>, account: Option<&str>, json: bool) -> Result<(), Failure> {
    use crate::audit;
    let Some(dir) = audit::state_dir() else {
        return Err(Failure::Usage("no state directory: set XDG_STATE_HOME or HOME".into()));
    };
    let trail = audit::read(&dir).map_err(Failure::Unreadable)?;
    if trail.unreadable > 0 {
        eprintln!("brokerctl: skipped {} line(s) of the audit trail that are not records", trail.unreadable);
    }
    if !trail.found {
        eprintln!("brokerctl: no audit trail in {} yet", dir.display());
    }
    let since = since.map(|d| std::time::SystemTime::now().checked_sub(d).unwrap_or(std::time::UNIX_EPOCH));
    let lines = audit::select(&trail.lines, since, account);
    let mut out = std::io::stdout().lock();
    let _ = if json {
        lines.iter().try_for_each(|l| writeln!(out, "{}", audit::json_line(&l.raw)))
    } else if lines.is_empty() {
        Ok(())
    } else {
        out.write_all(audit::table(&lines).as_bytes())
    };
    let _ = out.flush();
    Ok(())
}

/// `KEY=VALUE...` (string values; `KEY=` deletes) or, with `--json`, one JSON object.
fn metadata_patch(json: bool, values: &[String]) -> Result<Map<String, Value>, Failure> {
    if json {
        let [text] = values else {
            return Err(Failure::Usage("metadata set --json takes exactly one JSON object".into()));
        };
        return match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(Failure::Usage("metadata set --json needs a JSON object, like '{\"theme\":\"dark\"}'".into())),
        };
    }
    let mut patch = Map::new();
    for pair in values {
        let Some((key, value)) = pair.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(Failure::Usage(format!("expected KEY=VALUE, got {pair:?}")));
        };
        let value = if value.is_empty() { Value::Null } else { Value::String(value.into()) };
        patch.insert(key.into(), value);
    }
    Ok(patch)
}

pub(crate) fn print_json(value: &impl Serialize) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = writeln!(out);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("brokerctl").chain(args.iter().copied())).unwrap()
    }

    /// Found before any connection: these are usage errors whether a daemon runs or not
    /// (without one, connecting first made them exit 5).
    #[test]
    fn usage_errors_come_before_the_daemon_is_asked() {
        for args in [
            &["metadata", "set", "=x"][..],
            &["metadata", "set", "novalue"],
            &["metadata", "set", "--json", "[1]"],
            &["doctor", "--account", "work"],
            &["consent", "list", "--account", "work"],
            &["--account", "work", "completions", "bash"],
            &["git-credential", "get", "--account", "work"],
        ] {
            assert!(matches!(run(cli(args)), Err(Failure::Usage(_))), "{args:?}");
        }
        assert_eq!(exit_code(&Failure::Usage(String::new())), 2);
    }

    #[test]
    fn a_value_is_a_string_and_only_an_empty_one_or_json_null_deletes() {
        let patch = metadata_patch(false, &["a=null".into(), "b=".into(), "c=x=y".into()]).unwrap();
        assert_eq!(Value::Object(patch), serde_json::json!({"a": "null", "b": null, "c": "x=y"}));
        let patch = metadata_patch(true, &[r#"{"a":null,"n":1}"#.into()]).unwrap();
        assert_eq!(Value::Object(patch), serde_json::json!({"a": null, "n": 1}));
    }

    #[test]
    fn kube_credential_is_recognised_without_clap_only_in_the_forms_setup_writes() {
        let kube = |args: &[&str]| match plain_kube(args) {
            Some(Plain::Kube { account, audience, id_token }) => Some((account, audience, id_token)),
            _ => None,
        };
        assert_eq!(kube(&[]), Some((None, None, false)));
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(kube(&["--account", "w", "--audience", "https://k"]), Some((s("w"), s("https://k"), false)));
        assert_eq!(kube(&["--id-token", "--account", "w"]), Some((s("w"), None, true)));
        for clap in [
            &["--account"][..],
            &["--account", "--id-token"],
            &["--account", "a", "--account", "b"],
            &["--id-token", "--id-token"],
            &["--id-token", "--audience", "x"],
            &["--account=w"],
            &["--help"],
            &["-a", "w"],
        ] {
            assert!(kube(clap).is_none(), "{clap:?} is left to clap");
        }
    }
}
