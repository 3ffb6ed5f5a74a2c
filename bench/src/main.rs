//! tokenbroker-bench: the broker against the bare transport, each pair measured in the same
//! run on the same machine, reported as ratios. Run it with `scripts/bench` (a release build
//! inside a private session bus with a throwaway keyring); it is not part of the test gate.

mod dbus;
mod dpop;
mod harness;
mod plot;
mod resources;
mod socket;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use harness::Harness;
use socket::percentile;
use tokenbroker_testkit::{Daemon, GET_ACCESS_TOKEN, Proc, RawConn, binary, raise_fd_limit, rss_kib};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("baseline-socket") => socket::serve_baseline(Path::new(&args[2]), std::fs::read(&args[3])?),
        Some("baseline-dbus") => dbus::serve_baseline(args[2].clone(), args[3].parse()?),
        _ if args.iter().any(|a| a == "--single-flight") => single_flight_only(),
        _ if args.iter().any(|a| a == "--policy") => policy_only(),
        _ if args.iter().any(|a| a == "--dpop") => dpop_only(),
        _ => run(args.iter().any(|a| a == "--quick")),
    }
}

/// Open files this process wants: the crowds below hold 10,000 connections at once.
const FD_LIMIT: u64 = 30_000;

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Report {
    rows: String,
    misses: Vec<String>,
}

impl Report {
    fn row(&mut self, what: &str, broker: String, baseline: String, ratio: String, target: &str, met: bool) {
        let mark = if met { "yes" } else { "**no**" };
        let _ = writeln!(self.rows, "| {what} | {broker} | {baseline} | {ratio} | {target} | {mark} |");
        if !met {
            self.misses.push(what.to_owned());
        }
    }

    /// A row of the broker's alone, with no baseline to compare.
    fn alone(&mut self, what: &str, broker: String, target: &str, met: bool) {
        self.row(what, broker, "—".into(), "—".into(), target, met);
    }

    /// A row whose target is the broker's time at most `limit` times the baseline's.
    fn slower_by_at_most(&mut self, what: &str, (broker, baseline): (String, String), ratio: f64, limit: f64) {
        self.row(what, broker, baseline, format!("{ratio:.2}×"), &format!("≤ {limit}×"), ratio <= limit);
    }
}

/// The git host the bench's daemon maps to its account.
const GIT_HOST: &str = "git.bench.test";

