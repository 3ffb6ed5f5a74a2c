//! Asking the person, for the policy's `ask`: the caller waits while a question is out. All
//! the requests of one program for one account and audience share one question; an answer
//! ends it for all of them. "Always allow" is remembered in the state dir (never the config),
//! listed and revocable. The question is shown by whoever listens to [`Event::ConsentAsked`]
//! (the D-Bus door's desktop notification) and answered by [`answer`] (`brokerctl consent`,
//! the notification's actions).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokenbroker::ErrorKind;
use tokenbroker::protocol::{self as wire, ConsentQuestion, RememberedConsent};
use tokio::sync::watch;

use super::policy::{Answer, By};
use super::request::Caller;
use super::{Broker, Error, Event, Result, session};

/// How long a caller waits for the person before it is refused, unless `[policy]
/// ask_timeout` says otherwise.
#[cfg_attr(not(test), allow(dead_code))]
pub const WAIT: Duration = Duration::from_secs(60);

/// One request's question, before it is known whether another request already asked it.
#[derive(Clone)]
pub struct Question {
    program: Program,
    caller: Caller,
    method: &'static str,
    account: String,
    audience: Option<String>,
}

/// A program as the person knows it and as an "always" is remembered for: its app ID (a
/// sandbox's word), else its executable; a program that is neither can be asked about but not
/// remembered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Program {
    AppId(String),
    Exe(String),
    Unknown(i32),
    /// A request through a forward (`forward:NAME`): the process we see is the local end of
    /// the tunnel (`ssh`, a container runtime), the same for every forward, so the question is
    /// about the forward, and an "always" is not remembered (it would cover every forward).
    Forward(String),
}

impl Program {
    fn of(caller: &Caller) -> Program {
        if let Some(name) = caller.door.forward_name() {
            return Program::Forward(name.to_owned());
        }
        match (&caller.app_id, &caller.exe) {
            (Some(app), _) => Program::AppId(app.to_string()),
            (None, Some(exe)) => Program::Exe(exe.to_string()),
            (None, None) => Program::Unknown(caller.pid.unwrap_or(0)),
        }
    }

    fn name(&self) -> String {
        match self {
            Program::AppId(app) => app.clone(),
            Program::Exe(exe) => exe.clone(),
            Program::Unknown(pid) => format!("pid {pid} (unknown program)"),
            Program::Forward(door) => format!("a program on the far side of {door}"),
        }
    }
}

impl Question {
    pub fn new(caller: &Caller, method: &'static str, account: &str, audience: Option<&str>) -> Question {
        Question {
            program: Program::of(caller),
            caller: caller.clone(),
            method,
            account: account.to_owned(),
            audience: audience.map(str::to_owned),
        }
    }

    fn key(&self) -> Key {
        (self.program.clone(), self.account.clone(), self.audience.clone())
    }
}

type Key = (Program, String, Option<String>);

/// The questions out and the "always" answers.
pub struct Consents {
    pending: Mutex<HashMap<Key, Arc<Pending>>>,
    remembered: Mutex<Vec<Remembered>>,
    /// Where the "always" answers are kept; `None`: in memory only (tests).
    file: Option<PathBuf>,
    /// How to find out who shows the questions on the desktop: set by the D-Bus door.
    desk: Mutex<Option<DeskProbe>>,
}

/// Who can show the person a question on the desktop, as the D-Bus door finds it (for the
/// doctor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Desk {
    /// No D-Bus door (no session bus, or `--no-dbus`).
    NoBus,
    /// Nobody serves `org.freedesktop.Notifications` on the session bus.
    Missing,
    /// It is served by a connection of another user (the UID), or of one the bus would not tell.
    Foreign(Option<u32>),
    /// It is served, by us; the server's name and version.
    Shown(String),
}

/// Looks for the desktop's notification service, now.
pub type DeskProbe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Desk> + Send>> + Send + Sync>;

struct Pending {
    id: String,
    first: Question,
    expires_at: i64,
    deadline: tokio::time::Instant,
    answer: watch::Sender<Option<Answer>>,
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    count: u32,
    pids: Vec<i32>,
    methods: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Remembered {
    id: String,
    program: Program,
    account: String,
    audience: Option<String>,
    since: i64,
}

#[derive(Default, Serialize, Deserialize)]
struct RememberedFile {
    always: Vec<Remembered>,
}

impl Consents {
    /// The "always" answers kept in `file` (none yet if it does not exist). An unreadable file
    /// is reported and taken as empty: the person is asked again, nothing is allowed unasked.
    pub fn load(file: Option<PathBuf>) -> Consents {
        let remembered = file.as_deref().map(read).unwrap_or_default();
        Consents { pending: Mutex::default(), remembered: Mutex::new(remembered), file, desk: Mutex::default() }
    }

