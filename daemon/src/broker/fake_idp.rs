//! A scripted IdP for the core's unit tests: refresh answers from a script (tokens that live
//! so long, a rotated refresh token, `invalid_grant`, unavailable with a `Retry-After`, any of
//! them held until the test releases it), the requests it received, and a device login that
//! is approved at once. Like oidc-provider with rotation, it refuses a spent refresh token and
//! then the whole grant (reuse detection), so two refreshes with one token show.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use tokenbroker::protocol::{Flow, Login};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::Broker;
use crate::config::Config;
use crate::oidc::client_auth::ClientAuth;
use crate::oidc::device::DeviceChallenge;
use crate::oidc::idp::{CodeStart, IdpFuture};
use crate::oidc::{
    Approval, Audiences, ClientCredentials, ClientSettings, Connect, Idp, ManagementApi, Offers, OidcError, Refresh,
    TokenSet,
};
use crate::store::{Backend, Memory, SessionStore};

/// What the fake answers one refresh request with.
#[derive(Debug, Clone)]
pub enum Answer {
    /// An access token that lives `expires_in` seconds, and with `rotate` a new refresh token.
    Tokens { expires_in: u64, rotate: bool },
    /// The grant is refused, and revoked: every later refresh is refused too.
    InvalidGrant,
    /// HTTP 503, with `Retry-After` if given.
    Unavailable { retry_after: Option<Duration> },
    /// This answer, once the test calls [`FakeIdp::release`].
    Held(Box<Answer>),
}

impl Answer {
    pub fn held(self) -> Answer {
        Answer::Held(Box::new(self))
    }
}

pub struct FakeIdp {
    script: Mutex<Script>,
    released: Semaphore,
    offers: Offers,
}

struct Script {
    answers: VecDeque<Answer>,
    /// Once the script has run out.
    otherwise: Answer,
    /// How long a login's access token lives.
    login_lifetime: u64,
    /// The refresh token the IdP takes; `None` once the grant is revoked.
    valid: Option<String>,
    /// Tokens issued so far, to name new ones.
    issued: u64,
    /// Every refresh request: when it came and the refresh token it spent.
    requests: Vec<(Instant, String)>,
    /// Every client-credentials request: the audience it asked for.
    grants: Vec<Option<String>>,
    /// The thumbprint of the DPoP key the login proved, which every refresh must prove too
    /// (as a real IdP binds the refresh token of a public client to it).
    dpop: Option<String>,
}

impl FakeIdp {
    /// An IdP that issues tokens living `lifetime` seconds and rotates refresh tokens.
    pub fn new(lifetime: u64) -> FakeIdp {
        let script = Script {
            answers: VecDeque::new(),
            otherwise: Answer::Tokens { expires_in: lifetime, rotate: true },
            login_lifetime: lifetime,
            valid: None,
            issued: 0,
            requests: Vec::new(),
            grants: Vec::new(),
            dpop: None,
        };
        FakeIdp { script: Mutex::new(script), released: Semaphore::new(0), offers: Offers::default() }
    }

    fn script<T>(&self, f: impl FnOnce(&mut Script) -> T) -> T {
        f(&mut self.script.lock().unwrap())
    }

    /// Answer the next refresh request that finds no answer before it with `answer`.
    pub fn then(&self, answer: Answer) -> &Self {
        self.script(|s| s.answers.push_back(answer));
        self
    }

    /// Let one held answer go.
    pub fn release(&self) {
        self.released.add_permits(1);
    }

    /// How many refresh requests came.
    pub fn refreshes(&self) -> usize {
        self.script(|s| s.requests.len())
    }

    /// The audience of each client-credentials request.
    pub fn grants(&self) -> Vec<Option<String>> {
        self.script(|s| s.grants.clone())
    }

    /// When each refresh request came.
    pub fn times(&self) -> Vec<Instant> {
        self.script(|s| s.requests.iter().map(|r| r.0).collect())
    }

    /// The refresh token each refresh request spent.
    pub fn spent(&self) -> Vec<String> {
        self.script(|s| s.requests.iter().map(|r| r.1.clone()).collect())
    }

    fn tokens(s: &mut Script, expires_in: u64, rotate: bool) -> TokenSet {
        let token_type = if s.dpop.is_some() { "DPoP" } else { "Bearer" };
        let n = s.issued;
        s.issued += 1;
        let refresh = rotate.then(|| format!("rt-{n}"));
        if refresh.is_some() {
            s.valid = refresh.clone();
        }
        TokenSet {
            access_token: SecretString::from(format!("at-{n}")),
            token_type: token_type.into(),
            expires_in: Some(Duration::from_secs(expires_in)),
            refresh_token: refresh.map(SecretString::from),
            id_token: None,
            id_token_refused: None,
            scopes: None,
        }
    }

