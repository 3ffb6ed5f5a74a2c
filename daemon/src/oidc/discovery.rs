use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode, CoreResponseType,
    CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, ClientId, DeviceAuthorizationUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    IssuerUrl, JsonWebKeySetUrl, ProviderMetadata, RevocationUrl,
};
use std::sync::RwLock;
use url::Url;

use secrecy::SecretString;

use openidconnect::core::CoreJsonWebKeySet;
use serde::{Deserialize, Serialize};

use super::OidcError;
use super::http::Http;
use super::server_metadata;

/// Endpoints that OIDC Discovery leaves to other specs (RFC 8628, RFC 7009, RP-initiated logout).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ExtraMetadata {
    #[serde(default)]
    pub device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
    #[serde(default)]
    pub revocation_endpoint: Option<RevocationUrl>,
    #[serde(default)]
    pub end_session_endpoint: Option<url::Url>,
    /// RFC 9449 §5.1: the proof algorithms the IdP takes, if it says.
    #[serde(default)]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = ProviderMetadata<
    ExtraMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The client as discovery leaves it: token and userinfo endpoints maybe set.
pub(super) type BaseClient =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// Endpoints an account's config sets itself (already checked: https unless loopback). They
/// win over the IdP's metadata.
#[derive(Clone, Debug, Default)]
pub struct EndpointOverrides {
    pub device_authorization: Option<String>,
    pub revocation: Option<String>,
    pub userinfo: Option<String>,
}

/// What the IdP offers, as its metadata and the account's overrides say (for `doctor`).
#[derive(Clone, Debug, Default)]
pub struct Offers {
    pub device_flow: bool,
    pub code_flow: bool,
    pub revocation: bool,
    pub end_session: bool,
    pub userinfo: bool,
    /// Whether `grant_types_supported` lists `refresh_token`; None when the IdP lists none.
    pub refresh_grant: Option<bool>,
    /// Whether `grant_types_supported` lists `client_credentials`; None when the IdP lists none.
    pub client_credentials_grant: Option<bool>,
    /// `token_endpoint_auth_methods_supported`, when the IdP lists it.
    pub client_auth_methods: Option<Vec<String>>,
    /// `scopes_supported`, when the IdP lists it.
    pub scopes: Option<Vec<String>>,
    /// Why RFC 8414 metadata, looked for because discovery lacked an endpoint, was not used.
    pub server_metadata_problem: Option<String>,
    /// Whether `dpop_signing_alg_values_supported` lists ES256 (our proofs'); None when the
    /// IdP lists no DPoP algorithms.
    pub dpop_es256: Option<bool>,
}

impl Offers {
    /// Whether a client secret goes in the request body (`client_secret_post`): only when the
    /// IdP lists methods, that one among them, and not `client_secret_basic`.
    pub fn secret_in_body(&self) -> bool {
        let lists = |m: &str| self.client_auth_methods.as_ref().is_some_and(|l| l.iter().any(|x| x == m));
        lists("client_secret_post") && !lists("client_secret_basic")
    }
}

/// One issuer as seen by one client id: its endpoints, keys and our HTTP stack.
pub struct Provider {
    pub(super) http: Http,
    pub(super) issuer: IssuerUrl,
    pub(super) jwks_uri: JsonWebKeySetUrl,
    /// Replaced when an ID token names a key we do not have.
    pub(super) jwks: RwLock<CoreJsonWebKeySet>,
    pub(super) client: BaseClient,
    pub(super) extra: ExtraMetadata,
    pub(super) userinfo_url: Option<String>,
    pub(super) client_id: String,
    pub offers: Offers,
    /// Only for clients the IdP gave a secret (see `Provider::with_client_secret`).
    pub(super) client_secret: Option<SecretString>,
    /// Extra authorization-request parameters of the code flow, from the config.
    pub(super) auth_params: Vec<(String, String)>,
    /// The ID-token signature algorithms the IdP lists that we verify.
    pub(super) id_token_algs: Vec<openidconnect::core::CoreJwsSigningAlgorithm>,
}

