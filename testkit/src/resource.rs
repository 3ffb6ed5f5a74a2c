//! A DPoP resource server for the DPoP tests (`testidp/resource.mjs`): http on loopback,
//! answering only a DPoP-bound token with a valid proof, checked as RFC 9449 §7 says and the
//! token's binding asked of the test IdP (introspection, as the desktop client).

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::idp::Idp;
use crate::process::{Proc, first_line};
use crate::repo_root;

pub struct Resource {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _node: Proc,
}

impl Resource {
    /// With `nonce`, it demands a nonce of its own in every proof (RFC 9449 §9).
    pub fn start(idp: &Idp, nonce: bool) -> Resource {
        let mut child = Command::new("node")
            .arg(repo_root().join("testidp/resource.mjs"))
            .args(["--issuer", &idp.issuer])
            .args(["--client-id", "tokenbroker-desktop", "--client-secret", "desktop-secret-not-confidential"])
            .args(nonce.then_some("--nonce"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node must be installed");
        let line = first_line(&mut child, Duration::from_secs(20)).expect("the resource server started");
        let info: Value = serde_json::from_str(&line).expect("it prints JSON");
        Resource { url: info["url"].as_str().unwrap().to_owned(), _node: Proc(child) }
    }
}
