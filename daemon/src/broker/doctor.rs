//! Diagnose: the daemon's own health checks, in words, each with what to do when it fails.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tokenbroker::protocol::{Check, Diagnosis};

use super::consent::Desk;
use super::policy::{Policy, glob};
use super::{Account, Broker, offers};
use crate::config::{AccountConfig, Config, RuleConfig};
use crate::oidc::Connect;
use crate::store::StoreName;

fn check(name: &str, result: Result<String, (String, &str)>) -> Check {
    match result {
        Ok(detail) => Check { name: name.into(), ok: true, detail, fix: None },
        Err((detail, fix)) => Check { name: name.into(), ok: false, detail, fix: Some(fix.into()) },
    }
}

/// Sessions the store refused to take: they live in memory only, until a retried write lands.
fn unsaved_sessions<'a>(accounts: &[Arc<Account>], fix: &'a str) -> Result<String, (String, &'a str)> {
    let unsaved: Vec<&str> = accounts.iter().filter(|a| a.unsaved()).map(|a| a.name.as_str()).collect();
    if unsaved.is_empty() {
        return Ok("every session is in the store".into());
    }
    Err((
        format!(
            "the session of {} is in memory only: the store refused to save it, and it is lost if the daemon stops",
            unsaved.join(", ")
        ),
        fix,
    ))
}

/// "config.toml parses (1 account)".
fn parsed(path: &str, accounts: usize) -> String {
    match accounts {
        0 => format!("{path} parses, but has no accounts: add an [accounts.NAME] table"),
        1 => format!("{path} parses (1 account)"),
        n => format!("{path} parses ({n} accounts)"),
    }
}

/// What to do when the store refuses a write. Without a keyring, the sealed file keeps
/// sessions across restarts, which memory does not: it is offered first.
fn store_fix(store: &StoreName) -> String {
    let remedy = store.remedy();
    match store {
        StoreName::Keyring => format!(
            "{remedy}; or, without a keyring, choose store = \"file\" in the config (sessions in a file sealed \
             with a passphrase) or store = \"memory\" (sessions lost when the daemon stops)"
        ),
        _ => format!("{remedy}; until then sessions are kept in memory, and the daemon retries"),
    }
}

pub async fn diagnose(broker: &Arc<Broker>) -> Diagnosis {
    let mut checks = Vec::new();
    let path = broker.config_path.display();
    checks.push(check(
        "config",
        match Config::load(&broker.config_path) {
            Ok(c) => Ok(parsed(&path.to_string(), c.accounts.len())),
            Err(e) => Err((
                e.to_string(),
                "fix the file, then reload (SIGHUP, or `systemctl --user reload tokenbroker`); until then the daemon keeps its last good config",
            )),
        },
    ));
    let store = broker.store.name();
    let remedy = store.remedy();
    let fix = store_fix(store);
    checks.push(check(
        store.label(),
        match broker.store.probe().await {
            Ok(()) => Ok(format!("{store} takes a write, a read and a delete")),
            Err(e) => Err((e.to_string(), &fix)),
        },
    ));
    let fix = format!("{remedy}; the daemon retries the write until it lands, so keep it running until then");
    checks.push(check("sessions", unsaved_sessions(&broker.accounts(), &fix)));
    for account in broker.accounts() {
        checks.extend(idp_checks(&*broker.connect, &account.name, &account.config).await);
    }
    let roster = broker.roster();
    checks.extend(policy_checks(&roster.policy, &broker.accounts()));
    if roster.policy.asks() {
        checks.push(questions(&broker.consents.desk().await, roster.policy.wait().as_secs()));
    }
    Diagnosis { checks }
}

/// An account's IdP: whether it answers discovery, then what it offers against what the
/// account asks of it. Also `tokenbrokerd --check`'s, which has no broker.
pub(crate) async fn idp_checks(connect: &dyn Connect, name: &str, c: &AccountConfig) -> Vec<Check> {
    let started = Instant::now();
    let found = connect.connect(&super::account::client_settings(c)).await;
    let mut checks = vec![check(
        &format!("identity provider of {name}"),
        match &found {
            Ok(_) => Ok(format!("{} answered discovery in {} ms", c.issuer, started.elapsed().as_millis())),
            Err(e) => Err((
                format!("{}: {e}", c.issuer),
                "check the network, and the account's issuer in the config (it must match the IdP's own issuer exactly)",
            )),
        },
    )];
    if c.is_machine() {
        checks.extend(super::machine::checks(name, c, found.as_ref().ok().map(|p| p.offers())).await);
    } else if let Ok(provider) = &found {
        checks.push(offers::features(name, c, provider.offers()));
        checks.push(offers::scopes(name, c, provider.offers()));
        checks.extend(c.dpop.then(|| super::dpop::doctor_check(name, provider.offers())));
    }
    checks
}