    fn answer(&self, spent: &str, answer: Answer) -> Result<TokenSet, OidcError> {
        self.script(|s| match answer {
            Answer::Tokens { .. } if s.valid.as_deref() != Some(spent) => {
                s.valid = None;
                Err(OidcError::InvalidGrant("a spent or revoked refresh token".into()))
            }
            Answer::Tokens { expires_in, rotate } => Ok(FakeIdp::tokens(s, expires_in, rotate)),
            Answer::InvalidGrant => {
                s.valid = None;
                Err(OidcError::InvalidGrant("refused by the script".into()))
            }
            Answer::Unavailable { retry_after } => {
                Err(OidcError::Unavailable { message: "HTTP 503".into(), retry_after })
            }
            Answer::Held(_) => unreachable!("released before answering"),
        })
    }
}

impl Idp for FakeIdp {
    fn refresh<'a>(&'a self, grant: Refresh<'a>) -> IdpFuture<'a, TokenSet> {
        Box::pin(async move {
            let spent = grant.refresh_token.expose_secret();
            let jkt = grant.dpop.map(|k| k.thumbprint().to_owned());
            if self.script(|s| s.dpop != jkt) {
                return Err(OidcError::InvalidGrant("the refresh token is bound to another DPoP key".into()));
            }
            let mut answer = self.script(|s| {
                s.requests.push((Instant::now(), spent.to_owned()));
                s.answers.pop_front().unwrap_or_else(|| s.otherwise.clone())
            });
            while let Answer::Held(inner) = answer {
                self.released.acquire().await.expect("never closed").forget();
                answer = *inner;
            }
            self.answer(spent, answer)
        })
    }

    /// Answered from the same script as refreshes; `InvalidGrant` stands for a refused client.
    /// Only a signed assertion is taken (the core tests' machine account has a key).
    fn client_credentials<'a>(&'a self, grant: ClientCredentials<'a>) -> IdpFuture<'a, TokenSet> {
        Box::pin(async move {
            if !matches!(grant.auth, ClientAuth::Assertion(_)) {
                return Err(OidcError::InvalidClient("an assertion was expected".into()));
            }
            let audience = grant.audiences.values.first().cloned();
            let mut answer = self.script(|s| {
                s.grants.push(audience);
                s.answers.pop_front().unwrap_or_else(|| s.otherwise.clone())
            });
            while let Answer::Held(inner) = answer {
                self.released.acquire().await.expect("never closed").forget();
                answer = *inner;
            }
            self.script(|s| match answer {
                Answer::Tokens { expires_in, .. } => Ok(FakeIdp::tokens(s, expires_in, false)),
                Answer::InvalidGrant => Err(OidcError::InvalidClient("refused by the script".into())),
                Answer::Unavailable { retry_after } => {
                    Err(OidcError::Unavailable { message: "HTTP 503".into(), retry_after })
                }
                Answer::Held(_) => unreachable!("released before answering"),
            })
        })
    }

    fn start_device<'a>(
        self: Arc<Self>,
        _: &'a [String],
        _: &'a Audiences,
        dpop: Option<Arc<crate::oidc::dpop::DpopKey>>,
    ) -> IdpFuture<'a, (DeviceChallenge, Approval)> {
        let challenge = DeviceChallenge {
            verification_uri: "https://idp.example.com/device".into(),
            verification_uri_complete: None,
            user_code: "FAKE-CODE".into(),
            expires_in: Duration::from_secs(600),
        };
        let approval: Approval = Box::pin(async move {
            Ok(self.script(|s| {
                s.dpop = dpop.map(|k| k.thumbprint().to_owned());
                let lifetime = s.login_lifetime;
                FakeIdp::tokens(s, lifetime, true)
            }))
        });
        Box::pin(async move { Ok((challenge, approval)) })
    }

    fn start_code(
        self: Arc<Self>,
        _: &str,
        _: &[String],
        _: &Audiences,
        _: Option<Arc<crate::oidc::dpop::DpopKey>>,
    ) -> Result<CodeStart, OidcError> {
        Err(OidcError::NotSupported("the fake IdP has no code flow".into()))
    }

    fn revoke<'a>(&'a self, _: &'a SecretString) -> IdpFuture<'a, bool> {
        self.script(|s| s.valid = None);
        Box::pin(async { Ok(true) })
    }

    fn userinfo<'a>(
        &'a self,
        _: &'a SecretString,
        subject: Option<&'a str>,
        _: Option<&'a crate::oidc::dpop::DpopKey>,
    ) -> IdpFuture<'a, Map<String, Value>> {
        Box::pin(async move {
            match subject {
                Some(other) if other != "fake-user" => Err(OidcError::Rejected("another subject".into())),
                _ => Ok(Map::from_iter([("sub".to_owned(), Value::from("fake-user"))])),
            }
        })
    }

    fn end_session_url(&self) -> Option<String> {
        None
    }

    fn offers(&self) -> &Offers {
        &self.offers
    }
}

