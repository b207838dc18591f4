//! The `identity.revocation` section — the kill switch (docs/identity.md, "The kill switch") —
//! as written ([`RevocationConfig`]) and compiled ([`RevocationSettings`]).
//!
//! The gateway refreshes the list of revoked subjects, groups, jobs and tokens from
//! `warden serve` every `refresh` and refuses a revoked caller (401). A list older than
//! `max_staleness` — the service is down, or answers garbage — gets `on_unavailable`: `refuse`
//! (the default: every authenticated request is refused 503 `revocation_unavailable` until the
//! list is fresh again) or `allow` (requests are checked against the last list it had).
//! `cut_streams` (default on) also ends the live answers of a caller revoked mid-stream.
//! `revokers` names the groups whose approver-audience tokens may revoke and lift on the service
//! (read by `warden serve`, not the filter).
//!
//! Without its own `service`, the list comes from the approval service (same cluster, authority
//! and token) at `<prefix>/v1/revocations`, as audit records and budget leases do. Checks:
//! `refresh` is 1 s to [`MAX_REFRESH_SECONDS`]; `max_staleness` is longer than `refresh` and at
//! most [`MAX_STALENESS_SECONDS`]; revoker groups are not empty; a section without a service of
//! its own needs `approvals`.

use super::approvals::ApprovalSettings;
use super::audit::route;
pub use super::config::{OnUnavailable, RevocationConfig};
use super::config::CredentialConfig;
use super::Checker;
use std::collections::BTreeMap;

/// Cluster name the renderer gives a revocation service of its own.
pub const DEFAULT_CLUSTER: &str = "warden_revocations";
/// Longest `refresh`, in seconds.
pub const MAX_REFRESH_SECONDS: u64 = 60;
/// Longest `max_staleness`, in seconds.
pub const MAX_STALENESS_SECONDS: u64 = 3600;

/// The compiled section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationSettings {
    /// Envoy cluster of the service.
    pub cluster: String,
    /// `:authority` of the calls.
    pub authority: String,
    /// Path of the list (`<prefix>/v1/revocations`).
    pub list_path: String,
    /// Credential holding the gateway's bearer token.
    pub token_credential: String,
    /// Time between two asks, in milliseconds.
    pub refresh_ms: u64,
    /// Age at which the list is stale, in milliseconds.
    pub max_staleness_ms: u64,
    /// What happens while it is stale.
    pub on_unavailable: OnUnavailable,
    /// Whether live streams of a revoked caller are ended.
    pub cut_streams: bool,
    /// Groups allowed to revoke and lift on the service.
    pub revokers: Vec<String>,
}

