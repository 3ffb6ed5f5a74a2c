//! The D-Bus client crate driven from blocking code: one small runtime for the process.

use tokenbroker::Result;
use tokenbroker::protocol::*;

use brokerctl::transport::Bus;

struct Dbus {
    rt: tokio::runtime::Runtime,
    client: tokenbroker::dbus::Client,
}

pub fn connect() -> Result<Box<dyn Bus>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = rt.block_on(tokenbroker::dbus::Client::connect())?;
    Ok(Box::new(Dbus { rt, client }))
}

macro_rules! block_on {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        $(fn $name(&self, $($arg: $ty),*) -> Result<$out> {
            self.rt.block_on(self.client.$name($($arg),*))
        })*
    };
}

impl Bus for Dbus {
    brokerctl::with_calls!(block_on);

    fn logout(&self, p: AccountOnly) -> Result<()> {
        self.rt.block_on(self.client.logout(p))
    }
}
