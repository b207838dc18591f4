//! The `token_service` section: the part of `warden serve` that exchanges a proof of identity
//! (an organisation's OIDC token, a SAML response, a CI or Kubernetes workload token) for a
//! short-lived Warden token the gateways trust (docs/identity.md).
//!
//! The filter never reads this section: it trusts the service's tokens through an ordinary
//! `identity.providers` entry whose `issuer` is `token_service.issuer` and whose JWKS is the
//! service's `/.well-known/jwks.json`. Checks here: the issuer is an `http(s)://` URL, the
//! lifetime is at least one minute and no longer than `identity.max_token_lifetime` (the
//! gateway would refuse a longer-lived token), sign-in sources have unique names.

use super::sources::{CredentialConfig, JwksSource};
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
    /// Organisation SAML 2.0 identity providers people sign in with (SP-initiated, HTTP-POST).
    #[serde(default)]
    pub saml: Vec<SamlSignInConfig>,
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
    let saml = config.saml.iter().enumerate().map(|(i, s)| (format!("{path}.saml[{i}].name"), &s.name));
    for (field, name) in oidc.chain(workloads).chain(saml) {
        if !super::is_provider_name(name) {
            check.error(field, "must be 1-63 letters, digits, '-' or '_', starting with a letter or digit");
        } else if !names.insert(name.as_str()) {
            check.error(field, format!("another sign-in source is already named {name:?}"));
        }
    }
    for (index, saml) in config.saml.iter().enumerate() {
        check_saml(check, &format!("{path}.saml[{index}]"), saml);
    }
}

/// An organisation SAML 2.0 identity provider (Okta, Entra ID, Keycloak, AD FS, …) that people
/// sign in with: the service is its service provider (SP), SP-initiated, the AuthnRequest sent by
/// the HTTP-Redirect binding and the Response received by the HTTP-POST binding at
/// `<issuer>/saml/<name>/acs` (docs/identity.md, "SAML").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlSignInConfig {
    /// Name (letters, digits, `-`, `_`): in the service's SAML URLs (`/saml/<name>/…`), on the
    /// sign-in page and in records.
    pub name: String,
    /// The identity provider's entity id: every response's and assertion's `Issuer` must be it.
    pub idp_entity_id: String,
    /// The identity provider's single sign-on URL for the HTTP-Redirect binding (where the
    /// browser is sent with the AuthnRequest).
    pub idp_sso_url: String,
    /// The identity provider's signing certificate: a PEM file's path (relative to the policy
    /// file) or the PEM text inline (`-----BEGIN CERTIFICATE-----…`). Only signatures by its key
    /// are accepted; a certificate inside a response is never trusted.
    pub idp_certificate: String,
    /// The service's entity id at this provider (the `Audience` every assertion must name).
    /// Default `<token_service.issuer>/saml/<name>`.
    #[serde(default)]
    pub sp_entity_id: Option<String>,
    /// `Name` of the attribute whose values are the groups. Default `groups`; Entra ID sends
    /// `http://schemas.microsoft.com/ws/2008/06/identity/claims/groups`.
    #[serde(default = "default_groups_attribute")]
    pub groups_attribute: String,
    /// `Name` of the attribute naming the person (its single value becomes the token's `sub`).
    /// Default: the assertion's `NameID`.
    #[serde(default)]
    pub subject_attribute: Option<String>,
    /// Whether the assertion itself must carry a valid signature. Default `true`. With `false`, a
    /// signed response whose signature covers an unsigned assertion is accepted too; an unsigned
    /// response with an unsigned assertion never is.
    #[serde(default = "default_true")]
    pub require_signed_assertion: bool,
}

impl SamlSignInConfig {
    /// The service's entity id at this provider: `sp_entity_id`, else `<issuer>/saml/<name>`.
    pub fn sp_entity_id(&self, issuer: &str) -> String {
        self.sp_entity_id.clone().unwrap_or_else(|| format!("{}/saml/{}", issuer.trim_end_matches('/'), self.name))
    }

    /// The assertion consumer service URL: `<issuer>/saml/<name>/acs`.
    pub fn acs_url(&self, issuer: &str) -> String {
        format!("{}/saml/{}/acs", issuer.trim_end_matches('/'), self.name)
    }

    /// Whether `idp_certificate` is the PEM text itself rather than a file's path.
    pub fn certificate_is_inline(&self) -> bool {
        self.idp_certificate.trim_start().starts_with("-----BEGIN")
    }
}

fn default_groups_attribute() -> String {
    "groups".to_string()
}
fn default_true() -> bool {
    true
}

