use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokenbroker::protocol::{AuditDecision, AuditRecord};

use super::trail::{self, Trail};
use super::*;
use crate::broker::policy::Answer;
use crate::broker::request::Door;

fn entry(n: usize) -> Entry {
    Entry {
        time_ms: 1_796_226_000_123 + n as i64,
        caller: Caller::new(1000, Some(4242), Door::Socket),
        method: "GetAccessToken",
        account: Some("work".into()),
        audience: None,
        decision: AuditDecision::Allow,
        by: By::Rule(n + 1),
    }
}

fn lines(path: &Path) -> Vec<AuditRecord> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(|l| serde_json::from_str(l).unwrap()).collect(),
        Err(_) => Vec::new(),
    }
}

fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(10)
}

/// The trail at `dir/state/audit.jsonl` (the state directory not made yet).
fn trail_in(dir: &Path, rotate_at: u64) -> (PathBuf, Trail) {
    let path = dir.join("state").join(FILE);
    (path.clone(), Trail::new(Some(path), rotate_at))
}

#[test]
fn a_record_has_every_field_the_entry_has_and_leaves_out_the_rest() {
    let mut full = entry(0);
    full.caller.exe = Some("/usr/bin/git".into());
    full.caller.unit = Some("app-git@1.service".into());
    full.caller.app_id = Some("org.example.Git".into());
    full.caller.door = Door::Dbus;
    full.audience = Some("https://api.example.com".into());
    full.decision = AuditDecision::Deny;
    full.by = By::Consent(Answer::Denied);
    assert_eq!(
        serde_json::to_string(&trail::record(&full)).unwrap(),
        r#"{"time":"2026-12-02T15:40:00.123Z","uid":1000,"pid":4242,"exe":"/usr/bin/git","unit":"app-git@1.service","app_id":"org.example.Git","door":"dbus","method":"GetAccessToken","account":"work","audience":"https://api.example.com","decision":"deny","rule":"consent (denied)"}"#
    );

    let mut bare = entry(0);
    bare.caller.pid = None;
    bare.account = None;
    bare.by = By::Default;
    bare.time_ms = 0;
    assert_eq!(
        serde_json::to_string(&trail::record(&bare)).unwrap(),
        r#"{"time":"1970-01-01T00:00:00.000Z","uid":1000,"door":"socket","method":"GetAccessToken","decision":"allow","rule":"default"}"#
    );
    bare.time_ms = 1_796_226_000_007;
    assert_eq!(trail::record(&bare).time, "2026-12-02T15:40:00.007Z", "milliseconds always three digits");
}

#[tokio::test]
async fn every_entry_recorded_before_finish_is_written_and_the_modes_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, trail) = trail_in(tmp.path(), ROTATE_AT);
    let (audit, writer) = Audit::start_with(trail);
    // More than one batch's worth, all queued when the finish is asked for.
    for n in 0..5000 {
        audit.record(entry(n));
    }
    assert!(writer.finish(deadline()).await);
    let written = lines(&path);
    assert_eq!(written.len(), 5000, "none lost at the stop");
    assert!(written.iter().enumerate().all(|(n, r)| r.rule == format!("rule {}", n + 1)), "in order");
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777, 0o700);
    audit.record(entry(5000));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(lines(&path).len(), 5000, "nothing is taken after the finish (and record does not fail)");
}

#[tokio::test]
async fn the_file_is_made_at_start_and_a_record_is_in_it_as_soon_as_the_writer_is_idle() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, trail) = trail_in(tmp.path(), ROTATE_AT);
    let (audit, writer) = Audit::start_with(trail);
    let mut waited = Duration::ZERO;
    while !path.exists() {
        assert!(waited < Duration::from_secs(5), "the file was not made at start");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    audit.record(entry(0));
    while lines(&path).is_empty() {
        assert!(waited < Duration::from_secs(5), "the record was not flushed while the writer idled");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    writer.finish(deadline()).await;
}

#[tokio::test]
async fn the_file_rotates_keeping_three_the_oldest_dropped_and_the_order_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, trail) = trail_in(tmp.path(), 1024);
    let (audit, writer) = Audit::start_with(trail);
    let total = 40; // about 170 bytes each: more than three files' worth
    for n in 0..total {
        audit.record(entry(n));
        // Some one at a time, some in batches.
        if n % 3 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(writer.finish(deadline()).await);
    let files = [trail::rotated(&path, 2), trail::rotated(&path, 1), path.clone()];
    for f in &files {
        let size = std::fs::metadata(f).unwrap().len();
        assert!(size > 0 && size <= 1024, "{} is {size} bytes", f.display());
        assert_eq!(std::fs::metadata(f).unwrap().mode() & 0o777, 0o600);
    }
    assert!(!trail::rotated(&path, 3).exists(), "three files kept");
    let kept: Vec<String> = files.iter().flat_map(|f| lines(f)).map(|r| r.rule).collect();
    assert!(kept.len() < total, "the oldest were dropped");
    let expected: Vec<String> = (total - kept.len()..total).map(|n| format!("rule {}", n + 1)).collect();
    assert_eq!(kept, expected, "oldest first, no gap, ending with the last");
}

