//! Headless machines: without a Secret Service the daemon says so and names the choices; with
//! `store = "file"` sessions live in an encrypted file that survives restarts, with the
//! passphrase from a command or a systemd credential.

use std::process::{Command, Stdio};
use std::time::Duration;

use tokenbroker_testkit::*;

#[test]
fn without_a_keyring_the_daemon_refuses_to_start_and_names_the_choices() {
    let (stderr, socket) = refused_start("[accounts.work]\nissuer = \"https://idp.example.com\"\nclient_id = \"x\"\n");
    assert!(stderr.contains("No usable OS keyring"), "{stderr}");
    assert!(stderr.contains("store = \"file\"") && stderr.contains("store = \"memory\""), "{stderr}");
    assert!(!socket.exists());
}

#[test]
fn a_broken_config_stops_the_start_and_names_file_line_and_key() {
    let config = "store = \"memory\"\n[accounts.work]\nissuer = \"https://idp.example.com\"\nclientid = \"typo\"\n";
    let (stderr, socket) = refused_start(config);
    assert!(stderr.contains("config.toml") && stderr.contains("line 4") && stderr.contains("clientid"), "{stderr}");
    assert!(!socket.exists(), "nothing is served with a config that does not parse");
}

#[test]
fn a_sealed_file_that_cannot_be_written_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    // A directory in the way of its temporary file: unwritable even for root (CI's user).
    std::fs::create_dir_all(dir.path().join("sessions.tmp/in-the-way")).unwrap();
    let config = format!(
        "store = \"file\"\nstore_file = \"{}\"\nstore_passphrase_command = [\"printf\", \"pw\"]\n\
         [accounts.work]\nissuer = \"https://idp.example.com\"\nclient_id = \"x\"\n",
        dir.path().join("sessions.sealed").display()
    );
    let (stderr, _) = refused_start(&config);
    assert!(stderr.contains("cannot write") && stderr.contains("sessions.sealed"), "{stderr}");
}

