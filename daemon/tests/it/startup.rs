//! A daemon that will not start, as a newcomer meets it: its error once, without colour codes
//! in a file; with no config at all, a config to start from; and `brokerctl doctor`, with no
//! daemon to ask, saying why none is there and what stops it (`tokenbrokerd --check`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokenbroker::protocol::Diagnosis;
use tokenbroker_testkit::*;

/// tokenbrokerd as from a newcomer's shell, stderr to a file: none of the test harness's
/// NO_COLOR, RUST_LOG or journal. Its exit status and stderr.
fn start_with_stderr_to_a_file(dir: &Path, config: &Path) -> (std::process::ExitStatus, String) {
    let log = dir.join("stderr");
    let mut daemon = Proc(
        Command::new(tokenbrokerd_path())
            .arg("--config")
            .arg(config)
            .arg("--socket")
            .arg(dir.join("run/broker.sock"))
            .arg("--no-dbus")
            .env("DBUS_SESSION_BUS_ADDRESS", format!("unix:path={}", dir.join("no-bus").display()))
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let status = daemon.wait_exit(Duration::from_secs(20)).expect("the daemon did not stop");
    (status, std::fs::read_to_string(&log).unwrap())
}

fn assert_one_error_line_without_escapes(stderr: &str) {
    assert!(!stderr.contains('\x1b'), "colour codes in a file:\n{stderr:?}");
    let errors = stderr.lines().filter(|l| l.to_lowercase().contains("error")).count();
    assert_eq!(errors, 1, "the error once:\n{stderr}");
}

#[test]
fn a_start_up_error_is_printed_once_without_colour_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "store = \"memory\"\n[accounts.work]\nissuer = \"https://idp.example.com\"\nclientid = \"x\"\n",
    )
    .unwrap();
    let (status, stderr) = start_with_stderr_to_a_file(dir.path(), &config);
    assert!(!status.success(), "{stderr}");
    assert_one_error_line_without_escapes(&stderr);
    assert_eq!(stderr.matches("clientid").count(), 1, "the cause once:\n{stderr}");
    assert!(stderr.starts_with("tokenbrokerd: error: config "), "{stderr}");
}

#[test]
fn without_a_config_it_shows_one_to_start_from_which_parses() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tokenbroker/config.toml");
    let (status, stderr) = start_with_stderr_to_a_file(dir.path(), &config);
    assert!(!status.success(), "{stderr}");
    assert_one_error_line_without_escapes(&stderr);
    assert!(stderr.contains(&format!("no config file at {}", config.display())), "{stderr}");
    let sample = stderr.split_once("\n\n").expect("a sample after a blank line").1;
    assert!(sample.starts_with(&format!("# {}\n", config.display())), "{sample}");
    assert!(sample.contains("issuer = ") && sample.contains("client_id = "), "{sample}");

    // Written as shown, it parses: the start goes on, to the store (no keyring here).
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, sample).unwrap();
    let (status, stderr) = start_with_stderr_to_a_file(dir.path(), &config);
    assert!(!status.success(), "{stderr}");
    assert!(stderr.contains("No usable OS keyring") && !stderr.contains("no config file"), "{stderr}");
}

/// Log lines in a file carry no colour codes either (tracing colours by default).
#[test]
fn log_lines_in_a_file_have_no_colour() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "store = \"memory\"\n[accounts.work]\nissuer = \"https://idp.example.com\"\nclient_id = \"x\"\n",
    )
    .unwrap();
    let log = dir.path().join("stderr");
    let mut daemon = Proc(
        Command::new(tokenbrokerd_path())
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(dir.path().join("run/broker.sock"))
            .arg("--no-dbus")
            .env_remove("NO_COLOR")
            .env_remove("JOURNAL_STREAM")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log).unwrap().contains("tokenbrokerd ready") {
        assert!(Instant::now() < deadline, "{}", std::fs::read_to_string(&log).unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.signal(libc::SIGTERM);
    daemon.wait_exit(Duration::from_secs(20)).expect("stopped");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("WARN") && !text.contains('\x1b'), "{text:?}");
}

/// `brokerctl doctor` with `TOKENBROKER_CONFIG` at `config`, no daemon at `socket`.
fn doctor(config: &Path, socket: &Path, json: bool) -> (Option<i32>, String) {
    let mut cmd = Command::new(brokerctl_path());
    cmd.arg("doctor").env("TOKENBROKER_CONFIG", config).env("TOKENBROKER_SOCKET", socket);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_without_a_daemon_says_why_and_checks_what_stops_a_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let socket: PathBuf = dir.path().join("broker.sock");

    // The commonest failure: a config that does not load.
    std::fs::write(
        &config,
        "store = \"memory\"\n[accounts.work]\nissuer = \"https://idp.example.com\"\nclientid = \"x\"\n",
    )
    .unwrap();
    let (code, text) = doctor(&config, &socket, false);
    assert_eq!(code, Some(5), "{text}");
    assert!(text.contains(&format!("FAIL daemon: nothing at {}", socket.display())), "{text}");
    assert!(text.contains("fix what fails below first"), "{text}");
    assert!(text.contains("FAIL config: config ") && text.contains("clientid"), "{text}");

    // No config at all: the sample to start from.
    let (_, text) = doctor(&dir.path().join("none.toml"), &socket, false);
    assert!(text.contains("FAIL config: no config file at") && text.contains("client_id = "), "{text}");

    // A config that loads: the store, then the IdP, reached without the daemon.
    let idp = Idp::start(IdpOptions::default()).await;
    std::fs::write(&config, format!("store = \"memory\"\nidp_timeout = 3\n{}", idp.account_config("work"))).unwrap();
    // A socket nothing listens on: its daemon died.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let (code, json) = doctor(&config, &socket, true);
    assert_eq!(code, Some(5), "{json}");
    let d: Diagnosis = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = d.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names[..4], ["daemon", "config", "memory", "identity provider of work"], "{d:?}");
    assert!(d.checks[0].detail.contains("stale socket"), "{d:?}");
    assert!(d.checks[1..].iter().all(|c| c.ok), "{d:?}");
    assert!(!d.checks[0].fix.as_deref().unwrap().contains("fails below"), "nothing fails: {d:?}");

    idp.proxy.set_down(true);
    let (_, text) = doctor(&config, &socket, false);
    assert!(text.contains("FAIL identity provider of work"), "{text}");
    assert!(text.contains("fix what fails below first"), "{text}");
}

/// `tokenbrokerd --check` alone: the same report, its exit status the verdict.
#[test]
fn tokenbrokerd_check_exits_1_when_a_start_would_fail() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let check = |json: bool| {
        let mut cmd = Command::new(tokenbrokerd_path());
        cmd.arg("--config").arg(&config).arg("--check");
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let out = check(false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.starts_with("FAIL config: no config file at"), "{text}");
    std::fs::write(&config, "store = \"memory\"\n").unwrap();
    let out = check(true);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let d: Diagnosis = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d.checks.len(), 2, "config and store, no accounts: {d:?}");
}
