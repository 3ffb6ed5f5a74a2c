//! A desktop notification service on a test's private bus, speaking the freedesktop
//! Notifications spec (`org.freedesktop.Notifications` at `/org/freedesktop/Notifications`):
//! `Notify` returns ids from 1, `CloseNotification` emits `NotificationClosed`, and it offers
//! actions, a body and body markup. A test reads what it was asked to show and plays the
//! person: [`Notifications::invoke`] clicks an action (`ActionInvoked`).
//!
//! It runs on a thread of its own, which can first become another user (for tests of a bus open
//! to other users, run as root).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::object_server::SignalEmitter;
use zbus::zvariant::{OwnedValue, Value};

use crate::bus::Bus;

pub const NOTIFICATIONS_NAME: &str = "org.freedesktop.Notifications";
pub const NOTIFICATIONS_PATH: &str = "/org/freedesktop/Notifications";

/// One `Notify` call, as it came.
#[derive(Debug, Clone)]
pub struct Notification {
    pub id: u32,
    /// The unique bus name that asked.
    pub sender: String,
    pub app_name: String,
    pub summary: String,
    pub body: String,
    /// Keys and labels, in pairs, as sent.
    pub actions: Vec<String>,
    pub urgency: Option<u8>,
    pub resident: Option<bool>,
    pub expire_timeout: i32,
    /// Closed by `CloseNotification`, or by the test ([`Notifications::dismiss`]).
    pub closed: bool,
}

impl Notification {
    /// The action keys offered (`once`, `always`, `deny`).
    pub fn action_keys(&self) -> Vec<&str> {
        self.actions.iter().step_by(2).map(String::as_str).collect()
    }
}

#[derive(Default)]
struct State {
    next: u32,
    shown: Vec<Notification>,
}

struct Server {
    state: Arc<Mutex<State>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        #[zbus(header)] header: zbus::message::Header<'_>,
        app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedValue>,
        expire_timeout: i32,
    ) -> u32 {
        let mut state = self.state.lock().unwrap();
        let id = if replaces_id != 0 && state.shown.iter().any(|n| n.id == replaces_id) {
            state.shown.retain(|n| n.id != replaces_id);
            replaces_id
        } else {
            state.next += 1;
            state.next
        };
        let urgency = hints.get("urgency").and_then(|v| match &**v {
            Value::U8(u) => Some(*u),
            _ => None,
        });
        let resident = hints.get("resident").and_then(|v| match &**v {
            Value::Bool(b) => Some(*b),
            _ => None,
        });
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        let n = Notification {
            id,
            sender,
            app_name,
            summary,
            body,
            actions,
            urgency,
            resident,
            expire_timeout,
            closed: false,
        };
        state.shown.push(n);
        id
    }

    async fn close_notification(
        &self,
        id: u32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        let open = {
            let mut state = self.state.lock().unwrap();
            match state.shown.iter_mut().find(|n| n.id == id && !n.closed) {
                Some(n) => {
                    n.closed = true;
                    true
                }
                None => false,
            }
        };
        if !open {
            return Err(zbus::fdo::Error::Failed(format!("no notification {id}")));
        }
        // Reason 3: closed by a call to CloseNotification.
        Server::notification_closed(&emitter, id, 3).await?;
        Ok(())
    }

    fn get_capabilities(&self) -> Vec<String> {
        ["actions", "body", "body-markup"].map(String::from).to_vec()
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("tokenbroker-testkit".into(), "tokenbroker".into(), "0.1".into(), "1.2".into())
    }

    #[zbus(signal)]
    async fn action_invoked(emitter: &SignalEmitter<'_>, id: u32, action_key: &str) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn notification_closed(emitter: &SignalEmitter<'_>, id: u32, reason: u32) -> zbus::Result<()>;
}

enum Command {
    Action(u32, String, std::sync::mpsc::Sender<()>),
    Closed(u32, u32, std::sync::mpsc::Sender<()>),
}

