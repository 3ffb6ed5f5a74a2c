//! `brokerctl doctor`: is the daemon there, then its own checks. Without a daemon (the
//! commonest failure: it will not start), why it is not there, and `tokenbrokerd --check`'s
//! report of what would stop a start, so that brokerctl itself links no HTTP or TLS stack.

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokenbroker::Error;
use tokenbroker::protocol::{Check, Diagnosis};

use crate::doctor_door::Door;

/// How the checks came out, for the exit code.
pub enum Verdict {
    Healthy,
    Unhealthy,
    Unreachable,
}

pub fn doctor(json: bool, dbus: bool) -> Verdict {
    let door = Door::new(dbus);
    let daemon = door.ask();
    let mut checks = Vec::new();
    let reachable = match daemon {
        Ok((status, diagnosis)) => {
            checks.push(Check {
                name: "daemon".into(),
                ok: true,
                detail: format!("tokenbrokerd {} answers {}", status.version, door.place()),
                fix: None,
            });
            checks.extend(diagnosis.checks);
            true
        }
        Err(e) => {
            let mut daemon = absent(&e, &door);
            let found = daemon_checks();
            // The daemon will not start before what fails there is fixed: say that first.
            if matches!(e, Error::Unreachable { .. }) && found.iter().any(|c| !c.ok) {
                let start = daemon.fix.take().unwrap_or_default();
                daemon.fix =
                    Some(format!("fix what fails below first: tokenbrokerd does not start until then; {start}"));
            }
            checks.push(daemon);
            checks.extend(found);
            false
        }
    };
    // SAFETY: isatty only looks at the descriptor.
    let terminal = unsafe { libc::isatty(0) } == 1;
    if let Some(warning) = no_desk_and_no_terminal(&checks, terminal) {
        checks.push(warning);
    }
    let healthy = checks.iter().all(|c| c.ok);
    let mut out = std::io::stdout().lock();
    if json {
        let _ = serde_json::to_writer(&mut out, &Diagnosis { checks });
        let _ = writeln!(out);
    } else {
        let _ = out.write_all(tokenbroker::protocol::report(&checks).as_bytes());
    }
    let _ = out.flush();
    match (reachable, healthy) {
        (false, _) => Verdict::Unreachable,
        (true, false) => Verdict::Unhealthy,
        (true, true) => Verdict::Healthy,
    }
}

/// The failed `daemon` check: why nothing of ours answers at this door, and what to do.
fn absent(e: &Error, door: &Door) -> Check {
    let fix = match e {
        Error::ForeignServer { .. } => door.foreign_fix(),
        _ => door.start_fix(),
    };
    let detail = if door.is_bus() { e.to_string() } else { why_absent(e, &tokenbroker::paths::socket_path()) };
    Check { name: "daemon".into(), ok: false, detail, fix: Some(fix) }
}

/// Why the daemon is not there, from what is at its socket's path.
fn why_absent(e: &Error, path: &Path) -> String {
    let Error::Unreachable { source, .. } = e else { return e.to_string() };
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Err(m) if m.kind() == std::io::ErrorKind::NotFound => {
            format!("nothing at {shown}: no daemon is running there (none started, or it stopped)")
        }
        Ok(m) if !m.file_type().is_socket() => format!("{shown} is not a socket, so no daemon can listen there"),
        Ok(_) if source.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("{shown} is a stale socket: nothing listens on it (the daemon that made it crashed or was killed)")
        }
        _ => e.to_string(),
    }
}

/// `tokenbrokerd --check --json`: the config, the store and every IdP, checked as a start
/// would. On failure to run it, one check saying so.
fn daemon_checks() -> Vec<Check> {
    let exe = tokenbrokerd();
    let shown = exe.display().to_string();
    let ran = Command::new(&exe)
        .args(["--check", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    let why = match ran {
        Ok(out) => match serde_json::from_slice::<Diagnosis>(&out.stdout) {
            Ok(d) => return d.checks,
            Err(_) => {
                let said = String::from_utf8_lossy(&out.stderr);
                let said = said.lines().next().unwrap_or("no report");
                format!("`{shown} --check` exited with {} and no report: {said}", out.status)
            }
        },
        Err(e) => format!("cannot run `{shown} --check`: {e}"),
    };
    vec![Check {
        name: "tokenbrokerd --check".into(),
        ok: false,
        detail: crate::human::terminal_text(&why),
        fix: Some(
            "install tokenbrokerd beside brokerctl or on PATH, then run `tokenbrokerd --check` to see what stops it"
                .into(),
        ),
    }]
}

/// tokenbrokerd beside this program (they are installed together), else by name on PATH.
fn tokenbrokerd() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("tokenbrokerd"))
        .filter(|beside| beside.is_file())
        .unwrap_or_else(|| PathBuf::from("tokenbrokerd"))
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn an_absent_daemon_is_told_by_what_is_at_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let refused = |path: &Path| Error::Unreachable {
            path: path.display().to_string(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        let missing = dir.path().join("none.sock");
        assert!(why_absent(&refused(&missing), &missing).starts_with("nothing at"));
        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        assert!(why_absent(&refused(&stale), &stale).contains("stale socket"));
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        assert!(why_absent(&refused(&file), &file).contains("not a socket"));
    }
}
