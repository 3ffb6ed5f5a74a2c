//! How a machine account proves who it is at the token endpoint: a client secret read from a
//! systemd credential or a command, or a `private_key_jwt` assertion (RFC 7523) signed with a
//! key file. Everything is read when a token is needed and dropped with the request, so a
//! rotated secret or key takes effect at the next token without a restart, and no secret is
//! kept between requests (our copies are wiped; the HTTP client's copy of a secret for the
//! Basic header is freed, not wiped).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::client_assertion;
use crate::config::MachineSecret;

/// A command that prints the secret gets this long.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// What goes with one token request. `Debug` names the kind only.
pub enum ClientAuth {
    /// `client_secret_basic` or `client_secret_post`, as the IdP offers.
    Secret(SecretString),
    /// A signed `client_assertion`, good for a minute.
    Assertion(SecretString),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClientAuth::Secret(_) => "ClientAuth::Secret([REDACTED])",
            ClientAuth::Assertion(_) => "ClientAuth::Assertion([REDACTED])",
        })
    }
}

/// The client authentication for one request by `client_id` to the IdP `issuer` (the
/// assertion's audience). Errors name the source, never what it holds or printed.
pub async fn client_auth(source: &MachineSecret, client_id: &str, issuer: &str) -> Result<ClientAuth, String> {
    match source {
        MachineSecret::Credential(name) => {
            let path = crate::config::credential_path(name)?;
            let bytes = read_file(&path).await.map_err(|e| format!("client_secret_credential {name:?}: {e}"))?;
            let secret = first_line(&bytes)
                .ok_or_else(|| format!("client_secret_credential {name:?} ({}) holds no secret", path.display()))?;
            Ok(ClientAuth::Secret(secret))
        }
        MachineSecret::Command(argv) => run(argv).await.map(ClientAuth::Secret),
        MachineSecret::AssertionKey(path) => {
            let pem = read_file(path).await.map_err(|e| format!("client_assertion_key {}: {e}", path.display()))?;
            let pem = std::str::from_utf8(&pem)
                .map_err(|_| format!("client_assertion_key {}: not a PEM file", path.display()))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            client_assertion::sign(pem, client_id, issuer, now)
                .map(ClientAuth::Assertion)
                .map_err(|e| format!("client_assertion_key {}: {e}", path.display()))
        }
    }
}

async fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let path = path.to_owned();
    let read = tokio::task::spawn_blocking(move || std::fs::read(&path).map(Zeroizing::new));
    match read.await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(format!("cannot read it: {e}")),
        Err(e) => Err(format!("cannot read it: {e}")),
    }
}

/// The most of a command's output read: a secret is a line, and a runaway command must not
/// fill the daemon's memory.
const MAX_OUTPUT: u64 = 64 * 1024;

/// The command's first line of output, trimmed. Run without a shell, with nothing on its
/// stdin, in a process group of its own; its stderr goes to the daemon's (its own
/// diagnostics). At the timeout the whole group is killed, so a wrapper's children go too.
async fn run(argv: &[String]) -> Result<SecretString, String> {
    use tokio::io::AsyncReadExt;
    let [program, args @ ..] = argv else { return Err("client_secret_command is empty".into()) };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("client_secret_command {program:?} cannot start: {e}"))?;
    let group = child.id().and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let mut stdout = Zeroizing::new(Vec::new());
    let mut pipe = child.stdout.take().expect("stdout is piped").take(MAX_OUTPUT + 1);
    let finished = async {
        pipe.read_to_end(&mut stdout).await?;
        if stdout.len() as u64 > MAX_OUTPUT {
            return Ok(None);
        }
        drop(pipe);
        child.wait().await.map(Some)
    };
    let kill = || {
        if let Some(group) = group {
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
    };
    let status = match tokio::time::timeout(COMMAND_TIMEOUT, finished).await {
        Ok(Ok(Some(status))) => status,
        Ok(Ok(None)) => {
            kill();
            return Err(format!("client_secret_command {program:?} printed more than {MAX_OUTPUT} bytes"));
        }
        Ok(Err(e)) => return Err(format!("client_secret_command {program:?} failed: {e}")),
        Err(_) => {
            kill();
            return Err(format!(
                "client_secret_command {program:?} did not finish within {}s",
                COMMAND_TIMEOUT.as_secs()
            ));
        }
    };
    if !status.success() {
        return Err(format!("client_secret_command {program:?} failed ({status}); its output is not shown"));
    }
    first_line(&stdout).ok_or_else(|| format!("client_secret_command {program:?} printed no secret"))
}

