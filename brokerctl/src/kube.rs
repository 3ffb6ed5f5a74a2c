//! kubectl: `brokerctl kube-credential`, the exec credential plugin (an `ExecCredential` on
//! stdout), and `brokerctl setup kubectl`, the kubeconfig entry that runs it.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;

pub const V1: &str = "client.authentication.k8s.io/v1";
const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

/// What kubectl gets at least: it reuses a credential until its `expirationTimestamp`, so a
/// token about to expire could die in the middle of a command.
pub const MIN_TTL: u64 = 60;

/// The `apiVersion` to answer with: `KUBERNETES_EXEC_INFO`'s, which kubectl sets from the
/// kubeconfig (and checks the answer against). Unset or unreadable: v1. A version this plugin
/// does not speak is an error naming it, rather than an answer kubectl would refuse.
pub fn api_version(exec_info: Option<&str>) -> Result<&'static str, String> {
    let Some(info) = exec_info else { return Ok(V1) };
    let Ok(serde_json::Value::Object(info)) = serde_json::from_str::<serde_json::Value>(info) else {
        return Ok(V1);
    };
    match info.get("apiVersion").and_then(|v| v.as_str()) {
        None => Ok(V1),
        Some(V1) => Ok(V1),
        Some(V1BETA1) => Ok(V1BETA1),
        Some(other) => Err(format!(
            "kubectl asks for an ExecCredential of apiVersion {:?}; brokerctl speaks {V1} and {V1BETA1}: \
             set one of them as the exec apiVersion in the kubeconfig (`brokerctl setup kubectl` does)",
            other.chars().filter(|c| !c.is_control()).take(100).collect::<String>()
        )),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecCredential<'a> {
    api_version: &'a str,
    kind: &'static str,
    status: Status<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Status<'a> {
    expiration_timestamp: String,
    token: &'a str,
}

/// The ExecCredential for `token`, which expires at `expires_at` (unix seconds), as one line.
pub fn credential(api_version: &str, token: &str, expires_at: i64) -> Vec<u8> {
    let at = UNIX_EPOCH + Duration::from_secs(expires_at.max(0) as u64);
    let expiration_timestamp = humantime::format_rfc3339_seconds(at).to_string();
    let c = ExecCredential { api_version, kind: "ExecCredential", status: Status { expiration_timestamp, token } };
    let mut out = serde_json::to_vec(&c).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Write `bytes` to stdout and wipe them.
pub fn print_secret(mut bytes: Vec<u8>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&bytes);
    let _ = out.flush();
    bytes.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&bytes);
}

/// What `setup kubectl` configures.
pub struct Setup<'a> {
    pub context: &'a str,
    pub account: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub id_token: bool,
    /// The brokerctl kubectl is to run.
    pub command: String,
}

impl Setup<'_> {
    /// The kubeconfig user entry's name.
    pub fn user(&self) -> String {
        format!("tokenbroker-{}", self.context)
    }

    pub fn args(&self) -> Vec<&str> {
        let mut args = vec!["kube-credential"];
        if let Some(a) = self.account {
            args.extend(["--account", a]);
        }
        if let Some(a) = self.audience {
            args.extend(["--audience", a]);
        }
        if self.id_token {
            args.push("--id-token");
        }
        args
    }

    /// The kubeconfig `users` entry as YAML; every string double-quoted as JSON, which YAML
    /// reads the same, so no name or URL can break out of its scalar.
    pub fn yaml(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let mut y = format!(
            "users:\n- name: {}\n  user:\n    exec:\n      apiVersion: {}\n      command: {}\n      args:\n",
            q(&self.user()),
            q(V1),
            q(&self.command)
        );
        for a in self.args() {
            y += &format!("      - {}\n", q(a));
        }
        y += "      interactiveMode: \"Never\"\n      provideClusterInfo: false\n";
        y += &format!("# and the context: kubectl config set-context {} --user={}\n", q(self.context), q(&self.user()));
        y
    }

    /// The kubectl commands that apply it. kubectl reads each `--exec-arg` as a CSV record
    /// (a comma would split it, a quote break it), so each is written as one quoted CSV field.
    pub fn kubectl_commands(&self) -> Result<[Vec<String>; 2], String> {
        let user = self.user();
        if self.context.is_empty() || self.context.starts_with('-') {
            return Err(format!("{:?} is no context name kubectl would take", self.context));
        }
        let mut credentials: Vec<String> = ["config", "set-credentials", &user].map(String::from).to_vec();
        credentials.push(format!("--exec-command={}", self.command));
        credentials.push(format!("--exec-api-version={V1}"));
        credentials.extend(self.args().iter().map(|a| format!("--exec-arg={}", csv_field(a))));
        credentials.push("--exec-interactive-mode=Never".into());
        credentials.push("--exec-provide-cluster-info=false".into());
        let context = ["config", "set-context", self.context, &format!("--user={user}")].map(String::from).to_vec();
        Ok([credentials, context])
    }
}

