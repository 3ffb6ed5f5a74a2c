//! `brokerctl audit`: the daemon's audit trail, read straight from its files
//! (`$XDG_STATE_HOME/tokenbroker/audit.jsonl`, and `.1`, `.2` before it): the same user may
//! read them, and the daemon need not run.

use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokenbroker::protocol::{AuditDecision, AuditRecord};

use crate::human::terminal_text;

/// The trail's file name in the daemon's state directory.
const FILE: &str = "audit.jsonl";
/// The rotated files the daemon keeps beside it, newest first.
const ROTATED: [&str; 2] = ["audit.jsonl.1", "audit.jsonl.2"];

/// The daemon's state directory: `$XDG_STATE_HOME/tokenbroker`, else
/// `~/.local/state/tokenbroker` (macOS: `~/Library/Application Support/tokenbroker`), as the
/// daemon finds it.
pub fn state_dir() -> Option<PathBuf> {
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    if !cfg!(target_os = "macos")
        && let Some(state) = absolute("XDG_STATE_HOME")
    {
        return Some(state.join("tokenbroker"));
    }
    let home = absolute("HOME")?;
    let base =
        if cfg!(target_os = "macos") { home.join("Library/Application Support") } else { home.join(".local/state") };
    Some(base.join("tokenbroker"))
}

/// `--since`: `10m`, `2h`, `1d`, `1h 30m`.
pub fn parse_since(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e}; write a duration like 10m, 2h or 1d"))
}

/// One readable line of the trail: as written, and as understood.
pub struct Line {
    pub raw: String,
    pub record: AuditRecord,
    pub at: SystemTime,
}

/// What the files held, oldest first.
pub struct Trail {
    pub lines: Vec<Line>,
    /// Lines that are not records (cut short by a full disk, say).
    pub unreadable: usize,
    /// Whether there was any file at all.
    pub found: bool,
}

/// Read `audit.jsonl.2`, `.1` and `audit.jsonl` in `dir`, oldest first; missing ones are
/// skipped (rotation may be under way, or no record written yet).
pub fn read(dir: &Path) -> io::Result<Trail> {
    let mut trail = Trail { lines: Vec::new(), unreadable: 0, found: false };
    for name in ROTATED.iter().rev().chain([&FILE]) {
        let path = dir.join(name);
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))),
        };
        trail.found = true;
        let mut reader = io::BufReader::new(file);
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            let n = reader
                .read_until(b'\n', &mut bytes)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
            if n == 0 {
                break;
            }
            let Ok(text) = std::str::from_utf8(&bytes) else {
                trail.unreadable += 1;
                continue;
            };
            let text = text.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            let parsed = serde_json::from_str::<AuditRecord>(text)
                .ok()
                .and_then(|record| Some((humantime::parse_rfc3339_weak(&record.time).ok()?, record)));
            match parsed {
                Some((at, record)) => trail.lines.push(Line { raw: text.to_owned(), record, at }),
                None => trail.unreadable += 1,
            }
        }
    }
    Ok(trail)
}

/// The lines at or after `since` (a time) and of `account`.
pub fn select<'a>(lines: &'a [Line], since: Option<SystemTime>, account: Option<&str>) -> Vec<&'a Line> {
    lines
        .iter()
        .filter(|l| since.is_none_or(|t| l.at >= t))
        .filter(|l| account.is_none_or(|a| l.record.account.as_deref() == Some(a)))
        .collect()
}

