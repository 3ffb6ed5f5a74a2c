//! brokerctl in scripts: `status` answers with its exit code whether the accounts hold a
//! valid session (0) or not (3), `--account` is honoured or refused, a `login` of an account
//! that is logged in already starts nothing without `--force`, and usage errors exit 2 before
//! any daemon is asked.

use std::process::{Output, Stdio};
use std::time::Duration;

use tokenbroker::protocol::LoginChallenge;
use tokenbroker_testkit::*;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_3_until_the_account_shown_holds_a_valid_session() {
    let Env { bus: _bus, idp, daemon } = Fixture::new()
        .config("default_account = \"work\"\n")
        .account(|idp| format!("{}{}", idp.account_config("work"), idp.account_config("home")))
        .start()
        .await;
    let out = daemon.brokerctl(&["status"]);
    assert_eq!(code(&out), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("work (default)"), "still shown: {}", text(&out.stdout));
    assert!(text(&out.stderr).contains("home, work hold no valid session"), "{}", text(&out.stderr));
    let out = daemon.brokerctl(&["status", "--json"]);
    assert_eq!(code(&out), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["accounts"].as_array().unwrap().len(), 2);

    daemon.login(&idp, Some("work"), "alice").await;
    let out = daemon.brokerctl(&["status", "--account", "work"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("as alice") && !shown.contains("home"), "only work: {shown}");
    let out = daemon.brokerctl(&["status", "--account", "home", "--json"]);
    assert_eq!(code(&out), Some(3), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["accounts"][0]["name"], "home");
    assert!(text(&out.stderr).contains("brokerctl login --account home"), "{}", text(&out.stderr));
    let out = daemon.brokerctl(&["status"]);
    assert_eq!(code(&out), Some(3), "home is logged out");

    let out = daemon.brokerctl(&["status", "--account", "nope"]);
    assert_eq!(code(&out), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no account \"nope\"") && out.stdout.is_empty(), "{}", text(&out.stderr));

    daemon.login(&idp, Some("home"), "bob").await;
    let out = daemon.brokerctl(&["status"]);
    assert_eq!(code(&out), Some(0), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_of_a_logged_in_account_starts_nothing_without_force() {
    let Env { bus: _bus, idp, daemon } = Fixture::new().logged_in("alice").await;
    let mut cmd = daemon.brokerctl_command();
    let mut ctl = Proc(cmd.args(["login", "--no-browser"]).stdout(Stdio::piped()).spawn().unwrap());
    let status = ctl.wait_exit(Duration::from_secs(20)).expect("brokerctl login waited for a login");
    assert_eq!(status.code(), Some(0));
    let mut said = String::new();
    std::io::Read::read_to_string(ctl.0.stdout.as_mut().unwrap(), &mut said).unwrap();
    assert!(said.contains("Already logged in to work as alice") && said.contains("--force"), "{said}");
    let out = daemon.brokerctl(&["login", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((json["status"].as_str(), json["subject"].as_str()), (Some("already_logged_in"), Some("alice")));

    // --force logs in again, as someone else if they approve.
    let mut cmd = daemon.brokerctl_command();
    let mut ctl =
        Proc(cmd.args(["login", "--force", "--no-browser", "--json"]).stdout(Stdio::piped()).spawn().unwrap());
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(ctl.0.stdout.take().unwrap()));
    let challenge: LoginChallenge = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    idp.approve(challenge.user_code.as_deref().unwrap(), "bob").await;
    let done: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(done["subject"], "bob");
    assert_eq!(ctl.wait_exit(Duration::from_secs(20)).unwrap().code(), Some(0));
}

/// No daemon at all: a usage error still says so (2), and does not report the daemon (5).
#[test]
fn usage_errors_exit_2_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["metadata", "set", "=x"][..],
        &["metadata", "set", "--json", "not json"],
        &["doctor", "--account", "work"],
        &["consent", "list", "--account", "work"],
    ] {
        let out = std::process::Command::new(brokerctl_path())
            .args(args)
            .env("TOKENBROKER_SOCKET", dir.path().join("nothing.sock"))
            .env_remove("TOKENBROKER_TRANSPORT")
            .output()
            .unwrap();
        assert_eq!(code(&out), Some(2), "{args:?}: {}", text(&out.stderr));
    }
}

/// The help says what every option does, and what the exit codes and environment are; the
/// man pages and completions come from the same definitions.
#[test]
fn help_completions_and_the_dbus_helper() {
    let out = std::process::Command::new(brokerctl_path()).arg("--help").output().unwrap();
    let help = text(&out.stdout);
    for part in ["Exit codes:", "TOKENBROKER_SOCKET", "BROWSER"] {
        assert!(help.contains(part), "{part}: {help}");
    }
    assert!(help.lines().any(|l| l.trim_start().starts_with("--dbus")), "brokerctl offers --dbus: {help}");
    let helper = brokerctl_path().with_file_name("brokerctl-dbus");
    let out = std::process::Command::new(&helper).arg("--help").output().unwrap();
    let help = text(&out.stdout);
    let offers_dbus = help.lines().any(|l| l.trim_start().starts_with("--dbus"));
    assert!(out.status.success() && help.contains("Exit codes:") && !offers_dbus, "{help}");
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(brokerctl_path()).args(["completions", shell]).output().unwrap();
        assert!(out.status.success() && text(&out.stdout).contains("login"), "{shell}");
    }
}
