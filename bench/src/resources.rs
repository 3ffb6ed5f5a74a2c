//! What the daemon costs while it sits there: CPU time and wake-ups, read from /proc (per
//! thread, in nanoseconds, since tick-based utime is too coarse). Resident memory is the
//! testkit's `rss_kib`.

use std::collections::HashMap;

/// CPU nanoseconds and context switches per thread id. Compare two samples with [`delta`]:
/// threads come and go (tokio's blocking pool), and a sum over a changed set would mislead.
pub fn per_thread(pid: i32) -> HashMap<String, (u64, u64)> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for task in tasks.flatten() {
        let dir = task.path();
        let ns = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()))
            .unwrap_or(0);
        let switches: u64 = std::fs::read_to_string(dir.join("status"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.strip_prefix("voluntary_ctxt_switches:").or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            })
            .filter_map(|v| v.trim().parse::<u64>().ok())
            .sum();
        out.insert(task.file_name().to_string_lossy().into_owned(), (ns, switches));
    }
    out
}

/// CPU nanoseconds and context switches between two samples; threads that started in
/// between count from zero, threads that ended count up to the first sample only.
pub fn delta(before: &HashMap<String, (u64, u64)>, after: &HashMap<String, (u64, u64)>) -> (u64, u64) {
    after.iter().fold((0, 0), |(ns, sw), (tid, (a_ns, a_sw))| {
        let (b_ns, b_sw) = before.get(tid).copied().unwrap_or((0, 0));
        (ns + a_ns.saturating_sub(b_ns), sw + a_sw.saturating_sub(b_sw))
    })
}
