//! The real tokenbrokerd, with its own config, socket and log file.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bus::Bus;
use crate::idp::Idp;
use crate::process::Proc;
use crate::{brokerctl_path, tokenbrokerd_path};

/// A config whose one account's IdP is never asked, on the memory store: for tests of the
/// socket alone (with [`Daemon::start_without_bus`]).
pub const SOCKET_ONLY: &str =
    "store = \"memory\"\n[accounts.work]\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"tokenbroker-test\"\n";

/// The real tokenbrokerd, with its own config, socket and log file in a directory of its own.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub proc: Option<Proc>,
    pub log_level: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Daemon {
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/tokenbroker/broker.sock")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    /// The daemon's `$XDG_STATE_HOME` (its own, as every test daemon's).
    pub fn state_home(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The audit trail the daemon writes (in `$XDG_STATE_HOME/tokenbroker`).
    pub fn audit_path(&self) -> PathBuf {
        self.state_home().join("tokenbroker/audit.jsonl")
    }

    /// The audit trail's records as written, one JSON value per line.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.audit_path()).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Start the binary on `bus` with `config`, logging at debug level.
    pub fn start(bus: &Bus, config: &str) -> Daemon {
        let mut d = Self::prepare(config);
        d.spawn(bus);
        d
    }

    /// A daemon's files, not started yet: set `args`/`env`, then `spawn`.
    pub fn prepare(config: &str) -> Daemon {
        let dir = tempfile::Builder::new().prefix("tb-daemon").tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Daemon { dir, proc: None, log_level: "debug".into(), args: Vec::new(), env: Vec::new() }
    }

    pub fn write_config(&self, config: &str) {
        std::fs::write(self.config_path(), config).unwrap();
    }

    pub fn signal(&self, sig: i32) {
        self.proc.as_ref().expect("running").signal(sig);
    }

    /// The process id of the running daemon.
    pub fn pid(&self) -> i32 {
        self.proc.as_ref().expect("running").pid()
    }

    /// A daemon on a machine with no session bus at all (headless server, macOS).
    pub fn start_without_bus(config: &str) -> Daemon {
        let mut d = Self::prepare(config);
        d.spawn_without_bus();
        d
    }

    /// Start (or start again) the binary with no session bus to find.
    pub fn spawn_without_bus(&mut self) {
        let mut cmd = Command::new(tokenbrokerd_path());
        cmd.env("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}", self.dir.path().join("no-bus").display()));
        self.launch(cmd);
    }

    /// Start (or start again) the binary and wait until its socket answers.
    pub fn spawn(&mut self, bus: &Bus) {
        let mut cmd = Command::new(tokenbrokerd_path());
        bus.env(&mut cmd);
        self.launch(cmd);
    }

    /// Start the binary on the session bus this process has (`DBUS_SESSION_BUS_ADDRESS`), as
    /// the benchmarks run inside `scripts/with-keyring`.
    pub fn spawn_on_own_session(&mut self) {
        self.launch(Command::new(tokenbrokerd_path()));
    }

    /// As [`Daemon::spawn_on_own_session`], another build of the daemon (the benchmarks
    /// measure this one against an earlier one).
    pub fn spawn_binary_on_own_session(&mut self, binary: &std::path::Path) {
        self.launch(Command::new(binary));
    }

    fn launch(&mut self, mut cmd: Command) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let child = cmd
            .arg("--config")
            .arg(self.config_path())
            .arg("--socket")
            .arg(self.socket())
            .args(&self.args)
            // Its own state directory (the audit trail), never the user's; `env` may override.
            .env("XDG_STATE_HOME", self.state_home())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", &self.log_level)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.proc = Some(Proc(child));
        // Ready means answering: the socket is bound early (to find a second instance), and
        // served once the D-Bus name is taken too.
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokenbroker::blocking::Client::connect_to(self.socket()).and_then(|c| c.status()).is_err() {
            if let Some(status) = self.proc.as_mut().unwrap().0.try_wait().unwrap() {
                panic!("tokenbrokerd exited with {status}:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "tokenbrokerd did not answer on its socket:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal(libc::SIGKILL);
            p.wait_exit(Duration::from_secs(10));
        }
    }

    pub async fn client(&self) -> tokenbroker::Client {
        tokenbroker::Client::connect_to(self.socket()).await.unwrap()
    }

    /// Run brokerctl against this daemon.
    pub fn brokerctl(&self, args: &[&str]) -> std::process::Output {
        self.brokerctl_command().args(args).output().unwrap()
    }

    /// brokerctl pointed at this daemon's socket, to add to (another user, more environment).
    pub fn brokerctl_command(&self) -> Command {
        let mut cmd = Command::new(brokerctl_path());
        cmd.env("TOKENBROKER_SOCKET", self.socket())
            .env("XDG_STATE_HOME", self.state_home())
            .env_remove("TOKENBROKER_TRANSPORT");
        cmd
    }

    /// Log in `account` by the device flow, approved at the IdP as `user`.
    pub async fn login(&self, idp: &Idp, account: Option<&str>, user: &str) {
        let client = self.client().await;
        let login = tokenbroker::protocol::Login { account: account.map(Into::into), flow: None };
        let challenge = client.login(login).await.unwrap();
        idp.approve(challenge.user_code.as_deref().unwrap(), user).await;
        let done = client.await_login(&challenge.login_id).await.unwrap();
        assert_eq!(done.status, "logged_in");
    }
}
