//! Text for people: times as "in 42 minutes", accounts as aligned lines.

use tokenbroker::protocol::{AccountState, Consents, LoginDone, PolicyStatus, Profile, Status};

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// "in 42 minutes", "3 hours ago", "now".
pub fn relative(at: i64, now: i64) -> String {
    let delta = at.saturating_sub(now);
    let secs = delta.unsigned_abs();
    let (n, unit) = match secs {
        0..=4 => return "now".into(),
        5..=89 => (secs, "second"),
        90..=5399 => ((secs + 30) / 60, "minute"),
        5400..=129_599 => ((secs + 1800) / 3600, "hour"),
        _ => ((secs + 43_200) / 86_400, "day"),
    };
    let plural = if n == 1 { "" } else { "s" };
    if delta > 0 { format!("in {n} {unit}{plural}") } else { format!("{n} {unit}{plural} ago") }
}

/// When something that lasts `secs` from `now` ends, as `relative` says it. `secs` comes
/// from the daemon (and from the IdP before it): any value must do.
pub fn lasting(secs: u64, now: i64) -> String {
    relative(now.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX)), now)
}

/// Whether colours and bold may be used on a terminal: not when `NO_COLOR` is set to
/// anything but the empty string (no-color.org).
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Said wherever a session the store refused is shown.
pub const NOT_SAVED: &str = "NOT SAVED: the session store refused this session (a locked keyring? a full \
     or read-only disk for the sealed file?); it lives in memory only and is lost if the daemon stops. \
     `brokerctl doctor` says which store and why; the daemon keeps retrying.";

pub fn status(s: &Status) -> String {
    let mut out = format!("tokenbrokerd {}\n", s.version);
    if s.accounts.is_empty() {
        out.push_str("no accounts configured\n");
    }
    let width = s.accounts.iter().map(|a| a.name.len() + if a.default { 10 } else { 0 }).max().unwrap_or(0);
    let now = now();
    for a in &s.accounts {
        let name = if a.default { format!("{} (default)", a.name) } else { a.name.clone() };
        let state = match (a.state, a.expires_at) {
            _ if a.kind.as_deref() == Some("machine") => machine_state(a.state, a.expires_at, now),
            (AccountState::Valid, Some(at)) => {
                format!("logged in, token expires {}", relative(at, now))
            }
            (AccountState::Expired, Some(at)) => {
                format!("logged in, token expired {}", relative(at, now))
            }
            (AccountState::Refreshing, _) => "logged in, refreshing now".into(),
            (AccountState::LoginRequired, _) => "login required (the identity provider ended the session)".into(),
            (AccountState::LoggedOut, _) => "logged out".into(),
            (_, None) => a.state.as_str().into(),
        };
        let who = a.subject.as_deref().map(|s| format!(" as {s}")).unwrap_or_default();
        out.push_str(&format!("{name:width$}  {state}{who}\n    {}\n", a.issuer));
        if a.persisted == Some(false) {
            out.push_str(&format!("    {NOT_SAVED}\n"));
        }
    }
    if let Some(p) = &s.policy {
        out.push_str(&format!("{}\n", policy(p)));
    }
    out
}

/// A machine account's line: it is never logged in, it has a token or gets one when asked.
fn machine_state(state: AccountState, expires_at: Option<i64>, now: i64) -> String {
    let token = match (state, expires_at) {
        (AccountState::Refreshing, _) => "getting a token now".to_owned(),
        (AccountState::Valid, Some(at)) => format!("token expires {}", relative(at, now)),
        (_, Some(at)) => format!("token expired {} (a new one at the next request)", relative(at, now)),
        (_, None) => "no token yet (one at the first request)".to_owned(),
    };
    format!("machine account, {token}")
}

/// "policy: default ask, 3 rules, 1 question waiting".
pub fn policy(p: &PolicyStatus) -> String {
    let plural = |n: u32, one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
    let mut line = format!(
        "policy: default {}, {}, {} waiting",
        terminal_text(&p.default),
        plural(p.rules, "rule", "rules"),
        plural(p.asking, "question", "questions")
    );
    if p.remembered > 0 {
        line.push_str(&format!(", {} always allowed", plural(p.remembered, "program", "programs")));
    }
    line
}