#[tokio::test]
async fn a_file_open_to_others_is_made_private_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, trail) = trail_in(tmp.path(), ROTATE_AT);
    std::fs::create_dir(path.parent().unwrap()).unwrap();
    let old = serde_json::to_string(&trail::record(&entry(7))).unwrap();
    // An earlier line cut short (a full disk) stays apart from the next record.
    std::fs::write(&path, format!("{old}\n{{\"time\":\"20")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (audit, writer) = Audit::start_with(trail);
    audit.record(entry(8));
    assert!(writer.finish(deadline()).await);
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    let text: Vec<&str> = text.lines().collect();
    assert_eq!(text.len(), 3, "{text:?}");
    assert_eq!(text[0], old);
    assert_eq!(serde_json::from_str::<AuditRecord>(text[2]).unwrap().rule, "rule 9");
}

#[tokio::test]
async fn a_symlink_planted_at_the_file_is_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, trail) = trail_in(tmp.path(), ROTATE_AT);
    std::fs::create_dir(path.parent().unwrap()).unwrap();
    let target = tmp.path().join("elsewhere");
    std::fs::write(&target, "theirs\n").unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let (audit, writer) = Audit::start_with(trail.retry_at_once());
    audit.record(entry(0));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "theirs\n", "nothing written through the link");
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink(), "and the link is left alone");

    // Once it is gone, the file is opened again.
    std::fs::remove_file(&path).unwrap();
    audit.record(entry(1));
    assert!(writer.finish(deadline()).await);
    assert_eq!(lines(&path).iter().map(|r| r.rule.as_str()).collect::<Vec<_>>(), ["rule 2"]);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "theirs\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_hung_disk_never_holds_up_record_and_is_tried_again() {
    let tmp = tempfile::tempdir().unwrap();
    // The state directory's place holds a file: it cannot be made (ENOTDIR), as a full or
    // read-only disk cannot be written.
    let (path, trail) = trail_in(tmp.path(), ROTATE_AT);
    std::fs::write(path.parent().unwrap(), "in the way").unwrap();
    let mut trail = trail.retry_at_once();
    let stall = Arc::new(Mutex::new(()));
    trail.stall = Some(stall.clone());
    let (audit, writer) = Audit::start_with(trail);

    // The writer hangs (as on a stuck disk): record still returns at once, every time.
    let hung = stall.lock().unwrap();
    let first = audit.clone();
    std::thread::spawn(move || first.record(entry(0))).join().unwrap();
    // (The writer runs on the other worker, into the stall.)
    std::thread::sleep(Duration::from_millis(100));
    let (done, recorded) = std::sync::mpsc::channel();
    let recording = {
        let audit = audit.clone();
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            for n in 1..10_000 {
                audit.record(entry(n));
            }
            done.send(started.elapsed()).unwrap();
        })
    };
    let took = recorded.recv_timeout(Duration::from_secs(10)).expect("record waited for the writer");
    assert!(took < Duration::from_secs(2), "10,000 records took {took:?}");
    recording.join().unwrap();
    drop(hung);

    // The failing directory: the entries are let go (to the log), the writer goes on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!path.exists());
    std::fs::remove_file(path.parent().unwrap()).unwrap();
    audit.record(entry(10_000));
    assert!(writer.finish(deadline()).await, "the writer ends once told to");
    let written = lines(&path);
    assert_eq!(written.last().map(|r| r.rule.as_str()), Some("rule 10001"), "written again once it can be");
}

/// Give `path` to another user (nobody): possible only as root.
fn give_away(path: &Path) {
    let path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string; lchown changes the file itself.
    assert_eq!(unsafe { libc::lchown(path.as_ptr(), 65534, 65534) }, 0, "lchown: are we root?");
}

#[tokio::test]
#[ignore = "needs root"]
async fn a_file_of_another_user_is_not_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, trail) = trail_in(tmp.path(), ROTATE_AT);
    std::fs::create_dir(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    give_away(&path);
    let (audit, writer) = Audit::start_with(trail);
    audit.record(entry(0));
    assert!(writer.finish(deadline()).await);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "", "nothing written into their file");
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o666, "nor its mode changed");
}
