//! The daemon's wiring: arguments, logging, hardening, the store, the core, the doors, the
//! service manager's notifications, the audit trail's writer, and the signals: SIGTERM/SIGINT
//! stop, SIGHUP reloads.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::audit::Audit;
use crate::broker::Broker;
use crate::config::{self, Config, ConfigError, StoreKind};
use crate::store::SessionStore;
use crate::{activation, harden, logging, oidc, serve, sleep, state_dir, store};

/// How long a stop waits for in-flight requests and the core's tasks (a refresh on its way to
/// the store) before it gives up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Parser)]
#[command(
    name = "tokenbrokerd",
    version,
    about = "Per-user OAuth 2.0 / OpenID Connect token broker",
    after_long_help = DAEMON_NOTES
)]
pub struct Args {
    /// Config file [default: $TOKENBROKER_CONFIG, else $XDG_CONFIG_HOME/tokenbroker/config.toml]
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Unix socket to serve [default: $TOKENBROKER_SOCKET, else $XDG_RUNTIME_DIR/tokenbroker/broker.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Do not serve on the D-Bus session bus (the socket only).
    #[arg(long)]
    no_dbus: bool,
    /// Most client connections served at once; more are refused with an error.
    #[arg(long, default_value_t = 4096)]
    max_connections: usize,
    /// Seconds a client connection may stay silent, or leave an answer unread, before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    idle_timeout: u64,
    /// Do not serve: check what a start needs (the config, the session store, every account's
    /// identity provider), print a report like `brokerctl doctor`'s, and exit (1 when a check fails).
    #[arg(long)]
    check: bool,
    /// With --check: the report as one JSON line (the Diagnose method's result).
    #[arg(long, requires = "check")]
    json: bool,
}

/// Under `tokenbrokerd --help` and in tokenbrokerd(8): what the flags do not say.
const DAEMON_NOTES: &str = "\
Files:
  $XDG_CONFIG_HOME/tokenbroker/config.toml   the config (TOKENBROKER_CONFIG, --config)
  $XDG_RUNTIME_DIR/tokenbroker/broker.sock   the socket, 0600 in a 0700 directory
                                             (TOKENBROKER_SOCKET, --socket)
  $XDG_RUNTIME_DIR/tokenbroker/forward/NAME.sock
                                             a forward's socket (brokerctl forward)
  $XDG_STATE_HOME/tokenbroker/               the audit trail, remembered consents and
                                             the forwards (forwards.json)

Signals:
  SIGHUP           read the config again (a bad one is refused; the last good one stays)
  SIGTERM, SIGINT  finish what is in flight (at most 20 s), remove the socket, exit 0

Environment:
  TOKENBROKER_CONFIG, TOKENBROKER_SOCKET   as --config and --socket
  RUST_LOG                                 the log filter [default: info]
  DBUS_SESSION_BUS_ADDRESS                 the session bus to serve (and the keyring's)

brokerctl(1) is its command line; docs/reference.md in the source has the whole contract.";

/// The whole daemon, from hardening to the last drained request. Reads its arguments from the
/// command line (after hardening, and after taking an inherited socket, which edits the
/// environment before any thread starts).
pub fn start() -> anyhow::Result<ExitCode> {
    let not_hardened = harden::apply();
    harden::single_allocator_arena();
    // Taken before any thread starts: it edits the environment.
    let inherited = activation::inherited_listener().context("taking the socket from the service manager")?;
    let args = Args::parse();
    let config_path = args.config.clone().unwrap_or_else(Config::default_path);
    if args.check {
        // No log lines: the report is the output.
        return Ok(crate::check::main(&config_path, args.json));
    }
    logging::init();
    for what in not_hardened {
        tracing::warn!("hardening did not take effect: {what}");
    }
    let config = match Config::load(&config_path) {
        Err(ConfigError::Missing { path }) => bail!("{}", config::missing_advice(&path)),
        loaded => loaded?,
    };
    // One thread serves every door: requests are microseconds of work, the IdP and the keyring
    // are waited on (keyring calls on the blocking pool), and each extra worker would cost a
    // stack and an allocator arena for the daemon's whole life.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Keyring workers go soon after their call: an idle daemon keeps no threads but one.
        .thread_keep_alive(Duration::from_secs(2))
        .build()
        .context("starting the async runtime")?
        .block_on(run(args, config_path, config, inherited))?;
    Ok(ExitCode::SUCCESS)
}

/// Serve until SIGTERM or SIGINT, on the current runtime.
pub async fn run(
    args: Args,
    config_path: PathBuf,
    config: Config,
    inherited: Option<std::os::unix::net::UnixListener>,
) -> anyhow::Result<()> {
    // Signals first: a SIGTERM during start-up must not kill us half-way.
    let installing = |kind: SignalKind| signal(kind).context("installing signal handlers");
    let (mut term, mut int, mut hup) =
        (installing(SignalKind::terminate())?, installing(SignalKind::interrupt())?, installing(SignalKind::hangup())?);

    // The socket next: if another daemon already serves it, say so before touching anything.
    let socket_path = args.socket.clone().unwrap_or_else(serve::socket::default_path);
    let (listener, socket_file) = match inherited {
        Some(listener) => {
            listener.set_nonblocking(true)?;
            (tokio::net::UnixListener::from_std(listener)?, SocketFile(None))
        }
        None => (serve::socket::bind(&socket_path)?, SocketFile(Some(socket_path.clone()))),
    };

    let store = SessionStore::new(open_store(&config).await?);
    // A Secret Service that runs but refuses writes (locked, no default collection) would
    // take a login and lose it at the next restart: no better than no keyring at all.
    if config.store == StoreKind::Keyring {
        store.probe().await.map_err(no_keyring)?;
    }
    let http =
        oidc::http::Http::new(Duration::from_secs(config.idp_timeout.max(1))).context("building the HTTP client")?;
    let connect = Arc::new(oidc::Connector::new(http));
    let consents = crate::broker::consent::Consents::load(state_dir::state_dir().map(|d| d.join("consent.json")));
    let (audit, audit_writer) = Audit::start(state_dir::state_dir());
    let broker = Broker::start(config_path.clone(), &config, store, connect, audit, consents).await;

    let bus = if args.no_dbus {
        tracing::info!("D-Bus is off (--no-dbus); serving the socket only");
        None
    } else {
        match serve::dbus::start(broker.clone()).await {
            Ok(door) => {
                tracing::info!(name = tokenbroker::protocol::DBUS_NAME, "serving on the D-Bus session bus");
                Some(door)
            }
            Err(serve::dbus::StartError::NoBus(e)) => {
                tracing::info!(reason = %e, "D-Bus is off: no session bus; serving the socket only");
                None
            }
            // Another user who took the name first (on a bus open to others) must not take the
            // socket down with it: our own programs still reach us there.
            Err(e @ serve::dbus::StartError::NameHeld { holder }) => {
                tracing::warn!(
                    holder_uid = ?holder,
                    "D-Bus is off: {e}, whom D-Bus callers would reach instead of us (ours refuse it); \
                     serving the socket only"
                );
                None
            }
            Err(e) => return Err(e.into()),
        }
    };

    let shutdown = CancellationToken::new();
    // One tracker for everything that runs: the core's tasks and the socket's connections.
    let tracker = broker.tasks().clone();
    tracker.spawn(sleep::watch(broker.clone(), shutdown.clone()));
    let limits = serve::socket::Limits {
        max_connections: args.max_connections,
        idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
    };
    let server = tokio::spawn(serve::socket::serve(
        listener,
        broker.clone(),
        limits,
        shutdown.clone(),
        tracker.clone(),
        crate::broker::request::Door::Socket,
    ));
    // The forwards kept from before a restart are served again, beside the main socket.
    let doors = serve::forward::ForwardDoors::new(
        serve::forward::dir_for(&socket_path),
        &broker,
        limits,
        shutdown.clone(),
        tracker.clone(),
    );
    broker.serve_forwards(state_dir::state_dir().map(|d| d.join("forwards.json")), Arc::new(doors));
    let where_ =
        socket_file.0.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "an inherited socket".into());
    tracing::info!(socket = %where_, accounts = config.accounts.len(), "tokenbrokerd ready");
    notify(&[NotifyState::Ready, NotifyState::Status(&status_line(&broker))]);

    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(&broker, &config_path).await,
        }
    }

    tracing::info!("stopping: no new connections, finishing requests in flight");
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    shutdown.cancel();
    broker.shutdown();
    let _ = server.await;
    tracker.close();
    if tokio::time::timeout_at(deadline, tracker.wait()).await.is_err() {
        tracing::warn!("some requests or refreshes did not finish within {DRAIN_TIMEOUT:?}");
    }
    // After the drain, so every request that finished has recorded its grant or refusal.
    if !audit_writer.finish(deadline).await {
        tracing::warn!("audit records were still being written after {DRAIN_TIMEOUT:?}");
    }
    // After the drain, so what it finished (a refresh) is still announced.
    if let Some(door) = bus
        && tokio::time::timeout_at(deadline, door.stop()).await.is_err()
    {
        tracing::warn!("D-Bus signals were still being sent after {DRAIN_TIMEOUT:?}");
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGHUP: read the config again; a bad one is refused and the running one kept.
async fn reload(broker: &Arc<Broker>, path: &std::path::Path) {
    notify(&[NotifyState::Reloading, NotifyState::monotonic_usec_now().unwrap_or(NotifyState::Status("reloading"))]);
    match Config::load(path) {
        Ok(config) => {
            let r = broker.reload(&config).await;
            tracing::info!(added = ?r.added, changed = ?r.changed, removed = ?r.removed, "config reloaded");
        }
        Err(e) => tracing::error!("config reload refused, keeping the running config: {e}"),
    }
    notify(&[NotifyState::Ready, NotifyState::Status(&status_line(broker))]);
}

fn status_line(broker: &Broker) -> String {
    let status = broker.status();
    let logged_in = status.accounts.iter().filter(|a| a.subject.is_some()).count();
    format!("{} accounts, {logged_in} logged in", status.accounts.len())
}

/// Tell systemd (when it asked, through NOTIFY_SOCKET); a failure to tell is only logged.
fn notify(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "could not notify the service manager");
    }
}