/// `value` as one quoted CSV field (RFC 4180: quotes doubled).
pub fn csv_field(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_version_is_kubectls_when_it_is_one_spoken_here() {
        assert_eq!(api_version(None).unwrap(), V1);
        let info =
            |v: &str| format!(r#"{{"kind":"ExecCredential","apiVersion":"{v}","spec":{{"interactive":false}}}}"#);
        assert_eq!(api_version(Some(&info(V1BETA1))).unwrap(), V1BETA1);
        assert_eq!(api_version(Some(&info(V1))).unwrap(), V1);
        let err = api_version(Some(&info("client.authentication.k8s.io/v1alpha1"))).unwrap_err();
        assert!(err.contains("v1alpha1") && err.contains("setup kubectl"), "{err}");
        for garbage in ["", "{", "[1]", "null", r#"{"apiVersion":7}"#, "\u{0}\u{1b}[31m", &"{".repeat(100_000)] {
            assert_eq!(api_version(Some(garbage)).unwrap(), V1, "{garbage:.20?}");
        }
        let hostile = info(r"x\u001b[2J\ny");
        assert!(!api_version(Some(&hostile)).unwrap_err().contains('\u{1b}'), "no control characters echoed");
    }

    #[test]
    fn the_credential_carries_the_tokens_own_expiry_in_rfc3339_utc() {
        let out = String::from_utf8(credential(V1, "tok\"en", 1_700_000_000)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["apiVersion"], V1);
        assert_eq!(v["kind"], "ExecCredential");
        assert_eq!(v["status"]["token"], "tok\"en");
        assert_eq!(v["status"]["expirationTimestamp"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn setup_quotes_every_value_for_yaml_and_for_kubectl() {
        let s = Setup {
            context: "prod",
            account: Some("work"),
            audience: Some("https://k8s.example.com"),
            id_token: false,
            command: "/usr/bin/brokerctl".into(),
        };
        let y = s.yaml();
        assert!(y.contains("- name: \"tokenbroker-prod\"") && y.contains("interactiveMode: \"Never\""), "{y}");
        assert!(y.contains("      - \"--audience\"\n      - \"https://k8s.example.com\"\n"), "{y}");
        let [creds, ctx] = s.kubectl_commands().unwrap();
        assert!(creds.contains(&"--exec-arg=\"https://k8s.example.com\"".to_owned()), "{creds:?}");
        assert_eq!(ctx, ["config", "set-context", "prod", "--user=tokenbroker-prod"]);
        assert_eq!(csv_field(r#"a,"b""#), r#""a,""b""""#);
        let flag = Setup { context: "-x", ..s };
        assert!(flag.kubectl_commands().is_err());
        let quote = Setup { context: "a\"\nb: c", ..flag };
        assert!(quote.yaml().contains(r#""tokenbroker-a\"\nb: c""#));
    }
}
