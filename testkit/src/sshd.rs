//! A real OpenSSH server on loopback, for the tests of forwarding over `ssh -R`: its own host
//! key, config, authorized key and pid file in a directory of its own, for the user running
//! the tests (root in CI: `PermitRootLogin prohibit-password`; anyone else: sshd runs
//! unprivileged and serves that user alone).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::Proc;

/// Debian's `openssh-server` puts it here; the tests need it (CI installs it).
pub const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub proc: Proc,
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdout(Stdio::null())
        .status()
        .expect("ssh-keygen (openssh-client) must be installed");
    assert!(status.success(), "ssh-keygen failed");
}

impl Sshd {
    /// Start sshd on a free loopback port; panics (never skips) when sshd is missing.
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: the forwarding tests need OpenSSH's server \
             (apt-get install -y --no-install-recommends openssh-server)"
        );
        let dir = tempfile::Builder::new().prefix("tb-sshd").tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // sshd as root insists on its privilege separation directory.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             AllowStreamLocalForwarding yes\nLogLevel VERBOSE\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut sshd = Sshd { dir, port, proc: Proc(child) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = sshd.proc.0.try_wait().unwrap() {
                panic!("sshd exited with {status}:\n{}", sshd.log());
            }
            assert!(Instant::now() < deadline, "sshd did not listen:\n{}", sshd.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        sshd
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// `ssh` to this server as ourselves with the test's key, no config or known hosts of the
    /// user's, never prompting; add `-R …` and the remote command.
    pub fn ssh(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-i"])
            .arg(self.key())
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "LogLevel=ERROR", "-o", "ExitOnForwardFailure=yes", "-p"])
            .arg(self.port.to_string());
        cmd
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }
}
