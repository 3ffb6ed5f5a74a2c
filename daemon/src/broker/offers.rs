//! `doctor`'s judgement of what an IdP offers against what an account asks of it. A missing
//! login flow the account uses fails the check; other gaps are warnings: `ok` with a `fix`.

use tokenbroker::protocol::{Check, Flow};

use crate::config::AccountConfig;
use crate::oidc::Offers;

/// Some IdPs issue refresh tokens without listing `offline_access` (Google asks for
/// `access_type=offline` instead; Entra ID, Okta and Auth0 decide per client).
const REFRESH_MAY_STILL_COME: &str = "an IdP that does not list offline_access may still issue refresh tokens to \
     some clients; if a login's session ends when its access token expires, the IdP issued none";

/// Which features the IdP offers, and whether the account's login flow is among them.
pub(super) fn features(account: &str, config: &AccountConfig, offers: &Offers) -> Check {
    let refresh = offers.refresh_grant == Some(true) || lists(offers, "offline_access");
    let features = [
        ("device flow", offers.device_flow),
        ("code flow", offers.code_flow),
        ("revocation", offers.revocation),
        ("end session", offers.end_session),
        ("userinfo", offers.userinfo),
        ("refresh tokens", refresh),
    ];
    let names = |has: bool| {
        let list: Vec<_> = features.iter().filter(|f| f.1 == has).map(|f| f.0).collect();
        if list.is_empty() { "nothing".to_owned() } else { list.join(", ") }
    };
    let mut detail = format!("offers {}; lacks {}", names(true), names(false));
    if let Some(problem) = &offers.server_metadata_problem {
        detail.push_str(&format!(" (its RFC 8414 metadata was not used: {problem})"));
    }
    let table = format!("[accounts.{account}]");
    let flow_missing = match config.flow {
        Flow::Device if !offers.device_flow => Some(format!(
            "the account's flow is \"device\" but the IdP lists no device_authorization_endpoint: set flow = \"code\" \
             in {table}, or device_authorization_endpoint if the IdP has a device flow it does not list"
        )),
        Flow::Code if !offers.code_flow => Some(format!(
            "the account's flow is \"code\" but the IdP offers no authorization code flow: set flow = \"device\" in {table}"
        )),
        _ => None,
    };
    if let Some(fix) = flow_missing {
        return Check { name: format!("features of {account}"), ok: false, detail, fix: Some(fix) };
    }
    let mut warnings = Vec::new();
    if !offers.revocation {
        warnings.push(format!(
            "logout cannot revoke the session at the IdP; set revocation_endpoint in {table} if it has one"
        ));
    }
    if !refresh {
        warnings.push(format!(
            "the IdP lists neither the refresh_token grant nor offline_access: {REFRESH_MAY_STILL_COME}"
        ));
    }
    let fix = (!warnings.is_empty()).then(|| warnings.join("; "));
    Check { name: format!("features of {account}"), ok: true, detail, fix }
}

/// The account's `scopes` against the IdP's `scopes_supported`: unlisted scopes are a
/// warning, not a failure (APIs' scopes are often valid without being listed).
pub(super) fn scopes(account: &str, config: &AccountConfig, offers: &Offers) -> Check {
    let name = format!("scopes of {account}");
    let Some(supported) = &offers.scopes else {
        let detail = "the IdP does not list scopes_supported; the account's scopes cannot be compared".into();
        return Check { name, ok: true, detail, fix: None };
    };
    let unlisted: Vec<&str> = config.scopes.iter().filter(|s| !supported.contains(s)).map(String::as_str).collect();
    if unlisted.is_empty() {
        let detail = format!("the IdP lists all {} of the account's scopes", config.scopes.len());
        return Check { name, ok: true, detail, fix: None };
    }
    let detail = format!("the IdP's scopes_supported does not list {}", unlisted.join(", "));
    let mut fix = format!(
        "if a login fails with invalid_scope, remove those from scopes in [accounts.{account}] \
         (scopes of an API asked for by audience may be valid without being listed)"
    );
    if unlisted.contains(&"offline_access") {
        fix.push_str(&format!("; {REFRESH_MAY_STILL_COME}"));
    }
    Check { name, ok: true, detail, fix: Some(fix) }
}