    /// The D-Bus door says how it finds the notification service.
    pub fn set_desk(&self, probe: DeskProbe) {
        *self.desk.lock().unwrap_or_else(|e| e.into_inner()) = Some(probe);
    }

    /// Who shows questions on the desktop now.
    pub async fn desk(&self) -> Desk {
        let probe = self.desk.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match probe {
            Some(probe) => probe().await,
            None => Desk::NoBus,
        }
    }

    fn remembered_for(&self, q: &Question) -> bool {
        let remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        remembered.iter().any(|r| r.program == q.program && r.account == q.account && r.audience == q.audience)
    }

    /// How many questions are out (for `Status`).
    pub fn waiting(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// How many "always" answers are kept (for `Status`).
    pub fn remembered(&self) -> usize {
        self.remembered.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn read(path: &Path) -> Vec<Remembered> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<RememberedFile>(&bytes) {
            Ok(f) => f.always,
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "remembered consent is unreadable; asking again");
                Vec::new()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "cannot read remembered consent; asking again");
            Vec::new()
        }
    }
}

/// Write the "always" answers: a new file of our own (0600, no symlink followed) renamed over
/// the old one.
fn write(path: &Path, remembered: &[Remembered]) -> std::io::Result<()> {
    let text =
        serde_json::to_vec_pretty(&RememberedFile { always: remembered.to_vec() }).map_err(std::io::Error::other)?;
    crate::private_file::replace(path, &text)
}

/// Ask the person (unless they said "always" before) and wait for the answer, at most
/// `wait` (the policy's, [`WAIT`] by default) from when the question was first asked.
pub async fn ask(broker: &Arc<Broker>, question: Question, wait: Duration) -> By {
    let consents = &broker.consents;
    if consents.remembered_for(&question) {
        return By::Consent(Answer::Always);
    }
    let (pending, mut answer) = {
        let mut all = consents.pending.lock().unwrap_or_else(|e| e.into_inner());
        let key = question.key();
        let pending = match all.get(&key) {
            Some(p) => p.clone(),
            None => {
                let pending = Arc::new(Pending {
                    id: format!("{:08x}", rand::random::<u32>()),
                    expires_at: session::now_ms() / 1000 + wait.as_secs() as i64,
                    deadline: tokio::time::Instant::now() + wait,
                    answer: watch::channel(None).0,
                    waiting: Mutex::default(),
                    first: question.clone(),
                });
                all.insert(key, pending.clone());
                broker.emit(Event::ConsentAsked(Arc::new(pending.wire())));
                pending
            }
        };
        let mut waiting = pending.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.count += 1;
        if let Some(pid) = question.caller.pid.filter(|p| !waiting.pids.contains(p)) {
            waiting.pids.push(pid);
        }
        if !waiting.methods.contains(&question.method) {
            waiting.methods.push(question.method);
        }
        drop(waiting);
        let answer = pending.answer.subscribe();
        (pending, answer)
    };
    let got = tokio::select! {
        got = answer.wait_for(Option::is_some) => got.ok().and_then(|a| *a),
        _ = tokio::time::sleep_until(pending.deadline) => None,
        _ = broker.shutdown.cancelled() => None,
    };
    match got {
        Some(answer) => By::Consent(answer),
        None => {
            close(broker, &pending.id, Answer::Unanswered);
            By::Consent(Answer::Unanswered)
        }
    }
}

impl Pending {
    fn wire(&self) -> ConsentQuestion {
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let q = &self.first;
        ConsentQuestion {
            id: self.id.clone(),
            program: q.program.name(),
            // A forward's local end says nothing of who asks on the far side.
            exe: q.caller.exe.as_deref().filter(|_| !matches!(q.program, Program::Forward(_))).map(str::to_owned),
            app_id: q.caller.app_id.as_deref().filter(|_| !matches!(q.program, Program::Forward(_))).map(str::to_owned),
            pids: if waiting.pids.is_empty() { q.caller.pid.into_iter().collect() } else { waiting.pids.clone() },
            account: q.account.clone(),
            audience: q.audience.clone(),
            methods: if waiting.methods.is_empty() {
                vec![q.method.to_owned()]
            } else {
                waiting.methods.iter().map(|m| m.to_string()).collect()
            },
            waiting: waiting.count.max(1),
            expires_at: self.expires_at,
        }
    }
}

/// End question `id` with `answer` for everyone waiting on it; whether it was still out.
fn close(broker: &Broker, id: &str, answer: Answer) -> Option<Arc<Pending>> {
    let pending = {
        let mut all = broker.consents.pending.lock().unwrap_or_else(|e| e.into_inner());
        let key = all.iter().find(|(_, p)| p.id == id).map(|(k, _)| k.clone())?;
        all.remove(&key)?
    };
    pending.answer.send_replace(Some(answer));
    broker.emit(Event::ConsentClosed { id: id.to_owned() });
    Some(pending)
}

