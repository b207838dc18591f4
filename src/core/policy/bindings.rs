//! Bindings: which verified callers a role is granted to, and the claims the gateway reads.
//!
//! A binding grants its role either to members of a group (the groups claim of the token's
//! provider, exact match) or to tokens whose claims match: `claims: {repository: org/app, ref:
//! refs/heads/main}` — every listed claim must be present as a string and match its glob
//! ([`super::glob`]: `org/*`, `refs/heads/**`), or one of the globs of a list. A binding may be
//! restricted to one issuer with `issuer`; claim bindings must be: a claim such as `repository`
//! means something only coming from the issuer that vouches for it, and any other trusted issuer
//! (a person's IdP with user-editable attributes, another CI system) could mint the same value.
//! For the same reason, a claim binding on GitHub Actions' issuer must pin the repository or its
//! owner with a literal owner — any repository on GitHub can get a token from that issuer — and
//! no claim may be bound to a pattern that matches any value.
//!
//! Claim names are dotted paths (`kubernetes.io.namespace`); an object key that itself contains
//! dots (`kubernetes.io`) matches as a whole run of segments (see `crate::proxy_abi`).
//!
//! At configure time every claim the policy names — `identity.job_claims` first, then each claim
//! a binding matches — is collected once into the [`ClaimPath`] list, which the glue reads from
//! each verified payload; bindings refer to claims by index, so matching a request does no name
//! lookups and no allocation.

use super::config::BindingConfig;
use super::glob::{Glob, GlobSet};
use super::Checker;

/// GitHub Actions' OIDC issuer: any repository on GitHub can obtain its tokens.
pub const GITHUB_ACTIONS_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// Claims that pin a GitHub Actions token to a repository or an owner.
const GITHUB_PINNING_CLAIMS: [&str; 4] = ["repository", "repository_owner", "repository_id", "repository_owner_id"];

/// A claim the gateway reads from verified tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath {
    /// The name as written in the policy (`kubernetes.io.namespace`).
    pub name: String,
    /// The name split on dots.
    pub segments: Vec<String>,
}

impl ClaimPath {
    /// A claim name or dotted path; `None` when a segment is empty (`a..b`, `.a`, ``).
    pub fn parse(name: &str) -> Option<Self> {
        let segments: Vec<String> = name.split('.').map(str::to_string).collect();
        (!segments.iter().any(String::is_empty)).then(|| Self { name: name.to_string(), segments })
    }
}

/// Who a binding grants its role to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Members of a group (exact match).
    Group(String),
    /// Tokens whose claims all match (never empty).
    Claims(Vec<ClaimRule>),
}

/// One claim a claim binding requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRule {
    /// Index into the policy's claim list (`IdentityPolicy::claims`).
    pub claim: usize,
    /// The claim's value must match one of these.
    pub patterns: GlobSet,
}

/// A binding, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Who is granted the role.
    pub grant: Grant,
    /// Only tokens of this issuer, when set.
    pub issuer: Option<String>,
    /// Index into `Policy::roles`.
    pub role: usize,
}

/// What bindings are matched against: a verified token's issuer, groups and claims.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// Groups from the provider's groups claim.
    pub groups: &'a [String],
    /// Values of the policy's claims (same index as `IdentityPolicy::claims`); `None`: absent
    /// or not a string.
    pub claims: &'a [Option<String>],
}

impl Binding {
    /// The group, for a group binding.
    pub fn group(&self) -> Option<&str> {
        match &self.grant {
            Grant::Group(group) => Some(group),
            Grant::Claims(_) => None,
        }
    }

    /// Whether the binding grants its role to the token.
    pub fn grants(&self, token: &Presented<'_>) -> bool {
        if self.issuer.as_deref().is_some_and(|issuer| issuer != token.issuer) {
            return false;
        }
        match &self.grant {
            Grant::Group(group) => token.groups.iter().any(|g| g == group),
            Grant::Claims(rules) => rules.iter().all(|rule| {
                token
                    .claims
                    .get(rule.claim)
                    .and_then(Option::as_deref)
                    .is_some_and(|value| rule.patterns.matches(value))
            }),
        }
    }
}

/// The index of claim `path` in `claims`, adding it when new.
pub(super) fn claim_index(claims: &mut Vec<ClaimPath>, path: ClaimPath) -> usize {
    match claims.iter().position(|c| c.name == path.name) {
        Some(index) => index,
        None => {
            claims.push(path);
            claims.len().saturating_sub(1)
        }
    }
}