/// Hands every account the one fake IdP, and counts resumes.
pub struct FakeConnect {
    pub idp: Arc<FakeIdp>,
    pub resumes: AtomicUsize,
}

impl Connect for FakeConnect {
    fn connect<'a>(&'a self, _: &'a ClientSettings<'a>) -> IdpFuture<'a, Arc<dyn Idp>> {
        Box::pin(async { Ok(self.idp.clone() as Arc<dyn Idp>) })
    }

    fn management(&self, _: &str) -> Result<ManagementApi, OidcError> {
        Err(OidcError::NotSupported("the fake IdP has no management API".into()))
    }

    fn resumed(&self) {
        self.resumes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A broker with one account, "work", on a fake IdP and a memory store.
pub struct World {
    pub broker: Arc<Broker>,
    pub idp: Arc<FakeIdp>,
    pub connect: Arc<FakeConnect>,
    pub store: Arc<Memory>,
    config: Config,
    audit: crate::audit::Audit,
    consent_file: Option<PathBuf>,
}

impl World {
    /// Started with the scheduler on (`proactive`) or off, nobody logged in.
    pub async fn new(proactive: bool, idp: FakeIdp) -> World {
        World::with(proactive, idp, "", crate::audit::Audit::off(), None).await
    }

    /// As `new`, with more config (`extra`, such as a `[policy]`), an audit trail and a file
    /// for remembered consent.
    pub async fn with(
        proactive: bool,
        idp: FakeIdp,
        extra: &str,
        audit: crate::audit::Audit,
        consent_file: Option<PathBuf>,
    ) -> World {
        World::with_account(proactive, idp, extra, "", audit, consent_file).await
    }

    /// As `with`, with more keys (`account`) in the account's table.
    pub async fn with_account(
        proactive: bool,
        idp: FakeIdp,
        extra: &str,
        account: &str,
        audit: crate::audit::Audit,
        consent_file: Option<PathBuf>,
    ) -> World {
        let text = format!(
            "proactive_refresh = {proactive}\n{extra}\n[accounts.work]\nissuer = \"https://idp.example.com/\"\nclient_id = \"c\"\naudience = \"https://api\"\n{account}\n"
        );
        let config = Config::parse(&text).unwrap();
        let connect = Arc::new(FakeConnect { idp: Arc::new(idp), resumes: AtomicUsize::new(0) });
        let store = Arc::new(Memory::default());
        let broker = World::start(&config, &store, &connect, &audit, &consent_file).await;
        World { broker, idp: connect.idp.clone(), connect, store, config, audit, consent_file }
    }

    async fn start(
        config: &Config,
        store: &Arc<Memory>,
        connect: &Arc<FakeConnect>,
        audit: &crate::audit::Audit,
        consent_file: &Option<PathBuf>,
    ) -> Arc<Broker> {
        let store = SessionStore::new(store.clone());
        let consents = super::consent::Consents::load(consent_file.clone());
        Broker::start(PathBuf::from("/nonexistent"), config, store, connect.clone(), audit.clone(), consents).await
    }

    /// A broker with one machine account, "ci", on a fake IdP (no scheduler: machine accounts
    /// get tokens on demand).
    pub async fn machine(idp: FakeIdp) -> World {
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/src/oidc/test_keys/ec.pem");
        let text = format!(
            "[accounts.ci]\nissuer = \"https://idp.example.com/\"\nclient_id = \"m2m\"\n\
             grant = \"client_credentials\"\nclient_assertion_key = \"{key}\"\n\
             audience = \"https://api\"\naudiences = [\"https://reports\"]\n"
        );
        let config = Config::parse(&text).unwrap();
        let connect = Arc::new(FakeConnect { idp: Arc::new(idp), resumes: AtomicUsize::new(0) });
        let store = Arc::new(Memory::default());
        let audit = crate::audit::Audit::off();
        let broker = World::start(&config, &store, &connect, &audit, &None).await;
        World { broker, idp: connect.idp.clone(), connect, store, config, audit, consent_file: None }
    }

    /// As `new`, and logged in with the device flow.
    pub async fn logged_in(proactive: bool, idp: FakeIdp) -> World {
        let world = World::new(proactive, idp).await;
        let challenge =
            super::login::login(&world.broker, Login { account: None, flow: Some(Flow::Device) }).await.unwrap();
        super::login::await_login(&world.broker, &challenge.login_id).await.unwrap();
        world
    }

    /// The daemon stops and starts again on the same store and IdP.
    pub async fn restart(&mut self) {
        self.broker.shutdown();
        self.broker = World::start(&self.config, &self.store, &self.connect, &self.audit, &self.consent_file).await;
    }

    /// The refresh token in the store.
    pub fn stored_refresh_token(&self) -> Option<String> {
        let record = self.store.get("work").unwrap()?;
        let session = super::Session::from_record(&record, "https://idp.example.com/", "c").unwrap().unwrap();
        session.refresh_token.map(|t| t.expose_secret().to_owned())
    }
}
