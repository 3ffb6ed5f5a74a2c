//! The audit trail: every grant and refusal of a policy-covered request is one record in
//! `$XDG_STATE_HOME/tokenbroker/audit.jsonl` and one log event, none lost to a stop, none
//! holding a token; `brokerctl audit` shows and filters them.

use std::time::Duration;

use serde_json::Value;
use tokenbroker::protocol::*;
use tokenbroker_testkit::*;

fn our_uid() -> u64 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() as u64 }
}

/// N token requests from several connections, answered, then SIGTERM at once: after the exit
/// the trail holds exactly N grants. The log is slow (a pipe no one reads until the stop, as a
/// journal can be), so the writer is far behind the requests when the stop comes: a stop that
/// did not wait for it would lose the tail. Requests never wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grant_answered_before_a_sigterm_is_in_the_trail_after_it() {
    let Env { bus, idp: _idp, mut daemon } = Fixture::new().access_ttl(3600).logged_in("alice").await;
    daemon.signal(libc::SIGTERM);
    daemon.proc.take().unwrap().wait_exit(Duration::from_secs(30)).expect("tokenbrokerd did not stop");
    // Again, on the stored session, with only warnings and the audit events on its stderr.
    let mut cmd = bus.command(tokenbrokerd_path().to_str().unwrap());
    cmd.arg("--config")
        .arg(daemon.config_path())
        .arg("--socket")
        .arg(daemon.socket())
        .env("XDG_STATE_HOME", daemon.state_home())
        .env("RUST_LOG", "warn,audit=info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut proc = Proc(cmd.spawn().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while tokenbroker::blocking::Client::connect_to(daemon.socket()).and_then(|c| c.status()).is_err() {
        assert!(std::time::Instant::now() < deadline, "tokenbrokerd did not answer");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    const CONNECTIONS: usize = 8;
    const EACH: usize = 400;
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        let client = daemon.client().await;
        clients.push(tokio::spawn(async move {
            for _ in 0..EACH {
                token(&client, None).await.unwrap();
            }
        }));
    }
    let asking = std::time::Instant::now();
    for c in clients {
        c.await.unwrap();
    }
    let asked = asking.elapsed();
    proc.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        daemon.audit_records().len() < CONNECTIONS * EACH,
        "the writer is behind when the stop comes (else this test shows nothing)"
    );
    // The log is read again: the writer catches up, and the daemon exits.
    let mut stderr = proc.0.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
        text
    });
    let status = proc.wait_exit(Duration::from_secs(30)).expect("tokenbrokerd did not stop");
    let log = log.join().unwrap();
    assert_eq!(status.code(), Some(0), "{log}");

    let records = daemon.audit_records();
    let grants: Vec<&Value> =
        records.iter().filter(|r| r["method"] == "GetAccessToken" && r["decision"] == "allow").collect();
    assert_eq!(grants.len(), CONNECTIONS * EACH, "one grant record per answered request, none lost at the stop");
    for r in &grants {
        assert_eq!(r["uid"], our_uid());
        assert_eq!(r["pid"], std::process::id(), "the caller is this test process");
        assert_eq!(r["door"], "socket");
        assert_eq!(r["account"], "work");
        assert_eq!(r["rule"], "default");
    }
    assert_eq!(log.lines().filter(|l| l.contains(" audit: allow GetAccessToken")).count(), CONNECTIONS * EACH);
    assert!(asked < Duration::from_secs(20), "the requests waited for the log: {asked:?}");
}