/// Checks and compiles `bindings`, adding the claims they match to `claims`.
pub(super) fn compile(
    check: &mut Checker,
    bindings: &[BindingConfig],
    role_names: &[&String],
    issuers: &[String],
    claims: &mut Vec<ClaimPath>,
) -> Vec<Binding> {
    let mut compiled = Vec::with_capacity(bindings.len());
    for (i, binding) in bindings.iter().enumerate() {
        let path = format!("bindings[{i}]");
        if let Some(issuer) = &binding.issuer {
            if !issuers.contains(issuer) {
                check
                    .error(format!("{path}.issuer"), format!("{issuer:?} is not the issuer of any identity.providers"));
            }
        }
        let grant = match (&binding.group, &binding.claims) {
            (Some(group), None) => {
                if group.is_empty() {
                    check.error(format!("{path}.group"), "must not be empty");
                }
                Some(Grant::Group(group.clone()))
            }
            (None, Some(wanted)) => compile_claims(check, &path, binding, wanted, claims),
            _ => {
                check.error(path.clone(), "set exactly one of `group` or `claims`");
                None
            }
        };
        let role = role_names.iter().position(|r| **r == binding.role);
        if role.is_none() {
            check.error(format!("{path}.role"), format!("unknown role {:?}", binding.role));
        }
        if let (Some(grant), Some(role)) = (grant, role) {
            compiled.push(Binding { grant, issuer: binding.issuer.clone(), role });
        }
    }
    compiled
}

fn compile_claims(
    check: &mut Checker,
    path: &str,
    binding: &BindingConfig,
    wanted: &std::collections::BTreeMap<String, super::config::ClaimPatterns>,
    claims: &mut Vec<ClaimPath>,
) -> Option<Grant> {
    if wanted.is_empty() {
        check.error(format!("{path}.claims"), "name at least one claim");
        return None;
    }
    match binding.issuer.as_deref() {
        None => check.error(
            format!("{path}.issuer"),
            "a claim binding must name the issuer whose tokens it trusts (another provider could mint the same claims)",
        ),
        Some(GITHUB_ACTIONS_ISSUER) if !pins_github_owner(wanted) => check.error(
            format!("{path}.claims"),
            "any repository on GitHub can get a token from this issuer: pin `repository` (`owner/name` or \
             `owner/*`) or `repository_owner` with a literal owner",
        ),
        Some(_) => {}
    }
    let mut rules = Vec::with_capacity(wanted.len());
    for (name, patterns) in wanted {
        let claim_path = format!("{path}.claims.{name}");
        let Some(parsed) = ClaimPath::parse(name) else {
            check.error(claim_path, "must be a claim name or a dotted path of names");
            continue;
        };
        let written = patterns.as_slice();
        if written.is_empty() {
            check.error(claim_path.clone(), "list at least one pattern");
        }
        let mut globs = Vec::with_capacity(written.len());
        for (j, pattern) in written.iter().enumerate() {
            let at = if matches!(patterns, super::config::ClaimPatterns::One(_)) {
                claim_path.clone()
            } else {
                format!("{claim_path}[{j}]")
            };
            if !pattern.is_empty() && pattern.chars().all(|c| matches!(c, '*' | '?')) {
                check.error(at, format!("{pattern:?} matches any value: bind a value, or drop the claim"));
                continue;
            }
            match Glob::parse_text(pattern) {
                Ok(glob) => globs.push(glob),
                Err(message) => check.error(at, message.to_string()),
            }
        }
        rules.push(ClaimRule { claim: claim_index(claims, parsed), patterns: GlobSet::new(globs) });
    }
    Some(Grant::Claims(rules))
}

