//! Running as a real user service: the unit files and plist, socket activation, readiness
//! notification, reload on SIGHUP, an orderly stop on SIGTERM, and one daemon per user.

use std::collections::HashSet;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokenbroker::protocol::AccountState;
use tokenbroker_testkit::*;

/// The tools come from Debian's systemd package; CI installs it, so there it must be present.
fn have(tool: &str) -> bool {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap().status.success();
    assert!(found || std::env::var_os("CI").is_none(), "{tool} is missing in CI");
    if !found {
        eprintln!("{tool} not installed; skipping");
    }
    found
}

/// The units as a user installs them, with ExecStart pointing at the binary under test.
fn units_in(dir: &std::path::Path) {
    for unit in ["tokenbroker.service", "tokenbroker.socket"] {
        let text = std::fs::read_to_string(repo_root().join("systemd").join(unit)).unwrap();
        let text = text.replace("%h/.cargo/bin/tokenbrokerd", env!("CARGO_BIN_EXE_tokenbrokerd"));
        std::fs::write(dir.join(unit), text).unwrap();
    }
    std::fs::create_dir_all(dir.join("run")).unwrap();
}

#[test]
fn systemd_units_verify_and_are_sandboxed_below_exposure_2() {
    if !have("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    units_in(dir.path());
    let analyze = |args: &[&str]| {
        let out = Command::new("systemd-analyze")
            .args(args)
            .current_dir(dir.path())
            .env("XDG_RUNTIME_DIR", dir.path().join("run"))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, text) = analyze(&["verify", "--user", "./tokenbroker.socket", "./tokenbroker.service"]);
    assert!(ok, "systemd-analyze verify: {text}");
    let (_, text) = analyze(&["security", "--offline=true", "--user", "./tokenbroker.service"]);
    let line = text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("{text}"));
    let score: f64 = line.split(':').nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    println!("systemd-analyze security: {score}");
    // What remains open is what a token broker needs: the network (to reach the IdP), Unix
    // sockets (its socket, the session bus and the keyring) and a read-only home (its config).
    assert!(score <= 2.0, "exposure {score} above 2.0:\n{text}");

    let activation =
        std::fs::read_to_string(repo_root().join("systemd/io.github.tokenbroker.Broker1.service")).unwrap();
    for line in ["[D-BUS Service]", "Name=io.github.tokenbroker.Broker1", "SystemdService=tokenbroker.service"] {
        assert!(activation.lines().any(|l| l == line), "D-Bus activation file lacks {line}");
    }
    let socket = std::fs::read_to_string(repo_root().join("systemd/tokenbroker.socket")).unwrap();
    assert!(socket.contains("ListenStream=%t/tokenbroker/broker.sock") && socket.contains("SocketMode=0600"));
}