impl Provider {
    /// Where the user can end their browser session at the IdP (OIDC RP-Initiated Logout).
    pub fn end_session_url(&self) -> Option<String> {
        let mut url = self.extra.end_session_endpoint.clone()?;
        url.query_pairs_mut().append_pair("client_id", &self.client_id);
        Some(url.into())
    }

    /// Fetch `.well-known/openid-configuration` and the JWKS. openidconnect checks that the
    /// document's `issuer` is exactly the one configured. Endpoints the document lacks come
    /// from the account's config, else from RFC 8414 metadata.
    pub async fn discover(
        http: Http,
        issuer: &str,
        client_id: &str,
        overrides: &EndpointOverrides,
    ) -> Result<Provider, OidcError> {
        let issuer_url =
            IssuerUrl::new(issuer.to_owned()).map_err(|e| OidcError::Rejected(format!("issuer {issuer:?}: {e}")))?;
        let metadata = Metadata::discover_async(issuer_url, &http).await.map_err(|e| match e {
            openidconnect::DiscoveryError::Request(h) => h.into(),
            openidconnect::DiscoveryError::Response(status, _, _) => {
                OidcError::unavailable(format!("discovery answered HTTP {status}"))
            }
            // The document names another issuer (OIDC Discovery §4.3): a wrong `issuer` in the
            // config, or an impostor; either way retrying will not help.
            openidconnect::DiscoveryError::Validation(why) => {
                OidcError::Rejected(format!("the discovery document was refused: {}", super::idp_text::printable(&why)))
            }
            other => OidcError::unavailable(format!("discovery failed: {other}")),
        })?;
        check_endpoints(&metadata)?;
        let mut extra = metadata.additional_metadata().clone();
        let mut userinfo_url = metadata.userinfo_endpoint().map(|u| u.as_str().to_owned());
        apply_overrides(&mut extra, &mut userinfo_url, overrides)?;
        let mut server_metadata_problem = None;
        if extra.device_authorization_endpoint.is_none() || extra.revocation_endpoint.is_none() {
            // Only looked for when something is missing; an IdP that has no such document, or
            // a broken one, still works for everything discovery did list. One that is
            // unavailable now fails discovery, which is not remembered and so is tried again.
            match server_metadata::fetch(&http, issuer).await {
                Ok(Some(document)) => {
                    extra.device_authorization_endpoint =
                        extra.device_authorization_endpoint.or(document.device_authorization_endpoint);
                    extra.revocation_endpoint = extra.revocation_endpoint.or(document.revocation_endpoint);
                }
                Ok(None) => {}
                Err(server_metadata::Problem::Unavailable(e)) => return Err(e),
                Err(server_metadata::Problem::Unusable(problem)) => {
                    tracing::warn!(%issuer, %problem, "RFC 8414 metadata not used");
                    server_metadata_problem = Some(problem);
                }
            }
        }
        let offers = Offers {
            device_flow: extra.device_authorization_endpoint.is_some(),
            code_flow: offers_code_flow(&metadata),
            revocation: extra.revocation_endpoint.is_some(),
            end_session: extra.end_session_endpoint.is_some(),
            userinfo: userinfo_url.is_some(),
            refresh_grant: metadata.grant_types_supported().map(|g| g.contains(&CoreGrantType::RefreshToken)),
            client_credentials_grant: metadata
                .grant_types_supported()
                .map(|g| g.contains(&CoreGrantType::ClientCredentials)),
            client_auth_methods: metadata
                .token_endpoint_auth_methods_supported()
                .map(|m| m.iter().map(|m| m.as_ref().to_owned()).collect()),
            scopes: metadata.scopes_supported().map(|s| s.iter().map(|s| s.to_string()).collect()),
            server_metadata_problem,
            dpop_es256: extra.dpop_signing_alg_values_supported.as_ref().map(|a| a.iter().any(|a| a == "ES256")),
        };
        let jwks = RwLock::new(metadata.jwks().clone());
        let jwks_uri = metadata.jwks_uri().clone();
        let issuer = metadata.issuer().clone();
        let id_token_algs = super::id_token::accepted_algs(metadata.id_token_signing_alg_values_supported());
        let client = CoreClient::from_provider_metadata(metadata, ClientId::new(client_id.into()), None);
        Ok(Provider {
            http,
            issuer,
            jwks_uri,
            jwks,
            client,
            extra,
            userinfo_url,
            client_id: client_id.into(),
            client_secret: None,
            auth_params: Vec::new(),
            offers,
            id_token_algs,
        })
    }
}

