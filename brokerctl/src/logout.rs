//! `brokerctl logout`'s words: whether there was anything to log out of, and plainly what
//! became of the refresh token at the identity provider.

use tokenbroker::protocol::{LogoutDone, Revocation};

use crate::human::terminal_text;

/// What to tell the person, and, when the refresh token could not be revoked (it stays valid
/// at the IdP), why: the command then fails (exit 4) though nothing stays here.
pub struct Told {
    pub text: String,
    pub unrevoked: Option<String>,
}

pub fn tell(done: &LogoutDone) -> Told {
    let account = terminal_text(&done.account);
    if done.was_logged_in == Some(false) {
        return Told { text: format!("Not logged in to {account}: nothing to log out of.\n"), unrevoked: None };
    }
    let stays =
        "the refresh token could not be revoked at the identity provider: it stays valid there until it expires";
    let (mut text, unrevoked) = match (done.revocation, done.revoked) {
        (Some(Revocation::Revoked), _) | (None, true) => {
            (format!("Logged out of {account} (session revoked at the identity provider).\n"), None)
        }
        (Some(Revocation::Failed), _) => {
            let why = done.revocation_error.as_deref().map(terminal_text).unwrap_or_else(|| "no reason given".into());
            (format!("Logged out of {account} here, but {stays}.\n"), Some(format!("revoking failed: {why}")))
        }
        (Some(Revocation::Unsupported), _) => (
            format!(
                "Logged out of {account} here; the identity provider has no revocation endpoint, so the refresh \
                 token stays valid there until it expires.\n"
            ),
            None,
        ),
        (Some(Revocation::NoRefreshToken), _) => {
            (format!("Logged out of {account} (the session held no refresh token to revoke).\n"), None)
        }
        // A daemon from before `revocation`: it said only that nothing was revoked.
        (None, false) => (format!("Logged out of {account} here; the identity provider was not told.\n"), None),
    };
    if let Some(url) = &done.end_session_url {
        text.push_str(&format!(
            "To end the identity provider's browser session too, open:\n    {}\n",
            terminal_text(url)
        ));
    }
    Told { text, unrevoked }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(was_logged_in: Option<bool>, revocation: Option<Revocation>) -> LogoutDone {
        LogoutDone {
            account: "work".into(),
            revoked: revocation == Some(Revocation::Revoked),
            end_session_url: None,
            was_logged_in,
            revocation,
            revocation_error: (revocation == Some(Revocation::Failed)).then(|| "connection refused".into()),
        }
    }

    #[test]
    fn never_logged_in_is_not_called_logged_out() {
        let told = tell(&done(Some(false), None));
        assert_eq!(told.text, "Not logged in to work: nothing to log out of.\n");
        assert!(told.unrevoked.is_none());
    }

    #[test]
    fn a_failed_revocation_says_the_token_stays_valid_and_fails() {
        let told = tell(&done(Some(true), Some(Revocation::Failed)));
        assert!(
            told.text.contains("Logged out of work here, but the refresh token could not be revoked"),
            "{}",
            told.text
        );
        assert!(told.text.contains("stays valid there until it expires"), "{}", told.text);
        assert_eq!(told.unrevoked.as_deref(), Some("revoking failed: connection refused"));
    }

    #[test]
    fn revoked_unsupported_and_an_older_daemon_succeed() {
        for (d, said) in [
            (done(Some(true), Some(Revocation::Revoked)), "session revoked"),
            (done(Some(true), Some(Revocation::Unsupported)), "no revocation endpoint"),
            (done(Some(true), Some(Revocation::NoRefreshToken)), "no refresh token"),
            (done(None, None), "was not told"),
        ] {
            let told = tell(&d);
            assert!(told.text.contains(said) && told.unrevoked.is_none(), "{}", told.text);
        }
    }
}