fn lists(offers: &Offers, scope: &str) -> bool {
    offers.scopes.as_ref().is_some_and(|s| s.iter().any(|s| s == scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(flow: &str, scopes: &str) -> AccountConfig {
        let text =
            format!("[accounts.a]\nissuer = \"https://x/\"\nclient_id = \"c\"\nflow = \"{flow}\"\nscopes = {scopes}\n");
        crate::config::Config::parse(&text).unwrap().accounts.remove("a").unwrap()
    }

    fn everything() -> Offers {
        Offers {
            device_flow: true,
            code_flow: true,
            revocation: true,
            end_session: true,
            userinfo: true,
            refresh_grant: Some(true),
            scopes: Some(["openid", "profile", "email", "offline_access"].map(String::from).to_vec()),
            server_metadata_problem: None,
            client_credentials_grant: None,
            client_auth_methods: None,
            dpop_es256: None,
        }
    }

    const DEFAULT: &str = r#"["openid", "profile", "email", "offline_access"]"#;

    #[test]
    fn a_complete_idp_is_fine_without_remarks() {
        let c = features("a", &config("device", DEFAULT), &everything());
        assert!(c.ok && c.fix.is_none(), "{c:?}");
        assert_eq!(
            c.detail,
            "offers device flow, code flow, revocation, end session, userinfo, refresh tokens; lacks nothing"
        );
        let s = scopes("a", &config("device", DEFAULT), &everything());
        assert!(s.ok && s.fix.is_none(), "{s:?}");
    }

    #[test]
    fn the_accounts_flow_missing_fails_and_names_the_keys() {
        let offers = Offers { device_flow: false, ..everything() };
        let c = features("a", &config("device", DEFAULT), &offers);
        assert!(!c.ok, "{c:?}");
        assert!(c.detail.contains("lacks device flow"), "{c:?}");
        let fix = c.fix.unwrap();
        assert!(fix.contains("flow = \"code\"") && fix.contains("device_authorization_endpoint"), "{fix}");
        // The same IdP is fine for a code-flow account.
        assert!(features("a", &config("code", DEFAULT), &offers).ok);
        let offers = Offers { code_flow: false, ..everything() };
        assert!(!features("a", &config("code", DEFAULT), &offers).ok);
    }

    #[test]
    fn missing_revocation_and_refresh_are_warnings() {
        let offers = Offers { revocation: false, refresh_grant: Some(false), scopes: None, ..everything() };
        let c = features("a", &config("device", DEFAULT), &offers);
        assert!(c.ok, "{c:?}");
        assert!(c.detail.contains("lacks revocation, refresh tokens"), "{c:?}");
        let fix = c.fix.unwrap();
        assert!(fix.contains("revocation_endpoint") && fix.contains("may still issue refresh tokens"), "{fix}");
        // offline_access alone counts as offering refresh tokens.
        assert!(
            features("a", &config("device", DEFAULT), &Offers { refresh_grant: None, ..everything() }).fix.is_none()
        );
    }

    #[test]
    fn unlisted_scopes_are_named_and_offline_access_is_explained() {
        let offers = Offers { scopes: Some(["openid", "profile"].map(String::from).to_vec()), ..everything() };
        let s = scopes("a", &config("device", DEFAULT), &offers);
        assert!(s.ok, "a warning, not a failure: {s:?}");
        assert!(s.detail.ends_with("does not list email, offline_access"), "{s:?}");
        let fix = s.fix.unwrap();
        assert!(fix.contains("scopes in [accounts.a]") && fix.contains("may still issue refresh tokens"), "{fix}");
        let s = scopes("a", &config("device", r#"["openid", "email"]"#), &Offers { scopes: None, ..everything() });
        assert!(s.ok && s.fix.is_none() && s.detail.contains("does not list scopes_supported"), "{s:?}");
    }
}
