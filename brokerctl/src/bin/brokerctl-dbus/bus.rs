//! The D-Bus client crate driven from blocking code: one small runtime for the process.

use tokenbroker::Result;

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

impl Bus for Dbus {
    fn call(&self, method: &'static str, params_json: String) -> Result<String> {
        self.rt.block_on(self.client.call_json(method, &params_json))
    }
}
