//! `brokerctl login`: start a login (unless the account already holds a session), show it to
//! the person, open the browser on it, wait until it is approved, and say who logged in.

use std::io::IsTerminal;

use tokenbroker::protocol::{AccountState, Login, LoginChallenge, Status};

use crate::app::{Failure, print_json};
use crate::browser;
use crate::challenge;
use crate::human;
use crate::interrupt;
use crate::login_view;
use crate::transport::Transport;

pub struct LoginOptions {
    pub dbus: bool,
    pub json: bool,
    pub no_browser: bool,
    pub browser_command: Option<String>,
    pub no_qr: bool,
    pub force: bool,
}

pub fn login(client: &Transport, request: Login, options: &LoginOptions) -> Result<(), Failure> {
    if !options.force
        && let Some(held) = held_session(&client.status()?, request.account.as_deref())
    {
        if options.json {
            print_json(&serde_json::json!({
                "account": held.name,
                "status": "already_logged_in",
                "subject": held.subject,
            }));
        } else {
            println!("{}", already_logged_in(held));
        }
        return Ok(());
    }
    interrupt::catch_sigint();
    let challenge = client.login(request)?;
    if let Err(e) = check_challenge(&challenge) {
        let _ = client.cancel_login(&challenge.login_id);
        return Err(e);
    }
    let login_id = challenge.login_id.clone();
    let dbus = options.dbus;
    // On a connection of its own: this one is busy waiting. The daemon then ends the
    // login, which ends the wait below.
    interrupt::on_interrupt(move || {
        match Transport::connect(dbus).and_then(|c| c.cancel_login(&login_id)) {
            // Too late: the login was approved and is being finished; its result follows.
            Ok(r) if !r.cancelled => eprintln!("brokerctl: too late to cancel: the login was already approved"),
            Ok(_) => {}
            Err(e) => {
                eprintln!("brokerctl: could not cancel the login: {e}");
                std::process::exit(130);
            }
        }
    });
    // Serves the browser's one-time link until the login is over (dropped on return).
    let mut handoff = None;
    if options.json {
        print_json(&challenge);
    } else {
        let terminal = std::io::stdout().is_terminal();
        let look = login_view::Look { terminal, colour: terminal && human::colour_allowed(), qr: !options.no_qr };
        print!("{}", login_view::challenge(&challenge, look));
        let url = challenge.verification_uri_complete.as_ref().or(challenge.authorization_url.as_ref());
        if !options.no_browser
            && let Some(url) = url
        {
            let chosen = browser::choose(options.browser_command.as_deref());
            handoff = browser::open(url, &chosen);
        }
        let expires = human::lasting(challenge.expires_in, human::now());
        eprintln!("Waiting for you to approve the login (the code expires {expires})…");
    }
    let done = match client.await_login(&challenge.login_id) {
        Err(_) if interrupt::interrupted() => return Err(Failure::Interrupted),
        other => other?,
    };
    drop(handoff);
    if options.json {
        print_json(&done)
    } else {
        println!("{}", human::logged_in(&done))
    }
    // A login the store would not take is lost at the daemon's next restart: say so.
    let saved = client.status().map(|s| s.accounts.into_iter().find(|a| a.name == done.account));
    if let Ok(Some(account)) = saved
        && account.persisted == Some(false)
    {
        eprintln!("brokerctl: {}", human::NOT_SAVED);
    }
    Ok(())
}

/// The account a login is for, when it holds a session with a current token (or one being
/// refreshed). An expired token may have no refresh token behind it, and then only a login
/// helps: when in doubt, log in. None also when the daemon is to decide (no account named
/// and no default: its error says which to name).
fn held_session<'a>(status: &'a Status, account: Option<&str>) -> Option<&'a tokenbroker::protocol::AccountStatus> {
    let found = match account.filter(|a| !a.is_empty()) {
        Some(name) => status.accounts.iter().find(|a| a.name == name),
        None => status.accounts.iter().find(|a| a.default),
    }?;
    matches!(found.state, AccountState::Valid | AccountState::Refreshing).then_some(found)
}

fn already_logged_in(a: &tokenbroker::protocol::AccountStatus) -> String {
    let name = human::terminal_text(&a.name);
    let who = a.subject.as_deref().map(|s| format!(" as {}", human::terminal_text(s))).unwrap_or_default();
    format!(
        "Already logged in to {name}{who}; nothing to do. `brokerctl login --account {name} --force` logs in again."
    )
}

/// Refuse to show or open what no IdP should send (the daemon refuses it too).
fn check_challenge(c: &LoginChallenge) -> Result<(), Failure> {
    let urls = [&c.verification_uri, &c.verification_uri_complete, &c.authorization_url];
    if urls.into_iter().flatten().any(|u| !challenge::safe_url(u)) {
        return Err(Failure::Unsafe("the login's address is neither https nor on this machine; not opening it".into()));
    }
    if c.user_code.as_deref().is_some_and(|code| !challenge::printable_code(code)) {
        return Err(Failure::Unsafe(
            "the login's user code has characters a terminal would act on; not showing it".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenbroker::protocol::AccountStatus;

    fn account(name: &str, state: AccountState, default: bool) -> AccountStatus {
        serde_json::from_value(serde_json::json!({
            "name": name, "issuer": "https://idp", "state": state.as_str(), "scopes": [],
            "default": default, "subject": "alice",
        }))
        .unwrap()
    }

    #[test]
    fn a_held_session_is_one_that_gives_tokens_for_the_named_or_default_account() {
        let status = |accounts| Status { version: "x".into(), accounts, policy: None, forwards: None };
        let s =
            status(vec![account("work", AccountState::Valid, true), account("home", AccountState::LoggedOut, false)]);
        assert_eq!(held_session(&s, None).map(|a| a.name.as_str()), Some("work"));
        assert_eq!(held_session(&s, Some("work")).map(|a| a.name.as_str()), Some("work"));
        assert!(held_session(&s, Some("home")).is_none(), "logged out");
        assert!(held_session(&s, Some("nope")).is_none(), "the daemon says it is unknown");
        for (state, held) in [
            (AccountState::Expired, false),
            (AccountState::Refreshing, true),
            (AccountState::LoginRequired, false),
            (AccountState::LoggedOut, false),
        ] {
            let s = status(vec![account("work", state, true)]);
            assert_eq!(held_session(&s, None).is_some(), held, "{state:?}");
        }
        let no_default = status(vec![account("work", AccountState::Valid, false)]);
        assert!(held_session(&no_default, None).is_none());
        let said = already_logged_in(&account("work", AccountState::Valid, true));
        assert!(said.contains("as alice") && said.contains("--force"), "{said}");
    }
}