/// A policy that refuses one account: its refusals and the other's grants are records with the
/// caller, `brokerctl audit` shows them (as a table and as JSON) and filters them by account and
/// age, and no piece of any token issued is in the trail or the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokerctl_audit_shows_and_filters_the_records_and_no_token_is_in_them() {
    let Env { bus, idp, daemon } = Fixture::new()
        .access_ttl(60)
        .config("default_account = \"work\"\n[policy]\ndefault = \"allow\"\n")
        .config("[[policy.rule]]\ndoor = \"socket\"\naccounts = [\"home\"]\naction = \"deny\"\n")
        .account(|idp| format!("{}{}", idp.account_config("work"), idp.account_config("home")))
        .logged_in("alice")
        .await;
    let client = daemon.client().await;
    let mut tokens: Vec<String> = Vec::new();
    for _ in 0..3 {
        tokens.push(token(&client, None).await.unwrap().access_token.expose().into());
    }
    tokens.push(client.get_id_token(GetIdToken::default()).await.unwrap().id_token.expose().into());
    let refused = client
        .get_access_token(GetAccessToken { account: Some("home".into()), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), Some(tokenbroker::ErrorKind::AccessDenied), "{refused}");
    // A refresh: another token, and the rotated refresh token in the keyring.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    tokens.push(token(&client, Some(60)).await.unwrap().access_token.expose().into());
    // Over D-Bus too.
    let out = bus.command(brokerctl_path().to_str().unwrap()).args(["--dbus", "token"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    tokens.push(String::from_utf8(out.stdout).unwrap().trim().into());
    let entry = bus.keyring_entry("work").unwrap();
    for key in ["refresh_token", "access_token", "id_token"] {
        tokens.push(entry[key].as_str().unwrap().into());
    }

    // An old record, as a rotated file would hold it: shown, and left out by --since.
    let old = r#"{"time":"2020-01-02T03:04:05.678Z","uid":1,"pid":2,"door":"socket","method":"GetProfile","account":"work","decision":"allow","rule":"default"}"#;
    std::fs::write(daemon.audit_path().with_extension("jsonl.1"), format!("{old}\n")).unwrap();

    let json = |args: &[&str]| -> Vec<Value> {
        let out = daemon.brokerctl(&[&["audit", "--json"], args].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    // The writer gathers for a moment before it writes.
    eventually(Duration::from_secs(10), || std::future::ready(json(&[]).len() >= 8)).await;
    let all = json(&[]);
    let summary: Vec<String> = all
        .iter()
        .map(|r| format!("{} {} {} {} {}", r["method"], r["account"], r["decision"], r["rule"], r["door"]))
        .collect();
    let expected: Vec<String> = [
        r#""GetProfile" "work" "allow" "default" "socket""#,
        r#""GetAccessToken" "work" "allow" "default" "socket""#,
        r#""GetAccessToken" "work" "allow" "default" "socket""#,
        r#""GetAccessToken" "work" "allow" "default" "socket""#,
        r#""GetIdToken" "work" "allow" "default" "socket""#,
        r#""GetAccessToken" "home" "deny" "rule 1" "socket""#,
        r#""GetAccessToken" "work" "allow" "default" "socket""#,
        r#""GetAccessToken" "work" "allow" "default" "dbus""#,
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(summary, expected, "oldest first, the rotated file before the current one");
    for r in &all[1..] {
        assert_eq!(r["uid"], our_uid());
        assert!(r["pid"].as_u64().is_some_and(|p| p > 0), "{r}");
        assert!(r["time"].as_str().unwrap().ends_with('Z'), "{r}");
    }
    assert_eq!(all[1]["pid"], std::process::id(), "socket callers: this process");
    assert_eq!(json(&["--since", "1h"]).len(), all.len() - 1, "--since leaves the old one out");
    let home = json(&["--account", "home"]);
    assert_eq!(home.len(), 1);
    assert_eq!(home[0]["decision"], "deny");

    let out = daemon.brokerctl(&["audit"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), all.len() + 1, "a heading and a line per record:\n{table}");
    assert!(lines[0].starts_with("TIME") && lines[0].contains("PROGRAM") && lines[0].ends_with("RULE"), "{table}");
    assert!(lines[1].starts_with("2020-01-02T03:04:05.678Z") && lines[1].contains("pid 2"), "{table}");
    let ours = format!("pid {}", std::process::id());
    let program_ok = |l: &&str| l.contains(&ours) || l.contains(std::env::current_exe().unwrap().to_str().unwrap());
    assert!(lines[2..7].iter().all(program_ok), "the program: ours\n{table}");
    assert!(lines[6].contains("deny") && lines[6].contains("home") && lines[6].ends_with("rule 1"), "{table}");
    let out = daemon.brokerctl(&["audit", "--account", "home", "--since", "10m"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);
    let out = daemon.brokerctl(&["audit", "--since", "soon"]);
    assert_eq!(out.status.code(), Some(2), "a bad duration is a usage error");

    // The log has each record as an event of target `audit`.
    let log = daemon.log();
    let events: Vec<&str> = log.lines().filter(|l| l.contains(" audit: ")).collect();
    assert_eq!(events.len(), all.len() - 1, "{log}");
    assert!(events.iter().any(|l| l.contains("deny GetAccessToken") && l.contains("rule=\"rule 1\"")), "{log}");
    assert!(events.iter().all(|l| l.contains(&format!("uid={}", our_uid()))), "{log}");

    let trail = std::fs::read_to_string(daemon.audit_path()).unwrap();
    tokens.sort();
    tokens.dedup();
    assert!(tokens.len() >= 4, "access (before and after a refresh), ID and refresh tokens: {}", tokens.len());
    for t in &tokens {
        assert!(t.len() >= 20, "a real token: {} chars", t.len());
        // Any 16-character piece would already be a leak.
        for piece in t.as_bytes().chunks(16).filter(|p| p.len() == 16) {
            let piece = std::str::from_utf8(piece).unwrap();
            assert!(!trail.contains(piece), "a token piece is in audit.jsonl: {piece}");
            assert!(!log.contains(piece), "a token piece is in the log: {piece}");
        }
    }
    drop(idp);
}
