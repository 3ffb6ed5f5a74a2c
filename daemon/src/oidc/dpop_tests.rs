use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;

use super::*;

/// The scalar 7: its JWK and thumbprint as computed by `jose` (the test IdP's library).
const SEVEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAc";
const SEVEN_X: &str = "jlM7b6C_e0YluzBmfAH7YH75-LioD-9bMAYocDGHsqM";
const SEVEN_Y: &str = "c-sdveAzGDZtBp-DpvWQAFPHNjPLBBshxV4ahsH0ALQ";
const SEVEN_JKT: &str = "ccgscWSOWNe7zfELCIRHTdb7JkVy_Eo2vg371C5rplY";

fn part(proof: &str, n: usize) -> Value {
    serde_json::from_slice(&B64.decode(proof.split('.').nth(n).unwrap()).unwrap()).unwrap()
}

/// Check a proof as a server does: the signature under the header's own key, and its header.
fn verify(proof: &str) -> (Value, Value) {
    let (input, sig) = proof.rsplit_once('.').unwrap();
    let header = part(proof, 0);
    assert_eq!(header["typ"], "dpop+jwt");
    assert_eq!(header["alg"], "ES256");
    let jwk = &header["jwk"];
    assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("EC"), Some("P-256")));
    assert!(jwk.get("d").is_none(), "the private key is never in a proof");
    let mut point = vec![4u8];
    point.extend(B64.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(B64.decode(jwk["y"].as_str().unwrap()).unwrap());
    let key = VerifyingKey::from_sec1_bytes(&point).unwrap();
    let signature = Signature::from_slice(&B64.decode(sig).unwrap()).unwrap();
    key.verify(input.as_bytes(), &signature).expect("the signature verifies");
    (header, part(proof, 1))
}

#[test]
fn the_thumbprint_is_rfc_7638s_as_jose_computes_it() {
    let key = DpopKey::from_secret(SEVEN).unwrap();
    assert_eq!(key.thumbprint(), SEVEN_JKT);
    let (header, _) = verify(&key.proof("GET", "https://api.example.com/", None, None));
    assert_eq!(header["jwk"]["x"], SEVEN_X);
    assert_eq!(header["jwk"]["y"], SEVEN_Y);
}

#[test]
fn a_proof_carries_what_the_request_is_and_verifies() {
    let key = DpopKey::generate();
    let (_, claims) = verify(&key.proof("POST", "https://idp.example.com/token", Some("n-1"), Some("tok")));
    assert_eq!(claims["htm"], "POST");
    assert_eq!(claims["htu"], "https://idp.example.com/token");
    assert_eq!(claims["nonce"], "n-1");
    // SHA-256("tok"), base64url: computed apart from `ath`.
    assert_eq!(claims["ath"], B64.encode(Sha256::digest(b"tok")));
    assert!((claims["iat"].as_i64().unwrap() - now()).abs() <= 1);
    let other = key.proof("POST", "https://idp.example.com/token", None, None);
    let (_, other) = verify(&other);
    assert_ne!(claims["jti"], other["jti"], "every proof has its own jti");
    assert!(other.get("nonce").is_none() && other.get("ath").is_none());
}

#[test]
fn the_key_round_trips_through_its_stored_form_and_never_prints() {
    let key = DpopKey::generate();
    let back = DpopKey::from_secret(&key.secret()).unwrap();
    assert_eq!(back.thumbprint(), key.thumbprint());
    let shown = format!("{key:?}");
    assert!(shown.contains(key.thumbprint()) && !shown.contains(key.secret().as_str()), "{shown}");
    assert!(DpopKey::from_secret("not base64!").is_err());
    assert!(DpopKey::from_secret(&B64.encode([0u8; 32])).is_err(), "zero is no key");
    assert_ne!(DpopKey::generate().thumbprint(), key.thumbprint());
}

#[test]
fn htu_drops_query_and_fragment_and_refuses_plain_http_elsewhere() {
    assert_eq!(htu("https://API.example.com:443/a/b?x=1#f").unwrap(), "https://api.example.com/a/b");
    assert_eq!(htu("http://127.0.0.1:8080/r?q").unwrap(), "http://127.0.0.1:8080/r");
    assert_eq!(htu("https://api.example.com").unwrap(), "https://api.example.com/");
    for bad in ["http://api.example.com/", "ftp://x/", "/relative", "https://user:pw@api.example.com/", "nonsense"] {
        assert!(htu(bad).is_err(), "{bad}");
    }
    assert_eq!(htm("GET").unwrap(), "GET");
    for bad in ["get", "", "GE T", "POST\r\n", &"A".repeat(33)] {
        assert!(htm(bad).is_err(), "{bad:?}");
    }
}

