//! The one road every request takes, whichever door it came in by: who asks, whether they
//! may, then the method's handler. Doors decode into a method's params and a [`Caller`], call
//! [`handle`], and encode what comes back; nothing about a request is decided in a door.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokenbroker::ErrorKind;
use tokenbroker::protocol::{self as wire, AuditDecision, Method, method};

use super::policy::{Answer, By};
use super::{
    Broker, Error, Grant, Result, Roster, consent, doctor, dpop, forward, login, logout, metadata, profile, reject,
    session, tokens,
};
use crate::audit::Entry;
use crate::config::Action;

/// The door a request came in by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Door {
    Socket,
    Dbus,
    /// A forward's socket: holds the door's name, `forward:NAME` (one allocation per
    /// forward, shared by its connections).
    Forward(Arc<str>),
}

impl Door {
    /// The door of the forward `name`.
    pub fn forward(name: &str) -> Door {
        Door::Forward(format!("forward:{name}").into())
    }

    /// The contract's name, which policy rules match (`door = "socket"`, `door = "forward:*"`)
    /// and audit records carry.
    pub fn name(&self) -> &str {
        match self {
            Door::Socket => "socket",
            Door::Dbus => "dbus",
            Door::Forward(name) => name,
        }
    }

    /// The forward's name, for a forward's door.
    pub fn forward_name(&self) -> Option<&str> {
        match self {
            Door::Forward(name) => name.strip_prefix("forward:"),
            _ => None,
        }
    }
}

/// Who asks: as the kernel (`SO_PEERCRED`) or the bus (`GetConnectionCredentials`) says, and
/// what the process is, as far as it could be told without guessing. Unknown parts are `None`.
/// Cheap to clone: a connection keeps one and every request borrows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub pid: Option<i32>,
    pub door: Door,
    /// The resolved `/proc/PID/exe` of the very process that connected (never of a later
    /// process that reused its pid); `None` when that cannot be made sure of, or not UTF-8.
    pub exe: Option<Arc<str>>,
    /// The systemd unit whose cgroup holds the process (`app-foo@1.service`, `bar.scope`).
    pub unit: Option<Arc<str>>,
    /// The Flatpak application ID, or the snap's name (`snap.NAME`).
    pub app_id: Option<Arc<str>>,
}

impl Caller {
    /// A caller known only by its credentials: what a door has before (or without) looking at
    /// the process.
    pub fn new(uid: u32, pid: Option<i32>, door: Door) -> Caller {
        Caller { uid, pid, door, exe: None, unit: None, app_id: None }
    }
}

/// The daemon's own UID: the only user it serves.
pub fn me() -> u32 {
    static ME: OnceLock<u32> = OnceLock::new();
    *ME.get_or_init(|| rustix::process::getuid().as_raw())
}

/// Whether `caller` may ask anything at all. The socket door also asks this once per
/// connection, before the connection takes a slot.
pub fn admit(caller: &Caller) -> Result<()> {
    if caller.uid == me() {
        return Ok(());
    }
    Err(Error::new(ErrorKind::AccessDenied, "tokenbrokerd serves only its own user"))
}

/// What a request is about, for policy and audit: the account and audience its params name.
#[derive(Debug, Default, Clone, Copy)]
pub struct Target<'a> {
    pub account: Option<&'a str>,
    pub audience: Option<&'a str>,
}

/// Run one request: admit the caller, let the policy (and perhaps the person) decide, run the
/// method's handler, and record what was granted or refused.
pub async fn handle<M: Handler>(broker: &Arc<Broker>, caller: &Caller, params: M::Params) -> Result<M::Output> {
    if let Err(e) = admit(caller) {
        tracing::warn!(peer_uid = caller.uid, peer_pid = ?caller.pid, door = caller.door.name(), method = M::NAME, "refused a call from another user");
        return Err(e);
    }
    let mut params = params;
    if let Some(forward) = caller.door.forward_name() {
        let audience = M::target(&params).and_then(|t| t.audience).map(str::to_owned);
        if let Err(e) = forward::admit(broker, forward, M::NAME, M::account_mut(&mut params), audience.as_deref()) {
            // Refusals of what the policy covers are audited as its own are.
            if let Some(target) = M::target(&params) {
                let roster = broker.roster();
                let (account, audience) = about(&roster, target).unzip();
                let entry = entry(caller, M::NAME, account, audience.flatten(), AuditDecision::Deny, By::Forward);
                broker.audit().record(entry);
            }
            return Err(e);
        }
    }
    let Some(target) = M::target(&params) else { return M::run(broker, caller, params).await };
    let Some(allowed) = decide(broker, caller, M::NAME, target).await? else {
        return M::run(broker, caller, params).await;
    };
    let output = M::run(broker, caller, params).await?;
    broker.audit().record(allowed);
    Ok(output)
}

