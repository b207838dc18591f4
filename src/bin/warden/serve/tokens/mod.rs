//! The token service (docs/identity.md): exchanges a proof of identity for a short-lived Warden
//! token that the gateways' `jwt_authn` trusts through the service's JWKS.
//!
//! Every sign-in path — an organisation OIDC token exchanged directly, a browser sign-in through
//! OIDC or SAML, a workload token (GitHub Actions, Kubernetes) exchanged by RFC 8693 — ends in a
//! [`SignedIn`]: who, which groups, which job claims, how they proved it. [`issuer::TokenIssuer`]
//! turns a `SignedIn` into a signed token; nothing else signs tokens.
//!
//! Modules: [`issuer`] (the signing key and minting), [`sign_in`] (browser sign-ins in progress
//! and how they complete).

pub mod issuer;
pub mod sign_in;

use std::collections::BTreeMap;

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
