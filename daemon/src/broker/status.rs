use tokenbroker::protocol::{AccountStatus, Status};

use super::Broker;

impl Broker {
    pub fn status(&self) -> Status {
        let default = self.default_account();
        let accounts = self
            .accounts()
            .iter()
            .map(|a| {
                let session = a.session();
                AccountStatus {
                    name: a.name.clone(),
                    issuer: a.config.issuer.clone(),
                    state: a.state(),
                    expires_at: session.as_ref().map(|s| s.access.life.expires_at),
                    subject: session.as_ref().and_then(|s| s.subject.clone()),
                    persisted: session.as_ref().map(|_| !a.unsaved()),
                    scopes: session.map(|s| s.access.scopes.clone()).unwrap_or_else(|| a.login_scopes()),
                    default: default.as_deref() == Some(a.name.as_str()),
                }
            })
            .collect();
        Status { version: env!("CARGO_PKG_VERSION").into(), accounts }
    }
}
