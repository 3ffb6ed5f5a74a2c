//! GetDpopProof beside a cached GetAccessToken, on one daemon with a `dpop = true` account:
//! what the proof (an ES256 signature, its JSON and base64) adds to a round trip.

use std::time::Duration;

use tokenbroker_testkit::{Daemon, GET_ACCESS_TOKEN, Idp, RawConn};

use crate::harness::Harness;
use crate::socket::percentile;
use crate::{Report, us};

const GET_DPOP_PROOF: &[u8] =
    b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"GetDpopProof\",\"params\":{\"htm\":\"GET\",\"htu\":\"https://api.example.com/things\"}}\n";

/// The row: both calls on their own connection, taking turns call by call.
pub fn proof_vs_token(report: &mut Report, kit: &Harness, idp: &Idp, scale: usize) -> anyhow::Result<()> {
    let mut daemon = Daemon::prepare(&format!("{}dpop = true\n", idp.account_config("dpop")));
    daemon.log_level = "warn".into();
    daemon.args = vec!["--no-dbus".into()];
    daemon.spawn_on_own_session();
    kit.login(&daemon, idp);
    let mut proofs = RawConn::open(&daemon.socket());
    let mut tokens = RawConn::open(&daemon.socket());
    let answer = proofs.request(GET_DPOP_PROOF).to_owned();
    anyhow::ensure!(answer.contains("\"proof\""), "GetDpopProof answered {answer}");
    let (mut p, mut t) = (Vec::new(), Vec::new());
    for i in 0..(2000 + 20_000) / scale {
        for (conn, line, samples) in [(&mut proofs, GET_DPOP_PROOF, &mut p), (&mut tokens, GET_ACCESS_TOKEN, &mut t)] {
            let start = std::time::Instant::now();
            conn.request(line);
            if i >= 2000 / scale {
                samples.push(start.elapsed());
            }
        }
    }
    let (p50, p99, t50, t99) =
        (percentile(&mut p, 0.5), percentile(&mut p, 0.99), percentile(&mut t, 0.5), percentile(&mut t, 0.99));
    let times = (fmt(p50, p99), fmt(t50, t99));
    report.slower_by_at_most("socket GetDpopProof vs cached GetAccessToken p50 (p99)", times, us(p50) / us(t50), 2.0);
    Ok(())
}

fn fmt(p50: Duration, p99: Duration) -> String {
    format!("{:.1} µs ({:.1})", us(p50), us(p99))
}
