//! git's credential helper end to end: real git clones and pushes over HTTP from
//! `git http-backend` behind a server that takes only tokens the test IdP accepts, with
//! `git-credential-tokenbroker` as git's only credential helper.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use tokenbroker_testkit::*;

/// git 2.46+ (it announces `capability[]=authtype`); Debian's is older.
const NEWER_GIT: &str = "/usr/local/bin/git";

/// A daemon logged in as alice, with `[[git]]` mapping the server's host to its account.
async fn setup(server: &GitServer) -> Env {
    let host = server.host();
    let env = Fixture::new()
        .config("proactive_refresh = false\n")
        .account(move |idp| format!("{}[[git]]\nhost = \"{host}\"\naccount = \"work\"\n", idp.account_config("work")))
        .logged_in("alice")
        .await;
    server.check_tokens_at(&env.idp.userinfo_url());
    env
}

/// `git ARGS` in `dir` with our helper and nothing of the user's or the system's config.
fn git(git: &str, daemon: &Daemon, home: &Path, dir: &Path, args: &[&str]) -> Output {
    let helper = binary("git-credential-tokenbroker");
    Command::new(git)
        .current_dir(dir)
        .arg("-c")
        .arg(format!("credential.helper={}", helper.display()))
        .args(["-c", "user.name=Tester", "-c", "user.email=t@example.test"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join("gitconfig"))
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("TOKENBROKER_SOCKET", daemon.socket())
        .env("TOKENBROKER_CONFIG", daemon.config_path())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: &Output) {
    assert!(out.status.success(), "git failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Clone, commit, push; then the push is in the server's repository.
fn clone_commit_push(git_bin: &str, daemon: &Daemon, server: &GitServer) {
    let home = tempfile::tempdir().unwrap();
    let bare = server.create_repo("project.git");
    ok(&git(git_bin, daemon, home.path(), home.path(), &["clone", "-q", &server.url("project.git"), "clone"]));
    let clone = home.path().join("clone");
    assert_eq!(std::fs::read_to_string(clone.join("README")).unwrap(), "hello\n");
    std::fs::write(clone.join("NEW"), "pushed\n").unwrap();
    ok(&git(git_bin, daemon, home.path(), &clone, &["add", "NEW"]));
    ok(&git(git_bin, daemon, home.path(), &clone, &["commit", "-q", "-m", "second"]));
    ok(&git(git_bin, daemon, home.path(), &clone, &["push", "-q", "origin", "main"]));
    let log = Command::new(DEBIAN_GIT).arg("-C").arg(&bare).args(["log", "--format=%s", "main"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&log.stdout), "second\nfirst\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debian_git_clones_and_pushes_with_the_token_as_basic_password() {
    let server = GitServer::start().await;
    let Env { bus: _bus, idp: _idp, daemon } = setup(&server).await;
    clone_commit_push(DEBIAN_GIT, &daemon, &server);
    let seen = server.seen();
    let token = tokenbroker_testkit::token(&daemon.client().await, None).await.unwrap();
    let basic = Seen::Basic { username: "oauth2".into(), token: token.access_token.expose().into() };
    assert!(seen.contains(&basic), "{seen:?}");
    assert!(!seen.iter().any(|s| matches!(s, Seen::Bearer { .. })), "git 2.39 knows no authtype: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_git_clones_and_pushes_with_a_bearer_token() {
    let server = GitServer::start().await;
    let Env { bus: _bus, idp: _idp, daemon } = setup(&server).await;
    clone_commit_push(NEWER_GIT, &daemon, &server);
    let seen = server.seen();
    let token = tokenbroker_testkit::token(&daemon.client().await, None).await.unwrap();
    assert!(seen.contains(&Seen::Bearer { token: token.access_token.expose().into() }), "{seen:?}");
    assert!(!seen.iter().any(|s| matches!(s, Seen::Basic { .. })), "{seen:?}");
}

/// git 2.46+ announces authtype to every helper; a server that offers only Basic (GitLab,
/// Gitea) must still get the token as a Basic password, not a Bearer answer it refuses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_git_uses_basic_with_a_server_that_offers_only_basic() {
    let server = GitServer::start_basic_only().await;
    let Env { bus: _bus, idp: _idp, daemon } = setup(&server).await;
    clone_commit_push(NEWER_GIT, &daemon, &server);
    let seen = server.seen();
    let token = tokenbroker_testkit::token(&daemon.client().await, None).await.unwrap();
    let basic = Seen::Basic { username: "oauth2".into(), token: token.access_token.expose().into() };
    assert!(seen.contains(&basic), "{seen:?}");
    assert!(!seen.iter().any(|s| matches!(s, Seen::Bearer { .. })), "{seen:?}");
}

/// The server refuses the token: that git command fails and git erases the credential, which
/// the helper passes on as RejectToken; the next command gets a refreshed token and succeeds,
/// after exactly one refresh.
async fn refused_token_is_refreshed_once(git_bin: &str) {
    let server = GitServer::start().await;
    let Env { bus: _bus, idp, daemon } = setup(&server).await;
    let home = tempfile::tempdir().unwrap();
    server.create_repo("project.git");
    ok(&git(git_bin, &daemon, home.path(), home.path(), &["clone", "-q", &server.url("project.git"), "clone"]));
    let clone = home.path().join("clone");
    let client = daemon.client().await;
    let first = tokenbroker_testkit::token(&client, None).await.unwrap();
    server.refuse(first.access_token.expose());
    idp.reset_stats().await;

    let refused = git(git_bin, &daemon, home.path(), &clone, &["fetch", "-q", "origin"]);
    assert!(!refused.status.success(), "the server refused the token");
    ok(&git(git_bin, &daemon, home.path(), &clone, &["fetch", "-q", "origin"]));

    let second = tokenbroker_testkit::token(&client, None).await.unwrap();
    assert_ne!(first.access_token, second.access_token);
    assert_eq!(idp.refreshes().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_basic_password_is_erased_and_refreshed_once() {
    refused_token_is_refreshed_once(DEBIAN_GIT).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_bearer_token_is_erased_and_refreshed_once() {
    refused_token_is_refreshed_once(NEWER_GIT).await
}

/// The helper as git runs it, with `input` on stdin.
fn helper(daemon: &Daemon, op: &str, input: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(binary("git-credential-tokenbroker"))
        .arg(op)
        .env("TOKENBROKER_SOCKET", daemon.socket())
        .env("TOKENBROKER_CONFIG", daemon.config_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_mapped_host_over_an_allowed_protocol_gets_an_answer() {
    let server = GitServer::start().await;
    let Env { bus: _bus, idp: _idp, mut daemon } = setup(&server).await;
    let host = server.host();
    let out = helper(&daemon, "get", &format!("protocol=http\nhost={host}\n"));
    assert!(out.status.success());
    let answer = String::from_utf8(out.stdout).unwrap();
    assert!(answer.starts_with("username=oauth2\npassword=") && answer.contains("\npassword_expiry_utc="), "{answer}");

    let port = host.rsplit_once(':').unwrap().1;
    for other in [
        format!("protocol=http\nhost=127.0.0.1:{}\n", port.parse::<u16>().unwrap() ^ 1),
        format!("protocol=http\nhost={host}.evil\n"),
        format!("protocol=http\nhost=localhost:{port}\n"),
        format!("protocol=ssh\nhost={host}\n"),
        "protocol=https\nhost=git.example.com\n".into(),
    ] {
        let out = helper(&daemon, "get", &other);
        assert!(out.status.success() && out.stdout.is_empty(), "{other}: {out:?}");
    }
    // Refused input: exit 1, nothing printed.
    for bad in [format!("protocol=http\nhost={host}\r\n"), format!("host={host}\n"), "protocol=http\n".into()] {
        let out = helper(&daemon, "get", &bad);
        assert_eq!((out.status.code(), out.stdout.is_empty()), (Some(1), true), "{bad}");
    }
    let out = helper(&daemon, "capability", "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "version 0\ncapability authtype\n");
    let out = helper(&daemon, "store", &format!("protocol=http\nhost={host}\nusername=oauth2\npassword=x\n"));
    assert!(out.status.success() && out.stdout.is_empty());
    // The daemon gone: exit 5 and one line on stderr, no token.
    daemon.kill9();
    let out = helper(&daemon, "get", &format!("protocol=http\nhost={host}\n"));
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(out.stdout.is_empty());
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1, "{out:?}");
}

/// `brokerctl setup git` writes the `[[git]]` entry and git's helper lines; git then finds
/// `git-credential-tokenbroker` by name, and a helper set before (store) neither answers for
/// the host nor is handed the token to keep.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_git_makes_plain_git_use_the_broker_and_not_store() {
    let server = GitServer::start().await;
    let env = Fixture::new().config("proactive_refresh = false\n").logged_in("alice").await;
    server.check_tokens_at(&env.idp.userinfo_url());
    let daemon = &env.daemon;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("gitconfig"), "[credential]\n\thelper = store\n").unwrap();
    let bin_dir = binary("git-credential-tokenbroker").parent().unwrap().to_owned();
    let path = std::env::join_paths(
        std::iter::once(bin_dir).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let run = |program: &Path, dir: &Path, args: &[&str]| {
        Command::new(program)
            .current_dir(dir)
            .args(
                ["-c", "user.name=Tester", "-c", "user.email=t@example.test"]
                    .iter()
                    .filter(|_| program.ends_with("git")),
            )
            .args(args)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", home.path().join("gitconfig"))
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("TOKENBROKER_SOCKET", daemon.socket())
            .env("TOKENBROKER_CONFIG", daemon.config_path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let brokerctl = binary("brokerctl");
    let host = server.host();
    let setup = run(&brokerctl, home.path(), &["setup", "git", "--host", &host, "--account", "work", "--yes"]);
    assert!(setup.status.success(), "{}", String::from_utf8_lossy(&setup.stderr));
    let again = run(&brokerctl, home.path(), &["setup", "git", "--host", &host, "--account", "work", "--yes"]);
    assert_eq!(again.status.code(), Some(2), "a host is mapped once");

    server.create_repo("project.git");
    let clone = run(Path::new(DEBIAN_GIT), home.path(), &["clone", "-q", &server.url("project.git"), "clone"]);
    ok(&clone);
    assert!(!home.path().join(".git-credentials").exists(), "store was handed the token");
    // The daemon takes the config setup wrote.
    daemon.signal(libc::SIGHUP);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let status = daemon.brokerctl(&["status"]);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert!(!daemon.log().contains("config reload refused"), "the daemon refused the config: {}", daemon.log());
}
