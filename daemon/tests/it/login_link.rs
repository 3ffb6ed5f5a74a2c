//! What `brokerctl login` hands the browser, and who it says is logged in afterwards. An
//! opener's arguments are readable by every user (`/proc/PID/cmdline`): they must not carry
//! the login's URL, or another user can finish our login as their own IdP account.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use tokenbroker::dbus::Signal;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

/// A fake `xdg-open`/`open` in `dir`: it records its PID and arguments in `dir/argv` and
/// stays alive (so its command line can be read) until `dir/done` appears.
fn fake_opener(dir: &Path) {
    let d = dir.display();
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$$\" \"$@\" > {d}/argv.tmp && mv {d}/argv.tmp {d}/argv\n\
         i=0; while [ ! -e {d}/done ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n"
    );
    for name in ["xdg-open", "open"] {
        let path = dir.join(name);
        std::fs::write(&path, &script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
}

/// `brokerctl login --flow FLOW` with a fake opener (in the returned directory) first on
/// PATH; its stdout as lines.
fn login_with_browser(daemon: &Daemon, flow: &str) -> (tempfile::TempDir, Child, std::sync::mpsc::Receiver<String>) {
    let dir = tempfile::tempdir().unwrap();
    fake_opener(dir.path());
    let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap_or_default());
    let mut child = Command::new(brokerctl_path())
        .args(["login", "--flow", flow])
        .env("TOKENBROKER_SOCKET", daemon.socket())
        .env_remove("TOKENBROKER_TRANSPORT")
        // The system's opener, not a browser of the environment's.
        .env_remove("BROWSER")
        .env("PATH", path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (dir, child, rx)
}

fn next_line_with(lines: &std::sync::mpsc::Receiver<String>, part: &str) -> String {
    loop {
        let line = lines.recv_timeout(Duration::from_secs(20)).expect("brokerctl printed no such line");
        if line.contains(part) {
            return line;
        }
    }
}

/// The opener's PID and arguments, once it has run.
async fn opener_argv(dir: &Path) -> (u32, Vec<String>) {
    let argv = dir.join("argv");
    assert!(eventually(Duration::from_secs(20), || async { argv.exists() }).await, "the opener was not run");
    let text = std::fs::read_to_string(argv).unwrap();
    let mut lines = text.lines().map(str::to_owned);
    (lines.next().unwrap().parse().unwrap(), lines.collect())
}

fn wait_output(mut child: Child) -> (std::process::ExitStatus, String) {
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (child.wait().unwrap(), stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_browser_link_fails_visibly_and_brokerctl_names_who_logged_in() {
    let Env { bus: _bus, idp, daemon } =
        Fixture::new().idp(IdpOptions { id_token_claims: true, ..Default::default() }).start().await;
    let (dir, child, lines) = login_with_browser(&daemon, "code");
    let real = next_line_with(&lines, "/auth?").trim().to_owned();
    let (pid, argv) = opener_argv(dir.path()).await;
    assert_eq!(argv.len(), 1, "{argv:?}");
    let link = &argv[0];
    assert!(link.starts_with("http://127.0.0.1:"), "{link}");
    for secret in ["state=", "code_challenge", "nonce", "/auth"] {
        assert!(!link.contains(secret), "the opener's argv shows {secret}: {link}");
    }

    // What another user sees of the opener: the one-time link only.
    let mut cat = Command::new("cat");
    cat.arg(format!("/proc/{pid}/cmdline"));
    let seen = std::os::unix::process::CommandExt::uid(&mut cat, other_user()).output().unwrap();
    let seen = String::from_utf8_lossy(&seen.stdout).into_owned();
    assert!(!seen.contains("state=") && !seen.contains("code_challenge"), "{seen}");

    // Someone fetches the link first: they get the login's URL, once.
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let first = http.get(link).send().await.unwrap();
    assert_eq!(first.status(), 303);
    let header = |name: &str| first.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("location"), real);
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("referrer-policy"), "no-referrer");
    // The user's browser comes second, and says so.
    let second = http.get(link).send().await.unwrap();
    assert_eq!(second.status(), 410);
    let page = second.text().await.unwrap();
    assert!(page.contains("already used") && !page.contains("state="), "{page}");

    // The thief logs in as themselves: brokerctl says whose session it now holds.
    let report = idp.browse_code(&real, "bob", false).await;
    assert_eq!(report["ok"], true, "{report}");
    let said = next_line_with(&lines, "Logged in");
    assert_eq!(said, "Logged in to work as Bob Example <bob@example.com> (sub bob).");
    let (status, stderr) = wait_output(child);
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("opened a second time"), "{stderr}");
    std::fs::write(dir.path().join("done"), "").unwrap();
    let link_port = url::Url::parse(link).unwrap().port().unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", link_port)).is_err(), "the link's listener is closed");
}

