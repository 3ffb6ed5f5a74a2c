//! Notices (`notify = true`): an account that needs a new login, or whose refreshes keep
//! failing, told on the desktop (when: broker/notice.rs), with a "Log in" action. The action
//! starts the account's login (its configured flow) and opens the browser through a one-time
//! link (browser.rs: the login's URL never goes on a command line); the notice is replaced by
//! one with the address and the device flow's code, which also serves when no browser opens.

use std::collections::HashMap;
use std::time::Duration;

use tokenbroker::protocol::{Flow, LoginChallenge};
use zbus::names::OwnedUniqueName;
use zbus::zvariant::Value;

use super::{CALL_TIMEOUT, Notifier, Shown, escape, printable, proxy};
use crate::broker::notice::Notice;

impl Notifier {
    /// Show `notice` about `account`, with its "Log in".
    pub(super) async fn notice(&mut self, account: &str, notice: Notice) {
        let Some(server) = self.desk().await else { return };
        let shown = async {
            let proxy = proxy(&self.conn, &server).await?;
            let markup = proxy.get_capabilities().await?.iter().any(|c| c == "body-markup");
            let (summary, body) = notice_text(account, notice, markup);
            let hints = HashMap::from([("urgency", Value::U8(1))]);
            proxy.notify("tokenbroker", 0, "", &summary, &body, &["login", "Log in"], hints, -1).await
        };
        match tokio::time::timeout(CALL_TIMEOUT, shown).await {
            Ok(Ok(id)) => {
                tracing::debug!(account, notification = id, ?notice, "notice shown on the desktop");
                self.shown.insert((server, id), Shown::Notice { account: account.to_owned() });
            }
            Ok(Err(e)) => tracing::info!(account, error = %e, "could not show a notice on the desktop"),
            Err(_) => tracing::info!(account, "the notification service did not answer; notice not shown"),
        }
    }

    /// "Log in" on the notice `id` at `server`: start the login, open the browser, and replace
    /// the notice with what to do. In a task of its own: the IdP may take a while to answer.
    pub(super) fn log_in(&mut self, server: OwnedUniqueName, id: u32, account: String) {
        self.shown.remove(&(server.clone(), id));
        let (conn, broker) = (self.conn.clone(), self.broker.clone());
        tokio::spawn(async move {
            tracing::info!(account, "login started from a desktop notice");
            let (summary, body) = match broker.start_login(&account).await {
                Ok(challenge) => {
                    let url = challenge.verification_uri_complete.as_ref().or(challenge.authorization_url.as_ref());
                    let opened = match url {
                        Some(url) => {
                            let lifetime = Duration::from_secs(challenge.expires_in.max(60));
                            crate::browser::open(url, lifetime, broker.browser_command().as_deref()).await
                        }
                        None => Err(std::io::Error::other("no URL to open")),
                    };
                    if let Err(e) = &opened {
                        tracing::info!(account, error = %e, "could not open a browser for the login");
                    }
                    (format!("Log in to {}", printable(&account, 60)), login_text(&account, &challenge, opened.is_ok()))
                }
                Err(e) => (
                    format!("Could not start the login to {}", printable(&account, 60)),
                    printable(&e.to_string(), 400),
                ),
            };
            let replace = async {
                let proxy = proxy(&conn, &server).await?;
                let markup = proxy.get_capabilities().await?.iter().any(|c| c == "body-markup");
                let body = if markup { escape(&body, true) } else { body };
                proxy.notify("tokenbroker", id, "", &summary, &body, &[], HashMap::new(), -1).await
            };
            if !matches!(tokio::time::timeout(CALL_TIMEOUT, replace).await, Ok(Ok(_))) {
                tracing::debug!(account, "could not replace the notice with the login's instructions");
            }
        });
    }
}

/// The notice's summary and body, the account's name printable and escaped for markup.
fn notice_text(account: &str, notice: Notice, markup: bool) -> (String, String) {
    let name = escape(&printable(account, 60), markup);
    match notice {
        Notice::LoginRequired => (
            format!("Log in to {name} again"),
            format!(
                "The identity provider ended the session of account {name}: programs that use it get no new \
                 tokens until you log in again."
            ),
        ),
        Notice::RefreshFailing { failures } => (
            format!("Tokens of {name} cannot be renewed"),
            format!(
                "The last {failures} refreshes of account {name} failed (the identity provider is unreachable or \
                 refusing). Its token serves until it expires; `brokerctl doctor` says more. Logging in again may help."
            ),
        ),
    }
}

/// What to do now that the login started: where the browser goes, and the device flow's code.
fn login_text(account: &str, c: &LoginChallenge, opened: bool) -> String {
    let account = printable(account, 60);
    match (c.flow, &c.verification_uri, &c.user_code) {
        (Flow::Device, Some(uri), Some(code)) => {
            let uri = printable(uri, 200);
            let code = printable(code, 40);
            if opened {
                format!("Your browser opens {uri} to log in to {account}; enter the code if it asks.\nCode: {code}")
            } else {
                format!("Open {uri} to log in to {account}, and enter the code.\nCode: {code}")
            }
        }
        _ if opened => format!("Your browser opens the identity provider's login page for {account}."),
        _ => format!("No browser could be opened: log in with `brokerctl login --account {account}`."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_text_carries_the_code_and_the_account_is_escaped_in_notices() {
        let c = LoginChallenge {
            login_id: "l".into(),
            flow: Flow::Device,
            expires_in: 600,
            verification_uri: Some("https://idp.example.com/device".into()),
            verification_uri_complete: None,
            user_code: Some("ABCD-EFGH".into()),
            authorization_url: None,
        };
        assert!(login_text("work", &c, true).ends_with("\nCode: ABCD-EFGH"));
        assert!(login_text("work", &c, false).starts_with("Open https://idp.example.com/device"));
        let (summary, body) = notice_text("a<b>", Notice::LoginRequired, true);
        assert!(summary.contains("a&lt;b&gt;") && body.contains("a&lt;b&gt;"), "{summary} {body}");
    }
}
