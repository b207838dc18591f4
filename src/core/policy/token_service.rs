//! The `token_service` section: the part of `warden serve` that exchanges a proof of identity
//! (an organisation's OIDC token, a SAML response, a CI or Kubernetes workload token) for a
//! short-lived Warden token the gateways trust (docs/identity.md).
//!
//! The filter never reads this section: it trusts the service's tokens through an ordinary
//! `identity.providers` entry whose `issuer` is `token_service.issuer` and whose JWKS is the
//! service's `/.well-known/jwks.json`. Checks here: the issuer is an `http(s)://` URL, the
//! lifetime is at least one minute and no longer than `identity.max_token_lifetime` (the
//! gateway would refuse a longer-lived token), sign-in sources have unique names.

use super::config::{CredentialConfig, JwksSource};
use super::units::Seconds;
use super::Checker;
use serde::Deserialize;
use std::collections::BTreeSet;

/// Shortest accepted token lifetime.
const MIN_LIFETIME_SECONDS: u64 = 60;

/// Signature algorithms a source's `algorithms` may name (`warden serve`'s verifier checks
/// these). `none` and the `HS*` family are never accepted: with a symmetric algorithm, anyone
/// holding the issuer's public key could forge tokens.
pub const SUPPORTED_ALGORITHMS: &[&str] =
    &["ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"];

/// The token service: what it mints and from which proofs of identity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenServiceConfig {
    /// `iss` of the tokens it mints: the service's public URL (`https://warden.example.com`).
    /// The gateways' `identity.providers` must list it, with the service's JWKS.
    pub issuer: String,
    /// `aud` of the tokens it mints; one of that provider's `audiences`. Default `warden`.
    #[serde(default = "default_audience")]
    pub audience: String,
    /// Lifetime of a minted token. Default `10m`; at most `identity.max_token_lifetime`.
    #[serde(default = "default_lifetime")]
    pub lifetime: Seconds,
    /// How long a person's sign-in lasts (the refresh material `warden login` keeps) before they
    /// must sign in again. Default `12h`.
    #[serde(default = "default_session_lifetime")]
    pub session_lifetime: Seconds,
    /// Organisation OIDC providers people sign in with, and whose tokens may be exchanged.
    #[serde(default)]
    pub oidc: Vec<OidcSignInConfig>,
    /// Workload issuers (GitHub Actions, Kubernetes) whose tokens may be exchanged (RFC 8693).
    #[serde(default)]
    pub workloads: Vec<WorkloadConfig>,
}

/// An organisation OIDC provider (Okta, Entra ID, Keycloak, Google, …).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSignInConfig {
    /// Name (letters, digits, `-`, `_`), shown on the sign-in page and in records.
    pub name: String,
    /// Expected `iss`.
    pub issuer: String,
    /// Accepted `aud` values of tokens presented to the exchange (an ID token's audience is the
    /// client id). At least one.
    pub audiences: Vec<String>,
    /// Where the provider's signing keys are.
    pub jwks: JwksSource,
    /// Accepted signature algorithms. Default `[RS256, ES256]`; `none` and `HS*` are refused.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Claim holding the groups (dotted path). Default: `identity.groups_claim`.
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// Claim naming the person. Default `sub`; `email` or `preferred_username` read better.
    #[serde(default)]
    pub subject_claim: Option<String>,
    /// The service as this provider's OIDC client, for browser sign-in (`warden login`, the
    /// console). Without it the provider's tokens can only be exchanged.
    #[serde(default)]
    pub client: Option<OidcClientConfig>,
}

/// The service's registration at an OIDC provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcClientConfig {
    /// The client id.
    pub client_id: String,
    /// Where the client secret is read from; none for a public client (PKCE only).
    #[serde(default)]
    pub client_secret: Option<CredentialConfig>,
    /// Authorization endpoint. Default: from the issuer's discovery document.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    /// Token endpoint. Default: from the issuer's discovery document.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// Scopes asked for. Default `[openid, profile, email]`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