/// The first line, without surrounding whitespace; None when that leaves nothing (or not text).
fn first_line(bytes: &[u8]) -> Option<SecretString> {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).ok()?.trim();
    (!line.is_empty()).then(|| SecretString::from(line))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn secret(auth: ClientAuth) -> String {
        match auth {
            ClientAuth::Secret(s) => s.expose_secret().to_owned(),
            ClientAuth::Assertion(_) => panic!("a secret was expected"),
        }
    }

    #[tokio::test]
    async fn a_command_gives_its_first_line_and_its_failures_hide_the_output() {
        let cmd = |script: &str| MachineSecret::Command(vec!["sh".into(), "-c".into(), script.into()]);
        let auth = client_auth(&cmd("printf '  s3cr3t \\nsecond\\n'"), "c", "https://x/").await.unwrap();
        assert!(!format!("{auth:?}").contains("s3cr3t"));
        assert_eq!(secret(auth), "s3cr3t");
        let err = client_auth(&cmd("echo leaked-secret; exit 3"), "c", "https://x/").await.unwrap_err();
        assert!(err.contains("\"sh\"") && err.contains("exit status: 3") && !err.contains("leaked"), "{err}");
        let err = client_auth(&cmd("echo"), "c", "https://x/").await.unwrap_err();
        assert!(err.contains("printed no secret"), "{err}");
        let missing = MachineSecret::Command(vec!["/nonexistent/prog".into()]);
        assert!(client_auth(&missing, "c", "https://x/").await.unwrap_err().contains("cannot start"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_command_that_hangs_is_killed_at_the_timeout() {
        let hang = MachineSecret::Command(vec!["sleep".into(), "600".into()]);
        let err = client_auth(&hang, "c", "https://x/").await.unwrap_err();
        assert!(err.contains("did not finish within 15s"), "{err}");
    }

    /// A wrapper that hangs in its child: the child goes with it (the group is killed).
    #[tokio::test(start_paused = true)]
    async fn a_hanging_commands_children_go_too_and_output_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("sleep 600 & echo $! > {}; wait", pid_file.display());
        let hang = MachineSecret::Command(vec!["sh".into(), "-c".into(), script]);
        let asked = tokio::spawn(async move { client_auth(&hang, "c", "https://x/").await });
        // Let it start the command, then (the clock stands still while this thread is busy)
        // wait in real time for the wrapper's child to be there, before the timeout may fire.
        tokio::task::yield_now().await;
        let started = (0..500).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            std::fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'))
        });
        assert!(started, "the wrapper never started its child");
        assert!(asked.await.unwrap().unwrap_err().contains("did not finish"));
        let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
        let gone = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
        });
        assert!(gone, "the wrapper's child {pid} lives on");
    }

    /// A command that floods its output is read up to the cap, then killed and refused.
    #[tokio::test]
    async fn a_flood_of_output_is_read_only_up_to_the_cap() {
        let flood = MachineSecret::Command(vec!["sh".into(), "-c".into(), "echo s3cr3t; exec yes".into()]);
        let err = client_auth(&flood, "c", "https://x/").await.unwrap_err();
        assert!(err.contains("printed more than 65536 bytes") && !err.contains("s3cr3t"), "{err}");
    }
}
