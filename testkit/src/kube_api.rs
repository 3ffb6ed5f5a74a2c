//! A stand-in Kubernetes API server for the kubectl tests (`testidp/kube-api.mjs`): HTTPS on
//! loopback with a certificate made for it by openssl, answering `GET /api` only for a bearer
//! token the test IdP's userinfo accepts.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::idp::Idp;
use crate::process::{Proc, first_line};
use crate::repo_root;

pub struct KubeApi {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The server's self-signed certificate: the cluster's `certificate-authority`.
    pub ca: PathBuf,
    _node: Proc,
    _dir: tempfile::TempDir,
}

impl KubeApi {
    pub fn start(idp: &Idp) -> KubeApi {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl must be installed");
        assert!(made.success(), "openssl made no certificate");
        let mut child = Command::new("node")
            .arg(repo_root().join("testidp/kube-api.mjs"))
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .args(["--issuer", &idp.issuer])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node must be installed");
        let line = first_line(&mut child, Duration::from_secs(20)).expect("the stand-in API server started");
        let info: Value = serde_json::from_str(&line).expect("it prints JSON");
        KubeApi { url: info["url"].as_str().unwrap().to_owned(), ca: cert, _node: Proc(child), _dir: dir }
    }
}
