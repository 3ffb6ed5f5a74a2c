//! The socket (default) or the session bus, behind one set of calls. The socket path needs no
//! async runtime; the bus is reached through the opener the binary passes to [`crate::main`],
//! which only brokerctl-dbus implements for real (brokerctl hands `--dbus` over to it), so
//! brokerctl links no D-Bus stack and starts like the small program it is.

use std::sync::OnceLock;

use tokenbroker::protocol::Method;
use tokenbroker::{Error, Result, blocking};

/// The contract's calls over the session bus: one method, the socket's params and result as
/// JSON, so that this side needs no D-Bus types.
pub trait Bus {
    fn call(&self, method: &'static str, params_json: String) -> Result<String>;
}

/// How this binary reaches the session bus.
pub type OpenBus = fn() -> Result<Box<dyn Bus>>;

static BUS: OnceLock<OpenBus> = OnceLock::new();

pub(crate) fn set_bus(open: OpenBus) {
    let _ = BUS.set(open);
}

pub enum Transport {
    Socket(blocking::Client),
    Bus(Box<dyn Bus>),
}

impl Transport {
    pub fn connect(dbus: bool) -> Result<Transport> {
        if !dbus {
            return Ok(Transport::Socket(blocking::Client::connect()?));
        }
        let open = BUS.get().expect("the binary sets how to open the bus before anything runs");
        open().map(Transport::Bus)
    }

    pub fn request<M: Method>(&self, params: M::Params) -> Result<M::Result> {
        match self {
            Transport::Socket(c) => c.request::<M>(params),
            Transport::Bus(b) => {
                let params = serde_json::to_string(&params).map_err(std::io::Error::other)?;
                let answer = b.call(M::NAME, params)?;
                serde_json::from_str(&answer)
                    .map_err(|e| Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
            }
        }
    }

    tokenbroker::protocol::typed_methods!();
}