#[test]
fn the_launchd_plist_parses_and_has_the_keys_launchd_needs() {
    let script = r#"
import plistlib, sys
text = open(sys.argv[1]).read().replace("@HOME@", "/Users/alice")
p = plistlib.loads(text.encode())
assert p["Label"] == "io.github.tokenbroker", p["Label"]
assert p["ProgramArguments"][0] == "/Users/alice/.cargo/bin/tokenbrokerd"
listener = p["Sockets"]["Listeners"]
assert listener["SockPathName"] == "/Users/alice/Library/Caches/tokenbroker/broker.sock"
assert listener["SockPathMode"] == 0o600
assert p["KeepAlive"] == {"SuccessfulExit": False}
assert p["RunAtLoad"] is False
print("ok")
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(repo_root().join("launchd/io.github.tokenbroker.plist"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// tokenbrokerd under `systemd-socket-activate` on a socket in the daemon's directory, serving
/// once a client has connected (`None` where the activator is not installed).
struct Activated {
    _bus: Bus,
    idp: Idp,
    daemon: Daemon,
    socket: std::path::PathBuf,
    _activator: Proc,
    client: tokenbroker::Client,
}

async fn activated() -> Option<Activated> {
    if !have("systemd-socket-activate") {
        return None;
    }
    let bus = Bus::start();
    let idp = Idp::start(IdpOptions::default()).await;
    let d = Daemon::prepare(&idp.account_config("work"));
    let socket = d.dir.path().join("activated.sock");
    let mut cmd = bus.command("systemd-socket-activate");
    cmd.arg("--listen")
        .arg(&socket)
        // The activator passes on only the variables it is told to.
        .args(["-E", "DBUS_SESSION_BUS_ADDRESS", "-E", "HOME", "-E", "XDG_RUNTIME_DIR", "-E", "RUST_LOG"])
        .arg(env!("CARGO_BIN_EXE_tokenbrokerd"))
        .arg("--config")
        .arg(d.config_path())
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.log_path()).unwrap());
    let activator = Proc(cmd.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "the activator did not create the socket");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!d.log().contains("tokenbrokerd ready"), "not started before anyone asked");

    // The file appears at bind(), a moment before the activator's listen(): until then a
    // connection is refused.
    let mut connected = tokenbroker::Client::connect_to(&socket).await;
    while connected.is_err() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        connected = tokenbroker::Client::connect_to(&socket).await;
    }
    let client = connected.unwrap();
    let status = client.status().await.unwrap_or_else(|e| panic!("{e}: {}", d.log()));
    assert_eq!(status.accounts[0].name, "work");
    let log = d.log();
    assert!(log.contains("an inherited socket"), "served the socket it was given: {log}");
    Some(Activated { _bus: bus, idp, daemon: d, socket, _activator: activator, client })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_activation_starts_the_daemon_on_the_first_connection() {
    let Some(activated) = activated().await else { return };
    let client = &activated.client;
    // Fully working: a login and a token through the activated socket.
    let challenge = client.login(Default::default()).await.unwrap();
    activated.idp.approve(challenge.user_code.as_deref().unwrap(), "alice").await;
    client.await_login(&challenge.login_id).await.unwrap();
    assert!(token(client, None).await.is_ok());
}

