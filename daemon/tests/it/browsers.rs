//! What `brokerctl login` shows a person and which browser it opens: a QR code of the device
//! flow's address on a terminal only (`--no-qr` turns it off), and the browser of
//! `--browser-command`, else the config's `browser_command`, else `$BROWSER`, each given the
//! one-time link, never the login's own URL.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

/// A fake browser `dir/name` that records its arguments in `dir/name.argv` and exits.
fn fake_browser(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let d = dir.display();
    let script = format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {d}/{name}.tmp && mv {d}/{name}.tmp {d}/{name}.argv\n");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// Its arguments, once it has run.
async fn argv_of(browser: &Path) -> Vec<String> {
    let argv = browser.with_extension("argv");
    assert!(eventually(Duration::from_secs(20), || async { argv.exists() }).await, "{} did not run", browser.display());
    std::fs::read_to_string(argv).unwrap().lines().map(str::to_owned).collect()
}

/// Lines of a reader, as they come.
fn lines(reader: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(reader)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Every line up to the first that contains `part` (that one included).
fn until(lines: &Receiver<String>, part: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let line = lines.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("no {part:?} in {seen:#?}"));
        let done = line.contains(part);
        seen.push(line);
        if done {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_is_the_flags_else_the_configs_else_browser_and_gets_the_one_time_link() {
    let dir = tempfile::tempdir().unwrap();
    let (flag, config, env) =
        (fake_browser(dir.path(), "flag"), fake_browser(dir.path(), "config"), fake_browser(dir.path(), "env"));
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new()
        .config(&format!("browser_command = [\"{}\", \"--new-window\"]\n", config.display()))
        .start()
        .await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let missing = dir.path().join("missing");
    let no_config = dir.path().join("none.toml");
    let (daemon_config, flag_arg) = (daemon.config_path(), format!("{} --incognito %s --x", flag.display()));
    let runs: [(&[&str], &Path, &Path, Vec<&str>); 3] = [
        (&["--browser-command", &flag_arg], &daemon_config, &flag, vec!["--incognito", "LINK", "--x"]),
        (&[], &daemon_config, &config, vec!["--new-window", "LINK"]),
        (&[], &no_config, &env, vec!["LINK"]),
    ];
    for (args, config_path, browser, expected) in runs {
        let mut cmd = daemon.brokerctl_command();
        cmd.args(["login", "--flow", "code"])
            .args(args)
            .env("TOKENBROKER_CONFIG", config_path)
            .env("BROWSER", format!("{}:{}", missing.display(), env.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut ctl = Proc(cmd.spawn().unwrap());
        let out = lines(ctl.0.stdout.take().unwrap());
        let real = until(&out, "/auth?").pop().unwrap().trim().to_owned();
        let argv = argv_of(browser).await;
        let link = argv.iter().find(|a| a.starts_with("http://127.0.0.1:")).expect("the link").clone();
        let expected: Vec<String> =
            expected.iter().map(|a| if *a == "LINK" { link.clone() } else { a.to_string() }).collect();
        assert_eq!(argv, expected, "{}", browser.display());
        assert!(!argv.iter().any(|a| a.contains("state=")), "{argv:?}");
        let first = http.get(&link).send().await.unwrap();
        assert_eq!((first.status().as_u16(), first.headers()["location"].to_str().unwrap()), (303, real.as_str()));
        ctl.signal(libc::SIGINT);
        assert_eq!(ctl.wait_exit(Duration::from_secs(10)).map(|s| s.code()), Some(Some(130)));
        std::fs::remove_file(browser.with_extension("argv")).unwrap();
    }
    for other in [&flag, &config] {
        assert!(!other.with_extension("argv").exists(), "{} ran out of turn", other.display());
    }
}

/// `brokerctl login` in a terminal (`script` gives it one), its output as lines.
fn login_in_a_terminal(daemon: &Daemon, args: &str) -> (Proc, Receiver<String>) {
    let command = format!("'{}' login --flow device --no-browser {args}", brokerctl_path().display());
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"])
        .env("TOKENBROKER_SOCKET", daemon.socket())
        .env_remove("TOKENBROKER_TRANSPORT")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut proc = Proc(cmd.spawn().unwrap());
    let out = lines(proc.0.stdout.take().unwrap());
    (proc, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_gets_a_qr_code_of_the_complete_address_unless_no_qr() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().start().await;
    let client = daemon.client().await;
    let device = Login { account: None, flow: Some(Flow::Device) };

    let (mut ctl, out) = login_in_a_terminal(&daemon, "");
    let shown = until(&out, "Waiting for you");
    // The same flow joins the pending login: its challenge.
    let challenge = client.login(device.clone()).await.unwrap();
    let complete = challenge.verification_uri_complete.clone().expect("the test IdP gives the complete address");
    let first = shown.iter().position(|l| l.trim() == complete).expect("the complete address on a line of its own");
    let code = challenge.user_code.clone().unwrap();
    assert!(shown.iter().any(|l| l.contains(&format!("│  {code}  │"))), "{shown:#?}");
    let qr: Vec<&String> = shown.iter().filter(|l| l.contains('█')).collect();
    assert!(qr.len() > 10, "{shown:#?}");
    assert!(first < shown.iter().position(|l| l.contains('█')).unwrap(), "the address comes first");
    assert!(!shown.concat().contains('\x1b'), "NO_COLOR: {shown:#?}");
    idp.approve(&code, "alice").await;
    until(&out, "Logged in to work");
    assert_eq!(ctl.wait_exit(Duration::from_secs(20)).map(|s| s.code()), Some(Some(0)));

    let (mut ctl, out) = login_in_a_terminal(&daemon, "--force --no-qr");
    let shown = until(&out, "Waiting for you");
    assert!(!shown.iter().any(|l| l.contains('█')) && shown.iter().any(|l| l.contains('│')), "{shown:#?}");
    let challenge = client.login(device).await.unwrap();
    idp.approve(challenge.user_code.as_deref().unwrap(), "alice").await;
    until(&out, "Logged in to work");
    assert_eq!(ctl.wait_exit(Duration::from_secs(20)).map(|s| s.code()), Some(Some(0)));

    // Not a terminal: no QR code (and no frame), whatever the flags.
    let mut cmd = daemon.brokerctl_command();
    let mut piped = Proc(
        cmd.args(["login", "--force", "--flow", "device", "--no-browser"]).stdout(Stdio::piped()).spawn().unwrap(),
    );
    let out = lines(piped.0.stdout.take().unwrap());
    let challenge = client.login(Login { account: None, flow: Some(Flow::Device) }).await.unwrap();
    let code = challenge.user_code.clone().unwrap();
    let shown = until(&out, &code);
    idp.approve(&code, "alice").await;
    let rest = until(&out, "Logged in to work");
    assert!(!shown.iter().chain(&rest).any(|l| l.contains('█') || l.contains('│')), "{shown:#?}{rest:#?}");
    assert_eq!(piped.wait_exit(Duration::from_secs(20)).map(|s| s.code()), Some(Some(0)));
}
