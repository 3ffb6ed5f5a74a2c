//! The policy against real processes: copies of brokerctl and of a small client at different
//! paths, over the socket and over D-Bus, allowed and refused as the rules say.

use std::path::{Path, PathBuf};
use std::process::Output;

use std::time::Duration;

use tokenbroker_testkit::{Env, Fixture, binary, brokerctl_path, eventually, output_of_fresh_copy};

/// Copies of brokerctl (with its D-Bus half, brokerctl-dbus, which it runs from beside itself)
/// and mini-token (opens the socket, asks for a token, prints the answer)
/// in `allowed/` and `denied/` under a fresh directory.
struct Programs {
    dir: tempfile::TempDir,
}

impl Programs {
    fn new() -> Programs {
        let dir = tempfile::tempdir().unwrap();
        for place in ["allowed", "denied"] {
            std::fs::create_dir(dir.path().join(place)).unwrap();
            for name in ["brokerctl", "brokerctl-dbus", "mini-token"] {
                std::fs::copy(binary(name), dir.path().join(place).join(name)).unwrap();
            }
        }
        Programs { dir }
    }

    fn path(&self, place: &str, name: &str) -> PathBuf {
        self.dir.path().join(place).join(name)
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }
}

fn run(env: &Env, program: &Path, args: &[&str]) -> Output {
    output_of_fresh_copy(
        env.bus.command(program.to_str().unwrap()).args(args).env("TOKENBROKER_SOCKET", env.daemon.socket()),
    )
}

/// The audit trail's records as (decision, rule, exe, door, method), once it holds `n`.
async fn audited(env: &Env, n: usize) -> Vec<[String; 5]> {
    let field = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or("-").to_owned();
    let read = || {
        env.daemon
            .audit_records()
            .iter()
            .map(|r| ["decision", "rule", "exe", "door", "method"].map(|k| field(r, k)))
            .collect::<Vec<_>>()
    };
    eventually(Duration::from_secs(10), || std::future::ready(read().len() >= n)).await;
    read()
}

fn record(decision: &str, rule: &str, exe: &Path, door: &str) -> [String; 5] {
    [decision, rule, exe.to_str().unwrap(), door, "GetAccessToken"].map(str::to_owned)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn policy(programs: &Programs) -> String {
    format!(
        "[policy]\ndefault = \"deny\"\n[[policy.rule]]\nexe = \"{}/allowed/*\"\naction = \"allow\"\n",
        programs.root().display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_are_allowed_and_refused_by_their_path_on_the_socket() {
    let programs = Programs::new();
    let env = Fixture::new().config(&policy(&programs)).logged_in("alice").await;

    let out = run(&env, &programs.path("allowed", "brokerctl"), &["token"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!out.stdout.is_empty());
    let out = run(&env, &programs.path("allowed", "mini-token"), &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"access_token\""), "{out:?}");

    // The same programs elsewhere, and brokerctl where it was built: refused, with the reason.
    for program in [programs.path("denied", "brokerctl"), brokerctl_path()] {
        let out = run(&env, &program, &["token"]);
        assert_eq!(out.status.code(), Some(6), "{}: {}", program.display(), stderr(&out));
        assert!(stderr(&out).contains("policy's default"), "{}", stderr(&out));
        // What the policy does not cover is still served to them.
        let out = run(&env, &program, &["status"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = run(&env, &programs.path("denied", "mini-token"), &[]);
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(answer.contains("access_denied") && !answer.contains("access_token"), "{answer}");

    // Each grant and refusal on record, by the program's own path.
    let expected = [
        record("allow", "rule 1", &programs.path("allowed", "brokerctl"), "socket"),
        record("allow", "rule 1", &programs.path("allowed", "mini-token"), "socket"),
        record("deny", "default", &programs.path("denied", "brokerctl"), "socket"),
        record("deny", "default", &brokerctl_path().canonicalize().unwrap(), "socket"),
        record("deny", "default", &programs.path("denied", "mini-token"), "socket"),
    ];
    assert_eq!(audited(&env, expected.len()).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn programs_are_allowed_and_refused_by_their_path_over_dbus() {
    let programs = Programs::new();
    let env = Fixture::new().config(&policy(&programs)).logged_in("alice").await;
    let over_dbus = |place: &str| {
        let mut cmd = env.bus.command(programs.path(place, "brokerctl").to_str().unwrap());
        output_of_fresh_copy(cmd.args(["--dbus", "token"]).env("TOKENBROKER_SOCKET", "/nonexistent/broker.sock"))
    };
    let out = over_dbus("allowed");
    assert!(out.status.success() && !out.stdout.is_empty(), "{}", stderr(&out));
    let out = over_dbus("denied");
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("policy's default"), "{}", stderr(&out));
    // brokerctl --dbus runs its D-Bus half, brokerctl-dbus: that is the caller the bus names.
    let expected = [
        record("allow", "rule 1", &programs.path("allowed", "brokerctl-dbus"), "dbus"),
        record("deny", "default", &programs.path("denied", "brokerctl-dbus"), "dbus"),
    ];
    assert_eq!(audited(&env, expected.len()).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_limits_a_program_to_one_account() {
    let programs = Programs::new();
    let allowed = programs.path("allowed", "brokerctl");
    let rules = format!(
        "default_account = \"work\"\n[[policy.rule]]\nexe = \"{0}\"\naccounts = [\"work\"]\naction = \"allow\"\n\
         [[policy.rule]]\nexe = \"{0}\"\naction = \"deny\"\n",
        allowed.display()
    );
    let env = Fixture::new()
        .config(&rules)
        .account(|idp| format!("{}{}", idp.account_config("work"), idp.account_config("home")))
        .logged_in("alice")
        .await;
    env.daemon.login(&env.idp, Some("home"), "alice").await;
    let out = run(&env, &allowed, &["token", "--account", "work"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&env, &allowed, &["token", "--account", "home"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stderr(&out).contains("[[policy.rule]] number 2"), "{}", stderr(&out));
    // Another program is not bound by those rules (the default allows).
    let out = run(&env, &programs.path("denied", "brokerctl"), &["token", "--account", "home"]);
    assert!(out.status.success(), "{}", stderr(&out));
}