/// A socket handed over with looser modes than ours is still ours alone: SO_PEERCRED refuses
/// another user who gets through the file modes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root"]
async fn an_activated_socket_with_loose_modes_refuses_another_user() {
    let Some(activated) = activated().await else { return };
    let (daemon, socket) = (&activated.daemon, &activated.socket);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(daemon.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = std::os::unix::process::CommandExt::uid(&mut Command::new(brokerctl_path()), other_user())
        .arg("token")
        .env("TOKENBROKER_SOCKET", socket)
        .env_remove("TOKENBROKER_TRANSPORT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && !stdout.contains("eyJ"), "another user got a token: {stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("serves only its own user"), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_and_stopping_are_notified_on_notify_socket() {
    let bus = Bus::start();
    let idp = Idp::start(IdpOptions::default()).await;
    let mut d = Daemon::prepare(&idp.account_config("work"));
    let notify_path = d.dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    d.env.push(("NOTIFY_SOCKET".into(), notify_path.display().to_string()));
    d.spawn(&bus);
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains("READY=1") {
        let n = notify.recv(&mut buf).expect("no READY=1 on NOTIFY_SOCKET");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        seen.push('\n');
    }
    assert!(seen.contains("STATUS=1 accounts, 0 logged in"), "{seen}");

    d.signal(libc::SIGHUP);
    let mut reload = String::new();
    while !reload.contains("READY=1") {
        let n = notify.recv(&mut buf).expect("no READY=1 after a reload");
        reload.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(reload.contains("RELOADING=1"), "{reload}");

    d.signal(libc::SIGTERM);
    let n = notify.recv(&mut buf).expect("no STOPPING=1");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert_eq!(d.proc.as_mut().unwrap().wait_exit(Duration::from_secs(20)).unwrap().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_added_changed_and_removed_accounts_and_refuses_a_broken_config() {
    let bus = Bus::start();
    let (one, two) = (Idp::start(IdpOptions::default()).await, Idp::start(IdpOptions::default()).await);
    let daemon = Daemon::start(&bus, &one.account_config("work"));
    daemon.login(&one, None, "alice").await;
    let client = daemon.client().await;
    let before = token(&client, None).await.unwrap();
    let states = || async {
        let s = client.status().await.unwrap();
        s.accounts.into_iter().map(|a| (a.name, a.state)).collect::<Vec<_>>()
    };
    let reload = |config: String| {
        daemon.write_config(&config);
        let reloads = daemon.log().matches("config reload").count();
        daemon.signal(libc::SIGHUP);
        let deadline = Instant::now() + Duration::from_secs(10);
        while daemon.log().matches("config reload").count() == reloads {
            assert!(Instant::now() < deadline, "no reload logged");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // Added: the new account appears; the old one keeps its session.
    reload(format!("default_account = \"work\"\n{}{}", one.account_config("work"), two.account_config("home")));
    assert_eq!(states().await, vec![("home".into(), AccountState::LoggedOut), ("work".into(), AccountState::Valid)]);
    assert_eq!(token(&client, None).await.unwrap().access_token, before.access_token);

    // Broken: refused, the running config stays.
    reload("default_account = \"work\"\n[accounts.work]\nissuer = 42\n".into());
    assert!(daemon.log().contains("config reload refused"), "{}", daemon.log());
    assert_eq!(states().await.len(), 2);
    assert_eq!(token(&client, None).await.unwrap().access_token, before.access_token);

    // Changed (another issuer): the stored session is not this account's any more.
    reload(format!("default_account = \"work\"\n{}{}", two.account_config("work"), two.account_config("home")));
    assert_eq!(
        states().await,
        vec![("home".into(), AccountState::LoggedOut), ("work".into(), AccountState::LoggedOut)]
    );

    // Removed.
    reload(two.account_config("work"));
    assert_eq!(states().await, vec![("work".into(), AccountState::LoggedOut)]);
    assert!(daemon.log().contains("removed=[\"home\"]"), "{}", daemon.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_in_flight_requests_loses_none_of_them() {
    let Env { bus, idp, mut daemon } = Fixture::new().logged_in("alice").await;
    let old = token(&daemon.client().await, None).await.unwrap();
    idp.proxy.set_delay(Duration::from_millis(1500));
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(daemon.client().await);
    }
    let calls = tokio::spawn(async move {
        let calls = clients.iter().map(|c| token(c, Some(60)));
        futures_util::future::join_all(calls).await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    daemon.signal(libc::SIGTERM);
    let results = calls.await.unwrap();
    let tokens: HashSet<String> =
        results.into_iter().map(|r| r.expect("answered").access_token.expose().to_owned()).collect();
    assert_eq!(tokens.len(), 1);
    assert!(!tokens.contains(old.access_token.expose()), "the refresh in flight completed");
    let status = daemon.proc.as_mut().unwrap().wait_exit(Duration::from_secs(20)).expect("stopped");
    assert_eq!(status.code(), Some(0));
    assert_eq!(bus.keyring_entry("work").unwrap()["access_token"], tokens.iter().next().unwrap().as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_is_refused_and_the_first_keeps_serving() {
    let Env { bus, idp: _idp, daemon: first } = Fixture::new().start().await;

    let run_second = |socket: &std::path::Path| {
        let mut cmd = bus.command(env!("CARGO_BIN_EXE_tokenbrokerd"));
        let out = cmd.arg("--config").arg(first.config_path()).arg("--socket").arg(socket).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Same socket.
    let (code, stderr) = run_second(&first.socket());
    assert_eq!(code, Some(1));
    assert!(stderr.contains("another tokenbrokerd is already serving"), "{stderr}");
    // Another socket, same session bus: the bus name is taken.
    let elsewhere = first.dir.path().join("second/broker.sock");
    let (code, stderr) = run_second(&elsewhere);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("already owns io.github.tokenbroker.Broker1"), "{stderr}");
    assert!(!elsewhere.exists(), "the refused daemon cleaned up its socket");

    assert!(first.client().await.status().await.is_ok());
    assert!(first.socket().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_says_what_is_wrong_and_what_to_do() {
    let nowhere = tempfile::tempdir().unwrap();
    let out = Command::new(brokerctl_path())
        .arg("doctor")
        .env("TOKENBROKER_SOCKET", nowhere.path().join("none.sock"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("FAIL daemon") && text.contains("start it"), "{text}");

    let Env { mut bus, idp, daemon } = Fixture::new().start().await;
    let out = daemon.brokerctl(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    for line in ["ok   daemon", "ok   config", "ok   keyring", "ok   identity provider of work"] {
        assert!(text.contains(line), "{line} in {text}");
    }

    // Three things broken at once, each named with its remedy.
    daemon.write_config("[accounts.work]\nissuer = \"http://127.0.0.1:9/\"\nclient_id = \"x\"\nbogus = 1\n");
    idp.proxy.set_down(true);
    bus.keyring.signal(libc::SIGKILL);
    bus.keyring.wait_exit(Duration::from_secs(5));
    let out = daemon.brokerctl(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let diagnosis: tokenbroker::protocol::Diagnosis = serde_json::from_slice(&out.stdout).unwrap();
    let failed: Vec<_> = diagnosis.checks.iter().filter(|c| !c.ok).map(|c| c.name.as_str()).collect();
    assert_eq!(failed, vec!["config", "keyring", "identity provider of work"], "{diagnosis:?}");
    let config = &diagnosis.checks[1];
    assert!(config.detail.contains("bogus") && config.fix.as_deref().unwrap().contains("reload"), "{config:?}");
    assert!(diagnosis.checks.iter().all(|c| c.ok || c.fix.is_some()), "every failure says what to do");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_suspend_wakes_the_refresh_schedulers() {
    // A stand-in logind on a private "system bus": the only way to say PrepareForSleep here.
    let system = Bus::start();
    let logind = zbus::connection::Builder::address(system.address.as_str()).unwrap().build().await.unwrap();
    logind.request_name("org.freedesktop.login1").await.unwrap();
    let Env { bus: _bus, idp: _idp, daemon } =
        Fixture::new().env("DBUS_SYSTEM_BUS_ADDRESS", &system.address).logged_in("alice").await;
    // The daemon subscribed at start; the login took longer than that.
    assert!(!daemon.log().contains("not watching for suspend"), "{}", daemon.log());
    for start in [true, false] {
        logind
            .emit_signal(
                None::<()>,
                "/org/freedesktop/login1",
                "org.freedesktop.login1.Manager",
                "PrepareForSleep",
                &(start,),
            )
            .await
            .unwrap();
    }
    let woke = eventually(Duration::from_secs(5), || async { daemon.log().contains("resumed from suspend") }).await;
    assert!(woke, "{}", daemon.log());
    assert!(token(&daemon.client().await, None).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_without_a_journal_it_logs_to_stderr_and_says_so() {
    if std::path::Path::new("/run/systemd/journal/socket").exists() {
        eprintln!("a journal is running here; the fallback cannot be shown");
        return;
    }
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new().env("JOURNAL_STREAM", "8:12345").start().await;
    let log = daemon.log();
    assert!(log.contains("the journal is not reachable") && log.contains("tokenbrokerd ready"), "{log}");
}

/// SIGINT (Ctrl-C in a terminal) stops the daemon as SIGTERM does: an orderly stop, exit 0.
#[test]
fn sigint_stops_the_daemon_as_sigterm_does() {
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, log) = crate::hardening::start_on_memory(dir.path(), |_| {});
    daemon.signal(libc::SIGINT);
    let status = daemon.wait_exit(Duration::from_secs(20)).expect("SIGINT did not stop the daemon");
    let text = std::fs::read_to_string(log).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(text.contains("stopped"), "{text}");
    assert!(!dir.path().join("run/broker.sock").exists(), "socket removed");
}

/// The unit's file-system view, rebuilt with mount namespaces (systemd itself does not run
/// here): home read-only, its `ReadWritePaths=` and `StateDirectory=` writable, `ExecStartPre=+`
/// run unsandboxed first. The daemon with `store = "file"` and the default path must start
/// there, and write its audit trail.
#[test]
#[ignore = "needs root"]
fn the_default_sealed_file_is_writable_in_the_units_sandbox() {
    assert!(have("unshare"), "unshare (Debian package util-linux) rebuilds the unit's mounts");
    let unit = std::fs::read_to_string(repo_root().join("systemd/tokenbroker.service")).unwrap();
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let h = |s: &str| s.replace("%h", home.to_str().unwrap());
    let setting = |key: &str| -> Vec<String> {
        unit.lines().filter_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix('='))).map(h).collect()
    };
    assert_eq!(setting("ProtectHome"), ["read-only"], "the sandbox this test rebuilds");
    for pre in setting("ExecStartPre") {
        let pre = pre.strip_prefix('+').expect("only unsandboxed set-up commands are expected");
        let ok = Command::new("sh").arg("-c").arg(pre).status().unwrap().success();
        assert!(ok, "ExecStartPre {pre} failed");
    }
    // StateDirectory=NAME of a user unit: systemd makes $XDG_STATE_HOME/NAME (StateDirectoryMode)
    // and leaves it writable in the sandbox. The audit trail lives there.
    let mode = setting("StateDirectoryMode").first().map(|m| u32::from_str_radix(m, 8).unwrap()).unwrap_or(0o755);
    let mut writable = setting("ReadWritePaths");
    for name in
        setting("StateDirectory").iter().flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    {
        let dir = home.join(".local/state").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        writable.push(dir.to_str().unwrap().to_owned());
    }
    let mut script = String::from("set -e; mount --bind \"$HOME\" \"$HOME\"; mount -o remount,bind,ro \"$HOME\"\n");
    for path in writable.iter().flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>()) {
        let (optional, path) = path.strip_prefix('-').map_or((false, path.as_str()), |p| (true, p));
        if std::path::Path::new(path).exists() {
            script += &format!("mount --bind '{path}' '{path}'; mount -o remount,bind,rw '{path}'\n");
        } else {
            assert!(optional, "ReadWritePaths={path} is missing at start, which fails the unit");
        }
    }
    script += "exec \"$@\"\n";
    std::fs::write(
        home.join("config.toml"),
        "store = \"file\"\nstore_passphrase_command = [\"printf\", \"pw\"]\n\
         [accounts.work]\nissuer = \"https://idp.invalid/\"\nclient_id = \"c\"\n",
    )
    .unwrap();
    let run = tempfile::tempdir().unwrap();
    let socket = run.path().join("tokenbroker/broker.sock");
    let mut daemon = Proc(
        Command::new("unshare")
            .args(["-m", "sh", "-c", &script, "sh", env!("CARGO_BIN_EXE_tokenbrokerd"), "--config"])
            .arg(home.join("config.toml"))
            .arg("--socket")
            .arg(&socket)
            .env("HOME", home)
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_STATE_HOME")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokenbroker::blocking::Client::connect_to(&socket).and_then(|c| c.status()).is_err() {
        if daemon.0.try_wait().unwrap().is_some() {
            let mut err = String::new();
            std::io::Read::read_to_string(daemon.0.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("tokenbrokerd did not start in the unit's sandbox:\n{err}");
        }
        assert!(Instant::now() < deadline, "tokenbrokerd did not answer");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sealed = home.join(".local/share/tokenbroker/sessions.sealed");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&sealed).unwrap().permissions().mode() & 0o777, 0o600);
    // The audit trail is opened at start, in the state directory.
    let audit = home.join(".local/state/tokenbroker/audit.jsonl");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !audit.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let made = std::fs::metadata(&audit).unwrap_or_else(|e| {
        daemon.signal(libc::SIGTERM);
        let mut err = String::new();
        std::io::Read::read_to_string(daemon.0.stderr.as_mut().unwrap(), &mut err).unwrap();
        panic!("{}: {e}; the daemon said:\n{err}", audit.display())
    });
    assert_eq!(made.permissions().mode() & 0o777, 0o600);
}
