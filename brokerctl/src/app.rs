//! The command line itself, shared by brokerctl and brokerctl-dbus (which differ only in how
//! they reach the session bus).

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;
use serde_json::{Map, Value};
use tokenbroker::protocol::*;
use tokenbroker::{Error, ErrorKind};

use crate::args::{Cli, Command, ConsentCommand, FlowArg, GitOperation, MetadataCommand, SetupCommand};
use crate::challenge;
use crate::exec;
use crate::handoff::Handoff;
use crate::human;
use crate::interrupt;
use crate::kube;
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
        None => run(Cli::parse()),
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

/// The contract's exit codes.
fn exit_code(e: &Failure) -> u8 {
    match e {
        Failure::Usage(_) => 2,
        // Not done: the question was not waiting, or nothing was remembered under the ID.
        Failure::Unhealthy | Failure::Unsafe(_) | Failure::NotFound(_) | Failure::Unreadable(_) | Failure::Other(_) => {
            1
        }
        Failure::CannotRun(code, _) => *code,
        Failure::Unreachable => 5,
        // What a shell reports for a command ended by SIGINT.
        Failure::Interrupted => 130,
        // Another user's server is no daemon of ours: none is reachable, and what a script
        // does for that (start ours, fix the path, fall back) is the right thing here too.
        Failure::Broker(Error::Unreachable { .. } | Error::ForeignServer { .. }) => 5,
        Failure::Broker(e) => match e.kind() {
            Some(ErrorKind::NotLoggedIn | ErrorKind::LoginRequired) => 3,
            Some(ErrorKind::IdpUnavailable) => 4,
            Some(ErrorKind::AccessDenied) => 6,
            _ => 1,
        },
    }
}

#[derive(Debug, thiserror::Error)]
enum Failure {
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
    /// `exec`'s command could not be run: the shell's code for it, and why.
    #[error("{1}")]
    CannotRun(u8, String),
}

fn run(cli: Cli) -> Result<(), Failure> {
    let dbus = cli.dbus || std::env::var("TOKENBROKER_TRANSPORT").is_ok_and(|t| t == "dbus");
    match cli.command {
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
            drop(client);
            let (code, why) = exec::exec(&t, &env_name, &command);
            return Err(Failure::CannotRun(code, why));
        }
        Command::KubeCredential { audience, id_token } => kube_credential(&client, account, audience, id_token)?,
        Command::IdToken { min_ttl } => {
            let t = client.get_id_token(GetIdToken { account, min_ttl })?;
            if cli.json { print_json(&t) } else { println!("{}", t.id_token.expose()) }
        }
        Command::Profile { refresh } => {
            let p = client.get_profile(GetProfile { account, refresh })?;
            if cli.json { print_json(&p) } else { print!("{}", human::profile(&p)) }
        }
        Command::Status => {
            let s = client.status()?;
            if cli.json { print_json(&s) } else { print!("{}", human::status(&s)) }
        }
        Command::Logout => {
            let done = client.logout(AccountOnly { account })?;
            if cli.json {
                print_json(&done)
            } else {
                let how = if done.revoked {
                    "session revoked at the identity provider"
                } else {
                    "forgotten here; the identity provider was not told"
                };
                println!("Logged out of {} ({how}).", done.account);
                if let Some(url) = &done.end_session_url {
                    println!("To end the identity provider's browser session too, open:\n    {url}");
                }
            }
        }
        Command::Metadata { command: MetadataCommand::Get } => {
            let m = client.get_metadata(AccountOnly { account })?;
            print_json(&m.user_metadata);
        }
        Command::Metadata { command: MetadataCommand::Set { values } } => {
            let user_metadata = metadata_patch(cli.json, &values)?;
            let m = client.update_metadata(UpdateMetadata { account, user_metadata })?;
            print_json(&m.user_metadata);
        }
        Command::Doctor | Command::Audit { .. } | Command::GitCredential { .. } | Command::Setup { .. } => {
            unreachable!("handled above")
        }
        Command::Consent { command } => consent(&client, command, cli.json)?,
        Command::Login { flow, no_browser } => {
            let flow = flow.map(|f| match f {
                FlowArg::Device => Flow::Device,
                FlowArg::Code => Flow::Code,
            });
            login(&client, dbus, Login { account, flow }, cli.json, no_browser)?;
        }
    }
    Ok(())
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

