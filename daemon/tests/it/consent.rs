//! Asking the person (`[policy] default = "ask"`): the question as a desktop notification on
//! the test's own notification service, answered by its actions, or from the terminal with
//! `brokerctl consent`; refused when nobody answers, or when the answer comes from another
//! user. The asking program is a copy of brokerctl at a path of its own: a program may not
//! answer its own question, and the brokerctl that answers is the one where it was built.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tokenbroker::protocol::Consents;
use tokenbroker_testkit::*;

const ASK: &str = "default = \"ask\"\n";

/// A copy of brokerctl in a directory of its own (`dir_name` under a fresh temp dir).
struct Asker {
    _dir: tempfile::TempDir,
    exe: PathBuf,
}

impl Asker {
    fn new() -> Asker {
        Asker::in_dir("asker")
    }

    fn in_dir(dir_name: &str) -> Asker {
        let dir = tempfile::tempdir().unwrap();
        let place = dir.path().join(dir_name);
        std::fs::create_dir(&place).unwrap();
        let exe = place.join("brokerctl");
        std::fs::copy(brokerctl_path(), &exe).unwrap();
        Asker { _dir: dir, exe }
    }

    /// `brokerctl token ARGS` from this copy, running (stdout and stderr captured).
    fn token(&self, daemon: &Daemon, args: &[&str]) -> Child {
        spawn_fresh_copy(
            Command::new(&self.exe)
                .arg("token")
                .args(args)
                .env("TOKENBROKER_SOCKET", daemon.socket())
                .env_remove("TOKENBROKER_TRANSPORT")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
    }
}

fn api_token(asker: &Asker, daemon: &Daemon) -> Child {
    asker.token(daemon, &["--audience", API])
}

/// The child's output, once it has exited (within `limit`).
fn finish(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still waiting after {limit:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn list(daemon: &Daemon) -> Consents {
    let out = daemon.brokerctl(&["consent", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The questions out, once `n` requests in all wait on them.
async fn waiting(daemon: &Daemon, n: u32) -> Consents {
    let mut last = Consents::default();
    let ok = eventually(Duration::from_secs(20), || {
        last = list(daemon);
        let count: u32 = last.pending.iter().map(|q| q.waiting).sum();
        std::future::ready(count >= n)
    })
    .await;
    assert!(ok, "not {n} requests waiting: {last:?}");
    last
}

async fn ask_env() -> Env {
    Fixture::new().account(|idp| idp.api_account_config("work")).policy(ASK).logged_in("alice").await
}

/// The audit trail's records as (decision, rule, exe, door, account, audience), once it holds
/// `n` of them (the writer writes whenever it has a moment).
async fn audited(daemon: &Daemon, n: usize) -> Vec<[String; 6]> {
    let field = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or("-").to_owned();
    let read = || {
        daemon
            .audit_records()
            .iter()
            .map(|r| ["decision", "rule", "exe", "door", "account", "audience"].map(|k| field(r, k)))
            .collect::<Vec<_>>()
    };
    eventually(Duration::from_secs(10), || std::future::ready(read().len() >= n)).await;
    read()
}

fn record(decision: &str, rule: &str, asker: &Asker) -> [String; 6] {
    [decision, rule, asker.exe.to_str().unwrap(), "socket", "work", API].map(str::to_owned)
}

fn assert_token(out: &Output) {
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.len() > 10, "no token printed: {}", text(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_waiting_requests_make_one_notification_and_allow_once_lets_all_three_through() {
    let env = ask_env().await;
    let notes = Notifications::start(&env.bus);
    let asker = Asker::new();
    let children: Vec<Child> = (0..3).map(|_| api_token(&asker, &env.daemon)).collect();
    let pending = waiting(&env.daemon, 3).await.pending;
    assert_eq!(pending.len(), 1, "one question for one program, account and audience: {pending:?}");

    let shown = notes.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(notes.shown().len(), 1, "{:#?}", notes.shown());
    let n = &shown[0];
    let exe = asker.exe.display().to_string();
    assert_eq!(n.app_name, "tokenbroker");
    for part in [exe.as_str(), "work", API, "GetAccessToken"] {
        assert!(n.body.contains(part) || n.summary.contains(part), "{part:?} missing: {n:#?}");
    }
    assert_eq!(n.action_keys(), ["once", "always", "deny"], "{n:#?}");
    assert_eq!((n.urgency, n.resident), (Some(2), Some(true)), "{n:#?}");
    assert!((1..=60_000).contains(&n.expire_timeout), "{n:#?}");

    notes.invoke(n.id, "once");
    for child in children {
        assert_token(&finish(child, Duration::from_secs(20)));
    }
    // A resident notification stays after an action: the daemon closes it.
    let closed = eventually(Duration::from_secs(10), || std::future::ready(notes.shown()[0].closed)).await;
    assert!(closed, "the answered question's notification was not closed");
    // "Once" is not remembered: the next request asks again.
    let child = api_token(&asker, &env.daemon);
    let shown = notes.wait_for(2, Duration::from_secs(10)).await;
    notes.invoke(shown[1].id, "once");
    let out = finish(child, Duration::from_secs(20));
    assert_token(&out);
    // Every grant on record, and what decided it; never a piece of a token.
    assert_eq!(audited(&env.daemon, 4).await, vec![record("allow", "consent (once)", &asker); 4]);
    let trail = std::fs::read_to_string(env.daemon.audit_path()).unwrap();
    let token = text(&out.stdout);
    let token = token.trim();
    for i in (0..token.len().saturating_sub(16)).step_by(8) {
        assert!(!trail.contains(&token[i..i + 16]), "a token piece is in the audit trail");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_allow_is_remembered_until_revoked() {
    let env = ask_env().await;
    let notes = Notifications::start(&env.bus);
    let asker = Asker::new();
    let child = api_token(&asker, &env.daemon);
    let shown = notes.wait_for(1, Duration::from_secs(10)).await;
    notes.invoke(shown[0].id, "always");
    assert_token(&finish(child, Duration::from_secs(20)));

    // No new question for the same program, account and audience.
    assert_token(&finish(api_token(&asker, &env.daemon), Duration::from_secs(20)));
    assert_eq!(notes.shown().len(), 1, "asked again after 'always': {:#?}", notes.shown());
    let remembered = list(&env.daemon).remembered;
    assert_eq!(remembered.len(), 1, "{remembered:?}");
    assert_eq!(remembered[0].program, asker.exe.display().to_string());
    assert_eq!((remembered[0].account.as_str(), remembered[0].audience.as_deref()), ("work", Some(API)));
    let out = env.daemon.brokerctl(&["consent", "list"]);
    assert!(text(&out.stdout).contains(&remembered[0].id), "{}", text(&out.stdout));
    let out = env.daemon.brokerctl(&["status"]);
    assert!(
        text(&out.stdout).contains("policy: default ask, 0 rules, 0 questions waiting, 1 program always allowed"),
        "{}",
        text(&out.stdout)
    );

    let out = env.daemon.brokerctl(&["consent", "revoke", &remembered[0].id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(list(&env.daemon).remembered.is_empty());
    let out = env.daemon.brokerctl(&["consent", "revoke", &remembered[0].id]);
    assert_eq!(out.status.code(), Some(1), "revoking twice: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nothing is remembered"), "{}", text(&out.stderr));

    // Asked again.
    let child = api_token(&asker, &env.daemon);
    let shown = notes.wait_for(2, Duration::from_secs(10)).await;
    notes.invoke(shown[1].id, "deny");
    assert_eq!(finish(child, Duration::from_secs(20)).status.code(), Some(6));
    let always = record("allow", "consent (always)", &asker);
    assert_eq!(audited(&env.daemon, 3).await, [always.clone(), always, record("deny", "consent (denied)", &asker)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_refuses_with_exit_6_naming_consent() {
    let env = ask_env().await;
    let notes = Notifications::start(&env.bus);
    // The doctor finds the service that shows the questions.
    let doctor = text(&env.daemon.brokerctl(&["doctor"]).stdout);
    assert!(doctor.contains("ok   questions: shown as desktop notifications by tokenbroker-testkit 0.1"), "{doctor}");
    assert!(!doctor.contains("warn terminal"), "{doctor}");
    let asker = Asker::new();
    let child = api_token(&asker, &env.daemon);
    let shown = notes.wait_for(1, Duration::from_secs(10)).await;
    notes.invoke(shown[0].id, "deny");
    let out = finish(child, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("consent") && text(&out.stderr).contains("denied"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert_eq!(audited(&env.daemon, 1).await, [record("deny", "consent (denied)", &asker)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_notification_service_the_terminal_answers() {
    let env = ask_env().await;
    let asker = Asker::new();
    let child = api_token(&asker, &env.daemon);
    let question = waiting(&env.daemon, 1).await.pending.remove(0);
    assert_eq!(question.exe.as_deref(), Some(asker.exe.to_str().unwrap()));
    // The human list names it too.
    let out = env.daemon.brokerctl(&["consent", "list"]);
    let listed = text(&out.stdout);
    let row = listed.lines().find(|l| l.contains(&question.id)).unwrap_or_else(|| panic!("{listed}"));
    assert!(row.contains(asker.exe.to_str().unwrap()) && row.contains("work") && row.contains(API), "{row}");

    // An ID that waits for nothing is no success.
    let out = env.daemon.brokerctl(&["consent", "allow", "00000000"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no question \"00000000\" is waiting"), "{}", text(&out.stderr));

    // The doctor says questions can only be answered here (and, with no terminal, says so).
    let out = env.daemon.brokerctl(&["doctor"]);
    let doctor = text(&out.stdout);
    assert!(doctor.contains("warn questions: no notification service on the session bus"), "{doctor}");
    assert!(doctor.contains("only be answered with `brokerctl consent`"), "{doctor}");
    assert!(doctor.contains("warn terminal:"), "{doctor}");

    let out = env.daemon.brokerctl(&["consent", "allow", &question.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_token(&finish(child, Duration::from_secs(20)));

    // A second question: still one line in the log about the missing service, no error.
    let child = asker.token(&env.daemon, &[]);
    let question = waiting(&env.daemon, 1).await.pending.remove(0);
    let out = env.daemon.brokerctl(&["consent", "deny", &question.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(finish(child, Duration::from_secs(20)).status.code(), Some(6));
    let log = env.daemon.log();
    assert_eq!(log.matches("questions are not shown on the desktop").count(), 1, "{log}");
    let noise: Vec<&str> =
        log.lines().filter(|l| l.contains("notification") && (l.contains("WARN") || l.contains("ERROR"))).collect();
    assert!(noise.is_empty(), "{noise:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_answering_is_access_denied_after_the_timeout_and_the_notification_goes() {
    let env = Fixture::new()
        .account(|idp| idp.api_account_config("work"))
        .policy("default = \"ask\"\nask_timeout = 2\n")
        .logged_in("alice")
        .await;
    let notes = Notifications::start(&env.bus);
    let asker = Asker::new();
    let started = Instant::now();
    let child = api_token(&asker, &env.daemon);
    let shown = notes.wait_for(1, Duration::from_secs(10)).await;
    assert!(shown[0].expire_timeout <= 2000, "{:#?}", shown[0]);
    let out = finish(child, Duration::from_secs(20));
    assert!(started.elapsed() >= Duration::from_secs(2), "refused before the timeout");
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nobody answered the consent question within 2 s"), "{}", text(&out.stderr));
    let closed = eventually(Duration::from_secs(10), || std::future::ready(notes.shown()[0].closed)).await;
    assert!(closed, "the unanswered question's notification stayed");
    assert!(list(&env.daemon).pending.is_empty());
    assert_eq!(audited(&env.daemon, 1).await, [record("deny", "consent (no answer)", &asker)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_path_with_markup_is_shown_escaped() {
    let env = ask_env().await;
    let notes = Notifications::start(&env.bus);
    let asker = Asker::in_dir("x<b>&y");
    let child = api_token(&asker, &env.daemon);
    let shown = notes.wait_for(1, Duration::from_secs(10)).await;
    let body = &shown[0].body;
    assert!(body.contains("x&lt;b&gt;&amp;y/brokerctl"), "{body}");
    assert!(!body.contains("x<b>&y"), "{body}");
    notes.invoke(shown[0].id, "deny");
    assert_eq!(finish(child, Duration::from_secs(20)).status.code(), Some(6));
}

/// Dismissing the notification is no answer: the question stays, for the terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dismissed_notification_leaves_the_question_to_the_terminal() {
    let env = ask_env().await;
    let notes = Notifications::start(&env.bus);
    let asker = Asker::new();
    let child = api_token(&asker, &env.daemon);
    let shown = notes.wait_for(1, Duration::from_secs(10)).await;
    notes.dismiss(shown[0].id);
    // An action on it afterwards counts for nothing (the daemon forgot the notification).
    notes.invoke(shown[0].id, "deny");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let question = waiting(&env.daemon, 1).await.pending.remove(0);
    let out = env.daemon.brokerctl(&["consent", "allow", &question.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_token(&finish(child, Duration::from_secs(20)));
}

/// Another user's notification service owns the name on a bus open to other users: it is
/// shown no question, and its `ActionInvoked` answers nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root"]
async fn another_users_notification_service_is_shown_nothing_and_cannot_answer() {
    let env =
        Fixture::new().open_bus().account(|idp| idp.api_account_config("work")).policy(ASK).logged_in("alice").await;
    let theirs = Notifications::start_as(&env.bus, other_user());
    let asker = Asker::new();
    let mut child = api_token(&asker, &env.daemon);
    let question = waiting(&env.daemon, 1).await.pending.remove(0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(theirs.shown().is_empty(), "another user's service was shown the question: {:#?}", theirs.shown());
    for id in 1..=3 {
        theirs.invoke(id, "once");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(child.try_wait().unwrap().is_none(), "another user's action answered the question");
    assert_eq!(list(&env.daemon).pending.len(), 1);
    let log = env.daemon.log();
    assert!(log.contains(&format!("served by another user (UID {})", other_user())), "{log}");
    let out = env.daemon.brokerctl(&["consent", "deny", &question.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(finish(child, Duration::from_secs(20)).status.code(), Some(6));
}

/// Our notification service owns the name; another user sends an `ActionInvoked` for our
/// notification's id (any connection may send any signal): it answers nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root"]
async fn another_user_sending_action_invoked_cannot_answer() {
    let env =
        Fixture::new().open_bus().account(|idp| idp.api_account_config("work")).policy(ASK).logged_in("alice").await;
    let ours = Notifications::start(&env.bus);
    let asker = Asker::new();
    let mut child = api_token(&asker, &env.daemon);
    let shown = ours.wait_for(1, Duration::from_secs(10)).await;
    let (address, id) = (env.bus.address.clone(), shown[0].id);
    let spoofer = crate::foreign_servers::on_thread_as(other_user(), move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let conn = zbus::connection::Builder::address(address.as_str()).unwrap().build().await.unwrap();
            for key in ["once", "always"] {
                conn.emit_signal(None::<()>, NOTIFICATIONS_PATH, NOTIFICATIONS_NAME, "ActionInvoked", &(id, key))
                    .await
                    .unwrap();
            }
        })
    });
    spoofer.join().unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(child.try_wait().unwrap().is_none(), "another user's ActionInvoked answered the question");
    assert_eq!(list(&env.daemon).pending.len(), 1);
    assert!(list(&env.daemon).remembered.is_empty());
    ours.invoke(id, "deny");
    assert_eq!(finish(child, Duration::from_secs(20)).status.code(), Some(6));
}

/// A D-Bus call waiting for the person holds up no other call on the bus door.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dbus_call_waiting_for_an_answer_holds_up_no_other_call() {
    let env = ask_env().await;
    let client = env.bus.dbus_client().await;
    let asker = env.bus.dbus_client().await;
    let asking = asker.get_access_token(tokenbroker::protocol::GetAccessToken::default());
    tokio::pin!(asking);
    let question = tokio::select! {
        answer = &mut asking => panic!("answered with nobody asked: {answer:?}"),
        consents = waiting(&env.daemon, 1) => consents.pending[0].clone(),
    };
    let status = tokio::time::timeout(Duration::from_secs(5), client.status()).await;
    assert!(status.is_ok_and(|s| s.is_ok()), "Status waited behind the question");
    let out = env.daemon.brokerctl(&["consent", "allow", &question.id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token = tokio::time::timeout(Duration::from_secs(10), asking).await.expect("no answer after the allow");
    assert!(token.is_ok(), "{token:?}");
}