/// A line as written, with the characters a terminal would act on (DEL, C1 controls,
/// bidirectional overrides: JSON leaves them raw) written as `\uXXXX`: the same JSON value.
pub fn json_line(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_control() || crate::human::is_bidi(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// The records as a table for people; every cell made printable (exe paths, units and app
/// ids come from other programs).
pub fn table(lines: &[&Line]) -> String {
    const HEAD: [&str; 9] = ["TIME", "DECISION", "METHOD", "ACCOUNT", "AUDIENCE", "PROGRAM", "UNIT", "DOOR", "RULE"];
    let cell = |t: Option<&str>| t.map(terminal_text).filter(|t| !t.is_empty()).unwrap_or_else(|| "-".into());
    let rows: Vec<[String; 9]> = lines
        .iter()
        .map(|l| {
            let r = &l.record;
            let program = match (&r.app_id, &r.exe, r.pid) {
                (Some(app), _, _) => cell(Some(app)),
                (None, Some(exe), _) => cell(Some(exe)),
                (None, None, Some(pid)) => format!("pid {pid}"),
                (None, None, None) => "-".into(),
            };
            let decision = match r.decision {
                AuditDecision::Allow => "allow",
                AuditDecision::Deny => "deny",
            };
            [
                cell(Some(&r.time)),
                decision.into(),
                cell(Some(&r.method)),
                cell(r.account.as_deref()),
                cell(r.audience.as_deref()),
                program,
                cell(r.unit.as_deref()),
                cell(Some(&r.door)),
                cell(Some(&r.rule)),
            ]
        })
        .collect();
    let mut widths = HEAD.map(|h| h.chars().count());
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (c, w)) in cells.zip(widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(c);
            text.extend(std::iter::repeat_n(' ', w - c.chars().count()));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut HEAD.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time: &str, account: Option<&str>, exe: Option<&str>) -> String {
        let r = AuditRecord {
            time: time.into(),
            uid: 1000,
            pid: Some(77),
            exe: exe.map(Into::into),
            unit: None,
            app_id: None,
            door: "socket".into(),
            method: "GetAccessToken".into(),
            account: account.map(Into::into),
            audience: None,
            decision: AuditDecision::Allow,
            rule: "default".into(),
        };
        serde_json::to_string(&r).unwrap()
    }

    /// The first row's cell under `head`.
    fn column(table: &str, head: &str) -> String {
        let mut lines = table.lines();
        let at = lines.next().unwrap().find(head).unwrap();
        lines.next().unwrap()[at..].split("  ").next().unwrap().to_owned()
    }

    #[test]
    fn the_files_are_read_oldest_first_and_unreadable_lines_counted() {
        let dir = tempfile::tempdir().unwrap();
        let t = |s: u32| format!("2026-12-02T15:{s:02}:00.000Z");
        std::fs::write(dir.path().join("audit.jsonl.2"), format!("{}\n", record(&t(1), Some("a"), None))).unwrap();
        std::fs::write(
            dir.path().join("audit.jsonl.1"),
            format!("{}\n{{\"time\":\"20\n\n", record(&t(2), Some("b"), None)),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("audit.jsonl"),
            format!("{}\n{}\nnot json\n", record(&t(3), Some("a"), None), record("yesterday", Some("a"), None)),
        )
        .unwrap();
        let trail = read(dir.path()).unwrap();
        assert!(trail.found);
        let times: Vec<&str> = trail.lines.iter().map(|l| l.record.time.as_str()).collect();
        assert_eq!(times, [t(1), t(2), t(3)]);
        assert_eq!(trail.unreadable, 3, "a cut line, a bad time, not JSON (the empty line is no record)");

        let only_a: Vec<_> = select(&trail.lines, None, Some("a")).iter().map(|l| l.record.time.clone()).collect();
        assert_eq!(only_a, [t(1), t(3)]);
        let since = humantime::parse_rfc3339("2026-12-02T15:02:00Z").unwrap();
        assert_eq!(select(&trail.lines, Some(since), None).len(), 2, "at or after");
        assert_eq!(select(&trail.lines, Some(since), Some("b")).len(), 1);

        let empty = tempfile::tempdir().unwrap();
        assert!(!read(empty.path()).unwrap().found);
    }

    #[test]
    fn durations_like_10m_2h_1d() {
        assert_eq!(parse_since("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_since("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_since("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn what_other_programs_wrote_reaches_the_terminal_harmless() {
        let hostile = "/tmp/\u{1b}]0;owned\u{7}git\u{9b}31m\u{202e}exe";
        let raw = record("2026-12-02T15:00:00.000Z", Some("work"), Some(hostile));
        let lines =
            [Line { record: serde_json::from_str(&raw).unwrap(), at: SystemTime::UNIX_EPOCH, raw: raw.clone() }];
        let table = table(&lines.iter().collect::<Vec<_>>());
        assert!(table.contains("/tmp/]0;ownedgit31mexe"), "{table}");
        assert!(!table.chars().any(|c| c.is_control() && c != '\n'), "{table:?}");
        assert!(table.starts_with("TIME "), "{table}");
        assert!(table.lines().nth(1).unwrap().ends_with("socket  default"), "{table}");
        assert_eq!(column(&table, "PROGRAM"), "/tmp/]0;ownedgit31mexe");
        assert_eq!(column(&table, "ACCOUNT"), "work");
        assert_eq!(column(&table, "AUDIENCE"), "-");

        let json = json_line(&raw);
        assert!(!json.chars().any(|c| c.is_control() || crate::human::is_bidi(c)), "{json:?}");
        assert!(json.contains(r"\u009b") && json.contains(r"\u202e") && json.contains(r"\u001b"), "{json}");
        let back: AuditRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.exe.as_deref(), Some(hostile), "the same value");
    }

    #[test]
    fn the_program_is_the_app_id_else_the_exe_else_the_pid() {
        let mut r: AuditRecord = serde_json::from_str(&record("2026-12-02T15:00:00.000Z", None, None)).unwrap();
        let program = |r: &AuditRecord| {
            let l = [Line { raw: String::new(), record: r.clone(), at: SystemTime::UNIX_EPOCH }];
            column(&table(&l.iter().collect::<Vec<_>>()), "PROGRAM")
        };
        assert_eq!(program(&r), "pid 77");
        r.exe = Some("/usr/bin/git".into());
        assert_eq!(program(&r), "/usr/bin/git");
        r.app_id = Some("org.example.App".into());
        assert_eq!(program(&r), "org.example.App");
    }
}
