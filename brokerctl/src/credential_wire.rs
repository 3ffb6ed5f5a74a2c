//! git's credential helper protocol (`git help credential`, "INPUT/OUTPUT FORMAT"), read
//! strictly: the helper CVEs of 2020 (CVE-2020-5260, -11008) and 2024 (CVE-2024-50338,
//! -52006) came from helpers and gits that read a line break, a CR or a missing host
//! loosely and so answered for the wrong host.

use std::io::{self, BufRead, Read, Write};

use tokenbroker::Secret;

/// git's documented limit for one line, its newline included.
pub const MAX_LINE: usize = 65535;
/// More attributes than git ever sends (a few, plus one `wwwauth[]` per header).
const MAX_LINES: usize = 1024;

/// What git asked about. Values we have no use for (`path`, `wwwauth[]`, unknown keys) are
/// not kept.
#[derive(Debug, Default)]
pub struct Request {
    pub protocol: String,
    pub host: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub authtype: Option<String>,
    pub credential: Option<Secret>,
    /// `capability[]` as git announced it; an empty value clears the list, as documented.
    pub capabilities: Vec<String>,
    /// A `wwwauth[]` (the server's `WWW-Authenticate`) offers the Bearer scheme.
    pub bearer_offered: bool,
}

impl Request {
    pub fn announced(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
    }

    /// Answer with a Bearer credential: git can send one (it announced `authtype`) and the
    /// server asked for one. git 2.46+ announces `authtype` to every helper and then sends
    /// whatever scheme the helper names, so a Bearer answer to a server that takes only Basic
    /// (GitLab) would fail and be erased.
    pub fn wants_bearer(&self) -> bool {
        self.announced("authtype") && self.bearer_offered
    }

    /// The token git used and a server refused: the Bearer credential, else the password.
    pub fn token(&self) -> Option<&Secret> {
        self.credential.as_ref().or(self.password.as_ref())
    }
}

/// Why a request was refused. Never quotes the input: a value may be a password.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("line {0} is longer than git's limit of 65535 bytes")]
    TooLong(usize),
    #[error("more than {MAX_LINES} lines")]
    TooMany,
    #[error("line {0} holds a carriage return")]
    CarriageReturn(usize),
    #[error("line {0} holds a NUL byte")]
    Nul(usize),
    #[error("line {0} is not key=value")]
    NoEquals(usize),
    #[error("line {0}: the value of {1} is not UTF-8")]
    NotUtf8(usize, &'static str),
    #[error("line {0}: {1} is given twice")]
    Twice(usize, &'static str),
    #[error("line {0}: url= is not taken; give protocol= and host= (git itself sends those)")]
    Url(usize),
    #[error("no protocol= in the request")]
    NoProtocol,
    #[error("no host= in the request")]
    NoHost,
    #[error("reading the request: {0}")]
    Read(String),
}

/// Read one request: `key=value` lines up to a blank line or the end of the input.
pub fn read_request(input: &mut impl BufRead) -> Result<Request, Refusal> {
    let mut request = Request::default();
    let (mut protocol, mut host) = (None, None);
    let mut line = Vec::with_capacity(256);
    for number in 1..=MAX_LINES + 1 {
        if number > MAX_LINES {
            return Err(Refusal::TooMany);
        }
        line.clear();
        // Bounded read: a line without an end is not read past the limit.
        let read = BufRead::read_until(&mut Read::take(&mut *input, MAX_LINE as u64), b'\n', &mut line);
        let read = read.map_err(|e| Refusal::Read(e.kind().to_string()))?;
        if read == 0 {
            break;
        }
        match line.last() {
            Some(b'\n') => {
                line.pop();
            }
            _ if read == MAX_LINE => return Err(Refusal::TooLong(number)),
            // The input's last line, ended by EOF.
            _ => {}
        }
        if line.is_empty() {
            break;
        }
        if line.contains(&b'\r') {
            return Err(Refusal::CarriageReturn(number));
        }
        if line.contains(&0) {
            return Err(Refusal::Nul(number));
        }
        let at = line.iter().position(|&b| b == b'=').ok_or(Refusal::NoEquals(number))?;
        let (key, value) = (&line[..at], &line[at + 1..]);
        let text = |name: &'static str| {
            std::str::from_utf8(value).map(str::to_owned).map_err(|_| Refusal::NotUtf8(number, name))
        };
        let once = |slot: &mut Option<String>, name: &'static str| match slot {
            Some(_) => Err(Refusal::Twice(number, name)),
            None => {
                *slot = Some(text(name)?);
                Ok(())
            }
        };
        match key {
            b"protocol" => once(&mut protocol, "protocol")?,
            b"host" => once(&mut host, "host")?,
            b"username" => once(&mut request.username, "username")?,
            b"authtype" => once(&mut request.authtype, "authtype")?,
            b"password" if request.password.is_some() => return Err(Refusal::Twice(number, "password")),
            b"password" => request.password = Some(Secret::new(text("password")?)),
            b"credential" if request.credential.is_some() => return Err(Refusal::Twice(number, "credential")),
            b"credential" => request.credential = Some(Secret::new(text("credential")?)),
            b"capability[]" if value.is_empty() => request.capabilities.clear(),
            b"capability[]" => request.capabilities.push(text("capability[]")?),
            // Splitting a URL as git does is where the 2020 CVEs were; git sends its parts.
            b"url" => return Err(Refusal::Url(number)),
            b"wwwauth[]" => {
                let scheme = value.split(|b| *b == b' ').next().unwrap_or_default();
                request.bearer_offered |= scheme.eq_ignore_ascii_case(b"bearer");
            }
            // path, state[] and whatever a later git adds: not ours to act on.
            _ => {}
        }
    }
    request.protocol = protocol.ok_or(Refusal::NoProtocol)?;
    request.host = host.ok_or(Refusal::NoHost)?;
    Ok(request)
}

/// The answer to `get`.
pub struct Answer<'a> {
    pub username: &'a str,
    pub token: &'a Secret,
    pub expires_at: i64,
    /// git announced `capability[]=authtype`: answer with a Bearer credential.
    pub bearer: bool,
}

/// Write the answer. A value with a line break, CR or NUL would add lines of its own to what
/// git reads (a `host=`, a `quit=1`): such a token is refused, nothing written.
pub fn write_answer(out: &mut impl Write, a: &Answer) -> io::Result<()> {
    let clean = |v: &str| !v.is_empty() && !v.bytes().any(|b| b.is_ascii_control());
    if !clean(a.token.expose()) || !clean(a.username) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "the token has characters git's protocol cannot carry"));
    }
    let token = a.token.expose().as_bytes();
    if a.bearer {
        // Echoed so that git passes the credential back to `erase` (credential.c sends
        // authtype values only to helpers that announced the capability).
        out.write_all(b"capability[]=authtype\nauthtype=Bearer\ncredential=")?;
        out.write_all(token)?;
        out.write_all(b"\nephemeral=true\n")?;
    } else {
        out.write_all(b"username=")?;
        out.write_all(a.username.as_bytes())?;
        out.write_all(b"\npassword=")?;
        out.write_all(token)?;
        out.write_all(b"\n")?;
    }
    writeln!(out, "password_expiry_utc={}", a.expires_at)?;
    out.flush()
}

/// The answer to `capability` ("CAPABILITY INPUT/OUTPUT FORMAT").
pub const CAPABILITIES: &str = "version 0\ncapability authtype\n";

#[cfg(test)]
#[path = "credential_wire_tests.rs"]
mod tests;
