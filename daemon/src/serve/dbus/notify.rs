//! The policy's questions as desktop notifications (`org.freedesktop.Notifications` on the
//! session bus): one per question, with "Allow once", "Always allow" and "Deny"; an action
//! answers the question, and a question answered elsewhere or ended unanswered closes its
//! notification. All of it runs off the core's events, never on a request's path.
//!
//! Only the notification service's answers count: an action is taken from the unique name that
//! owns `org.freedesktop.Notifications` when it is checked to run as our user, and only for a
//! notification we created there. On a bus other users can join, anyone may send a signal
//! named `ActionInvoked`; the bus tells who sent it, and that is what is checked. A question is
//! not shown to a notification service of another user at all (it names our program, account
//! and API).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokenbroker::protocol::ConsentQuestion;
use tokio_util::sync::CancellationToken;
use zbus::names::{BusName, OwnedUniqueName};
use zbus::zvariant::Value;
use zbus::{Connection, fdo};

use crate::broker::consent::{self, Desk};
use crate::broker::notice::Notices;
use crate::broker::policy::Answer;
use crate::broker::request::me;
use crate::broker::{Broker, Event};

mod notices;

const NAME: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
/// How long a call to the notification service may take: a hung one holds up no question
/// for long (the person can still answer with brokerctl).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

#[zbus::proxy(
    interface = "org.freedesktop.Notifications",
    default_path = "/org/freedesktop/Notifications",
    gen_blocking = false
)]
trait Notifications {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: &str,
        replaces_id: u32,
        app_icon: &str,
        summary: &str,
        body: &str,
        actions: &[&str],
        hints: HashMap<&str, Value<'_>>,
        expire_timeout: i32,
    ) -> zbus::Result<u32>;
    fn close_notification(&self, id: u32) -> zbus::Result<()>;
    fn get_capabilities(&self) -> zbus::Result<Vec<String>>;
    fn get_server_information(&self) -> zbus::Result<(String, String, String, String)>;
}

/// The notification service on the bus, if there is one and it runs as our user: its unique
/// name. Otherwise what is there instead. A service the bus can start is started.
async fn server(conn: &Connection) -> Result<OwnedUniqueName, Desk> {
    let bus = fdo::DBusProxy::new(conn).await.map_err(|_| Desk::NoBus)?;
    let name = BusName::from_static_str(NAME).map_err(|_| Desk::Missing)?;
    let owner = match bus.get_name_owner(name.clone()).await {
        Ok(owner) => owner,
        Err(fdo::Error::NameHasNoOwner(_)) => {
            let activatable = bus.list_activatable_names().await.unwrap_or_default();
            if !activatable.iter().any(|n| n.as_str() == NAME) {
                return Err(Desk::Missing);
            }
            let wanted = zbus::names::WellKnownName::from_static_str(NAME).map_err(|_| Desk::Missing)?;
            let started = tokio::time::timeout(Duration::from_secs(10), bus.start_service_by_name(wanted, 0)).await;
            if !matches!(started, Ok(Ok(_))) {
                return Err(Desk::Missing);
            }
            bus.get_name_owner(name).await.map_err(|_| Desk::Missing)?
        }
        Err(_) => return Err(Desk::Missing),
    };
    match bus.get_connection_unix_user(BusName::Unique(owner.clone().into())).await {
        Ok(uid) if uid == me() => Ok(owner),
        Ok(uid) => Err(Desk::Foreign(Some(uid))),
        Err(_) => Err(Desk::Foreign(None)),
    }
}

async fn proxy(conn: &Connection, server: &OwnedUniqueName) -> zbus::Result<NotificationsProxy<'static>> {
    NotificationsProxy::builder(conn)
        .destination(server.clone())?
        .cache_properties(zbus::proxy::CacheProperties::No)
        .build()
        .await
}

/// For the doctor: who shows questions now.
async fn probe(conn: &Connection) -> Desk {
    let server = match server(conn).await {
        Ok(s) => s,
        Err(desk) => return desk,
    };
    let info = match proxy(conn, &server).await {
        Ok(p) => tokio::time::timeout(CALL_TIMEOUT, p.get_server_information()).await.ok().and_then(Result::ok),
        Err(_) => None,
    };
    match info {
        Some((name, vendor, version, _)) => Desk::Shown(printable(&format!("{name} {version} ({vendor})"), 100)),
        None => Desk::Shown(format!("{NAME} ({server})")),
    }
}