/// Rows as aligned columns (the last one unpadded), two spaces apart, indented by two.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|t| t.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(" ");
        for (c, cell) in row.iter().enumerate() {
            line.push(' ');
            line.push_str(cell);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 1));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `brokerctl consent list`: the questions waiting and the "always" answers. Every word from
/// other processes (a program's exe path, above all) is made printable first.
pub fn consents(c: &Consents, now: i64) -> String {
    let t = |s: &str| terminal_text(s);
    let opt = |s: &Option<String>| s.as_deref().map_or("(the account's own)".to_owned(), terminal_text);
    let mut out = String::new();
    if c.pending.is_empty() {
        out.push_str("No question is waiting.\n");
    } else {
        out.push_str("Waiting for an answer (`brokerctl consent allow ID [--always]` or `deny ID`):\n");
        let mut rows = vec![
            ["ID", "PROGRAM", "PIDS", "ACCOUNT", "AUDIENCE", "METHODS", "WAITING", "LEFT"].map(String::from).to_vec(),
        ];
        for q in &c.pending {
            let pids: Vec<String> = q.pids.iter().map(i32::to_string).collect();
            let methods: Vec<String> = q.methods.iter().map(|m| t(m)).collect();
            rows.push(vec![
                t(&q.id),
                t(&q.program),
                pids.join(","),
                t(&q.account),
                opt(&q.audience),
                methods.join(","),
                q.waiting.to_string(),
                format!("{} s", q.expires_at.saturating_sub(now).max(0)),
            ]);
        }
        out.push_str(&table(&rows));
    }
    if c.remembered.is_empty() {
        out.push_str("No program is always allowed.\n");
    } else {
        out.push_str("Always allowed (`brokerctl consent revoke ID` to ask again):\n");
        let mut rows = vec![["ID", "PROGRAM", "ACCOUNT", "AUDIENCE", "SINCE"].map(String::from).to_vec()];
        for r in &c.remembered {
            rows.push(vec![t(&r.id), t(&r.program), t(&r.account), opt(&r.audience), relative(r.since, now)]);
        }
        out.push_str(&table(&rows));
    }
    out
}

