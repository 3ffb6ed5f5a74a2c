//! Which callers may have what: the config's `[policy]`, decided once per request on the one
//! request path (`request::handle`). Rules are tried in order; the first that matches decides.

use std::fmt;
use std::time::Duration;

use super::request::Caller;
use crate::config::{Action, PolicyConfig, RuleConfig};

/// The config's policy, ready to decide. Replaced whole on reload, with the accounts.
#[derive(Debug)]
pub struct Policy {
    default: Action,
    rules: Vec<RuleConfig>,
    /// How long a caller waits for the person's answer.
    wait: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new(&PolicyConfig::default())
    }
}

/// What the policy says of one request, and which part of it said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    pub by: By,
}

/// What decided a request, for the refusal's message and the audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// `[policy] default`.
    Default,
    /// `[[policy.rule]]` number N, counted from 1 in the config's order.
    Rule(usize),
    /// The person, asked.
    Consent(Answer),
    /// The forward's own limits (its accounts and audiences), before any rule.
    Forward,
}

/// How the person answered (or did not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Once,
    Always,
    Denied,
    Unanswered,
}

impl Policy {
    pub fn new(config: &PolicyConfig) -> Policy {
        Policy { default: config.default, rules: config.rules.clone(), wait: Duration::from_secs(config.ask_timeout) }
    }

    /// How long a caller waits for the person before it is refused (`[policy] ask_timeout`).
    pub fn wait(&self) -> Duration {
        self.wait
    }

    /// Whether anything may ask the person: the default or a rule says `ask`.
    pub fn asks(&self) -> bool {
        self.default == Action::Ask || self.rules.iter().any(|r| r.action == Action::Ask)
    }

    /// Everything allowed to everyone (no rules, `default = "allow"`): nothing to decide.
    pub fn allows_all(&self) -> bool {
        self.rules.is_empty() && self.default == Action::Allow
    }

    pub fn default_action(&self) -> Action {
        self.default
    }

    pub fn rules(&self) -> &[RuleConfig] {
        &self.rules
    }

    /// `audience` is the one the request is for: the one it names, else the account's own.
    pub fn decide(&self, caller: &Caller, account: &str, audience: Option<&str>) -> Decision {
        for (n, rule) in self.rules.iter().enumerate() {
            if matches(rule, caller, account, audience) {
                return Decision { action: rule.action, by: By::Rule(n + 1) };
            }
        }
        Decision { action: self.default, by: By::Default }
    }
}

fn matches(rule: &RuleConfig, caller: &Caller, account: &str, audience: Option<&str>) -> bool {
    // A matcher on a part of the caller that is unknown does not match: an unknown program is
    // never taken for the one a rule names.
    let part = |pattern: &Option<String>, value: Option<&str>| match pattern {
        None => true,
        Some(p) => value.is_some_and(|v| glob(p, v)),
    };
    part(&rule.exe, caller.exe.as_deref())
        && part(&rule.unit, caller.unit.as_deref())
        && part(&rule.app_id, caller.app_id.as_deref())
        && part(&rule.door, Some(caller.door.name()))
        && rule.accounts.as_ref().is_none_or(|list| list.iter().any(|a| a == account))
        && rule.audiences.as_ref().is_none_or(|list| audience.is_some_and(|aud| list.iter().any(|a| a == aud)))
}

