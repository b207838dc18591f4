//! The approver rules `warden serve` enforces, taken from the gateway's policy file.
//!
//! Only what the service needs is kept: the review and grant lifetimes, the longest session
//! grant (`approvals.max_session_grant`), the hold cap, and per
//! role the approver groups, the two-person rule and the grant's number of uses. The filter
//! evaluates the triggers; the service never looks at them.
//!
//! Who may decide a review: a member of one of the role's approver groups (exact group names,
//! as in bindings). Self-approval and the two-person rule are state rules ([`crate::service::store`]).
//! Who may read session transcripts: a member of an `approvals.auditors` group — a permission of
//! its own, since a transcript holds everything a user sent Claude.

use std::collections::BTreeMap;
use crate::core::policy::approvals::MAX_HOLD_SECONDS;
use crate::core::policy::Policy;

use crate::service::store::ReviewRate;

/// A role's approver rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRules {
    /// Groups whose members may decide.
    pub approvers: Vec<String>,
    /// Whether two different approvers must approve.
    pub two_person: bool,
    /// Requests one approval lets through.
    pub grant_uses: u32,
}

impl RoleRules {
    /// Whether a member of `groups` may decide this role's reviews.
    pub fn may_decide(&self, groups: &[String]) -> bool {
        groups.iter().any(|group| self.approvers.contains(group))
    }
}

/// The service's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Per role name, for roles with approval rules.
    pub roles: BTreeMap<String, RoleRules>,
    /// Lifetime of an undecided review (and of a denial), seconds.
    pub review_ttl_seconds: i64,
    /// Lifetime of a grant after the decision, seconds.
    pub grant_ttl_seconds: i64,
    /// Longest a hold waits, seconds.
    pub max_hold_seconds: u64,
    /// Groups whose members may read session transcripts (`approvals.auditors`).
    pub auditors: Vec<String>,
    /// Reviews one requester may open per window (`approvals.review_rate`).
    pub review_rate: ReviewRate,
    /// Longest session grant an approver may give, seconds (`approvals.max_session_grant`).
    pub max_session_grant_seconds: i64,
}

impl Rules {
    /// The rules of `policy`; an error when it has no `approvals` section or no role with
    /// approval rules (the service would have nothing to do).
    pub fn from_policy(policy: &Policy) -> Result<Self, String> {
        let settings = policy.approvals.as_ref().ok_or(
            "the policy has no `approvals` section: warden serve needs the same policy as the gateway, with approvals",
        )?;
        let roles: BTreeMap<String, RoleRules> = policy
            .roles
            .iter()
            .filter_map(|role| {
                let approval = role.approval.as_ref()?;
                Some((
                    role.name.clone(),
                    RoleRules {
                        approvers: approval.approvers.clone(),
                        two_person: approval.two_person,
                        grant_uses: approval.grant_uses,
                    },
                ))
            })
            .collect();
        if roles.is_empty() {
            return Err("no role in the policy has `approval` rules".to_string());
        }
        Ok(Self {
            roles,
            review_ttl_seconds: i64::try_from(settings.review_ttl_seconds).unwrap_or(i64::MAX),
            grant_ttl_seconds: i64::try_from(settings.grant_ttl_seconds).unwrap_or(i64::MAX),
            max_hold_seconds: MAX_HOLD_SECONDS,
            auditors: settings.auditors.clone(),
            review_rate: ReviewRate {
                reviews: settings.review_rate_reviews,
                per_seconds: i64::try_from(settings.review_rate_seconds).unwrap_or(i64::MAX),
            },
            max_session_grant_seconds: i64::try_from(settings.max_session_grant_seconds).unwrap_or(i64::MAX),
        })
    }

    /// No approval rules (a service without the approvals part): no role, no approver, no auditor.
    pub fn none() -> Self {
        Self {
            roles: BTreeMap::new(),
            review_ttl_seconds: 0,
            grant_ttl_seconds: 0,
            max_hold_seconds: 0,
            auditors: Vec::new(),
            review_rate: ReviewRate { reviews: 0, per_seconds: 1 },
            max_session_grant_seconds: 0,
        }
    }

    /// The rules of role `name`, if it has approval rules.
    pub fn role(&self, name: &str) -> Option<&RoleRules> {
        self.roles.get(name)
    }

    /// Whether a member of `groups` may decide any role's reviews.
    pub fn is_approver(&self, groups: &[String]) -> bool {
        self.roles.values().any(|role| role.may_decide(groups))
    }

    /// Whether a member of `groups` may read session transcripts: a permission of its own
    /// (`approvals.auditors`), not implied by deciding reviews.
    pub fn is_auditor(&self, groups: &[String]) -> bool {
        groups.iter().any(|group| self.auditors.contains(group))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const POLICY: &str = r#"
version: 1
identity:
  providers:
    - { name: demo, issuer: warden-demo, audiences: [warden], jwks: { file: jwks.json } }
credentials:
  anthropic: { env: ANTHROPIC_API_KEY }
  approvals-token: { env: WARDEN_APPROVALS_TOKEN }
  approvals-verdict-key: { env: WARDEN_APPROVALS_VERDICT_KEY }
approvals:
  service: { url: "http://127.0.0.1:8787", token: approvals-token, verdict_key: approvals-verdict-key }
  hold: 30s
  review_ttl: 2h
bindings:
  - { group: eng, role: developer }
roles:
  developer:
    credential: anthropic
    models: ["claude-*"]
    approval:
      approvers: [leads]
      two_person: true
      grant_uses: 3
      triggers: [{ reason: opus_model, models: ["claude-opus-*"] }]
  analyst:
    credential: anthropic
    models: ["claude-haiku-*"]
"#;

    #[test]
    fn rules_come_from_the_policy_roles_with_approval() {
        let policy = Policy::parse(POLICY).unwrap();
        let rules = Rules::from_policy(&policy).unwrap();
        assert_eq!(rules.review_ttl_seconds, 7200);
        assert_eq!(rules.grant_ttl_seconds, 900, "default grant_ttl");
        assert_eq!(rules.roles.keys().collect::<Vec<_>>(), ["developer"]);
        let developer = rules.role("developer").unwrap();
        assert_eq!((developer.two_person, developer.grant_uses), (true, 3));
        assert!(developer.may_decide(&["eng".into(), "leads".into()]));
        assert!(!developer.may_decide(&["eng".into()]));
        assert!(rules.is_approver(&["leads".into()]));
        assert!(rules.role("analyst").is_none());
    }

    #[test]
    fn a_policy_without_approvals_is_refused() {
        let without = POLICY.split("approvals:\n  service").next().unwrap().to_string()
            + "bindings: []\nroles:\n  analyst: { credential: anthropic, models: [\"x\"] }\n";
        let policy = Policy::parse(&without).unwrap();
        assert!(Rules::from_policy(&policy).unwrap_err().contains("no `approvals` section"));
    }
}
