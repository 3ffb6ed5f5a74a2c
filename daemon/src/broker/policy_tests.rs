//! Policy, consent and the audit entries on the one request path, against the fake IdP under
//! the paused clock.

use std::sync::Arc;
use std::time::Duration;

use tokenbroker::ErrorKind;
use tokenbroker::protocol::{AnswerConsent, AuditDecision, GetAccessToken, RejectToken, method};
use tokio::sync::mpsc::UnboundedReceiver;

use super::fake_idp::{FakeIdp, World};
use super::policy::{Answer, By};
use super::request::{Caller, Door, handle, me};
use super::{Event, Result, consent};
use crate::audit::{Audit, Entry};

fn program(exe: &str, pid: i32) -> Caller {
    Caller { exe: Some(exe.into()), ..Caller::new(me(), Some(pid), Door::Socket) }
}

async fn token(world: &World, caller: &Caller) -> Result<String> {
    let grant = handle::<method::GetAccessToken>(&world.broker, caller, GetAccessToken::default()).await?;
    Ok(grant.account.name.clone())
}

async fn world(policy: &str, file: Option<std::path::PathBuf>) -> (World, UnboundedReceiver<Entry>) {
    let (audit, entries) = Audit::collect();
    let world = World::with(false, FakeIdp::new(3600), policy, audit, file).await;
    let challenge = super::login::login(&world.broker, Default::default()).await.unwrap();
    super::login::await_login(&world.broker, &challenge.login_id).await.unwrap();
    (world, entries)
}

fn drain(entries: &mut UnboundedReceiver<Entry>) -> Vec<(AuditDecision, By, Option<Arc<str>>)> {
    std::iter::from_fn(|| entries.try_recv().ok()).map(|e| (e.decision, e.by, e.caller.exe)).collect()
}

/// git gets work's API; programs under /opt/asker are asked; the rest is denied.
pub(super) const GIT_ONLY: &str = r#"
[policy]
default = "deny"
[[policy.rule]]
exe = "/usr/bin/git"
accounts = ["work"]
audiences = ["https://api"]
action = "allow"
[[policy.rule]]
exe = "/opt/asker/*"
action = "ask"
"#;

