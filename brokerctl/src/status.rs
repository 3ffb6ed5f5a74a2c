//! `brokerctl status [--account A]` for scripts: which accounts it shows, and whether they
//! all hold a valid session (exit 0) or not (exit 3), as `gh auth status` does.

use tokenbroker::protocol::{AccountState, Status};

/// The status with only the named account; the whole status without a name. An account the
/// daemon does not have is an error, not an empty answer.
pub fn select(mut status: Status, account: Option<&str>) -> Result<Status, String> {
    let Some(name) = account else { return Ok(status) };
    if !status.accounts.iter().any(|a| a.name == name) {
        let configured: Vec<&str> = status.accounts.iter().map(|a| a.name.as_str()).collect();
        let configured = if configured.is_empty() { "none".to_owned() } else { configured.join(", ") };
        return Err(format!(
            "no account {:?} in the daemon's config; configured: {}",
            crate::human::terminal_text(name),
            crate::human::terminal_text(&configured)
        ));
    }
    status.accounts.retain(|a| a.name == name);
    Ok(status)
}

/// Why the accounts shown do not all hold a valid session, if they do not. A session is valid
/// while it gives tokens: a current access token, or an expired one that its refresh token
/// renews on the next request (`expired`, `refreshing`). No account at all is no session.
pub fn not_valid(status: &Status) -> Option<String> {
    if status.accounts.is_empty() {
        return Some("no accounts configured: add an [accounts.NAME] table to the daemon's config".into());
    }
    let without: Vec<String> = status
        .accounts
        .iter()
        .filter(|a| !matches!(a.state, AccountState::Valid | AccountState::Expired | AccountState::Refreshing))
        .map(|a| crate::human::terminal_text(&a.name))
        .collect();
    match &without[..] {
        [] => None,
        [one] => Some(format!("{one} holds no valid session; `brokerctl login --account {one}` logs in")),
        many => {
            Some(format!("{} hold no valid session; `brokerctl login --account NAME` logs in to each", many.join(", ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(accounts: &[(&str, &str)]) -> Status {
        let accounts: Vec<_> = accounts
            .iter()
            .map(|(name, state)| serde_json::json!({"name": name, "issuer": "https://idp", "state": state, "scopes": []}))
            .collect();
        serde_json::from_value(serde_json::json!({"version": "x", "accounts": accounts})).unwrap()
    }

    #[test]
    fn status_exits_3_unless_every_account_shown_holds_a_valid_session() {
        assert_eq!(not_valid(&status(&[("work", "valid"), ("home", "expired"), ("ci", "refreshing")])), None);
        let why = not_valid(&status(&[("work", "valid"), ("home", "logged_out")])).unwrap();
        assert!(why.starts_with("home holds no valid session") && why.contains("--account home"), "{why}");
        let why = not_valid(&status(&[("work", "login_required"), ("home", "logged_out")])).unwrap();
        assert!(why.starts_with("work, home hold"), "{why}");
        assert!(not_valid(&status(&[])).unwrap().contains("no accounts configured"));
    }

    #[test]
    fn status_account_shows_that_one_and_refuses_an_unknown_one() {
        let both = status(&[("work", "valid"), ("home", "logged_out")]);
        let work = select(both.clone(), Some("work")).unwrap();
        assert_eq!(work.accounts.len(), 1);
        assert_eq!(not_valid(&work), None, "home is not asked about");
        assert!(not_valid(&select(both.clone(), Some("home")).unwrap()).is_some());
        let err = select(both.clone(), Some("nope")).unwrap_err();
        assert!(err.contains("\"nope\"") && err.contains("work, home"), "{err}");
        assert_eq!(select(both, None).unwrap().accounts.len(), 2);
    }
}