/// A token endpoint on its own thread answering request `n` with `answer(n)`; it records the
/// DPoP header of each request.
fn server(answer: fn(usize) -> &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token?x=1", listener.local_addr().unwrap());
    let proofs = Arc::new(Mutex::new(Vec::new()));
    let seen = proofs.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 16384];
            let len = stream.read(&mut buf).unwrap();
            let text = String::from_utf8_lossy(&buf[..len]).to_string();
            let proof = text.lines().find_map(|l| l.strip_prefix("dpop: ")).unwrap_or("").to_owned();
            seen.lock().unwrap().push(proof);
            stream.write_all(answer(n).as_bytes()).unwrap();
        }
    });
    (url, proofs)
}

const NEED_NONCE: &str = "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\n\
    dpop-nonce: n-{N}\r\ncontent-length: 27\r\n\r\n{\"error\":\"use_dpop_nonce\"}\n";
const OK: &str =
    "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";

fn post(url: &str) -> HttpRequest {
    http::Request::builder().method("POST").uri(url).body(b"grant_type=refresh_token".to_vec()).unwrap()
}

#[tokio::test]
async fn a_demanded_nonce_is_sent_once_and_remembered_for_the_server() {
    let (url, proofs) = server(|n| if n == 0 { NEED_NONCE } else { OK });
    let http = Http::new(Duration::from_secs(5)).unwrap();
    let key = DpopKey::generate();
    let sender = Sender { http: &http, dpop: Some(&key) };
    let response = sender.execute(post(&url)).await.unwrap();
    assert_eq!(response.status(), 200);
    sender.execute(post(&url)).await.unwrap();
    let proofs = proofs.lock().unwrap().clone();
    assert_eq!(proofs.len(), 3, "one retry, then the next request carries the nonce at once");
    let claims: Vec<Value> = proofs.iter().map(|p| verify(p).1).collect();
    assert!(claims[0].get("nonce").is_none());
    assert_eq!(claims[1]["nonce"], "n-{N}");
    assert_eq!(claims[2]["nonce"], "n-{N}");
    assert_eq!(claims[0]["htu"], url.split('?').next().unwrap(), "htu has no query");
}

#[tokio::test]
async fn a_server_that_keeps_demanding_a_nonce_gets_one_retry_only() {
    let (url, proofs) = server(|_| NEED_NONCE);
    let http = Http::new(Duration::from_secs(5)).unwrap();
    let key = DpopKey::generate();
    let response = Sender { http: &http, dpop: Some(&key) }.execute(post(&url)).await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(proofs.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_bearer_authorization_becomes_dpop_with_ath_and_no_key_means_no_proof() {
    let (url, proofs) = server(|_| OK);
    let http = Http::new(Duration::from_secs(5)).unwrap();
    let key = DpopKey::generate();
    let get = || http::Request::get(&url).header("authorization", "Bearer tok").body(Vec::new()).unwrap();
    let sent = prove(&key, get(), None).unwrap();
    assert_eq!(sent.headers()["authorization"], "DPoP tok");
    assert_eq!(verify(sent.headers()["dpop"].to_str().unwrap()).1["ath"], ath("tok"));
    Sender { http: &http, dpop: None }.execute(get()).await.unwrap();
    assert_eq!(proofs.lock().unwrap().as_slice(), [String::new()], "a bearer account sends no proof");
}

const RESOURCE_NEEDS_NONCE: &str = "HTTP/1.1 401 Unauthorized\r\nconnection: close\r\n\
    www-authenticate: DPoP error=\"use_dpop_nonce\", error_description=\"nonce\"\r\n\
    dpop-nonce: r-1\r\ncontent-length: 0\r\n\r\n";

#[tokio::test]
async fn a_resource_that_demands_a_nonce_gets_the_request_again_with_it() {
    let (url, proofs) = server(|n| if n == 0 { RESOURCE_NEEDS_NONCE } else { OK });
    let http = Http::new(Duration::from_secs(5)).unwrap();
    let key = DpopKey::generate();
    let get = http::Request::get(&url).header("authorization", "Bearer tok").body(Vec::new()).unwrap();
    let response = Sender { http: &http, dpop: Some(&key) }.execute(get).await.unwrap();
    assert_eq!(response.status(), 200);
    let proofs = proofs.lock().unwrap().clone();
    assert_eq!(proofs.len(), 2);
    let retried = verify(&proofs[1]).1;
    assert_eq!((retried["nonce"].as_str(), retried["ath"].as_str()), (Some("r-1"), Some(ath("tok").as_str())));
}

#[test]
fn only_a_dpop_token_type_is_bound() {
    assert!(check_bound("DPoP").is_ok() && check_bound("dpop").is_ok());
    assert!(check_bound("Bearer").unwrap_err().to_string().contains("dpop = false"));
}