fn login(client: &Transport, dbus: bool, request: Login, json: bool, no_browser: bool) -> Result<(), Failure> {
    interrupt::catch_sigint();
    let challenge = client.login(request)?;
    if let Err(e) = check_challenge(&challenge) {
        let _ = client.cancel_login(&challenge.login_id);
        return Err(e);
    }
    let login_id = challenge.login_id.clone();
    // On a connection of its own: this one is busy waiting. The daemon then ends the
    // login, which ends the wait below.
    interrupt::on_interrupt(move || {
        match Transport::connect(dbus).and_then(|c| c.cancel_login(&login_id)) {
            // Too late: the login was approved and is being finished; its result follows.
            Ok(r) if !r.cancelled => eprintln!("brokerctl: too late to cancel: the login was already approved"),
            Ok(_) => {}
            Err(e) => {
                eprintln!("brokerctl: could not cancel the login: {e}");
                std::process::exit(130);
            }
        }
    });
    // Serves the browser's one-time link until the login is over (dropped on return).
    let mut handoff = None;
    if json {
        print_json(&challenge);
    } else {
        let url = challenge.verification_uri_complete.as_ref().or(challenge.authorization_url.as_ref());
        match (&challenge.verification_uri, &challenge.user_code) {
            (Some(uri), Some(code)) => {
                println!("To log in, open {uri}\nand enter the code:\n\n    {code}\n");
                if let Some(complete) = &challenge.verification_uri_complete {
                    println!("(or open {complete}, which has the code in it)\n");
                }
            }
            _ => {
                if let Some(url) = url {
                    println!("To log in, open:\n\n    {url}\n");
                }
            }
        }
        if !no_browser && let Some(url) = url {
            handoff = open_browser(url);
        }
        let expires = human::lasting(challenge.expires_in, human::now());
        eprintln!("Waiting for you to approve the login (the code expires {expires})…");
    }
    let done = match client.await_login(&challenge.login_id) {
        Err(_) if interrupt::interrupted() => return Err(Failure::Interrupted),
        other => other?,
    };
    drop(handoff);
    if json {
        print_json(&done)
    } else {
        println!("{}", human::logged_in(&done))
    }
    // A login the store would not take is lost at the daemon's next restart: say so.
    let saved = client.status().map(|s| s.accounts.into_iter().find(|a| a.name == done.account));
    if let Ok(Some(account)) = saved
        && account.persisted == Some(false)
    {
        eprintln!("brokerctl: {}", human::NOT_SAVED);
    }
    Ok(())
}

/// Refuse to show or open what no IdP should send (the daemon refuses it too).
fn check_challenge(c: &LoginChallenge) -> Result<(), Failure> {
    let urls = [&c.verification_uri, &c.verification_uri_complete, &c.authorization_url];
    if urls.into_iter().flatten().any(|u| !challenge::safe_url(u)) {
        return Err(Failure::Unsafe("the login's address is neither https nor on this machine; not opening it".into()));
    }
    if c.user_code.as_deref().is_some_and(|code| !challenge::printable_code(code)) {
        return Err(Failure::Unsafe(
            "the login's user code has characters a terminal would act on; not showing it".into(),
        ));
    }
    Ok(())
}