/// A workload issuer whose tokens are exchanged for Warden tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Name (letters, digits, `-`, `_`).
    pub name: String,
    /// What issues the tokens; decides which claims become job claims.
    pub kind: WorkloadKind,
    /// Expected `iss` (`https://token.actions.githubusercontent.com`, the cluster's issuer).
    pub issuer: String,
    /// Accepted `aud` values. At least one.
    pub audiences: Vec<String>,
    /// Where the issuer's signing keys are.
    pub jwks: JwksSource,
    /// Accepted signature algorithms. Default `[RS256, ES256]`.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
}

/// Kinds of workload issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// GitHub Actions OIDC tokens: `repository`, `ref`, `workflow`, `run_id`, `environment`, …
    GithubActions,
    /// Kubernetes service-account tokens: namespace and service account.
    Kubernetes,
}

fn default_audience() -> String {
    "warden".to_string()
}
fn default_lifetime() -> Seconds {
    Seconds(600)
}
fn default_session_lifetime() -> Seconds {
    Seconds(12 * 3600)
}
fn default_algorithms() -> Vec<String> {
    vec!["RS256".to_string(), "ES256".to_string()]
}
fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(String::from).to_vec()
}

/// Checks the section; `max_token_lifetime` is `identity.max_token_lifetime` in seconds.
pub(super) fn check(check: &mut Checker, config: &TokenServiceConfig, max_token_lifetime: u64) {
    let path = "token_service";
    if !(config.issuer.starts_with("https://") || config.issuer.starts_with("http://")) {
        check.error(format!("{path}.issuer"), "must be the service's public http(s):// URL");
    }
    if config.audience.is_empty() {
        check.error(format!("{path}.audience"), "must not be empty");
    }
    if config.lifetime.0 < MIN_LIFETIME_SECONDS || config.lifetime.0 > max_token_lifetime {
        check.error(
            format!("{path}.lifetime"),
            format!("must be at least 1m and at most identity.max_token_lifetime ({max_token_lifetime}s)"),
        );
    }
    if config.session_lifetime.0 < config.lifetime.0 {
        check.error(format!("{path}.session_lifetime"), "must be at least `lifetime`");
    }
    for (i, oidc) in config.oidc.iter().enumerate() {
        let at = format!("{path}.oidc[{i}]");
        check_source(check, &at, &oidc.issuer, &oidc.audiences, &oidc.jwks, &oidc.algorithms);
        for (field, claim) in [("groups_claim", &oidc.groups_claim), ("subject_claim", &oidc.subject_claim)] {
            if claim.as_deref().is_some_and(|c| c.split('.').any(str::is_empty)) {
                check.error(format!("{at}.{field}"), "must be a claim name or a dotted path of names");
            }
        }
    }
    for (i, workload) in config.workloads.iter().enumerate() {
        let at = format!("{path}.workloads[{i}]");
        check_source(check, &at, &workload.issuer, &workload.audiences, &workload.jwks, &workload.algorithms);
    }
    let mut names = BTreeSet::new();
    let oidc = config.oidc.iter().enumerate().map(|(i, o)| (format!("{path}.oidc[{i}].name"), &o.name));
    let workloads = config.workloads.iter().enumerate().map(|(i, w)| (format!("{path}.workloads[{i}].name"), &w.name));
    for (field, name) in oidc.chain(workloads) {
        if !super::is_provider_name(name) {
            check.error(field, "must be 1-63 letters, digits, '-' or '_', starting with a letter or digit");
        } else if !names.insert(name.as_str()) {
            check.error(field, format!("another sign-in source is already named {name:?}"));
        }
    }
}