pub(super) fn compile(
    check: &mut Checker,
    config: &RevocationConfig,
    approvals: Option<&ApprovalSettings>,
    credentials: &BTreeMap<String, CredentialConfig>,
) -> Option<RevocationSettings> {
    const SECTION: &str = "identity.revocation";
    if !(1..=MAX_REFRESH_SECONDS).contains(&config.refresh.0) {
        check.error(format!("{SECTION}.refresh"), format!("must be 1s to {MAX_REFRESH_SECONDS}s"));
    }
    if config.max_staleness.0 <= config.refresh.0 || config.max_staleness.0 > MAX_STALENESS_SECONDS {
        check.error(format!("{SECTION}.max_staleness"), "must be longer than `refresh` and at most 1h");
    }
    for (i, group) in config.revokers.iter().enumerate() {
        if group.is_empty() {
            check.error(format!("{SECTION}.revokers[{i}]"), "must not be empty");
        }
    }
    let route = route(
        check,
        SECTION,
        config.service.as_ref(),
        DEFAULT_CLUSTER,
        approvals,
        credentials,
        "to read the revocation list from",
    )?;
    Some(RevocationSettings {
        list_path: format!("{}/v1/revocations", route.prefix),
        cluster: route.cluster,
        authority: route.authority,
        token_credential: route.token_credential,
        refresh_ms: config.refresh.0.saturating_mul(1000),
        max_staleness_ms: config.max_staleness.0.saturating_mul(1000),
        on_unavailable: config.on_unavailable,
        cut_streams: config.cut_streams,
        revokers: config.revokers.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::OnUnavailable;
    use crate::core::policy::tests::errors_of;
    use crate::core::policy::Policy;

    /// The audit tests' policy, with a revocation list instead of records.
    fn policy(section: &str) -> String {
        crate::core::policy::audit::tests::POLICY
            .replace("audit: {}\n", "")
            .replace("identity: {}\n", &format!("identity:\n  revocation: {section}\n"))
    }

    #[test]
    fn the_list_comes_from_the_approval_service_by_default_and_fails_closed() {
        let policy = Policy::parse(&policy("{}")).unwrap();
        let settings = policy.revocation.unwrap();
        assert_eq!(
            (settings.cluster.as_str(), settings.authority.as_str()),
            ("warden_approvals", "warden-serve.internal")
        );
        assert_eq!(settings.list_path, "/gw/v1/revocations");
        assert_eq!(settings.token_credential, "approvals-token");
        assert_eq!((settings.refresh_ms, settings.max_staleness_ms), (1_000, 5_000));
        assert_eq!(settings.on_unavailable, OnUnavailable::Refuse);
        assert!(settings.cut_streams);
        assert!(settings.revokers.is_empty());
    }

    #[test]
    fn without_the_section_nothing_is_checked() {
        let text = crate::core::policy::audit::tests::POLICY;
        assert_eq!(Policy::parse(text).unwrap().revocation, None);
    }

    #[test]
    fn a_service_of_its_own_and_every_field_can_be_set() {
        let section =
            "{ refresh: 2s, max_staleness: 30s, on_unavailable: allow, cut_streams: false, revokers: [sec-ops], \
                       service: { url: \"http://kill.internal:9000/k\", token: approvals-token } }";
        let settings = Policy::parse(&policy(section)).unwrap().revocation.unwrap();
        assert_eq!(
            (settings.cluster.as_str(), settings.authority.as_str()),
            ("warden_revocations", "kill.internal:9000")
        );
        assert_eq!(settings.list_path, "/k/v1/revocations");
        assert_eq!((settings.refresh_ms, settings.max_staleness_ms), (2_000, 30_000));
        assert_eq!(settings.on_unavailable, OnUnavailable::Allow);
        assert!(!settings.cut_streams);
        assert_eq!(settings.revokers, vec!["sec-ops".to_string()]);
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        let cases = [
            ("{ refresh: 0 }", "identity.revocation.refresh: must be 1s to 60s"),
            ("{ refresh: 2m, max_staleness: 1h }", "identity.revocation.refresh: must be 1s to 60s"),
            ("{ max_staleness: 1s }", "identity.revocation.max_staleness: must be longer than `refresh`"),
            ("{ max_staleness: 2h }", "identity.revocation.max_staleness: must be longer than `refresh`"),
            ("{ on_unavailable: ignore }", "identity.revocation.on_unavailable: unknown value `ignore`"),
            ("{ revokers: [\"\"] }", "identity.revocation.revokers[0]: must not be empty"),
            ("{ refresh_every: 1s }", "identity.revocation: unknown field `refresh_every`"),
            (
                "{ service: { url: \"http://x\", token: nope } }",
                "identity.revocation.service.token: unknown credential \"nope\"",
            ),
        ];
        for (section, expected) in cases {
            let errors = errors_of(&policy(section));
            assert!(errors.iter().any(|e| e.starts_with(expected)), "{section}: {errors:?}");
        }
        let text = policy("{}");
        let start = text.find("approvals:\n").unwrap();
        let end = text.find("roles:").unwrap();
        let without_approvals = format!("{}{}", &text[..start], &text[end..]);
        assert!(
            errors_of(&without_approvals)
                .iter()
                .any(|e| e == "identity.revocation.service: needed when the policy has no `approvals` section to read the revocation list from"),
            "{:?}",
            errors_of(&without_approvals)
        );
    }
}
