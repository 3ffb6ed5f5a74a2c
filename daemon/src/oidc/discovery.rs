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

use openidconnect::core::CoreJsonWebKeySet;
use serde::{Deserialize, Serialize};

use super::OidcError;
use super::http::Http;

/// Endpoints that OIDC Discovery leaves to other specs (RFC 8628, RFC 7009, RP-initiated logout).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ExtraMetadata {
    #[serde(default)]
    pub device_authorization_endpoint: Option<DeviceAuthorizationUrl>,
    #[serde(default)]
    pub revocation_endpoint: Option<RevocationUrl>,
    #[serde(default)]
    pub end_session_endpoint: Option<url::Url>,
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
    /// document's `issuer` is exactly the one configured.
    pub async fn discover(http: Http, issuer: &str, client_id: &str) -> Result<Provider, OidcError> {
        let issuer_url =
            IssuerUrl::new(issuer.to_owned()).map_err(|e| OidcError::Rejected(format!("issuer {issuer:?}: {e}")))?;
        let metadata = Metadata::discover_async(issuer_url, &http).await.map_err(|e| match e {
            openidconnect::DiscoveryError::Request(h) => h.into(),
            openidconnect::DiscoveryError::Response(status, _, _) => {
                OidcError::unavailable(format!("discovery answered HTTP {status}"))
            }
            other => OidcError::unavailable(format!("discovery failed: {other}")),
        })?;
        let extra = metadata.additional_metadata().clone();
        check_endpoints(&metadata)?;
        let jwks = RwLock::new(metadata.jwks().clone());
        let jwks_uri = metadata.jwks_uri().clone();
        let issuer = metadata.issuer().clone();
        let userinfo_url = metadata.userinfo_endpoint().map(|u| u.as_str().to_owned());
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
            id_token_algs,
        })
    }
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
    for (name, url) in endpoints {
        if let Some(url) = url
            && !(url.scheme() == "https" || url.scheme() == "http" && crate::config::is_loopback(url))
        {
            return Err(OidcError::Rejected(format!(
                "the discovery document's {name} is not https ({url}); refusing to send credentials there"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(token_endpoint: &str) -> Metadata {
        serde_json::from_value(serde_json::json!({
            "issuer": "https://idp.example.com/",
            "authorization_endpoint": "https://idp.example.com/authorize",
            "token_endpoint": token_endpoint,
            "jwks_uri": "https://idp.example.com/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "device_authorization_endpoint": "https://idp.example.com/device",
        }))
        .unwrap()
    }

    #[test]
    fn endpoints_in_the_clear_are_refused_unless_loopback() {
        assert!(check_endpoints(&document("https://idp.example.com/token")).is_ok());
        assert!(check_endpoints(&document("http://127.0.0.1:8080/token")).is_ok());
        let err = check_endpoints(&document("http://idp.example.com/token")).unwrap_err();
        assert!(err.to_string().contains("token_endpoint"), "{err}");
    }
}
