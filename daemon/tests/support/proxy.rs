//! A TCP proxy in front of the test IdP, so a test can take the IdP "down" (open connections
//! are cut, new ones accepted and dropped at once) and bring it back without losing the
//! IdP's state.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    port: u16,
    target: Arc<AtomicU16>,
    down: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Arc::new(AtomicU16::new(0));
        let (down, _) = watch::channel(false);
        let (t, d) = (target.clone(), down.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if *d.borrow() {
                    drop(inbound);
                    continue;
                }
                let port = t.load(Ordering::SeqCst);
                let mut cut = d.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|down| *down) => {}
                    }
                });
            }
        });
        Proxy { port, target, down, task }
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
        self.down.send_replace(down);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