/// The policy's decision on one request: the audit entry to record once it is granted, or the
/// refusal (recorded here). `None` when the request names no account the policy could judge
/// (the handler refuses it).
async fn decide(
    broker: &Arc<Broker>,
    caller: &Caller,
    method: &'static str,
    target: Target<'_>,
) -> Result<Option<Entry>> {
    let roster = broker.roster();
    let Some((account, audience)) = about(&roster, target) else { return Ok(None) };
    let decision = if roster.policy.allows_all() {
        super::policy::Decision { action: Action::Allow, by: By::Default }
    } else {
        roster.policy.decide(caller, account, audience)
    };
    let entry = |decision, by| entry(caller, method, Some(account), audience, decision, by);
    let by = match decision.action {
        Action::Allow | Action::Deny => decision.by,
        Action::Ask => {
            let question = consent::Question::new(caller, method, account, audience);
            consent::ask(broker, question, roster.policy.wait()).await
        }
    };
    let allowed = matches!((decision.action, by), (Action::Allow, _) | (_, By::Consent(Answer::Once | Answer::Always)));
    if allowed {
        return Ok(Some(entry(AuditDecision::Allow, by)));
    }
    broker.audit().record(entry(AuditDecision::Deny, by));
    Err(Error::new(ErrorKind::AccessDenied, refusal(method, account, by, roster.policy.wait())))
}

/// The account and audience a request is about, as the policy judges and the audit records
/// them: those it names, else the default account and that account's own audience. `None`
/// when it names no account and there is no default.
fn about<'a>(roster: &'a Roster, target: Target<'a>) -> Option<(&'a str, Option<&'a str>)> {
    let account = target.account.filter(|a| !a.is_empty()).or(roster.default_account.as_deref())?;
    let audience = target
        .audience
        .filter(|a| !a.is_empty())
        .or_else(|| roster.accounts.get(account).and_then(|a| a.config.audience.as_deref()));
    Some((account, audience))
}

/// One audit record of a decision on a request.
fn entry(
    caller: &Caller,
    method: &'static str,
    account: Option<&str>,
    audience: Option<&str>,
    decision: AuditDecision,
    by: By,
) -> Entry {
    Entry {
        time_ms: session::now_ms(),
        caller: caller.clone(),
        method,
        account: account.map(str::to_owned),
        audience: audience.map(str::to_owned),
        decision,
        by,
    }
}

/// The refusal's sentence: what was refused and what refused it.
fn refusal(method: &str, account: &str, by: By, wait: std::time::Duration) -> String {
    let why = match by {
        By::Rule(n) => format!("[[policy.rule]] number {n} of the config denies it to this program"),
        By::Default => "the policy's default denies it to programs no rule names".into(),
        By::Consent(Answer::Unanswered) => format!("nobody answered the consent question within {} s", wait.as_secs()),
        By::Consent(_) => "the person asked for consent denied it".into(),
        By::Forward => "the forward does not serve it".into(),
    };
    format!("{method} for account {account:?} refused: {why}")
}