/// Checks what every source has: an issuer, audiences, one JWKS location, an algorithm allowlist.
fn check_source(
    check: &mut Checker,
    at: &str,
    issuer: &str,
    audiences: &[String],
    jwks: &JwksSource,
    algorithms: &[String],
) {
    if issuer.trim().is_empty() {
        check.error(format!("{at}.issuer"), "must not be empty");
    }
    if audiences.is_empty() || audiences.iter().any(|a| a.trim().is_empty()) {
        check.error(format!("{at}.audiences"), "list at least one audience, none empty");
    }
    match (&jwks.file, &jwks.uri) {
        (Some(file), None) if !file.is_empty() => {}
        (None, Some(uri)) if super::is_trusted_jwks_uri(uri) => {}
        (None, Some(_)) => {
            check.error(format!("{at}.jwks.uri"), "must be an https:// URL (http:// only on a loopback host)")
        }
        _ => check.error(format!("{at}.jwks"), "set exactly one of `file` (a JWKS file) or `uri` (an https:// URL)"),
    }
    if algorithms.is_empty() {
        check.error(format!("{at}.algorithms"), "list at least one algorithm");
    }
    for (j, algorithm) in algorithms.iter().enumerate() {
        let field = format!("{at}.algorithms[{j}]");
        if algorithm.eq_ignore_ascii_case("none") || algorithm.to_ascii_uppercase().starts_with("HS") {
            check.error(
                field,
                format!("{algorithm:?} is never accepted: unsigned and shared-secret tokens could be forged"),
            );
        } else if !SUPPORTED_ALGORITHMS.contains(&algorithm.as_str()) {
            check.error(
                field,
                format!("unsupported algorithm {algorithm:?} (one of {})", SUPPORTED_ALGORITHMS.join(", ")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::core::policy::tests::{errors_of, MINIMAL};

    const SECTION: &str = r#"token_service:
  issuer: https://warden.example.com
  oidc:
    - { name: okta, issuer: "https://example.okta.com", audiences: [warden-cli], jwks: { uri: "https://example.okta.com/v1/keys" } }
  workloads:
    - { name: github, kind: github_actions, issuer: "https://token.actions.githubusercontent.com", audiences: [warden], jwks: { uri: "https://token.actions.githubusercontent.com/.well-known/jwks" } }
"#;

    fn policy() -> String {
        format!("{MINIMAL}{SECTION}")
    }

    #[test]
    fn a_token_service_with_oidc_and_workload_sources_compiles() {
        assert_eq!(errors_of(&policy()), Vec::<String>::new());
    }

    #[test]
    fn symmetric_unsigned_and_unknown_algorithms_are_refused_with_their_path() {
        let text = policy()
            .replace("audiences: [warden-cli],", "audiences: [warden-cli], algorithms: [RS256, HS256, none, XY1],");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("token_service.oidc[0].algorithms[1]: \"HS256\" is never accepted"),
            "{errors:?}"
        );
        assert!(errors[1].starts_with("token_service.oidc[0].algorithms[2]: \"none\" is never accepted"), "{errors:?}");
        assert!(errors[2].starts_with("token_service.oidc[0].algorithms[3]: unsupported algorithm"), "{errors:?}");
    }

    #[test]
    fn sources_need_audiences_one_trusted_jwks_and_claim_paths() {
        let text = policy()
            .replace("audiences: [warden],", "audiences: [],")
            .replace("{ uri: \"https://example.okta.com/v1/keys\" }", "{ uri: \"http://example.okta.com/v1/keys\" }")
            .replace("jwks: { uri: \"https://token.actions", "jwks: { file: x.json, uri: \"https://token.actions")
            .replace("audiences: [warden-cli],", "audiences: [warden-cli], groups_claim: \"a..b\",");
        let errors = errors_of(&text);
        assert_eq!(
            errors,
            [
                "token_service.oidc[0].jwks.uri: must be an https:// URL (http:// only on a loopback host)",
                "token_service.oidc[0].groups_claim: must be a claim name or a dotted path of names",
                "token_service.workloads[0].audiences: list at least one audience, none empty",
                "token_service.workloads[0].jwks: set exactly one of `file` (a JWKS file) or `uri` (an https:// URL)",
            ]
        );
    }
}
