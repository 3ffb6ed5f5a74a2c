//! A TCP proxy in front of the test IdP, so a test can take the IdP "down" (open connections
//! are cut, new ones accepted and dropped at once) or make it slow, and bring it back without
//! losing the IdP's state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    port: u16,
    target: Arc<AtomicU16>,
    down: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
    /// Bumped to cut every open connection.
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Arc::new(AtomicU16::new(0));
        let down = Arc::new(AtomicBool::new(false));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (cuts, _) = watch::channel(0u64);
        let (t, d, delay, c) = (target.clone(), down.clone(), delay_ms.clone(), cuts.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { continue };
                if d.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let port = t.load(Ordering::SeqCst);
                let wait = Duration::from_millis(delay.load(Ordering::SeqCst));
                let mut cut = c.subscribe();
                tokio::spawn(async move {
                    let relay = async {
                        tokio::time::sleep(wait).await;
                        if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    };
                    tokio::select! {
                        _ = relay => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy { port, target, down, delay_ms, cuts, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set_target(&self, port: u16) {
        self.target.store(port, Ordering::SeqCst);
    }

    /// The IdP itself, bypassing the proxy: for the test's own control requests.
    pub fn direct_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.target.load(Ordering::SeqCst))
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            self.cut_all();
        }
    }

    /// Make the IdP slow: new connections wait this long; open ones are cut so that pooled
    /// connections do not slip past the delay.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
        self.cut_all();
    }

    fn cut_all(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