/// Run tokenbrokerd with `config` and no bus; it must exit unsuccessfully. Its stderr, and
/// where its socket would have been.
fn refused_start(config: &str) -> (String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config).unwrap();
    let socket = dir.path().join("run/s.sock");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_tokenbrokerd"))
        .arg("--config")
        .arg(&config_path)
        .arg("--socket")
        .arg(&socket)
        .arg("--no-dbus")
        .env("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}", dir.path().join("no-bus").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = daemon.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = daemon.kill();
            panic!("the daemon started:\n{config}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::io::read_to_string(daemon.stderr.take().unwrap()).unwrap();
    assert!(!status.success(), "{stderr}");
    (stderr, socket)
}

/// The test IdP, and a daemon started on a machine with no bus at all, its sessions sealed in
/// a directory of their own (returned too).
async fn file_daemon(key_config: &str, env: &[(&str, &str)]) -> (Idp, tempfile::TempDir, Daemon) {
    let idp = Idp::start(IdpOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "store = \"file\"\nstore_file = \"{}\"\n{key_config}\n{}",
        dir.path().join("sessions.sealed").display(),
        idp.account_config("work")
    );
    let mut daemon = Daemon::prepare(&config);
    daemon.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    daemon.spawn_without_bus();
    (idp, dir, daemon)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_store_keeps_sessions_sealed_across_restarts() {
    let key = "store_passphrase_command = [\"printf\", \"%s\", \"correct horse battery\"]";
    let (idp, store_dir, mut daemon) = file_daemon(key, &[]).await;
    daemon.login(&idp, None, "alice").await;
    let first = token(&daemon.client().await, None).await.unwrap();

    let sealed = std::fs::read_to_string(store_dir.path().join("sessions.sealed")).unwrap();
    assert!(sealed.contains("tokenbroker-sealed-1"));
    assert!(!sealed.contains(first.access_token.expose()), "the file holds no token in the clear");

    // Killed and started again: the session comes back from the file, no login.
    daemon.kill9();
    daemon.spawn_without_bus();
    let again = token(&daemon.client().await, None).await.unwrap();
    assert_eq!(again.access_token, first.access_token);
    next_second().await;
    let refreshed = token(&daemon.client().await, Some(60)).await.unwrap();
    assert_ne!(refreshed.access_token, first.access_token);

    // With the wrong passphrase the daemon will not start, and says why.
    daemon.kill9();
    daemon.write_config(&format!(
        "store = \"file\"\nstore_file = \"{}\"\nstore_passphrase_command = [\"printf\", \"%s\", \"wrong\"]\n{}",
        store_dir.path().join("sessions.sealed").display(),
        idp.account_config("work")
    ));
    let out = Command::new(env!("CARGO_BIN_EXE_tokenbrokerd"))
        .arg("--config")
        .arg(daemon.config_path())
        .arg("--socket")
        .arg(daemon.socket())
        .arg("--no-dbus")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_store_takes_its_key_from_a_systemd_credential() {
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(credentials.path().join("tokenbroker-store"), "from-a-credential\n").unwrap();
    let env = [("CREDENTIALS_DIRECTORY", credentials.path().to_str().unwrap())];
    let (idp, _store_dir, mut daemon) = file_daemon("store_key_credential = \"tokenbroker-store\"", &env).await;
    daemon.login(&idp, None, "alice").await;
    let first = token(&daemon.client().await, None).await.unwrap();
    daemon.kill9();
    daemon.spawn_without_bus();
    assert_eq!(token(&daemon.client().await, None).await.unwrap().access_token, first.access_token);
}

/// With `store = "file"`, doctor's check is of the sealed file, by its path, and its advice
/// is about that file: not "unlock your keyring".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_the_sealed_file_not_the_keyring() {
    let (_idp, store_dir, daemon) = file_daemon("store_passphrase_command = [\"printf\", \"pw\"]", &[]).await;
    let sealed = store_dir.path().join("sessions.sealed");
    let doctor = |daemon: &Daemon| String::from_utf8(daemon.brokerctl(&["doctor"]).stdout).unwrap();
    let report = doctor(&daemon);
    let ok = format!("ok   sealed file: the sealed file at {} takes a write", sealed.display());
    assert!(report.contains(&ok), "{report}");

    // A directory in the way of its temporary file: every write fails, even as root.
    std::fs::create_dir_all(store_dir.path().join("sessions.tmp/in-the-way")).unwrap();
    let report = doctor(&daemon);
    let failed = format!("FAIL sealed file: the sealed file at {} is unavailable: cannot write", sealed.display());
    assert!(report.contains(&failed), "{report}");
    assert!(!report.contains("keyring"), "{report}");
}

/// A Secret Service that runs but refuses writes is no store: the daemon will not start on it,
/// as without a keyring, unless the config chose another store on purpose.
#[test]
fn a_locked_keyring_stops_the_start_as_no_keyring_does() {
    let bus = Bus::start();
    bus.lock_keyring();
    let daemon = Daemon::prepare("[accounts.work]\nissuer = \"https://idp.example.com\"\nclient_id = \"x\"\n");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenbrokerd"));
    bus.env(&mut cmd);
    let mut started = Proc(
        cmd.arg("--config")
            .arg(daemon.config_path())
            .arg("--socket")
            .arg(daemon.socket())
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(daemon.log_path()).unwrap())
            .spawn()
            .unwrap(),
    );
    let status = started.wait_exit(Duration::from_secs(20));
    let stderr = daemon.log();
    assert!(status.is_some_and(|s| !s.success()), "the daemon went on with a locked keyring:\n{stderr}");
    assert!(stderr.contains("No usable OS keyring"), "{stderr}");
    assert!(stderr.contains("store = \"file\"") && stderr.contains("store = \"memory\""), "{stderr}");

    // Chosen on purpose, memory serves on the same bus.
    let memory = Daemon::start(
        &bus,
        "store = \"memory\"\n[accounts.work]\nissuer = \"https://idp.example.com\"\nclient_id = \"x\"\n",
    );
    assert!(memory.log().contains("store = \"memory\""), "{}", memory.log());
}

/// The keyring locks while the daemon runs: a login still works (in memory, retried), but
/// Status, `brokerctl login`, `brokerctl status` and `brokerctl doctor` all say the session
/// is not saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyring_that_locks_later_shows_in_status_login_and_doctor() {
    let Env { bus, idp, daemon } = Fixture::new().start().await;
    bus.lock_keyring();

    let mut login = Command::new(brokerctl_path())
        .args(["login", "--json", "--no-browser"])
        .env("TOKENBROKER_SOCKET", daemon.socket())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(login.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    let challenge: serde_json::Value = serde_json::from_str(&line).unwrap();
    idp.approve(challenge["user_code"].as_str().unwrap(), "alice").await;
    let done = tokio::task::spawn_blocking(move || login.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("NOT SAVED"), "brokerctl login did not say so:\n{stderr}\n{}", daemon.log());

    let status = daemon.client().await.status().await.unwrap();
    assert_eq!(status.accounts[0].persisted, Some(false));
    assert!(bus.keyring_entry("work").is_none());
    let out = String::from_utf8(daemon.brokerctl(&["status"]).stdout).unwrap();
    assert!(out.contains("as alice") && out.contains("NOT SAVED"), "{out}");
    let json = String::from_utf8(daemon.brokerctl(&["status", "--json"]).stdout).unwrap();
    assert!(json.contains("\"persisted\":false"), "{json}");

    let doctor = daemon.brokerctl_command().arg("doctor").env("TOKENBROKER_CONFIG", daemon.config_path()).output();
    let doctor = doctor.unwrap();
    let report = String::from_utf8_lossy(&doctor.stdout);
    assert_eq!(doctor.status.code(), Some(1), "{report}");
    assert!(report.contains("FAIL sessions: the session of work is in memory only"), "{report}");
}
