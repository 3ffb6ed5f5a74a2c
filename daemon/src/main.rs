//! tokenbrokerd: wiring only. Arguments, logging, hardening, the store, the core, the doors,
//! and an orderly stop on SIGTERM/SIGINT.

mod broker;
mod config;
mod harden;
mod oidc;
mod serve;
mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing_subscriber::EnvFilter;

use crate::config::{Config, StoreKind};
use crate::store::SessionStore;

/// How long a stop waits for in-flight requests before it gives up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Parser)]
#[command(name = "tokenbrokerd", version, about = "Per-user OAuth 2.0 / OpenID Connect token broker")]
struct Args {
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
}

fn main() -> std::process::ExitCode {
    match start() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokenbrokerd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start() -> anyhow::Result<()> {
    harden::apply();
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let config_path = args.config.clone().unwrap_or_else(Config::default_path);
    let config = Config::load(&config_path)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(args, config))
}

async fn run(args: Args, config: Config) -> anyhow::Result<()> {
    let store = SessionStore::new(open_store(config.store).await?);
    let http = oidc::http::Http::new().context("building the HTTP client")?;
    let broker = broker::Broker::start(&config, store, http).await;

    let _bus = if args.no_dbus {
        tracing::info!("D-Bus is off (--no-dbus); serving the socket only");
        None
    } else {
        match serve::dbus::start(broker.clone()).await {
            Ok(conn) => {
                tracing::info!(name = tokenbroker::protocol::DBUS_NAME, "serving on the D-Bus session bus");
                Some(conn)
            }
            Err(serve::dbus::StartError::NoBus(e)) => {
                tracing::info!(reason = %e, "D-Bus is off: no session bus; serving the socket only");
                None
            }
            Err(e) => return Err(e.into()),
        }
    };
    let socket_path = args.socket.unwrap_or_else(serve::socket::default_path);
    let listener = serve::socket::bind(&socket_path)?;
    tracing::info!(socket = %socket_path.display(), accounts = config.accounts.len(), "tokenbrokerd ready");

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let limits = serve::socket::Limits { max_connections: args.max_connections };
    let server =
        tokio::spawn(serve::socket::serve(listener, broker.clone(), limits, shutdown.clone(), tracker.clone()));

    wait_for_stop_signal().await?;
    tracing::info!("stopping: no new connections, finishing requests in flight");
    shutdown.cancel();
    broker.shutdown();
    let _ = server.await;
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait()).await.is_err() {
        tracing::warn!("some requests did not finish within {DRAIN_TIMEOUT:?}");
    }
    let _ = std::fs::remove_file(&socket_path);
    tracing::info!("stopped");
    Ok(())
}

async fn open_store(kind: StoreKind) -> anyhow::Result<Arc<dyn store::Backend>> {
    match kind {
        StoreKind::Memory => {
            tracing::warn!("store = \"memory\": sessions are lost when the daemon stops");
            Ok(Arc::new(store::Memory::default()))
        }
        StoreKind::Keyring => {
            let opened =
                tokio::time::timeout(Duration::from_secs(10), tokio::task::spawn_blocking(store::Keyring::open)).await;
            match opened {
                Ok(Ok(Ok(keyring))) => Ok(Arc::new(keyring)),
                Ok(Ok(Err(e))) => bail!(
                    "{e}\nNo usable OS keyring (Secret Service / Keychain). Start one, or choose on purpose \
                     `store = \"memory\"` in the config (sessions are then lost on exit)."
                ),
                Ok(Err(e)) => bail!("opening the keyring: {e}"),
                Err(_) => bail!("the keyring did not answer within 10 s (is it locked?)"),
            }
        }
    }
}

async fn wait_for_stop_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