fn run(quick: bool) -> anyhow::Result<()> {
    raise_fd_limit(FD_LIMIT);
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        bail!("run inside a session bus with a keyring: scripts/bench");
    }
    let scale = if quick { 10 } else { 1 };
    let mut report = Report { rows: String::new(), misses: Vec::new() };
    let work = std::env::temp_dir().join(format!("tokenbroker-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;

    eprintln!("starting the test IdP and tokenbrokerd…");
    let kit = Harness::new()?;
    let idp = kit.idp(3600);
    let daemon = kit.daemon("main", &idp, &format!("[[git]]\nhost = \"{GIT_HOST}\"\naccount = \"main\"\n"), &[]);
    kit.login(&daemon, &idp);
    std::thread::sleep(Duration::from_secs(1));
    let fresh_rss = rss_kib(daemon.pid());

    // The baseline answers with the broker's own answer, byte for byte.
    let mut probe = RawConn::open(&daemon.socket());
    let reply = probe.request(GET_ACCESS_TOKEN).to_owned();
    let reply_path = work.join("reply.json");
    std::fs::write(&reply_path, reply.as_bytes())?;
    let answer: serde_json::Value = serde_json::from_str(&reply)?;
    let token = answer["result"]["access_token"].as_str().context("no token")?.to_owned();
    let expires_at = answer["result"]["expires_at"].as_i64().unwrap_or(0);
    let baseline_sock = work.join("baseline.sock");
    let _baseline = Proc(
        Command::new(std::env::current_exe()?)
            .arg("baseline-socket")
            .arg(&baseline_sock)
            .arg(&reply_path)
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    wait_for(&baseline_sock)?;

    // 1. One connection: p50/p99 of the round trip. Broker and baseline take turns call by
    // call, so both see the same machine (a VM's idle CPUs wake slowly, and in bursts).
    eprintln!("socket round trips…");
    let mut bc = RawConn::open(&daemon.socket());
    let mut basec = RawConn::open(&baseline_sock);
    socket::alternating(&mut bc, &mut basec, 2000 / scale);
    let (mut b, mut base) = socket::alternating(&mut bc, &mut basec, 50_000 / scale);
    let (b50, b99, s50, s99) =
        (percentile(&mut b, 0.5), percentile(&mut b, 0.99), percentile(&mut base, 0.5), percentile(&mut base, 0.99));
    let r = us(b50) / us(s50);
    let times = (format!("{:.1} µs ({:.1})", us(b50), us(b99)), format!("{:.1} µs ({:.1})", us(s50), us(s99)));
    report.slower_by_at_most("socket GetAccessToken p50 (p99), 1 connection", times, r, 1.3);

    // 2. Throughput and latency against connections.
    eprintln!("socket throughput…");
    let time = Duration::from_millis(if quick { 300 } else { 2000 });
    let mut broker_series = Vec::new();
    let mut baseline_series = Vec::new();
    for conns in [1, 4, 16, 64] {
        // In turns too: five short windows each, summed.
        let ((mut bt, mut bl), (mut st, mut sl)) = ((0.0, Duration::ZERO), (0.0, Duration::ZERO));
        for _ in 0..5 {
            let (t, l) = socket::throughput(&daemon.socket(), conns, time / 5);
            (bt, bl) = (bt + t / 5.0, bl + l / 5);
            let (t, l) = socket::throughput(&baseline_sock, conns, time / 5);
            (st, sl) = (st + t / 5.0, sl + l / 5);
        }
        broker_series.push((conns, us(bl)));
        baseline_series.push((conns, us(sl)));
        if conns == 16 || conns == 64 {
            let r = bt / st;
            let met = conns != 64 || r >= 0.8;
            let target = if conns == 64 { "≥ 0.8×" } else { "(reported)" };
            report.row(
                &format!("socket throughput, {conns} connections"),
                format!("{bt:.0}/s"),
                format!("{st:.0}/s"),
                format!("{r:.2}×"),
                target,
                met,
            );
        }
    }
    let chart = plot::svg(
        "GetAccessToken round trip vs connections",
        "mean round trip (µs)",
        &[
            plot::Series { name: "tokenbrokerd", color: "#d6452a", points: broker_series },
            plot::Series { name: "bare socket", color: "#2a6fd6", points: baseline_series },
        ],
    );

    // 3. D-Bus.
    eprintln!("D-Bus calls…");
    let _bare_dbus = Proc(
        Command::new(std::env::current_exe()?)
            .arg("baseline-dbus")
            .arg(&token)
            .arg(expires_at.to_string())
            .stderr(Stdio::inherit())
            .spawn()?,
    );
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (d50, bare50) = rt.block_on(async {
        let conn = zbus::Connection::session().await?;
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dbus.name_has_owner(dbus::BASELINE_NAME.try_into()?).await? {
            if Instant::now() > deadline {
                bail!("the bare D-Bus service did not appear");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        dbus::alternating(&conn, 500 / scale).await?;
        let (mut d, mut bare) = dbus::alternating(&conn, 10_000 / scale).await?;
        anyhow::Ok((percentile(&mut d, 0.5), percentile(&mut bare, 0.5)))
    })?;
    let r = us(d50) / us(bare50);
    let times = (format!("{:.1} µs", us(d50)), format!("{:.1} µs", us(bare50)));
    report.slower_by_at_most("D-Bus GetAccessToken p50", times, r, 1.15);

    // 3b. Policy and audit on the request path, against the daemon from before them.
    policy_and_audit(&mut report, &kit, &idp, scale)?;

    // 4. brokerctl token as a whole process.
    eprintln!("brokerctl token processes…");
    let runs = 200 / scale;
    let (mut ctl, mut mini, mut git, mut kube) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let git_get = format!("protocol=https\nhost={GIT_HOST}\n\n");
    let config = daemon.config_path();
    for _ in 0..runs {
        ctl.push(time_process(&binary("brokerctl"), &["token"], &daemon.socket())?);
        mini.push(time_process(&binary("mini-token"), &[], &daemon.socket())?);
        // The adapters, on the path of every git fetch and kubectl command.
        let helper = binary("git-credential-tokenbroker");
        git.push(time_process_fed(&helper, &["get"], &daemon.socket(), &config, git_get.as_bytes())?);
        kube.push(time_process(&binary("brokerctl"), &["kube-credential"], &daemon.socket())?);
    }
    let (c50, m50) = (percentile(&mut ctl, 0.5), percentile(&mut mini, 0.5));
    let r = us(c50) / us(m50);
    let times = (format!("{:.0} µs", us(c50)), format!("{:.0} µs", us(m50)));
    report.slower_by_at_most(&format!("`brokerctl token` process, median of {runs}"), times, r, 1.25);
    for (what, samples) in [("`git-credential-tokenbroker get`", &mut git), ("`brokerctl kube-credential`", &mut kube)]
    {
        let a50 = percentile(samples, 0.5);
        let times = (format!("{:.0} µs", us(a50)), format!("{:.0} µs (`brokerctl token`)", us(c50)));
        report.slower_by_at_most(&format!("{what} process, median of {runs}"), times, us(a50) / us(c50), 1.25);
    }

    // 5. Resources.
    eprintln!("memory and idle CPU…");
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss = rss_kib(daemon.pid());
    let open: Vec<_> = (0..1000)
        .map(|_| {
            let mut c = RawConn::open(&daemon.socket());
            c.request(GET_ACCESS_TOKEN);
            c
        })
        .collect();
    let busy_rss = rss_kib(daemon.pid());
    drop(open);
    drop((bc, basec, probe));
    let mib = |k: u64| k as f64 / 1024.0;
    report.alone(
        "idle RSS, after start and login",
        format!("{:.1} MiB", mib(fresh_rss)),
        "≤ 10 MiB",
        mib(fresh_rss) <= 10.0,
    );
    report.alone("idle RSS, after all the load above", format!("{:.1} MiB", mib(idle_rss)), "(reported)", true);
    report.alone(
        "RSS with 1,000 open connections",
        format!("{:.1} MiB", mib(busy_rss)),
        "≤ 20 MiB",
        mib(busy_rss) <= 20.0,
    );
    std::thread::sleep(Duration::from_secs(2));
    let idle = Duration::from_secs(if quick { 6 } else { 60 });
    let before = resources::per_thread(daemon.pid());
    std::thread::sleep(idle);
    let (cpu_ns, switches) = resources::delta(&before, &resources::per_thread(daemon.pid()));
    let cpu_ms = cpu_ns as f64 / 1e6 * 60.0 / idle.as_secs_f64();
    report.alone(
        &format!("CPU per idle minute (context switches in {} s)", idle.as_secs()),
        format!("{cpu_ms:.2} ms ({switches})"),
        "≤ 2 ms",
        cpu_ms <= 2.0,
    );

    // 6. Single flight under a crowd, counted at the IdP.
    single_flight(&mut report, &kit, &rt)?;

    // 7. A DPoP proof with its token, beside the cached token alone.
    eprintln!("DPoP proofs…");
    dpop::proof_vs_token(&mut report, &kit, &idp, scale)?;

    let table = format!(
        "| measure | tokenbrokerd | baseline | ratio | target | met |\n| --- | --- | --- | --- | --- | --- |\n{}",
        report.rows
    );
    println!("{table}");
    let out = PathBuf::from(std::env::var("TOKENBROKER_BENCH_OUT").unwrap_or_else(|_| "docs/benchmarks".into()));
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("latency.svg"), chart)?;
    std::fs::write(out.join("latest.md"), format!("{}\n{table}", machine()))?;
    eprintln!("wrote {}/latest.md and latency.svg", out.display());
    if !report.misses.is_empty() {
        eprintln!("targets missed: {}", report.misses.join("; "));
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Single flight under a crowd, counted at the IdP; last, the crowd queued on a daemon stopped
/// (as in a suspend) past the IdP's keep-alive.
fn single_flight(report: &mut Report, kit: &Harness, rt: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    eprintln!("single flight…");
    let short = kit.idp(2);
    let args = ["--max-connections", "20000", "--no-dbus"];
    let crowd = kit.daemon("crowd", &short, "proactive_refresh = false\n", &args);
    kit.login(&crowd, &short);
    for n in [100, 1000, 10_000] {
        std::thread::sleep(Duration::from_millis(2200));
        kit.reset_stats(&short);
        let took = rt.block_on(crowd_of(&crowd.socket(), n))?;
        let requests = kit.refresh_requests(&short);
        report.alone(
            &format!("single flight: {n} callers on an expired token"),
            format!("{requests} request(s), all served in {:.0} ms", took.as_secs_f64() * 1e3),
            "exactly 1",
            requests == 1,
        );
    }
    eprintln!("single flight through a 20 s stop…");
    let (n, pause) = (10_000, Duration::from_secs(20));
    kit.reset_stats(&short);
    let (took, errors) = rt.block_on(paused_crowd(&crowd, n, pause))?;
    let requests = kit.refresh_requests(&short);
    report.alone(
        &format!("suspend: daemon stopped {} s, {n} callers queued on it", pause.as_secs()),
        format!(
            "{requests} request(s), {errors} error(s), all served {:.0} ms after resuming",
            took.as_secs_f64() * 1e3
        ),
        "1 request, 0 errors",
        requests == 1 && errors == 0,
    );
    Ok(())
}

/// `scripts/bench --single-flight`: that part alone, its rows printed (latest.md is left as is).
/// This daemon with the default policy (allow) and its audit trail against the daemon from
/// before them, both at a default install's log level (the audit trail's log lines included),
/// taking turns call by call. scripts/bench builds the earlier one.
fn policy_and_audit(
    report: &mut Report,
    kit: &Harness,
    idp: &tokenbroker_testkit::Idp,
    scale: usize,
) -> anyhow::Result<()> {
    let Some(before) = std::env::var_os("TOKENBROKER_BENCH_BEFORE_POLICY").map(PathBuf::from) else {
        eprintln!("no TOKENBROKER_BENCH_BEFORE_POLICY: the policy and audit row is left out");
        return Ok(());
    };
    eprintln!("policy and audit against the daemon before them…");
    let now = kit.daemon_from(None, "now", idp);
    let then = kit.daemon_from(Some(&before), "then", idp);
    kit.login(&now, idp);
    kit.login(&then, idp);
    std::thread::sleep(Duration::from_secs(1));
    let (now_rss, then_rss) = (rss_kib(now.pid()), rss_kib(then.pid()));
    let mib = |k: u64| k as f64 / 1024.0;
    report.row(
        "idle RSS after start and login, without D-Bus",
        format!("{:.1} MiB", mib(now_rss)),
        format!("{:.1} MiB (before policy)", mib(then_rss)),
        format!("{:+.0} KiB", now_rss as f64 - then_rss as f64),
        "(reported)",
        true,
    );
    let (mut nc, mut tc) = (RawConn::open(&now.socket()), RawConn::open(&then.socket()));
    socket::alternating(&mut nc, &mut tc, 2000 / scale);
    let (now_cpu, then_cpu) = (resources::per_thread(now.pid()), resources::per_thread(then.pid()));
    // Half the calls with each going first, so that neither gains by its place in the turns.
    let (mut n, mut t) = socket::alternating(&mut nc, &mut tc, 25_000 / scale);
    let (t2, n2) = socket::alternating(&mut tc, &mut nc, 25_000 / scale);
    n.extend(n2);
    t.extend(t2);
    let (n50, t50) = (percentile(&mut n, 0.5), percentile(&mut t, 0.5));
    // Let the writer catch up, then count what it wrote: one record per call, or the row lies.
    std::thread::sleep(Duration::from_millis(500));
    let trail = now.dir.path().join("state/tokenbroker");
    let records: usize = ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
        .iter()
        .map(|f| std::fs::read_to_string(trail.join(f)).map(|text| text.lines().count()).unwrap_or(0))
        .sum();
    let calls = 52_000 / scale;
    if records < calls {
        bail!("the audit trail holds {records} records for {calls} calls");
    }
    // The daemons' own CPU time per call, the writer's included: steadier than a p50 on a
    // busy machine, and it shows what the trail costs where latency hides it.
    let measured = (50_000 / scale) as f64;
    let now_ns = resources::delta(&now_cpu, &resources::per_thread(now.pid())).0 as f64 / measured;
    let then_ns = resources::delta(&then_cpu, &resources::per_thread(then.pid())).0 as f64 / measured;
    report.row(
        "daemon CPU per GetAccessToken, default policy + audit (writer included)",
        format!("{:.1} µs", now_ns / 1e3),
        format!("{:.1} µs (before policy)", then_ns / 1e3),
        format!("{:.2}×", now_ns / then_ns),
        "—",
        true,
    );
    let times = (format!("{:.1} µs", us(n50)), format!("{:.1} µs (before policy)", us(t50)));
    let what = format!("socket GetAccessToken p50, default policy + audit ({records} records written)");
    report.slower_by_at_most(&what, times, us(n50) / us(t50), 1.1);
    Ok(())
}

/// Only the DPoP row (`--dpop`); prints it.
fn dpop_only() -> anyhow::Result<()> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        bail!("run inside a session bus with a keyring: scripts/bench --dpop");
    }
    let mut report = Report { rows: String::new(), misses: Vec::new() };
    let kit = Harness::new()?;
    let idp = kit.idp(3600);
    dpop::proof_vs_token(&mut report, &kit, &idp, 1)?;
    println!("| measure | tokenbrokerd | baseline | ratio | target | met |\n| --- | --- | --- | --- | --- | --- |");
    print!("{}", report.rows);
    Ok(())
}

/// Only the policy-and-audit row (`--policy`); prints it.
fn policy_only() -> anyhow::Result<()> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        bail!("run inside a session bus with a keyring: scripts/bench --policy");
    }
    let mut report = Report { rows: String::new(), misses: Vec::new() };
    let kit = Harness::new()?;
    let idp = kit.idp(3600);
    policy_and_audit(&mut report, &kit, &idp, 1)?;
    println!("| measure | tokenbrokerd | baseline | ratio | target | met |\n| --- | --- | --- | --- | --- | --- |");
    print!("{}", report.rows);
    Ok(())
}

fn single_flight_only() -> anyhow::Result<()> {
    raise_fd_limit(FD_LIMIT);
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        bail!("run inside a session bus with a keyring: scripts/bench --single-flight");
    }
    let mut report = Report { rows: String::new(), misses: Vec::new() };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    single_flight(&mut report, &Harness::new()?, &rt)?;
    println!("| measure | tokenbrokerd | baseline | ratio | target | met |\n| --- | --- | --- | --- | --- | --- |");
    print!("{}", report.rows);
    if !report.misses.is_empty() {
        bail!("targets missed: {}", report.misses.join("; "));
    }
    Ok(())
}

