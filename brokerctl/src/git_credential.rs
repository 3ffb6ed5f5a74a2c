//! `brokerctl git-credential get|store|erase|capability`, also run as
//! `git-credential-tokenbroker`: git's credential helper. Never prompts (git may have no
//! terminal, and its own prompt follows when no helper answers); unmapped hosts get no
//! answer, so that other helpers run.

use std::io::Write;
use std::path::PathBuf;

use tokenbroker::blocking::Client;
use tokenbroker::protocol::{GetAccessToken, RejectToken};

use crate::credential_wire::{self, Answer, CAPABILITIES, Request};
use crate::git_hosts::{self, GitHost};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Get,
    Store,
    Erase,
    Capability,
}

impl Operation {
    pub fn parse(word: &str) -> Option<Operation> {
        Some(match word {
            "get" => Operation::Get,
            "store" => Operation::Store,
            "erase" => Operation::Erase,
            "capability" => Operation::Capability,
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("refusing git's request: {0}")]
    Refused(#[from] credential_wire::Refusal),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Broker(#[from] tokenbroker::Error),
    #[error("writing the answer: {0}")]
    Write(std::io::Error),
}

/// Run one operation on the request read from `input`, answering on `out`.
pub fn run(
    op: Operation,
    config: Option<PathBuf>,
    input: &mut impl std::io::BufRead,
    out: &mut impl Write,
) -> Result<(), Failure> {
    if op == Operation::Capability {
        return out.write_all(CAPABILITIES.as_bytes()).and_then(|()| out.flush()).map_err(Failure::Write);
    }
    let request = credential_wire::read_request(input)?;
    if op == Operation::Store {
        // The token is the broker's to keep; nothing to store.
        return Ok(());
    }
    let Some(path) = git_hosts::config_path(config) else { return Ok(()) };
    let hosts = git_hosts::load(&path).map_err(Failure::Config)?;
    let Some(host) = git_hosts::find(&hosts, &request.protocol, &request.host) else { return Ok(()) };
    match op {
        Operation::Get => get(host, &request, out),
        Operation::Erase => erase(host, &request),
        Operation::Store | Operation::Capability => unreachable!("answered above"),
    }
}

fn get(host: &GitHost, request: &Request, out: &mut impl Write) -> Result<(), Failure> {
    let client = Client::connect()?;
    let token = client.get_access_token(GetAccessToken {
        account: Some(host.account.clone()),
        audience: host.audience.clone(),
        ..Default::default()
    })?;
    crate::dpop::bearer_only(&token, "git").map_err(Failure::Config)?;
    let answer = Answer {
        username: &host.username,
        token: &token.access_token,
        expires_at: token.expires_at,
        bearer: request.wants_bearer(),
    };
    credential_wire::write_answer(out, &answer).map_err(Failure::Write)
}

/// git's server refused the token: tell the broker, which drops it if it is still the one it
/// serves, so that the next `get` refreshes (once: a token that does not match changes nothing).
fn erase(host: &GitHost, request: &Request) -> Result<(), Failure> {
    // A request without a token (a person's own password, erased by hand) has nothing of ours.
    let Some(token) = request.token() else { return Ok(()) };
    let client = Client::connect()?;
    client.reject_token(RejectToken {
        account: Some(host.account.clone()),
        access_token: token.clone(),
        audience: host.audience.clone(),
    })?;
    Ok(())
}

/// The contract's exit codes for a failed operation.
pub fn exit_code(e: &Failure) -> u8 {
    use tokenbroker::{Error, ErrorKind};
    match e {
        Failure::Refused(_) | Failure::Config(_) | Failure::Write(_) => 1,
        Failure::Broker(Error::Unreachable { .. } | Error::ForeignServer { .. }) => 5,
        Failure::Broker(e) => match e.kind() {
            Some(ErrorKind::NotLoggedIn | ErrorKind::LoginRequired) => 3,
            Some(ErrorKind::IdpUnavailable) => 4,
            Some(ErrorKind::AccessDenied) => 6,
            _ => 1,
        },
    }
}

/// `[--config PATH] OPERATION`, the arguments of both binaries after their command word.
pub fn parse_args(args: &[&str]) -> Option<(Operation, Option<PathBuf>)> {
    match args {
        [op] => Some((Operation::parse(op)?, None)),
        ["--config", path, op] | [op, "--config", path] => Some((Operation::parse(op)?, Some(PathBuf::from(path)))),
        _ => None,
    }
}

/// The whole helper: `git-credential-tokenbroker`'s main, and `brokerctl git-credential`'s.
pub fn main(args: &[&str]) -> std::process::ExitCode {
    let Some((op, config)) = parse_args(args) else {
        eprintln!("usage: git-credential-tokenbroker [--config PATH] get|store|erase|capability");
        return std::process::ExitCode::from(2);
    };
    std::process::ExitCode::from(serve(op, config))
}

/// One operation on stdin and stdout; its exit status.
pub fn serve(op: Operation, config: Option<PathBuf>) -> u8 {
    match run(op, config, &mut std::io::stdin().lock(), &mut std::io::stdout().lock()) {
        Ok(()) => 0,
        Err(e) => {
            let code = exit_code(&e);
            let hint = if code == 3 { "; run `brokerctl login` (with --account for the host's account)" } else { "" };
            eprintln!("tokenbroker: {}{hint}", one_line(&e.to_string()));
            code
        }
    }
}

/// git shows a helper's stderr as it is: one line, no control characters from a daemon's or
/// an IdP's message.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}
