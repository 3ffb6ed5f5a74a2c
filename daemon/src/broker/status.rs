use tokenbroker::protocol::{AccountStatus, PolicyStatus, Status};

use super::Broker;
use super::request::Door;

impl Broker {
    pub fn status(&self) -> Status {
        self.status_for(&Door::Socket)
    }

    /// `Status` as `door` may see it: a forward's door sees only the forward's accounts, and
    /// nothing of the policy or of other forwards.
    pub fn status_for(&self, door: &Door) -> Status {
        let forward = door.forward_name().map(|name| self.forwards().get(name));
        let default = self.default_account();
        let accounts = self
            .accounts()
            .iter()
            .filter(|a| match &forward {
                None => true,
                Some(f) => f.as_ref().is_some_and(|f| f.accounts.contains(&a.name)),
            })
            .map(|a| {
                let machine = a.config.is_machine();
                // A machine account's session is only a holder (see machine.rs): not stored.
                let session = a.session().filter(|s| !machine || super::machine::has_token(s));
                AccountStatus {
                    name: a.name.clone(),
                    issuer: a.config.issuer.clone(),
                    state: a.state(),
                    expires_at: session.as_ref().map(|s| s.access.life.expires_at),
                    subject: session.as_ref().and_then(|s| s.subject.clone()),
                    persisted: session.as_ref().filter(|_| !machine).map(|_| !a.unsaved()),
                    scopes: session.map(|s| s.access.scopes.clone()).unwrap_or_else(|| a.login_scopes()),
                    default: default.as_deref() == Some(a.name.as_str()),
                    kind: machine.then(|| "machine".to_owned()),
                }
            })
            .collect();
        let policy = &self.roster().policy;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let policy = PolicyStatus {
            default: policy.default_action().name().into(),
            rules: count(policy.rules().len()),
            asking: count(self.consents.waiting()),
            remembered: count(self.consents.remembered()),
        };
        if forward.is_some() {
            return Status { version: env!("CARGO_PKG_VERSION").into(), accounts, policy: None, forwards: None };
        }
        let forwards = Some(self.forwards().list());
        Status { version: env!("CARGO_PKG_VERSION").into(), accounts, policy: Some(policy), forwards }
    }
}