#[tokio::test(start_paused = true)]
async fn rules_allow_and_deny_by_program_and_every_decision_is_recorded() {
    let (world, mut entries) = world(GIT_ONLY, None).await;
    assert_eq!(token(&world, &program("/usr/bin/git", 10)).await.unwrap(), "work");
    let e = token(&world, &program("/usr/bin/curl", 11)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    assert!(e.message.contains("policy's default"), "{}", e.message);
    // Not the account's audience: rule 1 does not match, and the default refuses.
    let other = GetAccessToken { audience: Some("https://other".into()), ..Default::default() };
    let e = handle::<method::GetAccessToken>(&world.broker, &program("/usr/bin/git", 10), other).await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    // Methods outside the policy are served to anyone of ours.
    handle::<method::Status>(&world.broker, &program("/usr/bin/curl", 11), Default::default()).await.unwrap();
    let seen = drain(&mut entries);
    assert_eq!(
        seen,
        [
            (AuditDecision::Allow, By::Rule(1), Some("/usr/bin/git".into())),
            (AuditDecision::Deny, By::Default, Some("/usr/bin/curl".into())),
            (AuditDecision::Deny, By::Default, Some("/usr/bin/git".into())),
        ]
    );
}

/// RejectToken is judged like GetAccessToken (account and audience): a program the policy
/// denies the token cannot force its refresh, and both answers are in the audit trail.
#[tokio::test(start_paused = true)]
async fn reject_token_is_judged_and_recorded_like_get_access_token() {
    let (world, mut entries) = world(GIT_ONLY, None).await;
    let git = program("/usr/bin/git", 10);
    let p = || RejectToken { account: None, access_token: tokenbroker::Secret::new("at-0"), audience: None };
    let e = handle::<method::RejectToken>(&world.broker, &program("/usr/bin/curl", 11), p()).await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    assert!(handle::<method::RejectToken>(&world.broker, &git, p()).await.unwrap().dropped, "audience from the config");
    let seen = drain(&mut entries);
    assert_eq!(
        seen,
        [
            (AuditDecision::Deny, By::Default, Some("/usr/bin/curl".into())),
            (AuditDecision::Allow, By::Rule(1), Some("/usr/bin/git".into())),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_default_allow_grants_everyone_and_records_each_grant() {
    let (world, mut entries) = world("", None).await;
    for pid in 1..=3 {
        token(&world, &Caller::new(me(), Some(pid), Door::Dbus)).await.unwrap();
    }
    assert_eq!(drain(&mut entries), vec![(AuditDecision::Allow, By::Default, None); 3]);
}

/// Several callers of one program wait on one question; its answer lets all of them through.
#[tokio::test(start_paused = true)]
async fn callers_of_one_program_share_one_question_and_one_answer() {
    let (world, mut entries) = world(GIT_ONLY, None).await;
    let mut events = world.broker.subscribe();
    let world = Arc::new(world);
    let waiting: Vec<_> = (0..3)
        .map(|pid| {
            let world = world.clone();
            tokio::spawn(async move { token(&world, &program("/opt/asker/bin", 100 + pid)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let list = consent::list(&world.broker);
    assert_eq!(list.pending.len(), 1, "{list:?}");
    let q = &list.pending[0];
    assert_eq!((q.waiting, q.program.as_str(), q.account.as_str()), (3, "/opt/asker/bin", "work"));
    assert_eq!(q.pids, [100, 101, 102]);
    let Ok(Event::ConsentAsked(asked)) = events.try_recv() else { panic!("no question was put") };
    assert_eq!(asked.id, q.id);
    assert!(events.try_recv().is_err(), "one question, not one per caller");

    let answer = |caller: &Caller, allow, always| {
        consent::answer_as(&world.broker, caller, AnswerConsent { id: q.id.clone(), allow, always })
    };
    // The asking program cannot answer for itself, nor can a sandboxed app or an unknown one.
    assert_eq!(answer(&program("/opt/asker/bin", 7), true, true).unwrap_err().kind, ErrorKind::AccessDenied);
    let app = Caller { app_id: Some("org.example.App".into()), ..program("/usr/bin/bwrap", 8) };
    assert_eq!(answer(&app, true, false).unwrap_err().kind, ErrorKind::AccessDenied);
    assert_eq!(
        answer(&Caller::new(me(), Some(9), Door::Socket), true, false).unwrap_err().kind,
        ErrorKind::AccessDenied
    );
    assert_eq!(consent::list(&world.broker).pending.len(), 1, "a refused answer leaves the question out");

    assert!(answer(&program("/usr/bin/brokerctl", 12), true, false).unwrap().answered);
    for w in waiting {
        assert_eq!(w.await.unwrap().unwrap(), "work");
    }
    assert!(matches!(events.try_recv(), Ok(Event::ConsentClosed { id }) if id == q.id));
    let granted = drain(&mut entries);
    assert_eq!(granted.len(), 3);
    assert!(granted.iter().all(|(d, by, _)| (*d, *by) == (AuditDecision::Allow, By::Consent(Answer::Once))));
    // Once means once: the next request asks again.
    let again = tokio::spawn({
        let world = world.clone();
        async move { token(&world, &program("/opt/asker/bin", 103)).await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(consent::list(&world.broker).pending.len(), 1);
    let id = consent::list(&world.broker).pending[0].id.clone();
    assert!(
        consent::answer_as(
            &world.broker,
            &program("/usr/bin/brokerctl", 12),
            AnswerConsent { id, allow: false, always: false }
        )
        .unwrap()
        .answered
    );
    let e = again.await.unwrap().unwrap_err();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    assert!(e.message.contains("denied"), "{}", e.message);
    assert_eq!(
        drain(&mut entries),
        [(AuditDecision::Deny, By::Consent(Answer::Denied), Some("/opt/asker/bin".into()))]
    );
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_question_refuses_its_callers_after_a_minute() {
    let (world, mut entries) = world(GIT_ONLY, None).await;
    let world = Arc::new(world);
    let started = tokio::time::Instant::now();
    let first = tokio::spawn({
        let world = world.clone();
        async move { token(&world, &program("/opt/asker/bin", 1)).await }
    });
    tokio::time::sleep(Duration::from_secs(30)).await;
    // A later caller joins the question and ends with it, not a minute after itself.
    let second = token(&world, &program("/opt/asker/bin", 2)).await.unwrap_err();
    assert_eq!(started.elapsed().as_secs(), consent::WAIT.as_secs());
    assert!(second.message.contains("nobody answered"), "{}", second.message);
    assert_eq!(first.await.unwrap().unwrap_err().kind, ErrorKind::AccessDenied);
    assert!(consent::list(&world.broker).pending.is_empty());
    let seen = drain(&mut entries);
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|(d, by, _)| (*d, *by) == (AuditDecision::Deny, By::Consent(Answer::Unanswered))));
}

#[tokio::test(start_paused = true)]
async fn always_is_remembered_across_restarts_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state/consent.json");
    let (mut world, mut entries) = world(GIT_ONLY, Some(file.clone())).await;
    let asker = program("/opt/asker/bin", 1);
    let waiting = tokio::spawn({
        let broker = world.broker.clone();
        let asker = asker.clone();
        async move { handle::<method::GetAccessToken>(&broker, &asker, Default::default()).await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let id = consent::list(&world.broker).pending[0].id.clone();
    let answered = consent::answer_as(
        &world.broker,
        &program("/usr/bin/brokerctl", 2),
        AnswerConsent { id, allow: true, always: true },
    );
    assert!(answered.unwrap().answered);
    waiting.await.unwrap().unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    world.restart().await;
    // No question now: the remembered answer lets it through at once.
    assert_eq!(token(&world, &asker).await.unwrap(), "work");
    let remembered = consent::list(&world.broker).remembered;
    assert_eq!(remembered.len(), 1);
    assert_eq!(
        (remembered[0].program.as_str(), remembered[0].audience.as_deref()),
        ("/opt/asker/bin", Some("https://api"))
    );
    let seen = drain(&mut entries);
    assert_eq!(seen.last().map(|s| s.1), Some(By::Consent(Answer::Always)));

    assert!(consent::revoke(&world.broker, &remembered[0].id).revoked);
    world.restart().await;
    assert!(consent::list(&world.broker).remembered.is_empty());
    let asked = tokio::spawn({
        let broker = world.broker.clone();
        async move { handle::<method::GetAccessToken>(&broker, &asker, Default::default()).await.map(|_| ()) }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(consent::list(&world.broker).pending.len(), 1, "asked again after the revocation");
    asked.abort();
}