/// The policy in a line, then a warning for each rule that can never match.
fn policy_checks(policy: &Policy, accounts: &[Arc<Account>]) -> Vec<Check> {
    let n = policy.rules().len();
    let rules = if n == 1 { "1 rule".to_owned() } else { format!("{n} rules") };
    let summary = format!("default {}, {rules}", policy.default_action().name());
    let mut checks = vec![check("policy", Ok(summary))];
    let audiences = accounts.iter().map(|a| (a.name.clone(), a.login_audiences().values)).collect();
    for (n, warning) in rule_warnings(policy.rules(), &audiences) {
        checks.push(Check {
            name: format!("policy rule {n}"),
            ok: true,
            detail: warning,
            fix: Some(format!(
                "fix or remove [[policy.rule]] number {n} in the config, then reload; until then it decides nothing"
            )),
        });
    }
    checks
}

/// Rules that can never match, by number (from 1), each with why: accounts that are not
/// configured, audiences none of its accounts can have (`audiences`: per account, `audience`,
/// `audiences` and the management API), an earlier rule that matches all it matches.
fn rule_warnings(rules: &[RuleConfig], audiences: &BTreeMap<String, Vec<String>>) -> Vec<(usize, String)> {
    let mut warnings = Vec::new();
    let list = |names: &[&String]| names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ");
    for (i, rule) in rules.iter().enumerate() {
        let n = i + 1;
        let mut never = false;
        let known: Vec<&String> = match &rule.accounts {
            None => audiences.keys().collect(),
            Some(names) => {
                let (known, unknown): (Vec<&String>, Vec<&String>) =
                    names.iter().partition(|a| audiences.contains_key(a.as_str()));
                if known.is_empty() {
                    never = true;
                    warnings.push((n, format!("names no configured account ({}): it can never match", list(&unknown))));
                } else if !unknown.is_empty() {
                    warnings.push((n, format!("names accounts that are not configured: {}", list(&unknown))));
                }
                known
            }
        };
        if let (Some(wanted), false) = (&rule.audiences, never || known.is_empty()) {
            let can: Vec<&String> = known.iter().flat_map(|a| &audiences[a.as_str()]).collect();
            let (_, unknown): (Vec<&String>, Vec<&String>) = wanted.iter().partition(|w| can.contains(w));
            if unknown.len() == wanted.len() {
                never = true;
                warnings.push((
                    n,
                    format!(
                        "none of its audiences ({}) is one its accounts can have: it can never match",
                        list(&unknown)
                    ),
                ));
            } else if !unknown.is_empty() {
                warnings.push((n, format!("audiences none of its accounts can have: {}", list(&unknown))));
            }
        }
        if !never && let Some(m) = rules[..i].iter().position(|earlier| covers(earlier, rule)) {
            warnings
                .push((n, format!("rule {} before it matches every request it matches: it can never decide", m + 1)));
        }
    }
    warnings
}

/// Whether every request `later` matches is matched by `earlier` too.
fn covers(earlier: &RuleConfig, later: &RuleConfig) -> bool {
    let pattern = |e: &Option<String>, l: &Option<String>| match (e, l) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => e == l || (!l.contains('*') && glob(e, l)),
    };
    let subset = |e: &Option<Vec<String>>, l: &Option<Vec<String>>| match (e, l) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(e), Some(l)) => l.iter().all(|x| e.contains(x)),
    };
    pattern(&earlier.exe, &later.exe)
        && pattern(&earlier.unit, &later.unit)
        && pattern(&earlier.app_id, &later.app_id)
        && pattern(&earlier.door, &later.door)
        && subset(&earlier.accounts, &later.accounts)
        && subset(&earlier.audiences, &later.audiences)
}

