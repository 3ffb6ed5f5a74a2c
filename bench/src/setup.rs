//! The parts a benchmark run needs, started on loopback: the test IdP, tokenbrokerd (release
//! build, beside this binary), a logged-in session.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A sibling binary in the same target directory (tokenbrokerd, brokerctl, mini-token).
pub fn sibling(name: &str) -> PathBuf {
    std::env::current_exe().unwrap().with_file_name(name)
}

pub struct Idp {
    pub issuer: String,
    _node: Killed,
}

impl Idp {
    pub fn start(access_ttl: u64) -> anyhow::Result<Idp> {
        let mut child = Command::new("node")
            .arg(repo_root().join("testidp/idp.mjs"))
            .args(["--access-ttl", &access_ttl.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting node testidp/idp.mjs (run `npm ci` in testidp/)")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
        let info: serde_json::Value = serde_json::from_str(&line).context("the test IdP did not start")?;
        Ok(Idp { issuer: info["issuer"].as_str().unwrap().to_owned(), _node: Killed(child) })
    }

    /// A bare HTTP/1.1 exchange with the IdP's test routes (no HTTP client crate needed).
    fn http(&self, method: &str, path: &str, body: &str) -> anyhow::Result<serde_json::Value> {
        let authority = self.issuer.trim_start_matches("http://");
        let mut stream = TcpStream::connect(authority)?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let json = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        // The harness answers without chunking for these small bodies, or with one chunk.
        let json = json.lines().find(|l| l.starts_with('{')).unwrap_or("{}");
        Ok(serde_json::from_str(json)?)
    }

    pub fn approve(&self, user_code: &str) -> anyhow::Result<()> {
        let r = self.http("POST", "/__test/approve", &format!("{{\"user_code\":\"{user_code}\"}}"))?;
        if r["ok"] != true {
            bail!("approval failed: {r}");
        }
        Ok(())
    }

    pub fn refresh_requests(&self) -> anyhow::Result<u64> {
        let stats = self.http("GET", "/__test/stats", "")?;
        Ok(stats["token"]
            .as_object()
            .map(|t| t.iter().filter(|(k, _)| k.starts_with("refresh_token:")).filter_map(|(_, v)| v.as_u64()).sum())
            .unwrap_or(0))
    }

    pub fn reset_stats(&self) -> anyhow::Result<()> {
        self.http("POST", "/__test/stats", "").map(|_| ())
    }
}

pub struct Daemon {
    pub socket: PathBuf,
    pub pid: u32,
    _child: Killed,
    _dir: PathBuf,
}

impl Daemon {
    pub fn start(name: &str, issuer: &str, extra_config: &str, args: &[&str]) -> anyhow::Result<Daemon> {
        let dir = std::env::temp_dir().join(format!("tokenbroker-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!("{extra_config}[accounts.{name}]\nissuer = \"{issuer}\"\nclient_id = \"tokenbroker-test\"\n"),
        )?;
        // In a directory the daemon makes itself (0700): it serves in no other.
        let socket = dir.join("run").join("broker.sock");
        let child = Command::new(sibling("tokenbrokerd"))
            .arg("--config")
            .arg(&config)
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting tokenbrokerd (build with --release first)")?;
        let pid = child.id();
        let daemon = Daemon { socket, pid, _child: Killed(child), _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokenbroker::blocking::Client::connect_to(&daemon.socket).and_then(|c| c.status()).is_err() {
            if Instant::now() > deadline {
                bail!("tokenbrokerd did not come up");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(daemon)
    }

    pub fn login(&self, idp: &Idp) -> anyhow::Result<()> {
        let client = tokenbroker::blocking::Client::connect_to(&self.socket)?;
        let challenge = client.login(Default::default())?;
        idp.approve(challenge.user_code.as_deref().unwrap_or_default())?;
        client.await_login(&challenge.login_id)?;
        Ok(())
    }
}
