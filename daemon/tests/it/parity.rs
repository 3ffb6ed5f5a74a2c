//! `brokerctl --dbus` prints what brokerctl prints over the socket: each main command runs
//! both ways against one daemon, and stdout, stderr and the exit code are compared. The only
//! differences allowed are those that must be: where doctor found the daemon, and a login's
//! one-time codes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use tokenbroker_testkit::*;

/// brokerctl against this daemon through one door. Over the bus the socket path leads
/// nowhere, so that an answer can only have come over the bus.
fn ctl(bus: &Bus, daemon: &Daemon, dbus: bool) -> Command {
    let mut cmd = daemon.brokerctl_command();
    bus.env(&mut cmd);
    if dbus {
        cmd.arg("--dbus").env("TOKENBROKER_SOCKET", "/nonexistent/broker.sock");
    }
    cmd
}

/// What a person or a script sees of one run.
fn seen(out: &Output) -> (Option<i32>, String, String) {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Run `args` through both doors; both must print the same (after `normal`).
fn same(bus: &Bus, daemon: &Daemon, args: &[&str], normal: impl Fn(String) -> String) -> (Option<i32>, String) {
    let [socket, dbus] = [false, true].map(|d| {
        let (code, out, err) = seen(&ctl(bus, daemon, d).args(args).output().unwrap());
        (code, normal(out), normal(err))
    });
    assert_eq!(socket, dbus, "`brokerctl {}`: the socket's output (left) and the bus's (right) differ", args.join(" "));
    (socket.0, socket.1)
}

/// `brokerctl [--dbus] --json login`, approved as alice: the challenge's keys and the result.
async fn login(bus: &Bus, idp: &Idp, daemon: &Daemon, dbus: bool) -> (Vec<String>, String) {
    let mut child = ctl(bus, daemon, dbus)
        .args(["--json", "login", "--no-browser"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let challenge: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    idp.approve(challenge["user_code"].as_str().unwrap(), "alice").await;
    let done = lines.next().unwrap().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let mut keys: Vec<String> = challenge.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    (keys, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_main_command_prints_the_same_over_the_bus_as_over_the_socket() {
    let Env { bus, idp, daemon } =
        Fixture::new().access_ttl(3600).account(|idp| idp.api_account_config("work")).start().await;
    let as_is = |t: String| t;

    // Logged out.
    let (code, _) = same(&bus, &daemon, &["token"], as_is);
    assert_eq!(code, Some(3));
    same(&bus, &daemon, &["status"], as_is);
    same(&bus, &daemon, &["--json", "status"], as_is);

    let (socket_keys, socket_done) = login(&bus, &idp, &daemon, false).await;

    // Logged in: every command that reads, and one that writes the same thing twice.
    let reads: &[&[&str]] = &[
        &["token"],
        &["--json", "token"],
        &["token", "--header"],
        &["--json", "token", "--audience", API],
        &["id-token"],
        &["--json", "id-token"],
        &["profile"],
        &["--json", "profile"],
        &["--json", "status"],
        &["metadata", "set", "theme=dark"],
        &["metadata", "get"],
        &["--account", "nope", "token"],
        &["token", "--audience", "https://unknown.example.test/"],
    ];
    for args in reads {
        same(&bus, &daemon, args, as_is);
    }
    let (code, out) = same(&bus, &daemon, &["--json", "token"], as_is);
    assert_eq!(code, Some(0));
    let token: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(token["account"], "work", "{out}");
    assert!(token["scope"].as_str().is_some_and(|s| s.contains("openid")), "{out}");

    // Doctor asks the daemon through the door it was given, and says which; each run times
    // the IdP's discovery anew.
    let socket = daemon.socket().display().to_string();
    let place = |t: String| {
        let t = t
            .replace(&format!("at {socket}"), "PLACE")
            .replace("as io.github.tokenbroker.Broker1 on the session bus", "PLACE");
        let mut parts = t.split("discovery in ");
        let first = parts.next().unwrap_or_default().to_owned();
        parts.fold(first, |out, rest| out + "discovery in N" + rest.trim_start_matches(|c: char| c.is_ascii_digit()))
    };
    let (code, out) = same(&bus, &daemon, &["doctor"], place);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("answers PLACE"), "{out}");
    same(&bus, &daemon, &["--json", "doctor"], place);

    // Logout, then the same login and logout over the bus.
    let socket_logout = seen(&ctl(&bus, &daemon, false).args(["--json", "logout"]).output().unwrap());
    let (dbus_keys, dbus_done) = login(&bus, &idp, &daemon, true).await;
    let dbus_logout = seen(&ctl(&bus, &daemon, true).args(["--json", "logout"]).output().unwrap());
    assert_eq!(socket_keys, dbus_keys, "the login challenges carry the same fields");
    assert_eq!(socket_done, dbus_done, "the logins end alike");
    assert_eq!(socket_logout, dbus_logout, "the logouts print alike");
    let logout: serde_json::Value = serde_json::from_str(&dbus_logout.1).unwrap();
    assert_eq!(logout["account"], "work", "{logout}");
    assert_eq!(logout["revoked"], true, "{logout}");
    assert!(logout["end_session_url"].as_str().is_some_and(|u| u.starts_with(&idp.issuer)), "{logout}");

    // And the human logout, from a new login each way.
    let mut human = Vec::new();
    for dbus in [false, true] {
        login(&bus, &idp, &daemon, dbus).await;
        human.push(seen(&ctl(&bus, &daemon, dbus).arg("logout").output().unwrap()));
    }
    assert_eq!(human[0], human[1]);
    assert!(human[0].1.contains("work"), "{:?}", human[0]);
    same(&bus, &daemon, &["status"], as_is);
}