fn check_saml(check: &mut Checker, path: &str, saml: &SamlSignInConfig) {
    if saml.idp_entity_id.trim().is_empty() {
        check.error(format!("{path}.idp_entity_id"), "must not be empty");
    }
    if !(saml.idp_sso_url.starts_with("https://") || saml.idp_sso_url.starts_with("http://"))
        || saml.idp_sso_url.contains(['#', ' '])
    {
        check.error(format!("{path}.idp_sso_url"), "must be the provider's http(s):// single sign-on URL, without #");
    }
    if saml.idp_certificate.trim().is_empty() {
        check.error(format!("{path}.idp_certificate"), "must be a PEM file's path or the PEM certificate inline");
    } else if saml.certificate_is_inline() && !saml.idp_certificate.contains("-----BEGIN CERTIFICATE-----") {
        check.error(format!("{path}.idp_certificate"), "inline PEM must be a CERTIFICATE (never a private key)");
    }
    if saml.sp_entity_id.as_deref().is_some_and(|id| id.trim().is_empty()) {
        check.error(format!("{path}.sp_entity_id"), "must not be empty (leave it out for the default)");
    }
    if saml.groups_attribute.trim().is_empty() {
        check.error(format!("{path}.groups_attribute"), "must not be empty");
    }
    if saml.subject_attribute.as_deref().is_some_and(|a| a.trim().is_empty()) {
        check.error(format!("{path}.subject_attribute"), "must not be empty (leave it out to use NameID)");
    }
}

#[cfg(test)]
mod saml_tests {
    use crate::core::policy::tests::errors_of;
    use crate::core::policy::Policy;

    /// The fields of a valid SAML provider entry.
    const ENTRY: &str = "name: corp, idp_entity_id: 'https://idp.example.com', idp_sso_url: 'https://idp.example.com/sso', idp_certificate: idp.pem";

    /// A minimal policy whose one SAML provider entry has `fields`.
    fn policy(fields: &str) -> String {
        format!(
            r#"
version: 1
identity: {{}}
credentials:
  main: {{ env: ANTHROPIC_API_KEY }}
bindings:
  - {{ group: eng, role: developer }}
roles:
  developer:
    credential: main
    models: ["claude-*"]
token_service:
  issuer: https://warden.example.com/
  saml:
    - {{ {fields} }}
"#
        )
    }

    #[test]
    fn saml_defaults_derive_the_service_provider_urls_from_the_issuer() {
        let parsed = Policy::parse(&policy(ENTRY)).unwrap();
        let tokens = parsed.token_service.unwrap();
        let saml = &tokens.saml[0];
        assert_eq!(saml.sp_entity_id(&tokens.issuer), "https://warden.example.com/saml/corp");
        assert_eq!(saml.acs_url(&tokens.issuer), "https://warden.example.com/saml/corp/acs");
        assert_eq!(saml.groups_attribute, "groups");
        assert_eq!(saml.subject_attribute, None);
        assert!(saml.require_signed_assertion);
        assert!(!saml.certificate_is_inline());
    }

    #[test]
    fn saml_errors_name_the_field_at_fault() {
        let cases = [
            (("idp_entity_id: 'https://idp.example.com'", "idp_entity_id: ' '"), "idp_entity_id: must not be empty"),
            (("idp_sso_url: 'https://idp.example.com/sso'", "idp_sso_url: 'ftp://idp/sso'"), "idp_sso_url: must be"),
            (("idp_certificate: idp.pem", "idp_certificate: ''"), "idp_certificate: must be a PEM"),
            (
                ("idp_certificate: idp.pem", "idp_certificate: '-----BEGIN PRIVATE KEY-----'"),
                "idp_certificate: inline PEM must be a CERTIFICATE",
            ),
            (("name: corp", "name: corp, sp_entity_id: ''"), "sp_entity_id: must not be empty"),
            (("name: corp", "name: corp, groups_attribute: ''"), "groups_attribute: must not be empty"),
            (("name: corp", "name: corp, subject_attribute: ''"), "subject_attribute: must not be empty"),
            (("name: corp", "name: 'bad name'"), "name: must be 1-63 letters"),
        ];
        for ((from, to), expected) in cases {
            let errors = errors_of(&policy(&ENTRY.replace(from, to)));
            let expected = format!("token_service.saml[0].{expected}");
            assert!(errors.iter().any(|e| e.starts_with(&expected)), "{to}: {errors:?}");
        }
    }

    #[test]
    fn a_saml_provider_cannot_share_a_name_with_another_sign_in_source() {
        let text = policy(ENTRY).replace(
            "  saml:\n",
            "  oidc:\n    - { name: corp, issuer: https://idp.example.com, audiences: [w], jwks: { file: k.json } }\n  saml:\n",
        );
        let errors = errors_of(&text);
        assert!(
            errors.iter().any(|e| e.starts_with("token_service.saml[0].name: another sign-in source is already named")),
            "{errors:?}"
        );
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