/// Whether the policy's questions reach the person on the desktop.
fn questions(desk: &Desk, wait: u64) -> Check {
    let only = "questions can then only be answered with `brokerctl consent`";
    let fix = format!(
        "answer from a terminal (`brokerctl consent list`, then `brokerctl consent allow ID` or `deny ID`) \
         within the {wait} s a caller waits, or start a notification service (the desktop's, or dunst, mako, …)"
    );
    let warn = |detail: String| Check { name: "questions".into(), ok: true, detail, fix: Some(fix.clone()) };
    match desk {
        Desk::Shown(server) => check(
            "questions",
            Ok(format!("shown as desktop notifications by {server}; `brokerctl consent` answers them too")),
        ),
        Desk::Missing => warn(format!("no notification service on the session bus: {only}")),
        Desk::NoBus => warn(format!("no session bus (D-Bus is off), so no desktop notification: {only}")),
        Desk::Foreign(uid) => {
            let who = uid
                .map_or("a connection whose user the bus would not tell".into(), |u| format!("another user (UID {u})"));
            warn(format!(
                "the notification service on the session bus is {who}, which is not shown our questions: {only}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_check_counts_in_words_and_the_keyring_fix_offers_the_file_first() {
        assert_eq!(parsed("c.toml", 1), "c.toml parses (1 account)");
        assert_eq!(parsed("c.toml", 2), "c.toml parses (2 accounts)");
        assert!(parsed("c.toml", 0).contains("no accounts"));
        let fix = store_fix(&StoreName::Keyring);
        let (file, memory) = (fix.find("store = \"file\"").unwrap(), fix.find("store = \"memory\"").unwrap());
        assert!(file < memory, "{fix}");
    }

    fn rules(text: &str) -> Vec<RuleConfig> {
        let config = format!(
            "[accounts.work]\nissuer = \"https://x/\"\nclient_id = \"c\"\naudience = \"https://api\"\n\
             [accounts.home]\nissuer = \"https://y/\"\nclient_id = \"c\"\naudiences = [\"https://photos\"]\n{text}"
        );
        Config::parse(&config).unwrap().policy.rules
    }

    fn warnings(text: &str) -> Vec<(usize, String)> {
        let audiences = BTreeMap::from([
            ("work".to_owned(), vec!["https://api".to_owned()]),
            ("home".to_owned(), vec!["https://photos".to_owned()]),
        ]);
        rule_warnings(&rules(text), &audiences)
    }

    #[test]
    fn a_rule_naming_no_configured_account_is_warned_of() {
        let w = warnings("[[policy.rule]]\naccounts = [\"wrok\"]\naction = \"deny\"\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].0, 1);
        assert!(w[0].1.contains("no configured account (\"wrok\")") && w[0].1.contains("never match"), "{w:?}");
        let w = warnings("[[policy.rule]]\naccounts = [\"work\", \"wrok\"]\naction = \"deny\"\n");
        assert!(w.len() == 1 && w[0].1.contains("not configured: \"wrok\""), "{w:?}");
        assert!(warnings("[[policy.rule]]\naccounts = [\"work\", \"home\"]\naction = \"deny\"\n").is_empty());
    }

    #[test]
    fn a_rule_for_audiences_its_accounts_cannot_have_is_warned_of() {
        // https://photos is home's, not work's.
        let w =
            warnings("[[policy.rule]]\naccounts = [\"work\"]\naudiences = [\"https://photos\"]\naction = \"ask\"\n");
        assert!(w.len() == 1 && w[0].1.contains("never match") && w[0].1.contains("https://photos"), "{w:?}");
        // Any account may: no warning.
        assert!(warnings("[[policy.rule]]\naudiences = [\"https://photos\"]\naction = \"ask\"\n").is_empty());
        let w = warnings("[[policy.rule]]\naudiences = [\"https://api\", \"https://nowhere\"]\naction = \"ask\"\n");
        assert!(w.len() == 1 && w[0].1.contains("\"https://nowhere\"") && !w[0].1.contains("never"), "{w:?}");
    }

    #[test]
    fn a_rule_after_one_that_matches_all_it_matches_is_warned_of() {
        let w = warnings(
            "[[policy.rule]]\naction = \"allow\"\n[[policy.rule]]\nexe = \"/usr/bin/git\"\naction = \"deny\"\n",
        );
        assert!(w.len() == 1 && w[0].0 == 2 && w[0].1.contains("rule 1 before it"), "{w:?}");
        let w = warnings(
            "[[policy.rule]]\nexe = \"/usr/bin/*\"\naction = \"allow\"\n\
             [[policy.rule]]\nexe = \"/usr/bin/git\"\naccounts = [\"work\"]\naction = \"deny\"\n",
        );
        assert!(w.len() == 1 && w[0].0 == 2, "{w:?}");
        // Narrower first, wider after: both can decide.
        let fine = "[[policy.rule]]\nexe = \"/usr/bin/git\"\naction = \"allow\"\n\
                    [[policy.rule]]\nexe = \"/usr/bin/*\"\naction = \"deny\"\n\
                    [[policy.rule]]\naccounts = [\"work\"]\naction = \"deny\"\n\
                    [[policy.rule]]\ndoor = \"dbus\"\naction = \"ask\"\n";
        assert!(warnings(fine).is_empty(), "{:?}", warnings(fine));
    }

    #[test]
    fn asking_without_a_notification_service_is_a_warning_naming_brokerctl_consent() {
        for desk in [Desk::Missing, Desk::NoBus, Desk::Foreign(Some(1001))] {
            let c = questions(&desk, 60);
            assert!(c.ok && c.fix.is_some(), "{c:?}");
            assert!(c.detail.contains("can then only be answered with `brokerctl consent`"), "{c:?}");
        }
        let c = questions(&Desk::Shown("dunst 1.9".into()), 60);
        assert!(c.ok && c.fix.is_none() && c.detail.contains("dunst"), "{c:?}");
    }
}