/// `n` clients connected, then the daemon stopped (SIGSTOP: its clocks run on, the IdP closes
/// its idle connections) while they all ask; resumed after `pause`. How long after resuming
/// the last was answered, and how many failed.
async fn paused_crowd(daemon: &Daemon, n: usize, pause: Duration) -> anyhow::Result<(Duration, usize)> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        // The daemon may still be closing the last crowd's connections: a full listen backlog
        // (EAGAIN) is waited out, as a real client would.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tokenbroker::Client::connect_to(&daemon.socket()).await {
                Ok(c) => break clients.push(c),
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(e) => return Err(e.into()),
            }
        }
    }
    daemon.signal(libc::SIGSTOP);
    let calls = futures_util::future::join_all(clients.iter().map(|c| c.get_access_token(Default::default())));
    let resume = async {
        tokio::time::sleep(pause).await;
        daemon.signal(libc::SIGCONT);
        Instant::now()
    };
    let (results, resumed) = tokio::join!(calls, resume);
    let errors = results.iter().filter(|r| r.is_err()).count();
    if let Some(e) = results.into_iter().find_map(Result::err) {
        eprintln!("{errors} of {n} callers failed, e.g.: {e}");
    }
    Ok((resumed.elapsed(), errors))
}

/// `n` clients, all connected before any asks, then all asking at once.
async fn crowd_of(path: &Path, n: usize) -> anyhow::Result<Duration> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        // A full listen backlog (EAGAIN: the daemon is still taking the ones before, each
        // looked at once for who it is) is waited out, as a real client would.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match tokenbroker::Client::connect_to(path).await {
                Ok(c) => break clients.push(c),
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(5)).await,
                Err(e) => return Err(e.into()),
            }
        }
    }
    let t = Instant::now();
    let calls = clients.iter().map(|c| c.get_access_token(Default::default()));
    let results = futures_util::future::join_all(calls).await;
    let took = t.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    if failed > 0 {
        bail!("{failed} of {n} callers failed: {:?}", results.into_iter().find_map(Result::err));
    }
    Ok(took)
}

fn time_process(program: &Path, args: &[&str], socket: &Path) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let out = Command::new(program).args(args).env("TOKENBROKER_SOCKET", socket).stderr(Stdio::inherit()).output()?;
    let took = t.elapsed();
    if !out.status.success() || out.stdout.is_empty() {
        bail!("{} failed", program.display());
    }
    Ok(took)
}

/// A whole process given `input` on stdin and the config at `config`, as git runs its helper.
fn time_process_fed(
    program: &Path,
    args: &[&str],
    socket: &Path,
    config: &Path,
    input: &[u8],
) -> anyhow::Result<Duration> {
    use std::io::Write as _;
    let t = Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .env("TOKENBROKER_SOCKET", socket)
        .env("TOKENBROKER_CONFIG", config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    child.stdin.take().context("no stdin")?.write_all(input)?;
    let out = child.wait_with_output()?;
    let took = t.elapsed();
    if !out.status.success() || out.stdout.is_empty() {
        bail!("{} failed", program.display());
    }
    Ok(took)
}

fn wait_for(path: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::os::unix::net::UnixStream::connect(path).is_err() {
        if Instant::now() > deadline {
            bail!("{} never answered", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("Machine: {cores} cores, {cpu}, Linux {}\n", kernel.trim())
}