/// `*` matches any run of characters (none, `/` included); every other character itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let mut parts: Vec<&str> = parts.collect();
    let Some(last) = parts.pop() else { return rest.is_empty() };
    for part in parts {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

impl fmt::Display for By {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            By::Default => f.write_str("default"),
            By::Rule(n) => write!(f, "rule {n}"),
            By::Forward => f.write_str("forward"),
            By::Consent(Answer::Once) => f.write_str("consent (once)"),
            By::Consent(Answer::Always) => f.write_str("consent (always)"),
            By::Consent(Answer::Denied) => f.write_str("consent (denied)"),
            By::Consent(Answer::Unanswered) => f.write_str("consent (no answer)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::broker::request::Door;
    use crate::config::Config;

    #[test]
    fn globs_match_runs_of_anything_and_nothing_else() {
        let yes = [("/usr/bin/git", "/usr/bin/git"), ("/usr/bin/*", "/usr/bin/git"), ("*", ""), ("a*b*c", "abc")];
        let yes = yes.into_iter().chain([("a*b*c", "a-b-b-c"), ("*.scope", "app-x.scope"), ("forward:*", "forward:h")]);
        for (p, t) in yes {
            assert!(glob(p, t), "{p} should match {t}");
        }
        let no = [("/usr/bin/git", "/usr/bin/gitx"), ("/usr/bin/*", "/usr/lib/git"), ("a*b", "ab-"), ("ab*ba", "aba")];
        for (p, t) in no.into_iter().chain([("*x", ""), ("", "a")]) {
            assert!(!glob(p, t), "{p} should not match {t}");
        }
    }

    fn caller(exe: Option<&str>) -> Caller {
        Caller { exe: exe.map(Arc::from), ..Caller::new(0, Some(1), Door::Socket) }
    }

    fn policy(rules: &str) -> Policy {
        let text = format!("[accounts.work]\nissuer = \"https://x/\"\nclient_id = \"c\"\n{rules}");
        Policy::new(&Config::parse(&text).unwrap().policy)
    }

    #[test]
    fn the_first_matching_rule_decides_and_unknown_parts_match_no_rule() {
        // git gets work's API; /opt/asker/* is asked; the rest is denied.
        let p = policy(crate::broker::policy_tests::GIT_ONLY);
        let (git, asker) = (caller(Some("/usr/bin/git")), caller(Some("/opt/asker/bin")));
        let d = |c: &Caller, acc, aud| p.decide(c, acc, aud);
        assert_eq!(d(&git, "work", Some("https://api")), Decision { action: Action::Allow, by: By::Rule(1) });
        // Another audience, another account, no audience: rule 1 does not match git.
        for (acc, aud) in [("work", Some("https://other")), ("home", Some("https://api")), ("work", None)] {
            assert_eq!(d(&git, acc, aud), Decision { action: Action::Deny, by: By::Default });
            assert_eq!(d(&asker, acc, aud), Decision { action: Action::Ask, by: By::Rule(2) });
        }
        assert_eq!(d(&caller(Some("/opt/x")), "work", None), Decision { action: Action::Deny, by: By::Default });
        assert_eq!(d(&caller(None), "work", Some("https://api")), Decision { action: Action::Deny, by: By::Default });
        assert!(!p.allows_all());
        assert!(policy("").allows_all());
    }

    #[test]
    fn rules_match_on_unit_app_id_and_door() {
        let p = policy(
            "[[policy.rule]]\nunit = \"app-*.scope\"\naction = \"deny\"\n\
             [[policy.rule]]\napp_id = \"org.example.*\"\naction = \"ask\"\n\
             [[policy.rule]]\ndoor = \"dbus\"\naction = \"deny\"\n",
        );
        let unit = Caller { unit: Some("app-foo-1.scope".into()), ..caller(None) };
        let app = Caller { app_id: Some("org.example.App".into()), ..caller(None) };
        let bus = Caller::new(0, None, Door::Dbus);
        assert_eq!(p.decide(&unit, "work", None).by, By::Rule(1));
        assert_eq!(p.decide(&app, "work", None).by, By::Rule(2));
        assert_eq!(p.decide(&bus, "work", None).by, By::Rule(3));
        assert_eq!(p.decide(&caller(None), "work", None), Decision { action: Action::Allow, by: By::Default });
    }

    #[test]
    fn empty_matchers_are_refused_with_the_rules_number() {
        for bad in ["exe = \"\"", "accounts = []", "audiences = []"] {
            let text = format!("[[policy.rule]]\naction = \"allow\"\n[[policy.rule]]\n{bad}\naction = \"deny\"\n");
            let e = Config::parse(&text).unwrap_err();
            assert!(e.contains("number 2"), "{e}");
        }
        let e = Config::parse("[[policy.rule]]\nexe = \"/x\"\n").unwrap_err();
        assert!(e.contains("action"), "{e}");
    }

    #[test]
    fn the_wait_for_an_answer_is_60_s_unless_ask_timeout_says_otherwise() {
        assert_eq!(policy("").wait(), Duration::from_secs(60));
        assert_eq!(policy("[policy]\nask_timeout = 5\n").wait(), Duration::from_secs(5));
        for bad in ["0", "3601"] {
            let text =
                format!("[accounts.work]\nissuer = \"https://x/\"\nclient_id = \"c\"\n[policy]\nask_timeout = {bad}\n");
            assert!(Config::parse(&text).unwrap_err().contains("ask_timeout"));
        }
        assert!(!policy("").asks() && policy("[policy]\ndefault = \"ask\"\n").asks());
        assert!(policy("[[policy.rule]]\nexe = \"/x\"\naction = \"ask\"\n").asks());
    }
}
