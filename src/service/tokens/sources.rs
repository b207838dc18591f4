//! The token service's sources of identity — `token_service.oidc` (organisation OIDC providers)
//! and `token_service.workloads` (GitHub Actions, Kubernetes) — and how a verified token from
//! one becomes a [`SignedIn`].
//!
//! [`Sources::verify`] hands the token to the service's JWT verifier ([`crate::service::jwt`]),
//! built over every source (its issuer, audiences, JWKS and algorithm allowlist), then maps the
//! verified claims by the kind of the source that vouched for it:
//!
//! - **OIDC**: subject from `subject_claim` (default `sub`; a dotted path; a non-empty string),
//!   groups from `groups_claim` (default `identity.groups_claim`; a dotted path; a list of
//!   strings or one string; missing → no groups), and the claims `email`, `hd` and
//!   `preferred_username` when present. An Entra ID token whose groups were left out for
//!   "overage" (`_claim_names` names the groups claim) is refused with a message saying how to
//!   configure the application: reading the groups from Microsoft Graph is not supported.
//! - **GitHub Actions**: subject `sub` (`repo:org/app:ref:refs/heads/main`); the claims
//!   `repository`, `repository_owner`, `ref`, `ref_type`, `workflow`, `job_workflow_ref`, `run_id`,
//!   `run_attempt`, `environment`, `actor`, `event_name`, `sha` when present; no groups.
//! - **Kubernetes**: subject `system:serviceaccount:<namespace>:<name>` from the nested
//!   `kubernetes.io` claim (and `sub`, when present, must say the same); the claims `namespace`,
//!   `service_account` and `pod` (when the token is bound to a pod); no groups.
//!
//! Bounds (a token is hostile input): a subject or group of more than 256 characters, or more
//! than 200 groups, refuses the token (dropping groups could change which binding matches);
//! a claim value must be a string or a number (numbers become decimal strings) of at most 256
//! characters, anything else is dropped.

use jwt_simple::prelude::JWTClaims;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use crate::core::policy::config::JwksSource;
use crate::core::policy::token_service::{TokenServiceConfig, WorkloadKind};

use super::{SignInMethod, SignedIn};
use crate::service::jwt::{claim_at, JwtVerifier, KeySource, TrustedIssuer, VerifyError};

/// Longest subject, group name or claim value kept (characters).
pub const MAX_VALUE_CHARS: usize = 256;
/// Most groups a token may carry.
pub const MAX_GROUPS: usize = 200;

/// Claims an OIDC token carries into the Warden token (for claim-based bindings: Google has
/// no groups, `hd` is its domain).
const OIDC_CLAIMS: &[&str] = &["email", "hd", "preferred_username"];
/// Claims a GitHub Actions token carries into the Warden token.
const GITHUB_CLAIMS: &[&str] = &[
    "repository",
    "repository_owner",
    "ref",
    "ref_type",
    "workflow",
    "job_workflow_ref",
    "run_id",
    "run_attempt",
    "environment",
    "actor",
    "event_name",
    "sha",
];

/// How one source's claims are read.
#[derive(Debug, Clone)]
enum Mapping {
    Oidc { subject_claim: Vec<String>, groups_claim: Vec<String> },
    Workload(WorkloadKind),
}

/// One source: its name and mapping (same order as the verifier's issuers).
#[derive(Debug, Clone)]
struct Source {
    name: String,
    mapping: Mapping,
}

/// Why a source token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The token did not verify (the text says which check failed).
    Invalid(String),
    /// It verified, but its claims cannot make a Warden identity (the text says why).
    Unusable(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(why) | Self::Unusable(why) => f.write_str(why),
        }
    }
}

/// The sources of `token_service` with their verifier.
#[derive(Debug, Clone)]
pub struct Sources {
    verifier: JwtVerifier,
    sources: Vec<Source>,
}