/// The device flow's link (`verification_uri_complete`) has the user code in it: it goes
/// through the one-time link too. With no ID token, who logged in comes from userinfo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_flow_opens_no_user_code_and_await_login_names_the_user() {
    let Env { bus: _bus, idp, daemon } =
        Fixture::new().idp(IdpOptions { no_device_id_token: true, ..Default::default() }).start().await;
    let (dir, child, lines) = login_with_browser(&daemon, "device");
    let client = daemon.client().await;
    // The same flow joins the pending login: its challenge, its login_id.
    let challenge = client.login(Login { account: None, flow: Some(Flow::Device) }).await.unwrap();
    let code = challenge.user_code.clone().unwrap();
    next_line_with(&lines, &code);
    let (_, argv) = opener_argv(dir.path()).await;
    let link = argv.join(" ");
    assert!(link.starts_with("http://127.0.0.1:"), "{link}");
    assert!(!link.contains(&code) && !link.contains(&code.replace('-', "")), "the user code is in argv: {link}");
    assert!(!link.contains("user_code"), "{link}");

    idp.approve(&code, "alice").await;
    let done = client.await_login(&challenge.login_id).await.unwrap();
    assert_eq!(
        (done.subject.as_deref(), done.email.as_deref(), done.name.as_deref()),
        (Some("alice"), Some("alice@example.com"), Some("Alice Example"))
    );
    let said = next_line_with(&lines, "Logged in");
    assert_eq!(said, "Logged in to work as Alice Example <alice@example.com> (sub alice).");
    let (status, stderr) = wait_output(child);
    assert!(status.success(), "{stderr}");
    std::fs::write(dir.path().join("done"), "").unwrap();
}

/// Over D-Bus, `LoginFinished` keeps its signature; who logged in goes, in `LoggedInAs`, to
/// the connections that started or awaited the login, and in `AwaitLoginResult`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_dbus_the_logins_caller_is_told_who_and_no_one_else() {
    let Env { bus, idp, daemon: _daemon } =
        Fixture::new().idp(IdpOptions { id_token_claims: true, ..Default::default() }).start().await;
    let client = bus.dbus_client().await;
    let mut told = client.proxy().receive_logged_in_as().await.unwrap();
    let bystander = bus.dbus_client().await;
    let mut bystander_told = bystander.proxy().receive_logged_in_as().await.unwrap();
    let mut bystander_signals = bystander.signals().await.unwrap();

    let challenge = client.login(Login::default()).await.unwrap();
    idp.approve(challenge.user_code.as_deref().unwrap(), "alice").await;
    let done = client.await_login(&challenge.login_id).await.unwrap();
    assert_eq!((done.account.as_str(), done.email.as_deref()), ("work", Some("alice@example.com")));
    assert_eq!((done.subject.as_deref(), done.name.as_deref()), (Some("alice"), Some("Alice Example")));

    let signal = tokio::time::timeout(Duration::from_secs(10), told.next()).await.expect("no LoggedInAs").unwrap();
    let a = signal.args().unwrap();
    assert_eq!(
        (a.account.as_str(), a.subject.as_str(), a.email.as_str(), a.name.as_str()),
        ("work", "alice", "alice@example.com", "Alice Example")
    );
    // Everyone hears that the login finished; a bystander hears no more. LoggedInAs is sent
    // before LoginFinished, so had it been broadcast it would be there by now.
    let finished = Signal::LoginFinished { account: "work".into(), ok: true, error: String::new() };
    let heard = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(s) = bystander_signals.next().await {
            if s == finished {
                return;
            }
        }
    });
    heard.await.expect("the bystander heard no LoginFinished");
    let leaked = tokio::time::timeout(Duration::from_millis(500), bystander_told.next()).await;
    assert!(leaked.is_err(), "a bystander was told who logged in");
}
