//! The token service (docs/identity.md): exchanges a proof of identity for a short-lived Warden
//! token that the gateways' `jwt_authn` trusts through the service's JWKS.
//!
//! Every sign-in path — an organisation OIDC token exchanged directly, a browser sign-in through
//! OIDC or SAML, a workload token (GitHub Actions, Kubernetes) exchanged by RFC 8693 — ends in a
//! [`SignedIn`]: who, which groups, which job claims, how they proved it. [`issuer::TokenIssuer`]
//! turns a `SignedIn` into a signed token; nothing else signs tokens.
//!
//! Routes: `GET /.well-known/jwks.json` (the public keys, cacheable for 5 minutes),
//! `GET /.well-known/openid-configuration` (OIDC discovery: issuer, `jwks_uri`, token endpoint),
//! so Envoy's `jwt_authn` can trust the service through `remote_jwks`, and `POST /oauth/token`
//! (the token endpoint, [`endpoint`]).
//!
//! Modules: [`endpoint`] (the token endpoint and its grant types), [`issuer`] (the signing key and minting), [`oauth`] (the token endpoint's answers),
//! [`sign_in`] (browser sign-ins in progress and how they complete), [`sources`] (the trusted
//! OIDC and workload issuers, and how their tokens map to a [`SignedIn`]), [`saml`] (SAML 2.0
//! sign-in: `/saml/<name>/metadata`, `/login`, `/acs`), [`flows`] (the browser
//! routes: authorize, the source picker, the provider's callback, the device page, the
//! console's sign-in), [`grants`] (people's grants at the token endpoint, and the device
//! authorization endpoint), [`refresh`]
//! (rotating refresh tokens in SQLite), [`request`] (a token request's parameters), [`upstream`] (the service as the provider's OIDC client).

pub mod endpoint;
pub mod flows;
pub mod grants;
pub mod issuer;
pub mod oauth;
pub mod refresh;
pub mod request;
pub mod saml;
pub mod sign_in;
pub mod sources;
pub mod upstream;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::BTreeMap;
use std::sync::Arc;
use crate::core::policy::token_service::TokenServiceConfig;

use super::util::log_event;

use issuer::TokenIssuer;
use sign_in::SignIns;
use sources::Sources;

/// File name `warden serve init` gives the token service's signing key.
pub const TOKEN_SIGNING_KEY_FILE: &str = "tokens-signing-key.pem";

/// The token service's state.
#[derive(Debug)]
pub struct TokenService {
    /// The policy's `token_service` section.
    pub config: TokenServiceConfig,
    /// Mints Warden tokens.
    pub issuer: TokenIssuer,
    /// Browser sign-ins in progress.
    pub sign_ins: SignIns,
    /// The `oidc` and `workloads` sources, with their verifier.
    pub sources: Sources,
    /// SAML identity providers (`token_service.saml`) and their requests in progress.
    pub saml: saml::SamlSignIns,
    /// People's sign-ins and their refresh tokens.
    pub refresh: refresh::RefreshStore,
    /// The service as the organisation's OIDC client.
    pub oidc_client: upstream::OidcClient,
    /// The console's sessions, when the policy has approvers (`approvals`).
    pub console: Option<ConsoleSessions>,
    /// CSRF tokens of the device page's form (a fresh key per start).
    pub csrf: super::auth::CsrfKey,
    /// The kill switch's revocations, when the policy has `identity.revocation`: a revoked
    /// identity gets no new token, by any grant.
    pub revocations: Option<Arc<super::revocations::RevocationStore>>,
}

/// What a console session token is minted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSessions {
    /// `approvals.approver_audience`.
    pub audience: String,
    /// Seconds: an hour, or `identity.max_token_lifetime` when shorter.
    pub lifetime: u64,
}

/// Longest console session.
pub const MAX_CONSOLE_SESSION_SECONDS: u64 = 3600;

impl TokenService {
    /// Mints a Warden token for `who` at `now` (seconds), refusing an identity a revocation
    /// covers: the one way every grant mints.
    pub fn mint(&self, who: &SignedIn, now: u64) -> Result<issuer::MintedToken, oauth::OAuthError> {
        self.refuse_revoked(who, now)?;
        self.issuer
            .mint(who, now)
            .map_err(|e| oauth::OAuthError::new(oauth::OAuthErrorCode::ServerError, e.to_string()))
    }

    /// [`Self::mint`] for another audience and lifetime (a console session).
    pub fn mint_for(
        &self,
        who: &SignedIn,
        now: u64,
        audience: &str,
        lifetime: u64,
    ) -> Result<issuer::MintedToken, oauth::OAuthError> {
        self.refuse_revoked(who, now)?;
        self.issuer
            .mint_for(who, now, audience, lifetime)
            .map_err(|e| oauth::OAuthError::new(oauth::OAuthErrorCode::ServerError, e.to_string()))
    }