impl Sources {
    /// The sources of `config`; JWKS files are relative to the policy file at `policy_path`,
    /// `default_groups_claim` is `identity.groups_claim`. Reads the JWKS now (blocking).
    pub fn new(
        config: &TokenServiceConfig,
        policy_path: &Path,
        default_groups_claim: &[String],
    ) -> Result<Self, String> {
        let base = policy_path.parent().unwrap_or(Path::new("."));
        let mut trusted = Vec::new();
        let mut sources = Vec::new();
        for (i, oidc) in config.oidc.iter().enumerate() {
            let at = format!("token_service.oidc[{i}]");
            trusted.push(trusted_issuer(&at, &oidc.issuer, &oidc.audiences, &oidc.jwks, &oidc.algorithms, base)?);
            let path = |claim: &Option<String>| claim.as_deref().map(|c| c.split('.').map(str::to_string).collect());
            sources.push(Source {
                name: oidc.name.clone(),
                mapping: Mapping::Oidc {
                    subject_claim: path(&oidc.subject_claim).unwrap_or_else(|| vec!["sub".to_string()]),
                    groups_claim: path(&oidc.groups_claim).unwrap_or_else(|| default_groups_claim.to_vec()),
                },
            });
        }
        for (i, workload) in config.workloads.iter().enumerate() {
            let at = format!("token_service.workloads[{i}]");
            let (issuer, audiences, algorithms) = (&workload.issuer, &workload.audiences, &workload.algorithms);
            trusted.push(trusted_issuer(&at, issuer, audiences, &workload.jwks, algorithms, base)?);
            sources.push(Source { name: workload.name.clone(), mapping: Mapping::Workload(workload.kind) });
        }
        Ok(Self { verifier: JwtVerifier::new(trusted)?, sources })
    }

    /// Names and key sources (for the start-up log line).
    pub fn describe(&self) -> Vec<String> {
        self.verifier.describe()
    }

    /// Verifies `token` at `now` and maps it to a [`SignedIn`]. Blocking (may read a JWKS).
    pub fn verify(&self, token: &str, now: u64) -> Result<SignedIn, SourceError> {
        let verified = self.verifier.verify_at(token, now).map_err(|e| match e {
            VerifyError::Missing => SourceError::Invalid("no token was presented".to_string()),
            VerifyError::Invalid(why) => SourceError::Invalid(why),
        })?;
        let source = self
            .sources
            .get(verified.source)
            .ok_or_else(|| SourceError::Invalid("the token's source is unknown".to_string()))?;
        map_claims(source, verified.claims)
    }
}

/// The verifier's view of the source at `at` (`token_service.oidc[0]`); JWKS files are relative
/// to `base`.
fn trusted_issuer(
    at: &str,
    issuer: &str,
    audiences: &[String],
    jwks: &JwksSource,
    algorithms: &[String],
    base: &Path,
) -> Result<TrustedIssuer, String> {
    let keys = match (&jwks.file, &jwks.uri) {
        (Some(file), None) => KeySource::File(base.join(file)),
        (None, Some(uri)) => KeySource::Uri(uri.clone()),
        _ => return Err(format!("{at}.jwks: set exactly one of `file` or `uri`")),
    };
    Ok(TrustedIssuer {
        name: at.to_string(),
        issuer: issuer.to_string(),
        audiences: audiences.to_vec(),
        keys,
        algorithms: algorithms.to_vec(),
    })
}

fn unusable(why: impl Into<String>) -> SourceError {
    SourceError::Unusable(why.into())
}