/// The person's answer to question `id`, from a door that knows it is the person's (the
/// desktop notification's action) or from `AnswerConsent` (checked by [`answer_as`]).
pub fn answer(broker: &Broker, id: &str, answer: Answer) -> bool {
    let Some(pending) = close(broker, id, answer) else { return false };
    if answer == Answer::Always {
        remember(broker, &pending.first);
    }
    true
}

fn remember(broker: &Broker, q: &Question) {
    let consents = &broker.consents;
    let mut remembered = consents.remembered.lock().unwrap_or_else(|e| e.into_inner());
    if remembered.iter().any(|r| r.program == q.program && r.account == q.account && r.audience == q.audience) {
        return;
    }
    remembered.push(Remembered {
        id: format!("{:08x}", rand::random::<u32>()),
        program: q.program.clone(),
        account: q.account.clone(),
        audience: q.audience.clone(),
        since: session::now_ms() / 1000,
    });
    save(consents, &remembered);
}

fn save(consents: &Consents, remembered: &[Remembered]) {
    if let Some(path) = &consents.file
        && let Err(e) = write(path, remembered)
    {
        tracing::error!(file = %path.display(), error = %e, "cannot save remembered consent; it holds until the daemon stops");
    }
}

/// `AnswerConsent`: the answer of a program that may give it. A program cannot answer its own
/// question, a sandboxed app cannot answer at all, and an answer from a program that cannot be
/// told apart from the asker is refused.
pub fn answer_as(broker: &Broker, caller: &Caller, p: wire::AnswerConsent) -> Result<wire::ConsentAnswered> {
    if let Some(app) = &caller.app_id {
        return Err(Error::new(
            ErrorKind::AccessDenied,
            format!("{app} is a sandboxed app: it cannot answer questions"),
        ));
    }
    let pending = {
        let all = broker.consents.pending.lock().unwrap_or_else(|e| e.into_inner());
        all.values().find(|q| q.id == p.id).cloned()
    };
    let Some(pending) = pending else { return Ok(wire::ConsentAnswered { id: p.id, answered: false }) };
    let asker = &pending.first.program;
    if caller.exe.is_none() || Program::of(caller) == *asker {
        return Err(Error::new(
            ErrorKind::AccessDenied,
            "a program cannot answer a question about itself (or be told apart from the one that asked)",
        ));
    }
    let answer = match (p.allow, p.always) {
        (false, _) => Answer::Denied,
        (true, false) => Answer::Once,
        (true, true) if matches!(asker, Program::Unknown(_)) => {
            return Err(Error::new(
                ErrorKind::InvalidParams,
                "the asking program is unknown, so \"always\" cannot be remembered for it; allow it once",
            ));
        }
        (true, true) if matches!(asker, Program::Forward(_)) => {
            return Err(Error::new(
                ErrorKind::InvalidParams,
                "the question comes through a forward, whose far side cannot be told apart, so \"always\" \
                 cannot be remembered for it; allow it once, or allow the forward's door in [policy]",
            ));
        }
        (true, true) => Answer::Always,
    };
    let answered = self::answer(broker, &p.id, answer);
    Ok(wire::ConsentAnswered { id: p.id, answered })
}

/// `ListConsents`.
pub fn list(broker: &Broker) -> wire::Consents {
    let consents = &broker.consents;
    let mut pending: Vec<ConsentQuestion> =
        consents.pending.lock().unwrap_or_else(|e| e.into_inner()).values().map(|p| p.wire()).collect();
    pending.sort_by_key(|q| (q.expires_at, q.id.clone()));
    let remembered = consents.remembered.lock().unwrap_or_else(|e| e.into_inner());
    let remembered = remembered
        .iter()
        .map(|r| RememberedConsent {
            id: r.id.clone(),
            program: r.program.name(),
            account: r.account.clone(),
            audience: r.audience.clone(),
            since: r.since,
        })
        .collect();
    wire::Consents { pending, remembered }
}

/// `RevokeConsent`: forget an "always"; the program is asked again next time.
pub fn revoke(broker: &Broker, id: &str) -> wire::ConsentRevoked {
    let consents = &broker.consents;
    let mut remembered = consents.remembered.lock().unwrap_or_else(|e| e.into_inner());
    let before = remembered.len();
    remembered.retain(|r| r.id != id);
    let revoked = remembered.len() != before;
    if revoked {
        save(consents, &remembered);
    }
    wire::ConsentRevoked { id: id.to_owned(), revoked }
}