/// The door's task: show each question, take the person's answer from the notification, and
/// close the notification when the question ends. Runs until `stop`, after the events sent
/// before it (so the questions a stop ended are closed on the desktop too).
pub fn spawn(conn: &Connection, broker: Arc<Broker>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    // The doctor asks this task (which holds the connection) rather than holding the
    // connection itself: the connection serves the interface, which holds the broker.
    let (probes, mut probe_rx) = tokio::sync::mpsc::channel::<tokio::sync::oneshot::Sender<Desk>>(4);
    broker.consents().set_desk(Arc::new(move || {
        let probes = probes.clone();
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            if probes.send(reply).await.is_err() {
                return Desk::NoBus;
            }
            answer.await.unwrap_or(Desk::NoBus)
        })
    }));
    let mut events = broker.subscribe();
    let conn = conn.clone();
    tokio::spawn(async move {
        let mut notifier = Notifier {
            conn,
            broker,
            shown: HashMap::new(),
            by_question: HashMap::new(),
            told: None,
            servers: Arc::new(Mutex::new(HashSet::new())),
            signals: None,
            stop: stop.clone(),
            notices: Notices::default(),
        };
        loop {
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Ok(Event::ConsentAsked(q)) => notifier.show(&q).await,
                    Ok(Event::ConsentClosed { id }) => notifier.closed(&id).await,
                    Ok(event) if notifier.broker.notify() => {
                        if let Some((account, notice)) = notifier.notices.on(&event, tokio::time::Instant::now()) {
                            notifier.notice(&account, notice).await;
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = stop.cancelled() => return,
                Some(reply) = probe_rx.recv() => {
                    let _ = reply.send(probe(&notifier.conn).await);
                }
                Some(message) = next_signal(&mut notifier.signals) => notifier.signal(&message).await,
            }
        }
    })
}

/// The next signal of ours, once we listen (never, before).
async fn next_signal(signals: &mut Option<tokio::sync::mpsc::Receiver<zbus::Message>>) -> Option<zbus::Message> {
    match signals {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Listen to the notification services' signals: from the first question shown on, so a
/// daemon whose policy never asks adds no match rule to the bus and holds no queue for it.
async fn listen(
    conn: &Connection,
    servers: Arc<Mutex<HashSet<OwnedUniqueName>>>,
    stop: CancellationToken,
) -> zbus::Result<tokio::sync::mpsc::Receiver<zbus::Message>> {
    let rule = zbus::MatchRule::builder().msg_type(zbus::message::Type::Signal).interface(NAME)?.path(PATH)?.build();
    let signals = zbus::MessageStream::for_match_rule(rule, conn, Some(64)).await?;
    Ok(sift(signals, servers, stop))
}

/// The signals of the notification services we showed questions on, read off the bus at once:
/// zbus holds up the connection's reader while a stream's queue is full, and anyone on the bus
/// may send signals that match ours. Others' are dropped here; ours wait (64 at most, more are
/// dropped) while the notifier is busy with a call.
fn sift(
    mut signals: zbus::MessageStream,
    servers: Arc<Mutex<HashSet<OwnedUniqueName>>>,
    stop: CancellationToken,
) -> tokio::sync::mpsc::Receiver<zbus::Message> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                _ = stop.cancelled() => return,
                message = signals.next() => match message {
                    Some(Ok(m)) => m,
                    Some(Err(_)) => continue,
                    None => return,
                },
            };
            let ours = message.header().sender().is_some_and(|sender| {
                let servers = servers.lock().unwrap_or_else(|e| e.into_inner());
                servers.iter().any(|s| s.as_str() == sender.as_str())
            });
            if !ours {
                tracing::trace!("ignored a notification signal from a connection we showed nothing on");
                continue;
            }
            if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = tx.try_send(message) {
                return;
            }
        }
    });
    rx
}

struct Notifier {
    conn: Connection,
    broker: Arc<Broker>,
    /// (server, notification id) → what we showed there.
    shown: HashMap<(OwnedUniqueName, u32), Shown>,
    /// Question id → where it is shown.
    by_question: HashMap<String, (OwnedUniqueName, u32)>,
    /// What was last said in the log about the notification service not being there, so it
    /// is said once, not for every question.
    told: Option<Desk>,
    /// The services we showed a question on: only their signals are read.
    servers: Arc<Mutex<HashSet<OwnedUniqueName>>>,
    /// Their signals, once a question was shown ([`listen`]).
    signals: Option<tokio::sync::mpsc::Receiver<zbus::Message>>,
    stop: CancellationToken,
    /// When to tell the person about an account (`notify = true`).
    notices: Notices,
}

