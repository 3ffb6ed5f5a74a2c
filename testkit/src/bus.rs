//! A private D-Bus session bus with a fresh, unlocked gnome-keyring on it: the Secret Service
//! the daemon stores sessions in, and the bus its D-Bus door serves on.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{Proc, first_line};

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