fn map_claims(source: &Source, claims: JWTClaims<Map<String, Value>>) -> Result<SignedIn, SourceError> {
    let custom = &claims.custom;
    let (subject, method, groups, names): (String, SignInMethod, Vec<String>, &[&str]) = match &source.mapping {
        Mapping::Oidc { subject_claim, groups_claim } => {
            let subject = if subject_claim.len() == 1 && subject_claim.first().is_some_and(|c| c == "sub") {
                claims.subject.clone().unwrap_or_default()
            } else {
                claim_at(custom, subject_claim).and_then(Value::as_str).unwrap_or_default().to_string()
            };
            (subject, SignInMethod::Oidc, oidc_groups(custom, groups_claim)?, OIDC_CLAIMS)
        }
        Mapping::Workload(WorkloadKind::GithubActions) => {
            (claims.subject.clone().unwrap_or_default(), SignInMethod::GithubActions, Vec::new(), GITHUB_CLAIMS)
        }
        Mapping::Workload(WorkloadKind::Kubernetes) => {
            return kubernetes(source, claims.subject.as_deref(), custom);
        }
    };
    let subject = checked_subject(subject)?;
    let claims = names.iter().filter_map(|name| Some((name.to_string(), claim_value(custom.get(*name)?)?))).collect();
    Ok(SignedIn { subject, source: source.name.clone(), method, groups, claims })
}

fn checked_subject(subject: String) -> Result<String, SourceError> {
    if subject.trim().is_empty() {
        return Err(unusable("the token names no subject (check the source's subject_claim)"));
    }
    if subject.chars().count() > MAX_VALUE_CHARS || subject.chars().any(char::is_control) {
        return Err(unusable(format!(
            "the token's subject is longer than {MAX_VALUE_CHARS} characters or has control characters"
        )));
    }
    Ok(subject)
}

/// The groups at `path`: a list of strings (other entries ignored) or one string; missing →
/// none. Entra ID's overage marker and unbounded lists are refused.
fn oidc_groups(custom: &Map<String, Value>, path: &[String]) -> Result<Vec<String>, SourceError> {
    let groups: Vec<String> = match claim_at(custom, path) {
        Some(Value::String(group)) => vec![group.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(_) => Vec::new(),
        None => {
            let overage = path.first().and_then(|first| custom.get("_claim_names")?.get(first));
            if overage.is_some() {
                return Err(unusable(
                    "the identity provider left the groups out of the token (Entra ID \"groups overage\": \
                     the user is in too many groups); emit only the groups assigned to the application, \
                     or app roles with groups_claim: roles",
                ));
            }
            Vec::new()
        }
    };
    if groups.len() > MAX_GROUPS {
        return Err(unusable(format!("the token carries more than {MAX_GROUPS} groups")));
    }
    if groups.iter().any(|g| g.is_empty() || g.chars().count() > MAX_VALUE_CHARS || g.chars().any(char::is_control)) {
        return Err(unusable(format!(
            "a group name is empty, longer than {MAX_VALUE_CHARS} characters or has control characters"
        )));
    }
    Ok(groups)
}

/// A claim value as carried: a string, or a number as its decimal text; bounded.
fn claim_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    (text.chars().count() <= MAX_VALUE_CHARS && !text.chars().any(char::is_control)).then_some(text)
}