/// "Logged in to work as Alice <alice@example.com> (sub alice)." The names are the IdP's
/// words: the daemon has removed control characters already, and this does again.
pub fn logged_in(done: &LoginDone) -> String {
    let clean = |t: &Option<String>| t.as_deref().map(terminal_text).filter(|t| !t.is_empty());
    let who = match (clean(&done.name), clean(&done.email)) {
        (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
        (one, other) => one.or(other),
    };
    let account = terminal_text(&done.account);
    match (who, clean(&done.subject)) {
        (Some(who), Some(sub)) => format!("Logged in to {account} as {who} (sub {sub})."),
        (Some(who), None) => format!("Logged in to {account} as {who}."),
        (None, Some(sub)) => format!("Logged in to {account} as sub {sub}."),
        (None, None) => format!("Logged in to {account}."),
    }
}

/// Without control characters or bidirectional overrides, which a terminal would act on.
pub fn terminal_text(text: &str) -> String {
    text.chars().filter(|&c| !c.is_control() && !is_bidi(c)).collect()
}

/// A bidirectional mark, embedding, override or isolate: it reorders what follows on screen.
pub fn is_bidi(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

pub fn profile(p: &Profile) -> String {
    let c = &p.claims;
    let text = |k: &str| c.get(k).and_then(|v| v.as_str());
    let mut out = String::new();
    match (text("name"), text("email")) {
        (Some(n), Some(e)) => out.push_str(&format!("{n} <{e}>\n")),
        (Some(n), None) => out.push_str(&format!("{n}\n")),
        (None, Some(e)) => out.push_str(&format!("{e}\n")),
        (None, None) => {}
    }
    let width = c.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in c {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!("  {k:width$}  {v}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{consents, lasting, logged_in, policy, relative, status};
    use tokenbroker::protocol::{ConsentQuestion, Consents, LoginDone, PolicyStatus, RememberedConsent};

    #[test]
    fn consent_questions_are_listed_in_columns_without_terminal_controls() {
        let c = Consents {
            pending: vec![ConsentQuestion {
                id: "0a1b2c3d".into(),
                program: "/tmp/\u{1b}]0;pwned\u{7}evil\u{202e}".into(),
                exe: Some("/tmp/evil".into()),
                app_id: None,
                pids: vec![41, 42],
                account: "work".into(),
                audience: Some("https://api".into()),
                methods: vec!["GetAccessToken".into(), "GetProfile".into()],
                waiting: 3,
                expires_at: 1045,
            }],
            remembered: vec![RememberedConsent {
                id: "ffff0000".into(),
                program: "/usr/bin/git".into(),
                account: "work".into(),
                audience: None,
                since: 1000 - 7200,
            }],
        };
        let text = consents(&c, 1000);
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{202e}'), "{text:?}");
        let row = text.lines().find(|l| l.contains("0a1b2c3d")).unwrap();
        for part in ["/tmp/]0;pwnedevil", "41,42", "work", "https://api", "GetAccessToken,GetProfile", " 3 ", "45 s"] {
            assert!(row.contains(part), "{part:?} missing in {row:?}");
        }
        let row = text.lines().find(|l| l.contains("ffff0000")).unwrap();
        assert!(
            row.contains("/usr/bin/git") && row.contains("(the account's own)") && row.contains("2 hours ago"),
            "{row}"
        );
        let empty = consents(&Consents::default(), 0);
        assert!(empty.contains("No question is waiting") && empty.contains("No program is always allowed"), "{empty}");
    }

    #[test]
    fn a_machine_account_is_said_to_be_one_without_a_login() {
        let s: tokenbroker::protocol::Status = serde_json::from_value(serde_json::json!({
            "version": "x",
            "accounts": [{"name": "ci", "issuer": "https://idp", "state": "expired", "scopes": [], "kind": "machine"}],
        }))
        .unwrap();
        let text = status(&s);
        assert!(text.contains("ci  machine account, no token yet") && !text.contains("logged"), "{text}");
    }

    #[test]
    fn the_policy_is_one_line_of_status() {
        let p = PolicyStatus { default: "ask".into(), rules: 3, asking: 1, remembered: 0 };
        assert_eq!(policy(&p), "policy: default ask, 3 rules, 1 question waiting");
        let p = PolicyStatus { default: "allow".into(), rules: 1, asking: 0, remembered: 2 };
        assert_eq!(policy(&p), "policy: default allow, 1 rule, 0 questions waiting, 2 programs always allowed");
    }

    #[test]
    fn who_logged_in_is_said_without_terminal_controls() {
        let done = |subject: Option<&str>, email: Option<&str>, name: Option<&str>| LoginDone {
            account: "work".into(),
            status: "logged_in".into(),
            subject: subject.map(Into::into),
            email: email.map(Into::into),
            name: name.map(Into::into),
        };
        let all = done(Some("alice"), Some("alice@example.com"), Some("Alice"));
        assert_eq!(logged_in(&all), "Logged in to work as Alice <alice@example.com> (sub alice).");
        assert_eq!(logged_in(&done(Some("a"), Some("a@x"), None)), "Logged in to work as a@x (sub a).");
        assert_eq!(logged_in(&done(Some("a"), None, None)), "Logged in to work as sub a.");
        assert_eq!(logged_in(&done(None, None, None)), "Logged in to work.");
        let hostile = done(Some("a\u{1b}]0;x\u{7}"), Some("\u{202e}moc.x@a"), Some("\r"));
        assert_eq!(logged_in(&hostile), "Logged in to work as moc.x@a (sub a]0;x).");
    }

    #[test]
    fn any_lifetime_reads_without_overflow() {
        assert_eq!(lasting(600, 100), "in 10 minutes");
        assert!(lasting(u64::MAX, 1_800_000_000).starts_with("in "), "{}", lasting(u64::MAX, 1_800_000_000));
        assert!(lasting(1 << 63, 1_800_000_000).starts_with("in "));
        assert!(relative(i64::MIN, 1_800_000_000).ends_with(" ago"));
    }

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(relative(100, 100), "now");
        assert_eq!(relative(130, 100), "in 30 seconds");
        assert_eq!(relative(100 + 42 * 60, 100), "in 42 minutes");
        assert_eq!(relative(100 + 60, 100), "in 60 seconds");
        assert_eq!(relative(100 + 3 * 3600, 100), "in 3 hours");
        assert_eq!(relative(100 - 3600 * 2, 100), "2 hours ago");
        assert_eq!(relative(100 + 86_400 * 3, 100), "in 3 days");
        assert_eq!(relative(100 + 91, 100), "in 2 minutes");
    }
}
