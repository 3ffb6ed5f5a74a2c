//! Real parts for integration tests, each started by the test itself: a private D-Bus session
//! bus with an unlocked gnome-keyring, the oidc-provider harness (behind a switchable TCP
//! proxy, to play "IdP down"), and the real `tokenbrokerd` binary.
#![allow(dead_code)]

mod proxy;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

#[allow(unused_imports)]
pub use proxy::{Fault, Proxy};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A child process killed when the test lets go of it.
pub struct Proc(pub Child);

impl Proc {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Wait up to `limit` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Read the first stdout line of a child within `limit`.
fn first_line(child: &mut Child, limit: Duration) -> Option<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(limit).ok().filter(|l| !l.is_empty())
}

const OPEN_BUS_CONFIG: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <include>/usr/share/dbus-1/session.conf</include>
  <policy context="default"><allow user="*"/></policy>
</busconfig>
"#;

/// A private session bus with a fresh, unlocked gnome-keyring on it.
pub struct Bus {
    pub dir: tempfile::TempDir,
    pub address: String,
    _bus: Proc,
    pub keyring: Proc,
}

impl Bus {
    pub fn start() -> Bus {
        Self::start_with(false)
    }

    /// A bus that lets other users connect too (a session bus does not), world-reachable,
    /// so that the daemon's own refusal of other UIDs can be tested.
    pub fn start_open_to_all_users() -> Bus {
        Self::start_with(true)
    }

