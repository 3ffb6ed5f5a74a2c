//! Forwards: a restricted socket per SSH session or container, served by the real daemon and
//! used by the real brokerctl, over a real `ssh -R` and inside a bubblewrap sandbox.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tokenbroker_testkit::*;

/// Two accounts on the test IdP, work (the default, logged in) and home.
async fn two_accounts() -> Env {
    Fixture::new()
        .access_ttl(3600)
        .config("default_account = \"work\"\n")
        .account(|idp| format!("{}{}", idp.account_config("work"), idp.account_config("home")))
        .logged_in("alice")
        .await
}

fn forward_socket(daemon: &Daemon, name: &str) -> PathBuf {
    daemon.socket().parent().unwrap().join("forward").join(format!("{name}.sock"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// brokerctl on the far side of `socket`, as a program there would run it: only the socket.
fn far(daemon: &Daemon, socket: &Path, args: &[&str]) -> Output {
    daemon.brokerctl_command().env("TOKENBROKER_SOCKET", socket).args(args).output().unwrap()
}

fn add(daemon: &Daemon, args: &[&str]) -> Output {
    let out = daemon.brokerctl(&[&["forward", "add"], args].concat());
    assert!(out.status.success(), "forward add {args:?}: {}", text(&out));
    out
}

/// What a forward refuses, and the one thing it gives, through brokerctl's exit codes.
fn only_tokens_through(daemon: &Daemon, socket: &Path) {
    let token = far(daemon, socket, &["token"]);
    assert!(token.status.success(), "{}", text(&token));
    let mine = daemon.brokerctl(&["token"]);
    assert_eq!(token.stdout, mine.stdout, "the same token as the main socket gives");
    assert!(far(daemon, socket, &["token", "--account", "work"]).status.success());
    for refused in [
        &["token", "--account", "home"][..],
        &["logout"],
        &["metadata", "get"],
        &["login", "--force", "--no-browser"],
        &["id-token"],
        &["forward", "list"],
        &["forward", "add", "wider", "--account", "home"],
    ] {
        let out = far(daemon, socket, refused);
        assert_eq!(out.status.code(), Some(6), "{refused:?} through a forward: {}", text(&out));
        assert!(text(&out).contains("forward"), "the refusal says it is a forward: {}", text(&out));
    }
    let status = far(daemon, socket, &["status", "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let names: Vec<&str> = status["accounts"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["work"], "Status on a forward lists its accounts only");
    assert!(status.get("forwards").is_none() && status.get("policy").is_none(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_serves_its_account_survives_a_restart_and_ends_when_removed() {
    let Env { bus, idp: _idp, mut daemon } = two_accounts().await;
    let out = add(&daemon, &["box", "--account", "work", "--ttl", "1h"]);
    let socket = forward_socket(&daemon, "box");
    assert!(text(&out).contains(&format!(":{}\n", socket.display())), "the ssh -R line: {}", text(&out));
    assert_eq!(std::fs::metadata(&socket).unwrap().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(socket.parent().unwrap()).unwrap().mode() & 0o777, 0o700);
    only_tokens_through(&daemon, &socket);

    let list = daemon.brokerctl(&["forward", "list", "--json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let f = &list["forwards"][0];
    assert_eq!((f["name"].as_str(), f["accounts"][0].as_str()), (Some("box"), Some("work")));
    assert_eq!(f["socket"].as_str(), Some(socket.to_str().unwrap()));
    let left = f["expires_at"].as_i64().unwrap() - unix_now();
    assert!((3590..=3600).contains(&left), "{left}");

    // Killed and started again: the forward is served again, to the same end.
    daemon.kill9();
    daemon.spawn(&bus);
    only_tokens_through(&daemon, &socket);
    let again: Value = serde_json::from_slice(&daemon.brokerctl(&["forward", "list", "--json"]).stdout).unwrap();
    assert_eq!(again["forwards"][0]["expires_at"], f["expires_at"]);
    let kept = daemon.state_home().join("tokenbroker/forwards.json");
    assert_eq!(std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777, 0o600);

    let removed = daemon.brokerctl(&["forward", "remove", "box"]);
    assert!(removed.status.success(), "{}", text(&removed));
    assert!(!socket.exists(), "its socket is gone");
    assert_eq!(far(&daemon, &socket, &["token"]).status.code(), Some(5));
    assert_eq!(daemon.brokerctl(&["forward", "remove", "box"]).status.code(), Some(1), "no such forward");
    daemon.kill9();
    daemon.spawn(&bus);
    assert!(!socket.exists(), "a removed forward stays removed across a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_ends_at_its_ttl_and_drops_its_connections() {
    let Env { bus: _bus, idp: _idp, daemon } = two_accounts().await;
    add(&daemon, &["short", "--ttl", "2s"]);
    let socket = forward_socket(&daemon, "short");
    // A connection opened before the end, idle across it.
    let mut open = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    assert!(far(&daemon, &socket, &["token"]).status.success());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!socket.exists(), "the socket is gone at the end");
    open.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    let read = std::io::Read::read(&mut open, &mut buf);
    assert!(matches!(read, Ok(0)), "the open connection was dropped, not left waiting: {read:?}");
    let list: Value = serde_json::from_slice(&daemon.brokerctl(&["forward", "list", "--json"]).stdout).unwrap();
    assert_eq!(list["forwards"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_names_and_ttls_are_checked() {
    let Env { bus: _bus, idp: _idp, daemon } = two_accounts().await;
    for bad in ["a/b", "..", "../../x", ".hidden", "a b", "tab\there", &"n".repeat(65)] {
        let out = daemon.brokerctl(&["forward", "add", bad]);
        assert_eq!(out.status.code(), Some(1), "{bad:?}: {}", text(&out));
        assert!(text(&out).contains("name"), "{}", text(&out));
    }
    assert_eq!(daemon.brokerctl(&["forward", "add", "x", "--ttl", "soon"]).status.code(), Some(2));
    let out = daemon.brokerctl(&["forward", "add", "x", "--ttl", "8d"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("at most 7 days"), "{}", text(&out));
    assert_eq!(daemon.brokerctl(&["forward", "add", "x", "--account", "nobody"]).status.code(), Some(1));
    assert_eq!(daemon.brokerctl(&["forward", "list", "--account", "work"]).status.code(), Some(2));
    let dir = daemon.socket().parent().unwrap().join("forward");
    let left: Vec<_> =
        std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "nothing was bound: {left:?}");
}

/// The far side of a real `ssh -R`: sshd (running as us there) makes the socket, brokerctl
/// there trusts it (the client's server-UID check sees our UID) and gets the forward's
/// token, and nothing else; at the forward's end the far side's calls fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_ssh_the_far_side_gets_the_forwards_tokens_and_nothing_else() {
    let Env { bus: _bus, idp: _idp, daemon } = two_accounts().await;
    let sshd = Sshd::start();
    add(&daemon, &["ssh", "--ttl", "8s"]);
    let local = forward_socket(&daemon, "ssh");
    let remote = sshd.dir.path().join("far.sock");
    let results = sshd.dir.path().join("results");
    let brokerctl = brokerctl_path();
    // The far side's script: each command's exit code on a line, then (after the forward's
    // end) once more the token.
    let script = format!(
        "export TOKENBROKER_SOCKET={remote}\n\
         uid=$(stat -c %u {remote})\n\
         run() {{ {b} \"$@\" >/dev/null 2>&1; echo \"$*=$?\"; }}\n\
         {{ echo \"owner=$uid\"; run token --account work; run token --account home; run logout;\n\
            run metadata get; run login --force --no-browser; run status; }} > {results}\n\
         {b} token > {results}.token\n\
         sleep 9\n\
         {b} token 2> {results}.after; echo \"token=$?\" >> {results}\n",
        remote = remote.display(),
        b = brokerctl.display(),
        results = results.display(),
    );
    let script_path = sshd.dir.path().join("far.sh");
    std::fs::write(&script_path, script).unwrap();
    let session = sshd
        .ssh()
        .arg("-R")
        .arg(format!("{}:{}", remote.display(), local.display()))
        .arg("127.0.0.1")
        .arg(format!("sh {}", script_path.display()))
        .output()
        .unwrap();
    assert!(session.status.success(), "ssh: {}\nsshd: {}", text(&session), sshd.log());
    let seen = std::fs::read_to_string(&results).unwrap();
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    let expected = format!(
        "owner={me}\ntoken --account work=0\ntoken --account home=6\nlogout=6\nmetadata get=6\n\
         login --force --no-browser=6\nstatus=0\n"
    );
    let after = std::fs::read_to_string(format!("{}.after", results.display())).unwrap();
    let (before, end) = seen.rsplit_once("token=").unwrap_or((&seen, ""));
    assert_eq!(before, expected, "sshd: {}", sshd.log());
    // After the end sshd still accepts on the far side, but finds nothing to forward to: the
    // connection is dropped unanswered, and brokerctl says no daemon is reachable (exit 5).
    assert_eq!(end.trim(), "5", "a token after the forward's end: {after}");
    assert!(after.contains("talking to tokenbrokerd") || after.contains("not reachable"), "{after}");
    let token = std::fs::read(format!("{}.token", results.display())).unwrap();
    assert!(!token.is_empty());
    assert_eq!(token, daemon.brokerctl(&["token"]).stdout, "the far side got the forward account's token");
}

/// A bubblewrap sandbox with nothing of ours but the forward's socket (no runtime dir, no
/// main socket, no state) gets tokens through it, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_with_only_the_forward_socket_gets_tokens_and_nothing_else() {
    let Env { bus: _bus, idp: _idp, daemon } = two_accounts().await;
    add(&daemon, &["box"]);
    let local = forward_socket(&daemon, "box");
    let token = sandboxed(Some(&local), Path::new("/run/tokenbroker.sock"), &["token"]);
    assert!(token.status.success(), "{}", text(&token));
    assert_eq!(token.stdout, daemon.brokerctl(&["token"]).stdout);
    for refused in [&["token", "--account", "home"][..], &["logout"], &["metadata", "get"], &["forward", "list"]] {
        let out = sandboxed(Some(&local), Path::new("/run/tokenbroker.sock"), refused);
        assert_eq!(out.status.code(), Some(6), "{refused:?}: {}", text(&out));
    }
    // The main socket is not there to reach, even by its path.
    let out = sandboxed(None, &daemon.socket(), &["status"]);
    assert_eq!(out.status.code(), Some(5), "the main socket is out of the sandbox's reach: {}", text(&out));
}

/// brokerctl in a bubblewrap sandbox of its own (every namespace unshared, a clear
/// environment, /usr read-only), with `socket` (if any) mounted at /run/tokenbroker.sock and
/// TOKENBROKER_SOCKET set to `points_at`.
fn sandboxed(socket: Option<&Path>, points_at: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("bwrap");
    cmd.args(["--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64"])
        .args(["--symlink", "usr/bin", "/bin", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"])
        .args(["--unshare-all", "--die-with-parent", "--clearenv", "--setenv", "TOKENBROKER_SOCKET"])
        .arg(points_at)
        .arg("--ro-bind")
        .arg(brokerctl_path())
        .arg("/brokerctl");
    if let Some(socket) = socket {
        cmd.arg("--bind").arg(socket).arg("/run/tokenbroker.sock");
    }
    let out = cmd.arg("/brokerctl").args(args).output().expect("bwrap (bubblewrap) must be installed");
    assert!(
        !String::from_utf8_lossy(&out.stderr).starts_with("bwrap:"),
        "bubblewrap could not make the sandbox: {}",
        text(&out)
    );
    out
}

/// A DPoP account's forward gives the far side proofs one request at a time (the key stays in
/// the daemon), and a resource server takes them; another account's proofs are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpop_accounts_forward_gives_proofs_for_the_far_sides_requests() {
    let Env { bus: _bus, idp, daemon } = Fixture::new()
        .config("default_account = \"work\"\n")
        .account(|idp| format!("{}dpop = true\n{}", idp.account_config("work"), idp.account_config("home")))
        .logged_in("alice")
        .await;
    let resource = Resource::start(&idp, false);
    add(&daemon, &["dpop-box", "--account", "work"]);
    let socket = forward_socket(&daemon, "dpop-box");
    let url = format!("{}/builds", resource.url);
    let out = far(&daemon, &socket, &["dpop", "--method", "GET", "--url", &url]);
    assert!(out.status.success(), "{}", text(&out));
    let headers = String::from_utf8(out.stdout).unwrap();
    let mut request = reqwest::Client::new().get(&url);
    for line in headers.lines() {
        let (name, value) = line.split_once(": ").unwrap();
        request = request.header(name, value);
    }
    let answer = request.send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 200, "the resource server takes the far side's proof");
    let other = far(&daemon, &socket, &["dpop", "--account", "home", "--method", "GET", "--url", &url]);
    assert_eq!(other.status.code(), Some(6), "{}", text(&other));
}

/// A forward removed and added again under its name with other limits: a connection to the
/// old one, with a request waiting (on the person's answer) and another queued behind it, is
/// not served the queued one under the new forward's limits; it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_requests_of_a_removed_forward_are_not_served_by_its_successor() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let Env { bus: _bus, idp: _idp, daemon } = Fixture::new()
        .config("default_account = \"work\"\n")
        .account(|idp| format!("{}{}", idp.account_config("work"), idp.account_config("home")))
        .policy("default = \"ask\"\n")
        .logged_in("alice")
        .await;
    add(&daemon, &["box", "--account", "work"]);
    let socket = forward_socket(&daemon, "box");
    let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let (read, mut write) = stream.into_split();
    let first = r#"{"jsonrpc":"2.0","id":1,"method":"GetAccessToken","params":{"account":"work"}}"#;
    let queued = r#"{"jsonrpc":"2.0","id":2,"method":"GetAccessToken","params":{"account":"home"}}"#;
    write.write_all(format!("{first}\n{queued}\n").as_bytes()).await.unwrap();
    let mut question = None;
    for _ in 0..200 {
        let list: Value = serde_json::from_slice(&daemon.brokerctl(&["consent", "list", "--json"]).stdout).unwrap();
        question = list["pending"][0]["id"].as_str().map(str::to_owned);
        if question.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let question = question.expect("the first request asks the person");
    assert!(daemon.brokerctl(&["forward", "remove", "box"]).status.success());
    add(&daemon, &["box", "--account", "home"]);
    let allowed = daemon.brokerctl(&["consent", "allow", &question]);
    assert!(allowed.status.success(), "{}", text(&allowed));
    // Whatever comes back for the first request, nothing for the queued one: the connection
    // ends (and a question for it would have been put first, so none may be out now).
    let mut lines = tokio::io::BufReader::new(read).lines();
    let mut answers = Vec::new();
    while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await {
        answers.push(line);
    }
    assert!(answers.iter().all(|a| !a.contains(r#""id":2"#)), "the queued request was served: {answers:?}");
    let list: Value = serde_json::from_slice(&daemon.brokerctl(&["consent", "list", "--json"]).stdout).unwrap();
    assert_eq!(list["pending"], serde_json::json!([]), "{list}");
}
