//! Forwards in the core: what a forward's door may ask, its end at its TTL, and its file,
//! against the fake IdP under the paused clock.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokenbroker::ErrorKind;
use tokenbroker::protocol::{self as wire, AccountOnly, AddForward, AuditDecision, GetAccessToken, method};

use super::fake_idp::{FakeIdp, World};
use super::forward::{self, Doors, check_name};
use super::policy::By;
use super::request::{Caller, Door, handle, me};
use crate::audit::Audit;

/// Doors that only note what the core asks of them.
#[derive(Default)]
struct Noted(Mutex<Vec<String>>);

impl Doors for Noted {
    fn open(&self, name: &str) -> Result<(), String> {
        if name == "unbindable" {
            return Err("bind refused".into());
        }
        self.0.lock().unwrap().push(format!("open {name}"));
        Ok(())
    }
    fn close(&self, name: &str) {
        self.0.lock().unwrap().push(format!("close {name}"));
    }
    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/run/fwd/{name}.sock"))
    }
}

impl Noted {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

/// Two accounts, work (the default, audience https://api) and home; work logged in.
const TWO: &str = "default_account = \"work\"\n";
const HOME: &str = "[accounts.home]\nissuer = \"https://idp.example.com/\"\nclient_id = \"h\"\n";

async fn world(
    policy: &str,
    file: Option<PathBuf>,
) -> (World, Arc<Noted>, tokio::sync::mpsc::UnboundedReceiver<crate::audit::Entry>) {
    let (audit, entries) = Audit::collect();
    let (extra, work) = (format!("{TWO}{policy}\n{HOME}"), "audiences = [\"https://other\"]");
    let world = World::with_account(false, FakeIdp::new(3600), &extra, work, audit, None).await;
    let challenge = super::login::login(&world.broker, Default::default()).await.unwrap();
    super::login::await_login(&world.broker, &challenge.login_id).await.unwrap();
    let doors = Arc::new(Noted::default());
    world.broker.serve_forwards(file, doors.clone());
    (world, doors, entries)
}

fn add(world: &World, name: &str, audiences: &[&str], ttl: Option<u64>) -> super::Result<wire::Forward> {
    let p = AddForward {
        name: name.into(),
        accounts: vec!["work".into()],
        audiences: audiences.iter().map(|a| a.to_string()).collect(),
        ttl,
    };
    forward::add(&world.broker, p)
}

fn at(door: &str) -> Caller {
    Caller::new(me(), Some(7), Door::forward(door))
}

fn token_for(account: Option<&str>, audience: Option<&str>) -> GetAccessToken {
    GetAccessToken { account: account.map(Into::into), audience: audience.map(Into::into), ..Default::default() }
}

#[test]
fn names_are_short_safe_file_names() {
    for good in ["laptop", "ci-runner_2", "a.b", "X", &"n".repeat(64)] {
        check_name(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
    }
    for bad in ["", "a/b", "..", ".hidden", "-x", "a b", "tab\t", "nl\n", "é", "a\0b", "../x", &"n".repeat(65)] {
        assert!(check_name(bad).is_err(), "{bad:?} was taken");
    }
}

#[tokio::test(start_paused = true)]
async fn a_forward_serves_its_accounts_token_and_nothing_else() {
    let (world, doors, _) = world("", None).await;
    let f = add(&world, "box", &[], Some(600)).unwrap();
    assert_eq!((f.accounts.as_slice(), f.socket.as_deref()), (&["work".to_owned()][..], Some("/run/fwd/box.sock")));
    assert_eq!(doors.take(), ["open box"]);
    let caller = at("box");
    assert_eq!(caller.door.name(), "forward:box");

    // The forward's account, named or not, and its own audience named or not.
    for p in [token_for(None, None), token_for(Some("work"), None), token_for(None, Some("https://api"))] {
        let grant = handle::<method::GetAccessToken>(&world.broker, &caller, p).await.unwrap();
        assert_eq!(grant.account.name, "work");
    }
    let denied = |e: super::Error, part: &str| {
        assert_eq!(e.kind, ErrorKind::AccessDenied, "{}", e.message);
        assert!(e.message.contains("forward \"box\"") && e.message.contains(part), "{}", e.message);
    };
    let e = handle::<method::GetAccessToken>(&world.broker, &caller, token_for(Some("home"), None)).await;
    denied(e.err().unwrap(), "\"home\" is not forwarded");
    let e = handle::<method::GetAccessToken>(&world.broker, &caller, token_for(None, Some("https://other"))).await;
    denied(e.err().unwrap(), "only the account's own token");
    let e = handle::<method::Logout>(&world.broker, &caller, AccountOnly { account: None }).await;
    denied(e.err().unwrap(), "Logout is not served on a forward");
    let e = handle::<method::GetIdToken>(&world.broker, &caller, Default::default()).await;
    denied(e.err().unwrap(), "GetIdToken");
    let e = handle::<method::Login>(&world.broker, &caller, Default::default()).await;
    denied(e.err().unwrap(), "Login");
    let e = handle::<method::GetMetadata>(&world.broker, &caller, AccountOnly { account: None }).await;
    denied(e.err().unwrap(), "GetMetadata");
    let e = handle::<method::ListForwards>(&world.broker, &caller, Default::default()).await;
    denied(e.err().unwrap(), "ListForwards");
    let again = AddForward { name: "wider".into(), accounts: vec!["home".into()], ..Default::default() };
    denied(handle::<method::AddForward>(&world.broker, &caller, again).await.err().unwrap(), "AddForward");
    let e = handle::<method::RemoveForward>(&world.broker, &caller, "box".into()).await;
    denied(e.err().unwrap(), "RemoveForward");
    assert_eq!(world.broker.forwards().list().len(), 1, "nothing managed from a forward's door");

    // Status: the forward's accounts only, nothing of the policy or the other forwards.
    let status = handle::<method::Status>(&world.broker, &caller, Default::default()).await.unwrap();
    let names: Vec<_> = status.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!((names.as_slice(), status.policy, status.forwards), (&["work"][..], None, None));
    // The main door sees everything, forwards included.
    let main = Caller::new(me(), Some(8), Door::Socket);
    let status = handle::<method::Status>(&world.broker, &main, Default::default()).await.unwrap();
    assert_eq!(status.accounts.len(), 2);
    assert_eq!(status.forwards.unwrap()[0].name, "box");
}

#[tokio::test(start_paused = true)]
async fn with_audiences_a_forward_serves_those_only() {
    let (world, _, _) = world("", None).await;
    add(&world, "api", &["https://other"], None).unwrap();
    let admit = |account: Option<&str>, audience: Option<&str>| {
        let mut account = account.map(str::to_owned);
        forward::admit(&world.broker, "api", "GetAccessToken", Some(&mut account), audience)
    };
    admit(None, Some("https://other")).unwrap();
    assert!(admit(None, None).is_err(), "the account's own audience is not among them");
    assert!(admit(None, Some("https://api")).is_err());
    assert!(admit(Some("home"), Some("https://other")).is_err());
    let e = admit(None, Some("https://third")).unwrap_err();
    assert!(e.message.contains("only the audiences https://other"), "{}", e.message);
    // RejectToken is held to the same limits; ListConsents to none at all.
    let mut account = None;
    forward::admit(&world.broker, "api", "RejectToken", Some(&mut account), Some("https://other")).unwrap();
    assert_eq!(account.as_deref(), Some("work"), "the forward's account is filled in");
    assert!(forward::admit(&world.broker, "api", "ListConsents", None, None).is_err());
}

#[tokio::test(start_paused = true)]
async fn a_forward_ends_at_its_ttl_and_its_door_closes() {
    let (world, doors, _) = world("", None).await;
    add(&world, "short", &[], Some(60)).unwrap();
    doors.take();
    let caller = at("short");
    handle::<method::GetAccessToken>(&world.broker, &caller, token_for(None, None)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(doors.take(), ["close short"], "its door is closed at its time");
    assert!(world.broker.forwards().list().is_empty());
    let e = handle::<method::GetAccessToken>(&world.broker, &caller, token_for(None, None)).await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    assert!(e.message.contains("has ended"), "{}", e.message);
}

/// The timer wakes every minute to look at the wall clock; it ends the forward at its end,
/// not at a wake before it.
#[tokio::test(start_paused = true)]
async fn a_long_forward_ends_at_its_time_not_at_a_wake_before() {
    let (world, doors, _) = world("", None).await;
    add(&world, "long", &[], Some(150)).unwrap();
    doors.take();
    tokio::time::sleep(Duration::from_secs(149)).await;
    assert!(doors.take().is_empty());
    assert_eq!(world.broker.forwards().list().len(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(doors.take(), ["close long"]);
}

#[tokio::test(start_paused = true)]
async fn removing_or_replacing_a_forward_closes_the_old_door() {
    let (world, doors, _) = world("", None).await;
    add(&world, "f", &[], Some(600)).unwrap();
    add(&world, "f", &["https://other"], Some(600)).unwrap();
    assert_eq!(doors.take(), ["open f", "close f", "open f"]);
    assert_eq!(world.broker.forwards().list()[0].audiences, ["https://other"]);
    assert!(forward::remove(&world.broker, "f").removed);
    assert!(!forward::remove(&world.broker, "f").removed);
    assert_eq!(doors.take(), ["close f"]);
    // The old one's timer ends nothing now.
    tokio::time::sleep(Duration::from_secs(601)).await;
    assert!(doors.take().is_empty());
}

#[tokio::test(start_paused = true)]
async fn bad_additions_are_refused() {
    let (world, _, _) = world("", None).await;
    let kind = |r: super::Result<wire::Forward>| r.unwrap_err().kind;
    assert_eq!(kind(add(&world, "a/b", &[], None)), ErrorKind::InvalidParams);
    assert_eq!(kind(add(&world, "ok", &[], Some(0))), ErrorKind::InvalidParams);
    assert_eq!(kind(add(&world, "ok", &[], Some(forward::MAX_TTL.as_secs() + 1))), ErrorKind::InvalidParams);
    assert_eq!(kind(add(&world, "ok", &[""], None)), ErrorKind::InvalidParams);
    let e = add(&world, "ok", &["https://typo"], None).unwrap_err();
    assert!(e.kind == ErrorKind::InvalidParams && e.message.contains("https://api, https://other"), "{}", e.message);
    let unnamed = AddForward { name: "ok".into(), accounts: vec![String::new()], ..Default::default() };
    assert_eq!(forward::add(&world.broker, unnamed).unwrap_err().kind, ErrorKind::InvalidParams);
    let nobody = AddForward { name: "ok".into(), accounts: vec!["nobody".into()], ..Default::default() };
    assert_eq!(forward::add(&world.broker, nobody).unwrap_err().kind, ErrorKind::UnknownAccount);
    assert_eq!(kind(add(&world, "unbindable", &[], None)), ErrorKind::Internal);
    assert!(world.broker.forwards().list().is_empty());
    // No account named: the default one; the default TTL.
    let f = forward::add(&world.broker, AddForward { name: "d".into(), ..Default::default() }).unwrap();
    assert_eq!(f.accounts, ["work"]);
    let now = super::session::now_ms() / 1000;
    assert_eq!(f.expires_at - now, forward::DEFAULT_TTL.as_secs() as i64);
}

#[tokio::test(start_paused = true)]
async fn policy_rules_match_forward_doors_and_refusals_are_audited() {
    let policy = "[policy]\ndefault = \"allow\"\n[[policy.rule]]\ndoor = \"forward:ci-*\"\naction = \"deny\"\n";
    let (world, _, mut entries) = world(policy, None).await;
    add(&world, "ci-1", &[], None).unwrap();
    add(&world, "laptop", &[], None).unwrap();
    let e = handle::<method::GetAccessToken>(&world.broker, &at("ci-1"), token_for(None, None)).await.err().unwrap();
    assert!(e.message.contains("[[policy.rule]] number 1"), "{}", e.message);
    handle::<method::GetAccessToken>(&world.broker, &at("laptop"), token_for(None, None)).await.unwrap();
    let _ = handle::<method::GetAccessToken>(&world.broker, &at("laptop"), token_for(Some("home"), None)).await;
    let seen: Vec<_> = std::iter::from_fn(|| entries.try_recv().ok())
        .map(|e| (e.caller.door.name().to_owned(), e.decision, e.by, e.account))
        .collect();
    assert_eq!(
        seen,
        [
            ("forward:ci-1".into(), AuditDecision::Deny, By::Rule(1), Some("work".into())),
            ("forward:laptop".into(), AuditDecision::Allow, By::Default, Some("work".into())),
            ("forward:laptop".into(), AuditDecision::Deny, By::Forward, Some("home".into())),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn forwards_are_kept_in_a_private_file_and_served_again_after_a_restart() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("state/forwards.json");
    let (world, _, _) = world("", Some(file.clone())).await;
    add(&world, "kept", &["https://api"], Some(3600)).unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    // Another daemon on the same file: the forward is back, with its limits and its end.
    let (again, doors) = world_on_file(&file).await;
    assert_eq!(doors.take(), ["open kept"]);
    assert_eq!(again.broker.forwards().list(), world.broker.forwards().list());
}

#[tokio::test(start_paused = true)]
async fn a_hostile_forwards_file_serves_only_sound_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("forwards.json");
    let now = super::session::now_ms();
    let hour = 3_600_000;
    let entry = |name: &str, accounts: &str, expires: i64| {
        format!(r#"{{"name":{name:?},"accounts":{accounts},"expires_at_ms":{expires}}}"#)
    };
    let entries = [
        entry("good", r#"["work"]"#, now + hour),
        entry("../escape", r#"["work"]"#, now + hour),
        entry("ended", r#"["work"]"#, now - 1),
        entry("forever", r#"["work"]"#, now + 10_000 * hour),
        entry("noone", "[]", now + hour),
        entry("blank", r#"[""]"#, now + hour),
    ];
    std::fs::write(&file, format!(r#"{{"forwards":[{}]}}"#, entries.join(","))).unwrap();
    let (world, doors) = world_on_file(&file).await;
    assert_eq!(doors.take(), ["open good"]);
    assert_eq!(world.broker.forwards().list().len(), 1);

    std::fs::write(&file, "not json").unwrap();
    let (world, doors) = world_on_file(&file).await;
    assert!(doors.take().is_empty() && world.broker.forwards().list().is_empty());
}

/// Another broker (a restarted daemon) serving the forwards kept in `file`.
async fn world_on_file(file: &std::path::Path) -> (World, Arc<Noted>) {
    let world = World::with(false, FakeIdp::new(3600), &format!("{TWO}{HOME}"), Audit::off(), None).await;
    let doors = Arc::new(Noted::default());
    world.broker.serve_forwards(Some(file.to_owned()), doors.clone());
    (world, doors)
}

/// Under `ask`, a request through a forward is a question about that forward (the local end
/// is the same ssh for every forward), and its "always" is not remembered: it would let every
/// later forward of the account through unasked.
#[tokio::test(start_paused = true)]
async fn questions_through_forwards_are_about_each_forward_and_never_always() {
    use super::consent;
    use tokenbroker::protocol::AnswerConsent;
    let (world, _, _) = world("[policy]\ndefault = \"ask\"\n", None).await;
    let world = Arc::new(world);
    add(&world, "box-a", &[], None).unwrap();
    add(&world, "box-b", &[], None).unwrap();
    let ssh = |door: &str| Caller { exe: Some("/usr/bin/ssh".into()), ..at(door) };
    let asking: Vec<_> = ["box-a", "box-b"]
        .into_iter()
        .map(|door| {
            let (world, caller) = (world.clone(), ssh(door));
            tokio::spawn(async move {
                handle::<method::GetAccessToken>(&world.broker, &caller, token_for(None, None)).await.map(|_| ())
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let mut pending = consent::list(&world.broker).pending;
    pending.sort_by(|a, b| a.program.cmp(&b.program));
    let programs: Vec<_> = pending.iter().map(|q| (q.program.as_str(), q.exe.is_some())).collect();
    assert_eq!(
        programs,
        [("a program on the far side of box-a", false), ("a program on the far side of box-b", false)],
        "one question per forward, not one for ssh"
    );
    let brokerctl = Caller { exe: Some("/usr/bin/brokerctl".into()), ..Caller::new(me(), Some(12), Door::Socket) };
    let answer = |id: &str, always| {
        consent::answer_as(&world.broker, &brokerctl, AnswerConsent { id: id.into(), allow: true, always })
    };
    assert_eq!(answer(&pending[0].id, true).unwrap_err().kind, ErrorKind::InvalidParams);
    assert!(answer(&pending[0].id, false).unwrap().answered);
    assert_eq!(consent::list(&world.broker).pending.len(), 1, "box-b's question is still out");
    assert!(answer(&pending[1].id, false).unwrap().answered);
    for a in asking {
        a.await.unwrap().unwrap();
    }
    assert!(consent::list(&world.broker).remembered.is_empty());
}

/// A kept forward whose socket cannot be made at start (here the doors refuse its name) is
/// not served, and not forgotten: the next start tries it again, until its end.
#[tokio::test(start_paused = true)]
async fn a_kept_forward_that_cannot_be_served_now_stays_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("forwards.json");
    let ends = super::session::now_ms() + 3_600_000;
    let kept = format!(r#"{{"forwards":[{{"name":"unbindable","accounts":["work"],"expires_at_ms":{ends}}}]}}"#);
    std::fs::write(&file, &kept).unwrap();
    let (world, doors) = world_on_file(&file).await;
    assert!(doors.take().is_empty() && world.broker.forwards().list().is_empty());
    let file_now = std::fs::read_to_string(&file).unwrap();
    assert!(file_now.contains("unbindable"), "still kept: {file_now}");
}

/// A forward's refusal is audited as the policy's are: about the account and audience the
/// request means (the account's own audience when it names none), not just what it spelled.
#[tokio::test(start_paused = true)]
async fn a_forwards_refusal_is_audited_with_the_audience_meant() {
    let (world, _, mut entries) = world("", None).await;
    add(&world, "api", &["https://other"], None).unwrap();
    let e = handle::<method::GetAccessToken>(&world.broker, &at("api"), token_for(None, None)).await.err().unwrap();
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    let seen = entries.try_recv().unwrap();
    assert_eq!(
        (seen.by, seen.account.as_deref(), seen.audience.as_deref()),
        (By::Forward, Some("work"), Some("https://api"))
    );
}