    fn start_with(open: bool) -> Bus {
        let dir = tempfile::Builder::new().prefix("tb-bus").tempdir().unwrap();
        let home = dir.path().join("home");
        let runtime = dir.path().join("run");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let mut bus = Command::new("dbus-daemon");
        if open {
            let conf = dir.path().join("bus.conf");
            std::fs::write(&conf, OPEN_BUS_CONFIG).unwrap();
            std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            bus.arg(format!("--config-file={}", conf.display()));
        } else {
            bus.arg("--session");
        }
        let mut bus = bus
            .args(["--nofork", "--print-address=1"])
            .arg(format!("--address=unix:path={}", dir.path().join("bus").display()))
            // What the bus starts on demand (a keyring daemon, after ours is gone) lives in
            // the test's home too, never the real user's.
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian package dbus-daemon) must be installed");
        let address = first_line(&mut bus, Duration::from_secs(10)).expect("dbus-daemon printed no address");
        let bus = Proc(bus);
        let address = address.trim().to_owned();
        let keyring = start_keyring(&address, dir.path());
        let bus = Bus { dir, address, _bus: bus, keyring };
        bus.wait_for_keyring();
        bus
    }

    fn wait_for_keyring(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.has_owner("org.freedesktop.secrets") {
            assert!(Instant::now() < deadline, "gnome-keyring did not appear on the private bus");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The smoke test of the notes: a write must succeed, or the keyring is locked. A
        // restarted keyring unlocks its existing file a moment after taking the name.
        while !self.secret_store("tokenbroker-smoke", "ok", "ok") {
            assert!(Instant::now() < deadline, "the private keyring is locked");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The Secret Service goes away (its daemon killed). The next call to it makes the bus
    /// start another one (D-Bus activation), locked, as after a desktop session's keyring
    /// daemon crashed.
    pub fn stop_keyring(&mut self) {
        self.keyring.signal(libc::SIGKILL);
        self.keyring.wait_exit(Duration::from_secs(10));
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.has_owner("org.freedesktop.secrets") {
            assert!(Instant::now() < deadline, "gnome-keyring stayed on the bus");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The Secret Service comes back: the same keyring file, unlocked with the same password,
    /// in place of any locked one the bus started meanwhile.
    pub fn restart_keyring(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(pid) = self.owner_pid("org.freedesktop.secrets") {
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
            while self.has_owner("org.freedesktop.secrets") {
                assert!(Instant::now() < deadline, "the bus's own keyring daemon stayed");
                std::thread::sleep(Duration::from_millis(20));
            }
            self.keyring = start_keyring(&self.address, self.dir.path());
            // Another activation may have won the name in between: then ours exits; again.
            while !self.has_owner("org.freedesktop.secrets") && self.keyring.0.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.owner_pid("org.freedesktop.secrets") == Some(self.keyring.0.id()) {
                break;
            }
            assert!(Instant::now() < deadline, "could not bring the keyring back");
        }
        self.wait_for_keyring();
    }

    /// Lock the keyring's default collection over D-Bus, as a screen locker does: the Secret
    /// Service still runs and answers, but refuses writes (unlocking needs a prompt, which
    /// fails here for want of a display).
    pub fn lock_keyring(&self) {
        let out = self
            .command("dbus-send")
            .args(["--session", "--print-reply", "--dest=org.freedesktop.secrets", "/org/freedesktop/secrets"])
            .args(["org.freedesktop.Secret.Service.Lock", "array:objpath:/org/freedesktop/secrets/aliases/default"])
            .output()
            .unwrap();
        assert!(out.status.success(), "locking the keyring: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!self.secret_store("tokenbroker-smoke", "locked", "x"), "the locked keyring still takes writes");
    }

    fn owner_pid(&self, name: &str) -> Option<u32> {
        let reply = self.ask_bus("GetConnectionUnixProcessID", name);
        reply.split_whitespace().skip_while(|w| *w != "uint32").nth(1)?.parse().ok()
    }

    /// A command (gdbus, busctl, …) that talks to this bus.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        self.env(&mut cmd);
        cmd
    }

    pub async fn dbus_client(&self) -> tokenbroker::dbus::Client {
        let conn = zbus::connection::Builder::address(self.address.as_str()).unwrap().build().await.unwrap();
        tokenbroker::dbus::Client::with_connection(conn).await.unwrap()
    }

    pub fn env(&self, cmd: &mut Command) {
        cmd.env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env("HOME", self.dir.path().join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"));
    }

    fn has_owner(&self, name: &str) -> bool {
        self.ask_bus("NameHasOwner", name).contains("boolean true")
    }

    /// The bus daemon's own `method(name)`, as dbus-send prints the reply.
    fn ask_bus(&self, method: &str, name: &str) -> String {
        let mut cmd = Command::new("dbus-send");
        self.env(&mut cmd);
        let out = cmd
            .args(["--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus"])
            .arg(format!("org.freedesktop.DBus.{method}"))
            .arg(format!("string:{name}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn secret_store(&self, attr: &str, value: &str, secret: &str) -> bool {
        use std::io::Write;
        let mut cmd = Command::new("secret-tool");
        self.env(&mut cmd);
        let mut child = cmd
            .args(["store", "--label=smoke", attr, value])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("secret-tool (Debian package libsecret-tools) must be installed");
        child.stdin.take().unwrap().write_all(secret.as_bytes()).unwrap();
        child.wait().unwrap().success()
    }

    /// The keyring record tokenbrokerd keeps for `account`, as the contract names it.
    pub fn keyring_entry(&self, account: &str) -> Option<Value> {
        let mut cmd = Command::new("secret-tool");
        self.env(&mut cmd);
        let out = cmd.args(["lookup", "service", "tokenbroker", "username", account]).output().unwrap();
        if !out.status.success() || out.stdout.is_empty() {
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).expect("keyring entry is JSON"))
    }
}

/// gnome-keyring's Secret Service on the bus at `address`, its files under `dir/home`.
fn start_keyring(address: &str, dir: &Path) -> Proc {
    let home = dir.join("home");
    let mut keyring = Command::new("gnome-keyring-daemon")
        .args(["--foreground", "--unlock", "--components=secrets"])
        .env("DBUS_SESSION_BUS_ADDRESS", address)
        .env("HOME", &home)
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gnome-keyring-daemon (Debian package gnome-keyring) must be installed");
    {
        use std::io::Write;
        let mut stdin = keyring.stdin.take().unwrap();
        stdin.write_all(b"tokenbroker-test-keyring").unwrap();
    }
    Proc(keyring)
}

/// The oidc-provider harness, reached through a proxy the test can switch off.
pub struct Idp {
    pub issuer: String,
    pub proxy: Proxy,
    _node: Proc,
    http: reqwest::Client,
}

pub struct IdpOptions {
    pub access_ttl: u64,
    /// Seconds a rotated refresh token stays good (the harness's `--rotation-grace`).
    pub rotation_grace: u64,
    /// Discovery keys listed only in RFC 8414 metadata (the harness's `--rfc8414-only`).
    pub rfc8414_only: &'static [&'static str],
    /// Discovery keys listed nowhere (`--unlisted`).
    pub unlisted: &'static [&'static str],
    /// No RFC 8414 metadata: a 404 where it would be (`--no-rfc8414`).
    pub no_rfc8414: bool,
    /// The first this many requests for RFC 8414 metadata answer 503 (`--rfc8414-unavailable`).
    pub rfc8414_unavailable: u32,
    /// The test client's grant types, when not all of them (`--client-grant-types`).
    pub client_grant_types: Option<&'static [&'static str]>,
    /// The device_code grant answers without an ID token (the harness's `--no-device-id-token`).
    pub no_device_id_token: bool,
    /// Refresh answers carry no ID token, as Google's (`--no-refresh-id-token`).
    pub no_refresh_id_token: bool,
    /// Seconds an ID token lives (`--id-ttl`).
    pub id_ttl: u64,
    /// The ID tokens' signature algorithm (the harness's `--id-token-alg`: RS256 or ES256).
    pub id_token_alg: &'static str,
    /// ID tokens carry the email and profile claims, not only userinfo (`--id-token-claims`).
    pub id_token_claims: bool,
}

impl Default for IdpOptions {
    fn default() -> Self {
        IdpOptions {
            access_ttl: 60,
            rotation_grace: 0,
            rfc8414_only: &[],
            unlisted: &[],
            no_rfc8414: false,
            rfc8414_unavailable: 0,
            client_grant_types: None,
            no_device_id_token: false,
            no_refresh_id_token: false,
            id_ttl: 3600,
            id_token_alg: "RS256",
            id_token_claims: false,
        }
    }
}

impl Idp {
    pub async fn start(opts: IdpOptions) -> Idp {
        let proxy = Proxy::start().await;
        let issuer = format!("http://127.0.0.1:{}", proxy.port());
        // A rare start-up hang of node has been seen under load: one retry.
        for attempt in 0..2 {
            let mut child = Command::new("node")
                .arg(repo_root().join("testidp/idp.mjs"))
                .args(["--issuer", &issuer, "--access-ttl", &opts.access_ttl.to_string()])
                .args(["--rotation-grace", &opts.rotation_grace.to_string()])
                .args(["--rfc8414-only", &opts.rfc8414_only.join(","), "--unlisted", &opts.unlisted.join(",")])
                .args(opts.client_grant_types.iter().flat_map(|g| ["--client-grant-types".to_owned(), g.join(",")]))
                .args(opts.no_rfc8414.then_some("--no-rfc8414"))
                .args(["--rfc8414-unavailable", &opts.rfc8414_unavailable.to_string()])
                .args(opts.no_device_id_token.then_some("--no-device-id-token"))
                .args(opts.no_refresh_id_token.then_some("--no-refresh-id-token"))
                .args(["--id-ttl", &opts.id_ttl.to_string()])
                .args(["--id-token-alg", opts.id_token_alg])
                .args(opts.id_token_claims.then_some("--id-token-claims"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("node must be installed (and `npm ci` run in testidp/)");
            match first_line(&mut child, Duration::from_secs(20)) {
                Some(line) => {
                    let info: Value = serde_json::from_str(&line).expect("harness prints JSON");
                    proxy.set_target(info["port"].as_u64().unwrap() as u16);
                    let http = reqwest::Client::new();
                    return Idp { issuer, proxy, _node: Proc(child), http };
                }
                None => {
                    let _ = child.kill();
                    eprintln!("test IdP did not start (attempt {attempt}); retrying");
                }
            }
        }
        panic!("the test IdP did not start");
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.proxy.direct_url());
        let resp = self.http.post(url).json(&body).send().await.unwrap();
        resp.json().await.unwrap()
    }

    /// What a person does in the browser: enter the code, log in as `account`, consent.
    pub async fn approve(&self, user_code: &str, account: &str) {
        let r = self.post("/__test/approve", serde_json::json!({"user_code": user_code, "account": account})).await;
        assert_eq!(r["ok"], true, "approval failed: {r}");
    }

    /// The code flow's browser: open the authorization URL, log in, consent, land on the
    /// daemon's loopback redirect. The harness's JSON report.
    pub async fn browse_code(&self, authorization_url: &str, account: &str, deny: bool) -> Value {
        let body = serde_json::json!({"url": authorization_url, "account": account, "deny": deny});
        self.post("/__test/approve-code", body).await
    }

    /// Make the next token response carry a bad ID token (see testidp/faults.mjs).
    pub async fn arm_id_token_fault(&self, kind: &str) {
        let r = self.post("/__test/id-token-fault", serde_json::json!({"kind": kind})).await;
        assert_eq!(r["armed"], true, "{r}");
    }

    /// Make the next device authorization answer hostile (see testidp/device_faults.mjs).
    pub async fn arm_device_fault(&self, kind: &str) {
        let r = self.post("/__test/device-fault", serde_json::json!({"kind": kind})).await;
        assert_eq!(r["armed"], true, "{r}");
    }

    /// Make the next refresh response (only) carry a bad ID token.
    pub async fn arm_refresh_id_token_fault(&self, kind: &str) {
        let body = serde_json::json!({"kind": kind, "grant": "refresh_token"});
        let r = self.post("/__test/id-token-fault", body).await;
        assert_eq!(r["armed"], true, "{r}");
    }

    pub async fn deny(&self, user_code: &str) {
        let r = self.post("/__test/approve", serde_json::json!({"user_code": user_code, "deny": true})).await;
        assert_eq!(r["ok"], true, "denial failed: {r}");
    }

    /// Revoke every grant of `account`, as an admin would.
    pub async fn revoke_user(&self, account: &str) -> u64 {
        self.post("/__test/revoke", serde_json::json!({"account": account})).await["revoked_grants"].as_u64().unwrap()
    }

    /// Forget every access token of `account` at the IdP, leaving its refresh tokens good.
    pub async fn revoke_access_tokens(&self, account: &str) -> u64 {
        let r = self.post("/__test/revoke-access", serde_json::json!({"account": account})).await;
        r["revoked_access_tokens"].as_u64().unwrap()
    }

    pub async fn stats(&self) -> Value {
        let url = format!("{}/__test/stats", self.proxy.direct_url());
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// Successful refresh-token grants the IdP answered.
    pub async fn refreshes(&self) -> u64 {
        self.stats().await["token"]["refresh_token:200"].as_u64().unwrap_or(0)
    }

    /// Refresh-token grants of any outcome.
    pub async fn refresh_attempts(&self) -> u64 {
        let stats = self.stats().await;
        stats["token"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("refresh_token:"))
            .map(|(_, v)| v.as_u64().unwrap())
            .sum()
    }

    /// Use a refresh token directly at the token endpoint; the IdP's JSON answer.
    pub async fn try_refresh(&self, refresh_token: &str) -> Value {
        let url = format!("{}/token", self.proxy.direct_url());
        let form =
            [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", "tokenbroker-test")];
        self.http.post(url).form(&form).send().await.unwrap().json().await.unwrap()
    }

    /// An account that may ask for the harness's two APIs and its management API.
    pub fn api_account_config(&self, name: &str) -> String {
        format!(
            "[accounts.{name}]\nissuer = \"{iss}\"\nclient_id = \"tokenbroker-test\"\n\
             scopes = [\"openid\", \"profile\", \"email\", \"offline_access\", \"api:read\", \"reports:read\", \
             \"read:current_user\", \"update:current_user_metadata\"]\n\
             audience_param = \"resource\"\n\
             audiences = [\"{API}\", \"{REPORTS}\"]\nmanagement_api = \"{iss}/api/v2/\"\n",
            iss = self.issuer
        )
    }

    pub fn account_config(&self, name: &str) -> String {
        format!("[accounts.{name}]\nissuer = \"{}\"\nclient_id = \"tokenbroker-test\"\n", self.issuer)
    }
}

pub const API: &str = "https://api.example.test/";
pub const REPORTS: &str = "https://reports.example.test/";

/// The claims of a JWT, unverified (tests look at what the IdP put in).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// The real tokenbrokerd, with its own config, socket and log file.
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn start(bus: &Bus, config: &str) -> Daemon {
        Self::start_with_log(bus, config, "debug")
    }

    pub fn start_with_log(bus: &Bus, config: &str, log_level: &str) -> Daemon {
        Self::start_full(bus, config, log_level, &[])
    }

    pub fn start_with_args(bus: &Bus, config: &str, args: &[&str]) -> Daemon {
        Self::start_full(bus, config, "debug", args)
    }

    fn start_full(bus: &Bus, config: &str, log_level: &str, args: &[&str]) -> Daemon {
        let mut d = Self::prepare(config);
        d.log_level = log_level.into();
        d.args = args.iter().map(|a| a.to_string()).collect();
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

    /// A daemon on a machine with no session bus at all (headless server, macOS).
    pub fn start_without_bus(config: &str) -> Daemon {
        let mut d = Self::prepare(config);
        d.spawn_without_bus();
        d
    }

    /// Start (or start again) the binary with no session bus to find.
    pub fn spawn_without_bus(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenbrokerd"));
        cmd.env("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}", self.dir.path().join("no-bus").display()));
        self.launch(cmd);
    }

    /// Start (or start again) the binary and wait until its socket answers.
    pub fn spawn(&mut self, bus: &Bus) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenbrokerd"));
        bus.env(&mut cmd);
        self.launch(cmd);
    }

    fn launch(&mut self, mut cmd: Command) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).unwrap();
        let child = cmd
            .arg("--config")
            .arg(self.config_path())
            .arg("--socket")
            .arg(self.socket())
            .args(&self.args)
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
        Command::new(brokerctl_path())
            .args(args)
            .env("TOKENBROKER_SOCKET", self.socket())
            .env_remove("TOKENBROKER_TRANSPORT")
            .output()
            .unwrap()
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

/// The UID of a second user for refusal tests: `tokenbroker-peer`, which CI creates
/// (`.ci/run`), or else `nobody`.
pub fn other_user() -> u32 {
    let out = Command::new("id").args(["-u", "tokenbroker-peer"]).output();
    out.ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(65534)
}

/// brokerctl sits next to tokenbrokerd in the target directory (`cargo build --workspace`
/// puts it there; the README's test command does that first).
pub fn brokerctl_path() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_tokenbrokerd")).with_file_name("brokerctl");
    assert!(path.exists(), "{} is missing: run `cargo build --workspace` first (scripts/test does)", path.display());
    path
}

pub async fn token(
    client: &tokenbroker::Client,
    min_ttl: Option<u64>,
) -> tokenbroker::Result<tokenbroker::protocol::AccessToken> {
    client.get_access_token(tokenbroker::protocol::GetAccessToken { min_ttl, ..Default::default() }).await
}

/// Sleep into the next wall-clock second, so a token issued earlier has lost a second of life
/// (lifetimes are whole seconds).
pub async fn next_second() {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_millis();
    tokio::time::sleep(Duration::from_millis(1010 - ms as u64)).await;
}

/// Poll `f` until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