    /// Refuses `who` when a revocation covers it (subject, a group, its job claims), so a
    /// revoked person or job cannot mint, refresh or sign into the console.
    fn refuse_revoked(&self, who: &SignedIn, now: u64) -> Result<(), oauth::OAuthError> {
        let Some(store) = &self.revocations else { return Ok(()) };
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        match store.covers(&who.subject, &who.groups, &who.claims, None, now) {
            Ok(None) => Ok(()),
            Ok(Some(revocation)) => {
                log_event(&format!(
                    "token service: no token for {} ({}): revoked by #{}",
                    who.subject, who.source, revocation.id
                ));
                Err(oauth::OAuthError::new(
                    oauth::OAuthErrorCode::AccessDenied,
                    format!("access revoked: {}; ask your administrator", revocation.reason),
                ))
            }
            Err(e) => Err(oauth::OAuthError::new(
                oauth::OAuthErrorCode::ServerError,
                format!("cannot read the revocation list: {e}"),
            )),
        }
    }

    /// Verifies a token from one of the `token_service` sources (an organisation OIDC ID or access
    /// token, a GitHub Actions or Kubernetes token) and maps it to a [`SignedIn`]: the source is
    /// picked by the token's `iss`; signature (JWKS, algorithm allowlist), issuer, audience and
    /// times are checked; subject, groups and job claims are read as the source says.
    ///
    /// May fetch a JWKS over the network: call it from a blocking task.
    /// Errors are `invalid_grant` with a description naming the failed check (never the token).
    pub fn verify_source_token(&self, token: &str, now: u64) -> Result<SignedIn, oauth::OAuthError> {
        self.sources.verify(token, now).map_err(|e| {
            oauth::OAuthError::new(oauth::OAuthErrorCode::InvalidGrant, format!("the subject token was refused: {e}"))
        })
    }
}

/// The token service's routes.
pub fn routes(service: Arc<TokenService>) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/oauth/token", post(endpoint::token).layer(DefaultBodyLimit::max(request::MAX_TOKEN_REQUEST_BYTES)))
        .with_state(Arc::clone(&service))
        .merge(saml::routes(service))
}

async fn jwks(State(service): State<Arc<TokenService>>) -> Response {
    match service.issuer.jwks() {
        Ok(body) => json(body, "public, max-age=300"),
        Err(why) => (StatusCode::INTERNAL_SERVER_ERROR, why).into_response(),
    }
}

async fn discovery(State(service): State<Arc<TokenService>>) -> Response {
    let issuer = service.config.issuer.trim_end_matches('/');
    let body = serde_json::json!({
        "issuer": service.config.issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "device_authorization_endpoint": format!("{issuer}/oauth/device_authorization"),
        "token_endpoint_auth_methods_supported": ["none"],
        "grant_types_supported": [
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "authorization_code",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["code"],
    });
    json(body.to_string(), "public, max-age=300")
}

fn json(body: String, cache: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// An organisation OIDC token (exchanged, or from a browser sign-in).
    Oidc,
    /// A SAML 2.0 response from the organisation's identity provider.
    Saml,
    /// A GitHub Actions OIDC token.
    GithubActions,
    /// A Kubernetes service-account token.
    Kubernetes,
}

impl SignInMethod {
    /// The name carried in the token's `warden_auth` claim and in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Saml => "saml",
            Self::GithubActions => "github_actions",
            Self::Kubernetes => "kubernetes",
        }
    }
}

/// An identity proven to the service, ready to be minted into a Warden token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The token's `sub`: the person or workload (`repo:org/app:ref:refs/heads/main`,
    /// `system:serviceaccount:ns:name`).
    pub subject: String,
    /// Name of the `token_service` source that vouched for it (`oidc[].name`, `saml[].name`,
    /// `workloads[].name`).
    pub source: String,
    /// How it was proven.
    pub method: SignInMethod,
    /// Groups, after the source's mapping.
    pub groups: Vec<String>,
    /// Job and workload claims carried into the token (`repository`, `ref`, `run_id`,
    /// `namespace`, `service_account`, …).
    pub claims: BTreeMap<String, String>,
}

/// Identities for the tests of the token service's modules.
#[cfg(test)]
pub mod test_identities {
    use super::{SignInMethod, SignedIn};
    use std::collections::BTreeMap;

    /// `alice@example.com`, signed in through `okta`, in group `eng`, without claims.
    pub fn alice() -> SignedIn {
        SignedIn {
            subject: "alice@example.com".into(),
            source: "okta".into(),
            method: SignInMethod::Oidc,
            groups: vec!["eng".into()],
            claims: BTreeMap::new(),
        }
    }
}