/// A method's handler: what the core does for it, and the typed result it gives the door.
pub trait Handler: Method {
    /// The contract's result, or what a door encodes it from ([`Grant`] shares the token).
    type Output: Send;
    /// What the policy judges, for the methods it covers; `None` for the rest.
    fn target(params: &Self::Params) -> Option<Target<'_>>;
    /// The account the params name, for a forward's door to fill in (the methods the policy
    /// covers).
    fn account_mut(params: &mut Self::Params) -> Option<&mut Option<String>>;
    fn run(
        broker: &Arc<Broker>,
        caller: &Caller,
        params: Self::Params,
    ) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// `Method -> Output [policy: account, audience]: |broker, caller, params| body;`, one handler a line;
/// the `[policy: …]` names the params' fields the policy judges, `[]` for methods it does not
/// cover.
macro_rules! handlers {
    ($($name:ident -> $output:ty [$(policy: $account:ident $(, $audience:ident)?)?]: |$broker:ident, $caller:pat_param, $params:pat_param| $body:expr;)*) => {
        $(
            impl Handler for method::$name {
                type Output = $output;
                fn target(params: &Self::Params) -> Option<Target<'_>> {
                    handlers!(@target params $($account $(, $audience)?)?)
                }
                fn account_mut(params: &mut Self::Params) -> Option<&mut Option<String>> {
                    handlers!(@account params $($account)?)
                }
                async fn run($broker: &Arc<Broker>, $caller: &Caller, $params: Self::Params) -> Result<$output> {
                    $body
                }
            }
        )*
    };
    (@target $p:ident) => { { let _ = $p; None } };
    (@account $p:ident) => { { let _ = $p; None } };
    (@account $p:ident $account:ident) => { Some(&mut $p.$account) };
    (@target $p:ident $account:ident) => { Some(Target { account: $p.$account.as_deref(), audience: None }) };
    (@target $p:ident $account:ident, $audience:ident) => {
        Some(Target { account: $p.$account.as_deref(), audience: $p.$audience.as_deref() })
    };
}

handlers! {
    GetAccessToken -> Grant [policy: account, audience]: |broker, _, p| tokens::access_token(broker, p).await;
    GetDpopProof -> wire::DpopProof [policy: account, audience]: |broker, _, p| dpop::dpop_proof(broker, p).await;
    RejectToken -> wire::TokenRejected [policy: account, audience]: |broker, _, p| reject::reject_token(broker, p);
    GetIdToken -> wire::IdToken [policy: account]: |broker, _, p| tokens::id_token(broker, p).await;
    GetProfile -> wire::Profile [policy: account]: |broker, _, p| profile::profile(broker, p).await;
    GetMetadata -> wire::Metadata [policy: account]: |broker, _, p| metadata::metadata(broker, p).await;
    UpdateMetadata -> wire::Metadata [policy: account]: |broker, _, p| metadata::update_metadata(broker, p).await;
    Login -> wire::LoginChallenge []: |broker, _, p| login::login(broker, p).await;
    AwaitLogin -> wire::LoginDone []: |broker, _, p| login::await_login(broker, &p.login_id).await;
    CancelLogin -> wire::LoginCancelled []: |broker, _, p| Ok(login::cancel_login(broker, &p.login_id));
    Logout -> wire::LogoutDone []: |broker, _, p| logout::logout(broker, p).await;
    Status -> wire::Status []: |broker, caller, _| Ok(broker.status_for(&caller.door));
    Diagnose -> wire::Diagnosis []: |broker, _, _| Ok(doctor::diagnose(broker).await);
    ListConsents -> wire::Consents []: |broker, _, _| Ok(consent::list(broker));
    AnswerConsent -> wire::ConsentAnswered []: |broker, caller, p| consent::answer_as(broker, caller, p);
    RevokeConsent -> wire::ConsentRevoked []: |broker, _, p| Ok(consent::revoke(broker, &p.id));
    AddForward -> wire::Forward []: |broker, _, p| forward::add(broker, p);
    ListForwards -> wire::Forwards []: |broker, _, _| Ok(wire::Forwards { forwards: broker.forwards().list() });
    RemoveForward -> wire::ForwardRemoved []: |broker, _, p| Ok(forward::remove(broker, &p.name));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_daemons_own_user_is_admitted_at_any_door() {
        for door in [Door::Socket, Door::Dbus, Door::forward("f")] {
            assert!(admit(&Caller::new(me(), None, door.clone())).is_ok());
            let other = Caller::new(me().wrapping_add(1), Some(1), door);
            assert_eq!(admit(&other).unwrap_err().kind, ErrorKind::AccessDenied);
        }
    }
}