/// The socket file we bound (not one the service manager owns), removed however we exit.
struct SocketFile(Option<PathBuf>);

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn store::Backend>> {
    match config.store {
        StoreKind::Memory => {
            tracing::warn!("store = \"memory\": sessions are lost when the daemon stops");
            Ok(Arc::new(store::Memory::default()))
        }
        StoreKind::File => {
            let path = config.store_file.clone().unwrap_or_else(default_store_file);
            let credential = config.store_key_credential.clone();
            let command = config.store_passphrase_command.clone();
            let name = store::StoreName::File(path.clone());
            let opened = tokio::task::spawn_blocking(move || {
                let passphrase = store::passphrase(credential.as_deref(), command.as_deref())?;
                store::FileStore::open(path, &passphrase)
            })
            .await
            .context("opening the sessions file")?;
            let file = opened.map_err(|problem| {
                anyhow::anyhow!("store = \"file\": {}", store::StoreError { store: name, problem })
            })?;
            tracing::info!(path = %file.path().display(), "sessions are kept in an encrypted file");
            Ok(Arc::new(file))
        }
        StoreKind::Keyring => {
            let opened =
                tokio::time::timeout(Duration::from_secs(10), tokio::task::spawn_blocking(store::Keyring::open)).await;
            match opened {
                Ok(Ok(Ok(keyring))) => Ok(Arc::new(keyring)),
                Ok(Ok(Err(problem))) => {
                    Err(no_keyring(store::StoreError { store: store::StoreName::Keyring, problem }))
                }
                Ok(Err(e)) => bail!("opening the OS keyring: {e}"),
                Err(_) => bail!("the OS keyring did not answer within 10 s (is it locked?)"),
            }
        }
    }
}

/// Why the daemon will not start with the keyring, and the choices it leaves.
pub(crate) fn no_keyring(e: store::StoreError) -> anyhow::Error {
    anyhow::anyhow!(
        "{e}\nNo usable OS keyring (Secret Service / Keychain): it must take a write. Start or unlock one, or \
         choose on purpose in the config: `store = \"file\"` (an encrypted file; see store_key_credential and \
         store_passphrase_command) or `store = \"memory\"` (sessions are lost on exit)."
    )
}

/// `$XDG_DATA_HOME/tokenbroker/sessions.sealed` (or the platform's data dir).
fn default_store_file() -> PathBuf {
    directories::ProjectDirs::from("", "", "tokenbroker")
        .map(|d| d.data_dir().join("sessions.sealed"))
        .unwrap_or_else(|| PathBuf::from("tokenbroker-sessions.sealed"))
}