/// The account's own endpoints replace the document's.
fn apply_overrides(
    extra: &mut ExtraMetadata,
    userinfo_url: &mut Option<String>,
    overrides: &EndpointOverrides,
) -> Result<(), OidcError> {
    let parse = |key: &str, url: &str| {
        Url::parse(url).map_err(|e| OidcError::Rejected(format!("the account's {key} {url:?}: {e}")))
    };
    if let Some(url) = &overrides.device_authorization {
        let url = parse("device_authorization_endpoint", url)?;
        extra.device_authorization_endpoint = Some(DeviceAuthorizationUrl::from_url(url));
    }
    if let Some(url) = &overrides.revocation {
        extra.revocation_endpoint = Some(RevocationUrl::from_url(parse("revocation_endpoint", url)?));
    }
    if let Some(url) = &overrides.userinfo {
        *userinfo_url = Some(parse("userinfo_endpoint", url)?.into());
    }
    Ok(())
}

/// The code flow needs `response_type=code`, and the `authorization_code` grant when the IdP
/// lists grants (OIDC Discovery's default is authorization_code and implicit).
fn offers_code_flow(metadata: &Metadata) -> bool {
    let code = metadata.response_types_supported().iter().any(|r| r.as_slice() == [CoreResponseType::Code]);
    code && metadata.grant_types_supported().is_none_or(|g| g.contains(&CoreGrantType::AuthorizationCode))
}

/// The first endpoint that would carry credentials in the clear (plain http off loopback).
pub(super) fn insecure<'a>(
    endpoints: impl IntoIterator<Item = (&'a str, Option<&'a Url>)>,
) -> Option<(&'a str, &'a Url)> {
    endpoints.into_iter().find_map(|(name, url)| {
        let url = url?;
        (!super::secure_url::is_secure(url)).then_some((name, url))
    })
}

/// Every endpoint the document names must be https (plain http only on loopback, as for the
/// issuer itself): a document that sends tokens or codes in the clear is refused whole.
fn check_endpoints(metadata: &Metadata) -> Result<(), OidcError> {
    let extra = metadata.additional_metadata();
    let endpoints = [
        ("token_endpoint", metadata.token_endpoint().map(|u| u.url())),
        ("userinfo_endpoint", metadata.userinfo_endpoint().map(|u| u.url())),
        ("jwks_uri", Some(metadata.jwks_uri().url())),
        ("device_authorization_endpoint", extra.device_authorization_endpoint.as_ref().map(|u| u.url())),
        ("revocation_endpoint", extra.revocation_endpoint.as_ref().map(|u| u.url())),
        ("end_session_endpoint", extra.end_session_endpoint.as_ref()),
        ("authorization_endpoint", Some(metadata.authorization_endpoint().url())),
    ];
    match insecure(endpoints) {
        Some((name, url)) => Err(OidcError::Rejected(format!(
            "the discovery document's {name} is not https ({url}); refusing to send credentials there"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDPOINTS: [&str; 7] = [
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "device_authorization_endpoint",
        "revocation_endpoint",
        "end_session_endpoint",
        "authorization_endpoint",
    ];

    /// A full document with every endpoint https, but `(key, url)` where given.
    fn document(replace: Option<(&str, &str)>) -> Metadata {
        let mut doc = serde_json::json!({
            "issuer": "https://idp.example.com/",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        });
        for key in ENDPOINTS {
            doc[key] = format!("https://idp.example.com/{key}").into();
        }
        if let Some((key, url)) = replace {
            doc[key] = url.into();
        }
        serde_json::from_value(doc).unwrap()
    }

    #[test]
    fn endpoints_in_the_clear_are_refused_unless_loopback() {
        assert!(check_endpoints(&document(None)).is_ok());
        for key in ENDPOINTS {
            assert!(check_endpoints(&document(Some((key, "http://127.0.0.1:8080/x")))).is_ok(), "{key}");
            let err = check_endpoints(&document(Some((key, "http://idp.example.com/x")))).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }
}