/// The running service; stops (and gives the name up) when dropped.
pub struct Notifications {
    state: Arc<Mutex<State>>,
    commands: Option<tokio::sync::mpsc::UnboundedSender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Notifications {
    /// Serve on `bus` as this process's user, owning the name.
    pub fn start(bus: &Bus) -> Notifications {
        Self::start_with(bus, None)
    }

    /// Serve on `bus` (which must be open to other users) as the user `uid`: this process
    /// must be root. Its thread takes `uid` for itself alone (the raw system calls change
    /// only the calling thread's credentials), so the bus records the connection as `uid`'s.
    pub fn start_as(bus: &Bus, uid: u32) -> Notifications {
        Self::start_with(bus, Some(uid))
    }

    fn start_with(bus: &Bus, uid: Option<u32>) -> Notifications {
        let state = Arc::new(Mutex::new(State::default()));
        let (commands, mut received) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let address = bus.address.clone();
        let server = Server { state: state.clone() };
        let thread = std::thread::spawn(move || {
            if let Some(uid) = uid {
                become_user(uid);
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let conn = zbus::connection::Builder::address(address.as_str())
                    .unwrap()
                    .serve_at(NOTIFICATIONS_PATH, server)
                    .unwrap()
                    .name(NOTIFICATIONS_NAME)
                    .unwrap()
                    .build()
                    .await
                    .expect("the notification service could not take its name");
                ready_tx.send(()).unwrap();
                let iface = conn.object_server().interface::<_, Server>(NOTIFICATIONS_PATH).await.unwrap();
                while let Some(command) = received.recv().await {
                    let emitter = iface.signal_emitter();
                    match command {
                        Command::Action(id, key, done) => {
                            Server::action_invoked(emitter, id, &key).await.unwrap();
                            let _ = done.send(());
                        }
                        Command::Closed(id, reason, done) => {
                            Server::notification_closed(emitter, id, reason).await.unwrap();
                            let _ = done.send(());
                        }
                    }
                }
            });
        });
        ready.recv_timeout(Duration::from_secs(20)).expect("the notification service did not start");
        Notifications { state, commands: Some(commands), thread: Some(thread) }
    }

    /// Every notification it was asked to show, in order.
    pub fn shown(&self) -> Vec<Notification> {
        self.state.lock().unwrap().shown.clone()
    }

    /// Wait (up to `limit`) until it has been asked to show `n` notifications; all of them.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Notification> {
        let deadline = Instant::now() + limit;
        loop {
            let shown = self.shown();
            if shown.len() >= n {
                return shown;
            }
            assert!(Instant::now() < deadline, "{} notifications shown, not {n}: {shown:#?}", shown.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The person clicks the action `key` of notification `id` (`ActionInvoked`, once sent).
    pub fn invoke(&self, id: u32, key: &str) {
        let (done, sent) = std::sync::mpsc::channel();
        self.command(Command::Action(id, key.into(), done));
        sent.recv_timeout(Duration::from_secs(10)).expect("ActionInvoked was not sent");
    }

    /// The person dismisses notification `id` without answering (`NotificationClosed`,
    /// reason 2).
    pub fn dismiss(&self, id: u32) {
        if let Some(n) = self.state.lock().unwrap().shown.iter_mut().find(|n| n.id == id) {
            n.closed = true;
        }
        let (done, sent) = std::sync::mpsc::channel();
        self.command(Command::Closed(id, 2, done));
        sent.recv_timeout(Duration::from_secs(10)).expect("NotificationClosed was not sent");
    }

    fn command(&self, command: Command) {
        self.commands.as_ref().unwrap().send(command).map_err(|_| ()).expect("the notification service stopped");
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// This thread (alone) becomes `uid`, with that user's primary group.
fn become_user(uid: u32) {
    let out = std::process::Command::new("id").args(["-g", &uid.to_string()]).output().unwrap();
    let gid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(65534);
    // SAFETY: raw system calls on this thread's credentials, with valid arguments.
    unsafe {
        assert_eq!(libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()), 0);
        assert_eq!(libc::syscall(libc::SYS_setresgid, gid, gid, gid), 0);
        assert_eq!(libc::syscall(libc::SYS_setresuid, uid, uid, uid), 0);
    }
}