enum Shown {
    Question {
        question: String,
        /// Whether "Always allow" was offered (only for a program that can be told again).
        always: bool,
    },
    /// A notice about an account, with its "Log in" (notices.rs).
    Notice { account: String },
}

impl Notifier {
    /// Our notification service, listened to, or None (said in the log once while it stays so).
    async fn desk(&mut self) -> Option<OwnedUniqueName> {
        let server = match server(&self.conn).await {
            Ok(s) => s,
            Err(desk) => {
                if self.told.as_ref() != Some(&desk) {
                    let why = match &desk {
                        Desk::Foreign(Some(uid)) => format!("it is served by another user (UID {uid})"),
                        Desk::Foreign(None) => "it is served by a connection whose user the bus would not tell".into(),
                        _ => "there is no notification service on the session bus".into(),
                    };
                    tracing::info!(
                        "questions are not shown on the desktop ({why}); answer them with `brokerctl consent list` and `brokerctl consent allow ID`"
                    );
                    self.told = Some(desk);
                }
                return None;
            }
        };
        self.told = None;
        // Before the notification exists, so no signal of it is missed.
        if self.signals.is_none() {
            match listen(&self.conn, self.servers.clone(), self.stop.clone()).await {
                Ok(signals) => self.signals = Some(signals),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen to desktop notifications; questions are answered with `brokerctl consent` only");
                    return None;
                }
            }
        }
        self.servers.lock().unwrap_or_else(|e| e.into_inner()).insert(server.clone());
        Some(server)
    }

    async fn show(&mut self, q: &ConsentQuestion) {
        let Some(server) = self.desk().await else { return };
        let shown = async {
            let proxy = proxy(&self.conn, &server).await?;
            let markup = proxy.get_capabilities().await?.iter().any(|c| c == "body-markup");
            let always = q.exe.is_some() || q.app_id.is_some();
            let (summary, body) = text(q, markup);
            let mut actions = vec!["once", "Allow once"];
            if always {
                actions.extend(["always", "Always allow"]);
            }
            actions.extend(["deny", "Deny"]);
            let hints = HashMap::from([("urgency", Value::U8(2)), ("resident", Value::Bool(true))]);
            let left_ms = (q.expires_at.saturating_mul(1000) - now_ms()).clamp(1000, i64::from(i32::MAX));
            let id = proxy.notify("tokenbroker", 0, "", &summary, &body, &actions, hints, left_ms as i32).await?;
            zbus::Result::Ok((id, always))
        };
        match tokio::time::timeout(CALL_TIMEOUT, shown).await {
            Ok(Ok((id, always))) => {
                tracing::debug!(question = %q.id, notification = id, server = %server, "question shown on the desktop");
                self.by_question.insert(q.id.clone(), (server.clone(), id));
                self.shown.insert((server, id), Shown::Question { question: q.id.clone(), always });
            }
            Ok(Err(e)) => {
                tracing::info!(error = %e, "could not show a question on the desktop; `brokerctl consent` answers it")
            }
            Err(_) => {
                tracing::info!("the notification service did not answer; `brokerctl consent` answers the question")
            }
        }
    }

    /// The question ended (answered, anywhere, or unanswered): its notification goes.
    async fn closed(&mut self, question: &str) {
        let Some((server, id)) = self.by_question.remove(question) else { return };
        self.shown.remove(&(server.clone(), id));
        let close = async { proxy(&self.conn, &server).await?.close_notification(id).await };
        match tokio::time::timeout(CALL_TIMEOUT, close).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, notification = id, "could not close a notification"),
            Err(_) => tracing::debug!(notification = id, "the notification service did not answer CloseNotification"),
        }
    }

    async fn signal(&mut self, message: &zbus::Message) {
        let header = message.header();
        let (Some(member), Some(sender)) = (header.member(), header.sender()) else { return };
        let sender = OwnedUniqueName::from(sender.to_owned());
        match member.as_str() {
            "ActionInvoked" => {
                let Ok((id, key)) = message.body().deserialize::<(u32, String)>() else { return };
                self.action(sender, id, &key).await;
            }
            "NotificationClosed" => {
                let Ok((id, _reason)) = message.body().deserialize::<(u32, u32)>() else { return };
                // Dismissed without an answer: the question stays out, for brokerctl.
                if let Some(Shown::Question { question, .. }) = self.shown.remove(&(sender, id)) {
                    self.by_question.remove(&question);
                }
            }
            _ => {}
        }
    }

    async fn action(&mut self, sender: OwnedUniqueName, id: u32, key: &str) {
        let Some(shown) = self.shown.get(&(sender.clone(), id)) else {
            tracing::debug!(%sender, notification = id, "ignored an action on no notification of ours");
            return;
        };
        // The sender was the service, and ours, when the notification was made; it must still
        // be both (unique names are never reused, but a name can change hands).
        match server(&self.conn).await {
            Ok(owner) if owner == sender => {}
            _ => {
                tracing::warn!(%sender, "ignored a notification action from a connection that is not our notification service");
                return;
            }
        }
        let (question, always) = match shown {
            Shown::Question { question, always } => (question.clone(), *always),
            Shown::Notice { account } => {
                if key == "login" {
                    let account = account.clone();
                    self.log_in(sender, id, account);
                }
                return;
            }
        };
        let answer = match key {
            "once" => Answer::Once,
            "always" if always => Answer::Always,
            "deny" => Answer::Denied,
            _ => return,
        };
        tracing::debug!(%question, ?answer, "question answered on the desktop");
        // Its ConsentClosed closes the notification (a resident one stays after an action).
        consent::answer(&self.broker, &question, answer);
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Without control characters (line breaks included) or bidirectional overrides, at most
/// `max` characters: the question's words come from other programs (an exe path is whatever
/// its program chose).
fn printable(text: &str, max: usize) -> String {
    let bidi = |c: char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    let mut out: String = text.chars().filter(|&c| !c.is_control() && !bidi(c)).take(max + 1).collect();
    if out.chars().count() > max {
        out = out.chars().take(max).collect::<String>() + "…";
    }
    out
}

/// Text the notification service shows as written: with body markup, `<`, `>`, `&` and quotes
/// would be read as markup.
fn escape(text: &str, markup: bool) -> String {
    if !markup {
        return text.to_owned();
    }
    crate::markup::escape(text)
}

/// The notification's summary and body: the program, the account, the API, what it asks for.
/// Every word from the question is made printable, and escaped where the service reads markup.
fn text(q: &ConsentQuestion, markup: bool) -> (String, String) {
    let word = |t: &str, max| escape(&printable(t, max), markup);
    let bold = |t: String| if markup { format!("<b>{t}</b>") } else { t };
    let summary = format!("Allow a program to use your account {}?", word(&q.account, 60));
    let api = match &q.audience {
        Some(aud) => word(aud, 200),
        None => "the account's own token".into(),
    };
    let methods: Vec<String> = q.methods.iter().map(|m| word(m, 40)).collect();
    let pids: Vec<String> = q.pids.iter().take(8).map(|p| p.to_string()).collect();
    let waiting = if q.waiting == 1 { "1 request waits".to_owned() } else { format!("{} requests wait", q.waiting) };
    let body = format!(
        "{} (pid {}) asks for {} of account {}.\nAPI: {api}\n{waiting}; unanswered, it is refused. \
         `brokerctl consent` answers from a terminal too.",
        bold(word(&q.program, 200)),
        pids.join(", "),
        methods.join(", "),
        bold(word(&q.account, 60)),
    );
    (summary, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(exe: &str) -> ConsentQuestion {
        ConsentQuestion {
            id: "q1".into(),
            program: exe.into(),
            exe: Some(exe.into()),
            app_id: None,
            pids: vec![42],
            account: "work".into(),
            audience: Some("https://api.example.com".into()),
            methods: vec!["GetAccessToken".into()],
            waiting: 3,
            expires_at: 0,
        }
    }

    #[test]
    fn other_programs_words_are_printable_and_escaped_where_markup_is_read() {
        let q = question("/tmp/x<b>&\u{1b}[31m\u{202e}\n/evil");
        let (summary, body) = text(&q, true);
        assert!(body.contains("<b>/tmp/x&lt;b&gt;&amp;[31m/evil</b>"), "{body}");
        assert!(!body.contains('\u{1b}') && !body.contains('\u{202e}'), "{body:?}");
        assert!(body.contains("https://api.example.com") && body.contains("GetAccessToken") && body.contains("pid 42"));
        assert!(summary.contains("work"), "{summary}");
        // Without markup, the text as it is (but printable).
        let (_, plain) = text(&q, false);
        assert!(plain.contains("/tmp/x<b>&[31m/evil") && !plain.contains("&amp;"), "{plain}");
        assert_eq!(printable(&"a".repeat(300), 200).chars().count(), 201);
    }
}
