//! The `accounting.leases` section, compiled: how this gateway instance leases its share of each
//! budget from `warden serve` (docs/budgets.md, "Many instances"; the protocol is
//! [`crate::core::budget::lease`]).
//!
//! Without its own `service`, asks go to the approval service (same cluster, authority and
//! token), at `<prefix>/v1/budget/leases`, as audit records do. Checks: the slice is 1 to
//! [`MAX_SLICE_PERCENT`] percent of each limit; `ask_every` and `heartbeat` are at least one
//! second and `heartbeat` is not shorter than `ask_every` (a heartbeat is an ask); a section
//! without a service of its own needs `approvals`.

use super::approvals::ApprovalSettings;
use super::audit::route;
use super::config::{CredentialConfig, LeasesConfig};
use super::Checker;
use crate::core::budget::lease::{Cadence, MAX_SLICE_PERCENT};
use std::collections::BTreeMap;

/// Cluster name the renderer gives a lease service of its own.
pub const DEFAULT_CLUSTER: &str = "warden_leases";

/// Longest `heartbeat`, in seconds: a lease not heard of for a while shows as expired at the
/// service, so a heartbeat rarer than this would make live gateways look dead.
const MAX_HEARTBEAT_SECONDS: u64 = 3600;

/// Where lease asks go and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSettings {
    /// Envoy cluster of the service.
    pub cluster: String,
    /// `:authority` of the callouts.
    pub authority: String,
    /// Path of the lease endpoint (`<prefix>/v1/budget/leases`).
    pub leases_path: String,
    /// Credential holding the gateway's bearer token.
    pub token_credential: String,
    /// Share of each windowed limit in one slice, in percent.
    pub slice_percent: u64,
    /// When to ask: when running low, and every heartbeat.
    pub cadence: Cadence,
}

pub(super) fn compile(
    check: &mut Checker,
    config: &LeasesConfig,
    approvals: Option<&ApprovalSettings>,
    credentials: &BTreeMap<String, CredentialConfig>,
) -> Option<LeaseSettings> {
    if !(1..=MAX_SLICE_PERCENT).contains(&config.slice_percent) {
        check.error("accounting.leases.slice_percent", format!("must be 1 to {MAX_SLICE_PERCENT}"));
    }
    if config.ask_every.0 == 0 {
        check.error("accounting.leases.ask_every", "must be at least 1s");
    }
    if config.heartbeat.0 < config.ask_every.0.max(1) || config.heartbeat.0 > MAX_HEARTBEAT_SECONDS {
        check.error("accounting.leases.heartbeat", "must be at least `ask_every` (and 1s) and at most 1h");
    }
    let route = route(
        check,
        "accounting.leases",
        config.service.as_ref(),
        DEFAULT_CLUSTER,
        approvals,
        credentials,
        "to lease budgets from",
    )?;
    Some(LeaseSettings {
        leases_path: format!("{}/v1/budget/leases", route.prefix),
        cluster: route.cluster,
        authority: route.authority,
        token_credential: route.token_credential,
        slice_percent: config.slice_percent,
        cadence: Cadence {
            low_ms: config.ask_every.0.saturating_mul(1000),
            heartbeat_ms: config.heartbeat.0.saturating_mul(1000),
        },
    })
}

#[cfg(test)]
mod tests {
    use crate::core::budget::lease::Cadence;
    use crate::core::policy::tests::errors_of;
    use crate::core::policy::Policy;

    /// The audit tests' policy, leasing budgets instead of keeping records.
    fn policy() -> String {
        crate::core::policy::audit::tests::POLICY.replace("audit: {}\n", "accounting:\n  leases: {}\n")
    }

    #[test]
    fn leases_come_from_the_approval_service_by_default_with_a_five_percent_slice() {
        let policy = Policy::parse(&policy()).unwrap();
        let leases = policy.leases.unwrap();
        assert_eq!((leases.cluster.as_str(), leases.authority.as_str()), ("warden_approvals", "warden-serve.internal"));
        assert_eq!(leases.leases_path, "/gw/v1/budget/leases");
        assert_eq!(leases.token_credential, "approvals-token");
        assert_eq!(leases.slice_percent, 5);
        assert_eq!(leases.cadence, Cadence { low_ms: 1_000, heartbeat_ms: 5_000 });
        assert_eq!(policy.accounting.lease_slice_percent, Some(5), "admission uses the slices");
    }

    #[test]
    fn without_the_section_an_instance_enforces_its_budgets_alone() {
        let policy = Policy::parse(&policy().replace("accounting:\n  leases: {}\n", "")).unwrap();
        assert_eq!((policy.leases, policy.accounting.lease_slice_percent), (None, None));
    }

    #[test]
    fn a_service_of_its_own_gets_its_own_cluster() {
        let text = policy().replace(
            "leases: {}",
            "leases:\n    slice_percent: 10\n    ask_every: 2s\n    heartbeat: 1m\n    service: { url: \"http://ledger.internal:9000/w\", token: approvals-token }",
        );
        let policy = Policy::parse(&text).unwrap();
        let leases = policy.leases.unwrap();
        assert_eq!((leases.cluster.as_str(), leases.authority.as_str()), ("warden_leases", "ledger.internal:9000"));
        assert_eq!(leases.leases_path, "/w/v1/budget/leases");
        assert_eq!(leases.cadence, Cadence { low_ms: 2_000, heartbeat_ms: 60_000 });
        assert_eq!(policy.accounting.lease_slice_percent, Some(10));
        let named = text.replace("token: approvals-token }", "token: approvals-token, cluster: istio-ledger }");
        assert_eq!(Policy::parse(&named).unwrap().leases.unwrap().cluster, "istio-ledger");
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        let cases = [
            ("leases: { slice_percent: 0 }", "accounting.leases.slice_percent: must be 1 to 50"),
            ("leases: { slice_percent: 51 }", "accounting.leases.slice_percent: must be 1 to 50"),
            ("leases: { ask_every: 0 }", "accounting.leases.ask_every: must be at least 1s"),
            ("leases: { ask_every: 10s, heartbeat: 5s }", "accounting.leases.heartbeat: must be at least"),
            ("leases: { heartbeat: 2h }", "accounting.leases.heartbeat: must be at least"),
            ("leases: { slice_percent: -1 }", "accounting.leases.slice_percent: expected a whole number (0 or more), found the number -1"),
            ("leases: { slices: 5 }", "accounting.leases: unknown field `slices`"),
            (
                "leases: { service: { url: \"ftp://x\", token: approvals-token } }",
                "accounting.leases.service.url: must start with",
            ),
            (
                "leases: { service: { url: \"http://x\", token: nope } }",
                "accounting.leases.service.token: unknown credential \"nope\"",
            ),
        ];
        for (section, expected) in cases {
            let errors = errors_of(&policy().replace("leases: {}", section));
            assert!(errors.iter().any(|e| e.starts_with(expected)), "{section}: {errors:?}");
        }
        let policy = policy();
        let start = policy.find("approvals:\n").unwrap();
        let end = policy.find("accounting:").unwrap();
        let text = format!("{}{}", &policy[..start], &policy[end..]);
        assert_eq!(
            errors_of(&text),
            vec!["accounting.leases.service: needed when the policy has no `approvals` section to lease budgets from"]
        );
    }
}
