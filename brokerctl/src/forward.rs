//! `brokerctl forward add|list|remove`: the daemon's restricted sockets for SSH sessions and
//! containers, and how to use one (the `ssh -R` line, the far side's environment).

use tokenbroker::protocol::{AddForward, Forward, Forwards};

use crate::app::{Failure, print_json};
use crate::args::ForwardCommand;
use crate::human;
use crate::transport::Transport;

/// `--ttl`: `30m`, `8h`, `2d`, `1h 30m`; whole seconds, at least one.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e}; write a duration like 30m, 8h or 2d"))?;
    match d.as_secs() {
        0 => Err("a forward lives at least 1 second".into()),
        secs => Ok(secs),
    }
}

fn add_params(name: String, account: Option<String>, audiences: Vec<String>, ttl: Option<u64>) -> AddForward {
    AddForward { name, accounts: account.into_iter().collect(), audiences, ttl }
}

/// `brokerctl forward …`.
pub(crate) fn run(
    client: &Transport,
    command: ForwardCommand,
    account: Option<String>,
    json: bool,
) -> Result<(), Failure> {
    match command {
        ForwardCommand::Add { name, audiences, ttl } => {
            let f = client.add_forward(add_params(name, account, audiences, ttl))?;
            if json { print_json(&f) } else { print!("{}", added(&f, human::now())) }
        }
        ForwardCommand::List => {
            let f = client.list_forwards()?;
            if json { print_json(&f) } else { print!("{}", list(&f, human::now())) }
        }
        ForwardCommand::Remove { name } => {
            let done = client.remove_forward(&name)?;
            if json {
                print_json(&done);
            }
            if !done.removed {
                return Err(Failure::NotFound(format!(
                    "no forward {:?}; `brokerctl forward list` shows those served",
                    human::terminal_text(&name)
                )));
            }
            if !json {
                println!("Forward {} ended: its socket is gone.", human::terminal_text(&name));
            }
        }
    }
    Ok(())
}

/// What to do with a new forward: the ssh line, the far side's line, the container lines.
pub fn added(f: &Forward, now: i64) -> String {
    let mut out = format!(
        "Forward {} serves {} ({}) until {} ({}).\n",
        human::terminal_text(&f.name),
        human::terminal_text(&f.accounts.join(", ")),
        serves(f),
        human::terminal_text(&humantime::format_rfc3339_seconds(at(f.expires_at)).to_string()),
        human::relative(f.expires_at, now)
    );
    let Some(local) = f.socket.as_deref() else { return out };
    let local = human::terminal_text(local);
    let remote = format!("/tmp/tokenbroker-{}.sock", human::terminal_text(&f.name));
    out.push_str(&format!(
        "\nSSH: add this to the ssh command line (the far side's socket path is yours to choose;\n\
         an absolute path on the far host, in a directory you may write):\n\
         \x20 -o ExitOnForwardFailure=yes -R {remote}:{local}\n\
         Note: a socket left by an earlier session blocks the forward. `-o StreamLocalBindUnlink=yes`\n\
         on the ssh command line covers only sockets ssh creates here (-L); for -R the far host's\n\
         sshd_config needs `StreamLocalBindUnlink yes`, else remove the old socket first\n\
         (`ssh HOST rm -f {remote}`).\n\
         On the far side:\n\
         \x20 TOKENBROKER_SOCKET={remote} brokerctl token\n\
         \nContainers: mount the socket and point the client at it:\n\
         \x20 podman run -v {local}:/run/tokenbroker.sock -e TOKENBROKER_SOCKET=/run/tokenbroker.sock IMAGE\n"
    ));
    out
}

fn at(secs: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64)
}

fn serves(f: &Forward) -> String {
    if f.audiences.is_empty() {
        "each account's own token".into()
    } else {
        format!("audiences {}", human::terminal_text(&f.audiences.join(", ")))
    }
}

/// `forward list` for people: one forward a line.
pub fn list(f: &Forwards, now: i64) -> String {
    if f.forwards.is_empty() {
        return "no forwards\n".into();
    }
    let mut out = String::new();
    for f in &f.forwards {
        out.push_str(&format!(
            "{}  {}  ({})  ends {}  {}\n",
            human::terminal_text(&f.name),
            human::terminal_text(&f.accounts.join(",")),
            serves(f),
            human::relative(f.expires_at, now),
            human::terminal_text(f.socket.as_deref().unwrap_or("-"))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_read_as_durations() {
        assert_eq!(parse_ttl("30m"), Ok(1800));
        assert_eq!(parse_ttl("8h"), Ok(28_800));
        assert_eq!(parse_ttl("2d"), Ok(172_800));
        assert_eq!(parse_ttl("1h 30m"), Ok(5400));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("soon").unwrap_err().contains("like 30m"));
    }

    #[test]
    fn a_new_forward_says_how_to_use_it() {
        let f = Forward {
            name: "box".into(),
            accounts: vec!["work".into()],
            audiences: vec![],
            expires_at: 3600,
            socket: Some("/run/user/1000/tokenbroker/forward/box.sock".into()),
        };
        let text = added(&f, 0);
        for part in [
            "-R /tmp/tokenbroker-box.sock:/run/user/1000/tokenbroker/forward/box.sock",
            "StreamLocalBindUnlink",
            "TOKENBROKER_SOCKET=/tmp/tokenbroker-box.sock brokerctl token",
            "-v /run/user/1000/tokenbroker/forward/box.sock:/run/tokenbroker.sock",
            "(in 60 minutes)",
        ] {
            assert!(text.contains(part), "{part:?} missing from:\n{text}");
        }
    }
}