/// A Kubernetes service-account token: `kubernetes.io: {namespace, serviceaccount: {name},
/// pod: {name}}`.
fn kubernetes(source: &Source, sub: Option<&str>, custom: &Map<String, Value>) -> Result<SignedIn, SourceError> {
    let nested = custom.get("kubernetes.io");
    let text = |value: Option<&Value>| value.and_then(claim_value).filter(|v| !v.is_empty());
    let namespace = text(nested.and_then(|k| k.get("namespace")));
    let account = text(nested.and_then(|k| k.get("serviceaccount")).and_then(|s| s.get("name")));
    let (Some(namespace), Some(account)) = (namespace, account) else {
        return Err(unusable("not a Kubernetes service-account token (no kubernetes.io namespace and serviceaccount)"));
    };
    if namespace.contains(':') || account.contains(':') {
        return Err(unusable("the service account's namespace or name has a ':'"));
    }
    let subject = checked_subject(format!("system:serviceaccount:{namespace}:{account}"))?;
    if sub.is_some_and(|sub| sub != subject) {
        return Err(unusable("the token's sub does not name its kubernetes.io service account"));
    }
    let mut claims = BTreeMap::from([("namespace".to_string(), namespace), ("service_account".to_string(), account)]);
    if let Some(pod) = text(nested.and_then(|k| k.get("pod")).and_then(|p| p.get("name"))) {
        claims.insert("pod".to_string(), pod);
    }
    Ok(SignedIn { subject, source: source.name.clone(), method: SignInMethod::Kubernetes, groups: Vec::new(), claims })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::service::jwt::testing::{claims, es256_jwk, jwks};
    use jwt_simple::prelude::{ECDSAP256KeyPairLike, ES256KeyPair};
    use serde_json::json;

    pub(crate) const OKTA: &str = "https://example.okta.com/oauth2/default";
    pub(crate) const GITHUB: &str = "https://token.actions.githubusercontent.com";
    pub(crate) const CLUSTER: &str = "https://kubernetes.default.svc";

    /// The `token_service` section the tests use: an Okta-like OIDC source reading `groups`,
    /// a Keycloak-like one reading `realm_access.roles` with `email` as subject, GitHub Actions
    /// and Kubernetes; every JWKS is `jwks.json` beside the policy.
    pub(crate) const SECTION: &str = r#"
issuer: https://warden.example.com
oidc:
  - { name: okta, issuer: "https://example.okta.com/oauth2/default", audiences: [warden-cli], jwks: { file: jwks.json }, algorithms: [ES256] }
  - { name: keycloak, issuer: "https://sso.example.com/realms/eng", audiences: [warden], jwks: { file: jwks.json }, algorithms: [ES256], groups_claim: realm_access.roles, subject_claim: email }
workloads:
  - { name: github, kind: github_actions, issuer: "https://token.actions.githubusercontent.com", audiences: ["https://warden.example.com"], jwks: { file: jwks.json }, algorithms: [ES256] }
  - { name: cluster, kind: kubernetes, issuer: "https://kubernetes.default.svc", audiences: [warden], jwks: { file: jwks.json }, algorithms: [ES256] }
"#;

    /// Sources over [`SECTION`] whose issuers all sign with the returned key.
    pub(crate) fn sources(name: &str) -> (Sources, ES256KeyPair) {
        let dir = std::env::temp_dir().join(format!("warden-sources-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = ES256KeyPair::generate().with_key_id("k1");
        std::fs::write(dir.join("jwks.json"), jwks(&[es256_jwk(&key, "k1")])).unwrap();
        let config: TokenServiceConfig = serde_yaml_ng::from_str(SECTION).unwrap();
        let sources = Sources::new(&config, &dir.join("policy.yaml"), &["groups".to_string()]).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        (sources, key)
    }

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    fn exchange(
        sources: &Sources,
        key: &ES256KeyPair,
        iss: &str,
        aud: &str,
        sub: &str,
        custom: Value,
    ) -> Result<SignedIn, SourceError> {
        sources.verify(&key.sign(claims(iss, aud, sub, 600, custom)).unwrap(), now())
    }

    #[test]
    fn an_okta_token_maps_subject_groups_and_email() {
        let (sources, key) = sources("okta");
        let who = exchange(
            &sources,
            &key,
            OKTA,
            "warden-cli",
            "00u1abc",
            json!({"groups": ["eng", 7, "leads"], "email": "alice@example.com", "email_verified": true}),
        )
        .unwrap();
        assert_eq!((who.subject.as_str(), who.source.as_str(), who.method), ("00u1abc", "okta", SignInMethod::Oidc));
        assert_eq!(who.groups, ["eng", "leads"]);
        assert_eq!(who.claims, BTreeMap::from([("email".to_string(), "alice@example.com".to_string())]));
    }

    #[test]
    fn a_keycloak_token_reads_realm_roles_and_the_email_as_subject() {
        let (sources, key) = sources("keycloak");
        let iss = "https://sso.example.com/realms/eng";
        let who = exchange(
            &sources,
            &key,
            iss,
            "warden",
            "f:1",
            json!({"realm_access": {"roles": ["developer"]}, "email": "bob@example.com"}),
        )
        .unwrap();
        assert_eq!(
            (who.subject.as_str(), who.groups.as_slice()),
            ("bob@example.com", ["developer".to_string()].as_slice())
        );
        let missing = exchange(&sources, &key, iss, "warden", "f:1", json!({"realm_access": {"roles": ["developer"]}}))
            .unwrap_err();
        assert!(missing.to_string().contains("no subject"), "{missing}");
    }

    #[test]
    fn missing_groups_mean_no_groups_and_a_google_shaped_token_keeps_hd_and_email() {
        let (sources, key) = sources("google");
        let who = exchange(
            &sources,
            &key,
            OKTA,
            "warden-cli",
            "1098",
            json!({"hd": "example.com", "email": "carol@example.com"}),
        )
        .unwrap();
        assert!(who.groups.is_empty());
        assert_eq!(who.claims["hd"], "example.com");
        assert_eq!(who.claims["email"], "carol@example.com");
    }

    #[test]
    fn an_entra_groups_overage_is_refused_with_what_to_do() {
        let (sources, key) = sources("entra");
        let overage = json!({"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}});
        let error = exchange(&sources, &key, OKTA, "warden-cli", "oid-1", overage).unwrap_err();
        assert!(matches!(&error, SourceError::Unusable(m) if m.contains("overage") && m.contains("roles")), "{error}");
    }

    #[test]
    fn hostile_group_lists_and_subjects_are_refused_and_odd_claims_dropped() {
        let (sources, key) = sources("bounds");
        let many: Vec<String> = (0..=MAX_GROUPS).map(|i| format!("g{i}")).collect();
        let error = exchange(&sources, &key, OKTA, "warden-cli", "a", json!({ "groups": many })).unwrap_err();
        assert!(error.to_string().contains("more than 200 groups"), "{error}");
        let long = "g".repeat(MAX_VALUE_CHARS + 1);
        assert!(exchange(&sources, &key, OKTA, "warden-cli", "a", json!({ "groups": [long] })).is_err());
        assert!(exchange(&sources, &key, OKTA, "warden-cli", "a\nb", json!({})).is_err());
        assert!(exchange(&sources, &key, OKTA, "warden-cli", &"s".repeat(MAX_VALUE_CHARS + 1), json!({})).is_err());
        let who = exchange(
            &sources,
            &key,
            OKTA,
            "warden-cli",
            "a",
            json!({"email": {"nested": 1}, "hd": "x".repeat(MAX_VALUE_CHARS + 1), "preferred_username": ["a"]}),
        )
        .unwrap();
        assert!(who.claims.is_empty(), "{:?}", who.claims);
    }

    #[test]
    fn a_github_actions_token_becomes_a_job_identity() {
        let (sources, key) = sources("github");
        let sub = "repo:org/app:ref:refs/heads/main";
        let custom = json!({
            "repository": "org/app", "repository_owner": "org", "ref": "refs/heads/main", "ref_type": "branch",
            "workflow": "ci", "job_workflow_ref": "org/app/.github/workflows/ci.yml@refs/heads/main",
            "run_id": "9876543210", "run_attempt": 2, "environment": "prod", "actor": "octocat",
            "event_name": "push", "sha": "abc123", "runner_environment": "github-hosted", "groups": ["admins"]
        });
        let who = exchange(&sources, &key, GITHUB, "https://warden.example.com", sub, custom).unwrap();
        assert_eq!(
            (who.subject.as_str(), who.method, who.source.as_str()),
            (sub, SignInMethod::GithubActions, "github")
        );
        assert!(who.groups.is_empty(), "a workload token's groups claim is never trusted");
        assert_eq!(who.claims["repository"], "org/app");
        assert_eq!(who.claims["run_attempt"], "2", "numbers become decimal strings");
        assert_eq!(who.claims.len(), 12);
        assert!(!who.claims.contains_key("runner_environment"));
        let wrong_audience = exchange(&sources, &key, GITHUB, "https://github.com/org", sub, json!({})).unwrap_err();
        assert!(matches!(wrong_audience, SourceError::Invalid(m) if m.contains("audience")));
    }

    #[test]
    fn a_kubernetes_token_names_its_service_account() {
        let (sources, key) = sources("kubernetes");
        let nested = json!({"kubernetes.io": {"namespace": "ci", "serviceaccount": {"name": "builder", "uid": "u1"}, "pod": {"name": "builder-7f", "uid": "p1"}}});
        let who =
            exchange(&sources, &key, CLUSTER, "warden", "system:serviceaccount:ci:builder", nested.clone()).unwrap();
        assert_eq!(who.subject, "system:serviceaccount:ci:builder");
        assert_eq!(who.method, SignInMethod::Kubernetes);
        assert_eq!(
            who.claims,
            BTreeMap::from([
                ("namespace".to_string(), "ci".to_string()),
                ("pod".to_string(), "builder-7f".to_string()),
                ("service_account".to_string(), "builder".to_string()),
            ])
        );
        let lying =
            exchange(&sources, &key, CLUSTER, "warden", "system:serviceaccount:kube-system:admin", nested).unwrap_err();
        assert!(lying.to_string().contains("does not name"), "{lying}");
        let plain =
            exchange(&sources, &key, CLUSTER, "warden", "system:serviceaccount:ci:builder", json!({})).unwrap_err();
        assert!(plain.to_string().contains("not a Kubernetes service-account token"), "{plain}");
    }

    /// Any JSON, nested a few levels, with strings that may be long or hold control characters.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[a-z:/\\n\\u{7f}\\u{e9}]{0,300}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
                proptest::collection::btree_map("[a-z_.]{1,12}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// Whatever a verified token carries, the identity made of it is bounded and clean, or
        /// the token is refused: never a panic.
        #[test]
        fn any_claims_map_to_a_bounded_identity_or_a_refusal(
            kind in 0usize..3,
            sub in proptest::option::of("[a-z:\\n]{0,300}"),
            names in proptest::collection::vec(
                proptest::sample::select(vec!["groups", "email", "hd", "repository", "run_id", "kubernetes.io", "realm_access", "_claim_names", "sha"]),
                0..6,
            ),
            values in proptest::collection::vec(any_json(), 6),
        ) {
            let mapping = match kind {
                0 => Mapping::Oidc { subject_claim: vec!["sub".into()], groups_claim: vec!["realm_access".into(), "roles".into()] },
                1 => Mapping::Workload(WorkloadKind::GithubActions),
                _ => Mapping::Workload(WorkloadKind::Kubernetes),
            };
            let source = Source { name: "s".into(), mapping };
            let custom: Map<String, Value> = names.iter().map(|n| n.to_string()).zip(values).collect();
            let mut claims = claims(OKTA, "a", "", 60, Value::Object(custom));
            claims.subject = sub;
            if let Ok(who) = map_claims(&source, claims) {
                let clean = |text: &str| text.chars().count() <= MAX_VALUE_CHARS && !text.chars().any(char::is_control);
                proptest::prop_assert!(!who.subject.trim().is_empty() && clean(&who.subject));
                proptest::prop_assert!(who.groups.len() <= MAX_GROUPS && who.groups.iter().all(|g| !g.is_empty() && clean(g)));
                proptest::prop_assert!(who.claims.len() <= GITHUB_CLAIMS.len() && who.claims.values().all(|v| clean(v)));
            }
        }
    }
}