/// Whether a GitHub Actions binding pins the repository's owner: a pinning claim whose every
/// pattern names the owner literally (no wildcard before the first `/` of a repository, none
/// at all in an owner or an id).
fn pins_github_owner(wanted: &std::collections::BTreeMap<String, super::config::ClaimPatterns>) -> bool {
    GITHUB_PINNING_CLAIMS.iter().any(|name| {
        wanted.get(*name).is_some_and(|patterns| {
            let written = patterns.as_slice();
            !written.is_empty()
                && written.iter().all(|pattern| {
                    let owner = if name.starts_with("repository_") {
                        pattern.as_str()
                    } else {
                        match pattern.split_once('/') {
                            Some((owner, _)) => owner,
                            None => "",
                        }
                    };
                    !owner.is_empty() && !owner.contains(['*', '?'])
                })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::tests::errors_of;
    use crate::core::policy::Policy;

    const HEAD: &str = r#"
version: 1
identity:
  providers:
    - { name: corp, issuer: https://idp.corp.example, audiences: [warden], jwks: { file: j.json } }
    - { name: github, issuer: https://token.actions.githubusercontent.com, audiences: [warden], jwks: { file: g.json } }
    - { name: k8s, issuer: https://k8s.corp.example, audiences: [warden], jwks: { file: k.json } }
credentials: { k: { env: K } }
roles:
  ci: { credential: k, models: ["*"] }
  dev: { credential: k, models: ["*"] }
bindings:
"#;

    fn policy(bindings: &str) -> String {
        format!("{HEAD}{bindings}")
    }

    fn grants(policy: &Policy, issuer: &str, groups: &[&str], claims: &[(&str, &str)]) -> Vec<String> {
        let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let values: Vec<Option<String>> = policy
            .identity
            .claims
            .iter()
            .map(|c| claims.iter().find(|(name, _)| *name == c.name).map(|(_, v)| v.to_string()))
            .collect();
        let token = Presented { issuer, groups: &groups, claims: &values };
        policy.bindings.iter().filter(|b| b.grants(&token)).map(|b| policy.roles[b.role].name.clone()).collect()
    }

    const GITHUB: &str = "https://token.actions.githubusercontent.com";

    #[test]
    fn every_listed_claim_must_match_its_glob() {
        let text = policy(
            r#"  - issuer: https://token.actions.githubusercontent.com
    claims: { repository: org/app, ref: "refs/heads/**", environment: [prod, staging] }
    role: ci
"#,
        );
        let policy = Policy::parse(&text).unwrap();
        let all = [("repository", "org/app"), ("ref", "refs/heads/release/1"), ("environment", "staging")];
        assert_eq!(grants(&policy, GITHUB, &[], &all), ["ci"]);
        let near_miss = [("repository", "org/app-evil"), ("ref", "refs/heads/main"), ("environment", "prod")];
        assert!(grants(&policy, GITHUB, &[], &near_miss).is_empty());
        let wrong_env = [("repository", "org/app"), ("ref", "refs/heads/main"), ("environment", "dev")];
        assert!(grants(&policy, GITHUB, &[], &wrong_env).is_empty());
        let missing = [("repository", "org/app"), ("ref", "refs/heads/main")];
        assert!(grants(&policy, GITHUB, &[], &missing).is_empty());
        let tag = [("repository", "org/app"), ("ref", "refs/tags/v1"), ("environment", "prod")];
        assert!(grants(&policy, GITHUB, &[], &tag).is_empty());
    }

    #[test]
    fn a_claim_binding_applies_to_its_issuer_only() {
        let text = policy(
            r#"  - { issuer: "https://token.actions.githubusercontent.com", claims: { repository: "org/*" }, role: ci }
"#,
        );
        let policy = Policy::parse(&text).unwrap();
        assert_eq!(grants(&policy, GITHUB, &[], &[("repository", "org/app")]), ["ci"]);
        assert!(grants(&policy, "https://idp.corp.example", &[], &[("repository", "org/app")]).is_empty());
        // `*` stops at `/`: a nested name is not `org/<one name>`.
        assert!(grants(&policy, GITHUB, &[], &[("repository", "org/app/x")]).is_empty());
        assert!(grants(&policy, GITHUB, &[], &[("repository", "other/app")]).is_empty());
    }

    #[test]
    fn group_bindings_may_be_restricted_to_an_issuer() {
        let text = policy(
            r#"  - { group: eng, issuer: "https://idp.corp.example", role: dev }
  - { group: eng, role: ci }
"#,
        );
        let policy = Policy::parse(&text).unwrap();
        assert_eq!(grants(&policy, "https://idp.corp.example", &["eng"], &[]), ["dev", "ci"]);
        assert_eq!(grants(&policy, "https://k8s.corp.example", &["eng"], &[]), ["ci"]);
    }

    #[test]
    fn kubernetes_claims_are_dotted_paths() {
        let text = policy(
            r#"  - issuer: https://k8s.corp.example
    claims: { kubernetes.io.namespace: agents, kubernetes.io.serviceaccount.name: [reviewer, "bot-*"] }
    role: ci
"#,
        );
        let policy = Policy::parse(&text).unwrap();
        let names: Vec<&str> = policy.identity.claims.iter().map(|c| c.name.as_str()).collect();
        assert!(names.contains(&"kubernetes.io.namespace"), "{names:?}");
        let k8s = "https://k8s.corp.example";
        let bot = [("kubernetes.io.namespace", "agents"), ("kubernetes.io.serviceaccount.name", "bot-7")];
        assert_eq!(grants(&policy, k8s, &[], &bot), ["ci"]);
        let other_ns = [("kubernetes.io.namespace", "default"), ("kubernetes.io.serviceaccount.name", "reviewer")];
        assert!(grants(&policy, k8s, &[], &other_ns).is_empty());
    }

    #[test]
    fn job_claims_come_first_and_shared_claims_are_read_once() {
        let text = policy(
            r#"  - { issuer: "https://token.actions.githubusercontent.com", claims: { repository: org/app, ref: refs/heads/main }, role: ci }
"#,
        );
        let policy = Policy::parse(&text).unwrap();
        let names: Vec<&str> = policy.identity.claims.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["repository", "workflow", "run_id", "actor", "ref"]);
    }

    #[test]
    fn binding_errors_name_their_field_path() {
        let cases = [
            ("  - { role: ci }\n", "bindings[0]: set exactly one of `group` or `claims`"),
            (
                "  - { group: eng, claims: { a: b }, issuer: https://k8s.corp.example, role: ci }\n",
                "bindings[0]: set exactly one of `group` or `claims`",
            ),
            ("  - { claims: { sub: x }, role: ci }\n", "bindings[0].issuer: a claim binding must name the issuer"),
            (
                "  - { group: eng, issuer: https://evil.example, role: ci }\n",
                "bindings[0].issuer: \"https://evil.example\" is not the issuer",
            ),
            (
                "  - { claims: {}, issuer: https://k8s.corp.example, role: ci }\n",
                "bindings[0].claims: name at least one claim",
            ),
            (
                "  - { claims: { a..b: x }, issuer: https://k8s.corp.example, role: ci }\n",
                "bindings[0].claims.a..b: must be a claim name",
            ),
            (
                "  - { claims: { ref: \"refs/[a]\" }, issuer: https://k8s.corp.example, role: ci }\n",
                "bindings[0].claims.ref: invalid glob",
            ),
            (
                "  - { claims: { ref: [main, \"**\"] }, issuer: https://k8s.corp.example, role: ci }\n",
                "bindings[0].claims.ref[1]: \"**\" matches any value",
            ),
            (
                "  - { claims: { ref: [] }, issuer: https://k8s.corp.example, role: ci }\n",
                "bindings[0].claims.ref: list at least one pattern",
            ),
            ("  - { group: \"\", role: ci }\n", "bindings[0].group: must not be empty"),
            ("  - { group: eng, role: ghost }\n", "bindings[0].role: unknown role \"ghost\""),
        ];
        for (binding, expected) in cases {
            let errors = errors_of(&policy(binding));
            assert!(errors.iter().any(|e| e.starts_with(expected)), "{binding}: {errors:?}");
        }
    }

    #[test]
    fn claim_patterns_may_hold_spaces_but_no_other_whitespace() {
        let text =
            policy("  - { claims: { workflow: \"Claude review*\" }, issuer: https://k8s.corp.example, role: ci }\n");
        let policy_ok = Policy::parse(&text).unwrap();
        let k8s = "https://k8s.corp.example";
        assert_eq!(grants(&policy_ok, k8s, &[], &[("workflow", "Claude review (nightly)")]), ["ci"]);
        assert!(grants(&policy_ok, k8s, &[], &[("workflow", "Claude  review")]).is_empty());
        let tab = policy("  - { claims: { workflow: \"a\\tb\" }, issuer: https://k8s.corp.example, role: ci }\n");
        assert!(errors_of(&tab).iter().any(|e| e.contains("whitespace or control")), "{:?}", errors_of(&tab));
    }

    #[test]
    fn numbers_in_claim_patterns_must_be_quoted() {
        let errors =
            errors_of(&policy("  - { claims: { run_attempt: 1 }, issuer: https://k8s.corp.example, role: ci }\n"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("bindings[0].claims.run_attempt"), "{errors:?}");
        assert!(errors[0].contains("a string or a list of strings"), "{errors:?}");
    }

    #[test]
    fn github_bindings_must_pin_the_repository_owner() {
        for unpinned in [
            "{ ref: refs/heads/main }",
            "{ repository: \"*/app\" }",
            "{ repository: [org/app, \"*/app\"] }",
            "{ repository_owner: \"org*\" }",
            "{ repository: app }",
        ] {
            let text = policy(&format!(
                "  - {{ issuer: https://token.actions.githubusercontent.com, claims: {unpinned}, role: ci }}\n"
            ));
            let errors = errors_of(&text);
            assert!(
                errors.iter().any(|e| e.starts_with("bindings[0].claims: any repository on GitHub")),
                "{unpinned}: {errors:?}"
            );
        }
        for pinned in [
            "{ repository: \"org/*\" }",
            "{ repository_owner: org, ref: refs/heads/main }",
            "{ repository_id: \"123\" }",
        ] {
            let text = policy(&format!(
                "  - {{ issuer: https://token.actions.githubusercontent.com, claims: {pinned}, role: ci }}\n"
            ));
            assert_eq!(errors_of(&text), Vec::<String>::new(), "{pinned}");
        }
    }
}