/// `brokerctl doctor`: is the daemon there at all, then the daemon's own checks.
fn doctor(json: bool, dbus: bool) -> Result<(), Failure> {
    let door = crate::doctor_door::Door::new(dbus);
    let daemon = door.ask();
    let reachable = daemon.is_ok();
    let mut checks = vec![match &daemon {
        Ok((status, _)) => Check {
            name: "daemon".into(),
            ok: true,
            detail: format!("tokenbrokerd {} answers {}", status.version, door.place()),
            fix: None,
        },
        Err(e @ Error::ForeignServer { .. }) => {
            Check { name: "daemon".into(), ok: false, detail: e.to_string(), fix: Some(door.foreign_fix()) }
        }
        Err(e) => Check { name: "daemon".into(), ok: false, detail: e.to_string(), fix: Some(door.start_fix()) },
    }];
    if let Ok((_, diagnosis)) = daemon {
        checks.extend(diagnosis.checks);
    }
    // SAFETY: isatty only looks at the descriptor.
    let terminal = unsafe { libc::isatty(0) } == 1;
    if let Some(warning) = no_desk_and_no_terminal(&checks, terminal) {
        checks.push(warning);
    }
    let healthy = checks.iter().all(|c| c.ok);
    if json {
        print_json(&Diagnosis { checks });
    } else {
        for c in &checks {
            // A passed check with a fix is a warning: worth a look, not a failure.
            let tag = match (c.ok, c.fix.is_some()) {
                (false, _) => "FAIL",
                (true, true) => "warn",
                (true, false) => "ok  ",
            };
            println!("{tag} {}: {}", c.name, c.detail);
            if let Some(fix) = &c.fix {
                println!("     -> {fix}");
            }
        }
    }
    match (reachable, healthy) {
        (false, _) => Err(Failure::Unreachable),
        (true, false) => Err(Failure::Unhealthy),
        (true, true) => Ok(()),
    }
}

/// With no notification service to show the policy's questions (the daemon's `questions`
/// warning) and no terminal here either, nobody may be there to answer: say so.
fn no_desk_and_no_terminal(checks: &[Check], terminal: bool) -> Option<Check> {
    let no_desk = checks.iter().any(|c| c.name == "questions" && c.ok && c.fix.is_some());
    (no_desk && !terminal).then(|| Check {
        name: "terminal".into(),
        ok: true,
        detail: "this brokerctl has no terminal (stdin is not a tty) and no notification service shows questions: \
                 a program the policy asks about waits until it is refused, unless someone answers with \
                 `brokerctl consent` in a terminal"
            .into(),
        fix: Some("run `brokerctl consent list` in a terminal to see and answer the questions".into()),
    })
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

/// Open the browser on a one-time link to `url` (see `handoff`: an opener's arguments are
/// readable by every user); the link lives as long as the returned `Handoff`.
fn open_browser(url: &str) -> Option<Handoff> {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let handoff = match Handoff::start(url) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("(could not serve the browser a one-time link: {e}; open the address yourself)");
            return None;
        }
    };
    let spawned = std::process::Command::new(opener)
        .arg(handoff.url())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if spawned.is_err() {
        eprintln!("(could not start {opener}; open the address yourself)");
        return None;
    }
    Some(handoff)
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

fn print_json(value: &impl Serialize) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = writeln!(out);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn doctor_without_a_terminal_repeats_the_no_notification_warning() {
        let warn = Check {
            name: "questions".into(),
            ok: true,
            detail: "no notification service".into(),
            fix: Some("x".into()),
        };
        let fine = Check { fix: None, ..warn.clone() };
        let said = no_desk_and_no_terminal(std::slice::from_ref(&warn), false).expect("said");
        assert!(said.detail.contains("no terminal") && said.fix.is_some(), "{said:?}");
        assert!(no_desk_and_no_terminal(std::slice::from_ref(&warn), true).is_none(), "in a terminal");
        assert!(no_desk_and_no_terminal(&[fine], false).is_none(), "questions are shown");
        assert!(no_desk_and_no_terminal(&[], false).is_none(), "no policy asks");
    }
}
