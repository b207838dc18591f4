//! The `audit` section, compiled: where the filter sends records and what it does when it cannot.
//!
//! Without its own `service`, records go to the approval service (same cluster, authority and
//! token), at `<prefix>/v1/audit/records`. Checks: a source name is a token, the buffer holds at
//! least one record, the outage allowance is positive, and a section without a service of its
//! own needs `approvals`.

use super::approvals::{parse_service_url, ApprovalSettings};
use super::config::{AuditConfig, AuditMode, AuditServiceConfig, CredentialConfig};
use super::{is_token, Checker};
use std::collections::BTreeMap;

/// Cluster name the renderer gives an audit service of its own.
pub const DEFAULT_CLUSTER: &str = "warden_audit";

/// Where records go and how delivery behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Envoy cluster of the service.
    pub cluster: String,
    /// `:authority` of the callouts.
    pub authority: String,
    /// Path of the ingest endpoint (`<prefix>/v1/audit/records`).
    pub records_path: String,
    /// Credential holding the gateway's bearer token.
    pub token_credential: String,
    /// This gateway's name in records; `None`: random per Envoy start.
    pub source: Option<String>,
    /// What happens when records cannot be kept.
    pub mode: AuditMode,
    /// Most records waiting in Envoy, per worker.
    pub buffer_records: u64,
    /// Most bytes of records waiting in Envoy, per worker.
    pub buffer_bytes: u64,
    /// How long the service may be unreachable before `mode` applies, in seconds.
    pub max_outage_seconds: u64,
}

pub(super) fn compile(
    check: &mut Checker,
    config: &AuditConfig,
    approvals: Option<&ApprovalSettings>,
    credentials: &BTreeMap<String, CredentialConfig>,
) -> Option<AuditSettings> {
    if let Some(source) = &config.source {
        if !is_token(source) || source.len() > 64 {
            check.error("audit.source", "must be 1-64 letters, digits, '-', '_' or '.'");
        }
    }
    if config.buffer_records == 0 {
        check.error("audit.buffer_records", "must be at least 1");
    }
    if config.buffer_bytes.0 < 1 << 20 {
        check.error("audit.buffer_bytes", "must be at least 1MiB");
    }
    if config.max_outage.0 == 0 {
        check.error("audit.max_outage", "must be greater than 0");
    }
    let route =
        route(check, "audit", config.service.as_ref(), DEFAULT_CLUSTER, approvals, credentials, "to send records to")?;
    Some(AuditSettings {
        records_path: format!("{}/v1/audit/records", route.prefix),
        cluster: route.cluster,
        authority: route.authority,
        token_credential: route.token_credential,
        source: config.source.clone(),
        mode: config.mode,
        buffer_records: config.buffer_records,
        buffer_bytes: config.buffer_bytes.0,
        max_outage_seconds: config.max_outage.0,
    })
}

/// A `warden serve` endpoint's route, resolved from a section's optional `service`.
pub(super) struct ServiceRoute {
    /// Envoy cluster.
    pub cluster: String,
    /// `:authority` of the callouts.
    pub authority: String,
    /// Path prefix (empty, or `/gw`).
    pub prefix: String,
    /// Credential holding the bearer token.
    pub token_credential: String,
}

/// The route of `section`'s calls: its own `service` (cluster `default_cluster` unless it names
/// one), else the approval service's cluster, authority, prefix and token. Without either, an
/// error at `<section>.service` ending with `purpose` (`to send records to`).
pub(super) fn route(
    check: &mut Checker,
    section: &str,
    service: Option<&AuditServiceConfig>,
    default_cluster: &str,
    approvals: Option<&ApprovalSettings>,
    credentials: &BTreeMap<String, CredentialConfig>,
    purpose: &str,
) -> Option<ServiceRoute> {
    match (service, approvals) {
        (Some(service), _) => {
            if !credentials.contains_key(&service.token) {
                check.error(format!("{section}.service.token"), format!("unknown credential {:?}", service.token));
            }
            let (_, authority, prefix) =
                parse_service_url(&service.url).map_err(|e| check.error(format!("{section}.service.url"), e)).ok()?;
            let cluster = service.cluster.clone().unwrap_or_else(|| default_cluster.to_string());
            Some(ServiceRoute { cluster, authority, prefix, token_credential: service.token.clone() })
        }
        (None, Some(approvals)) => {
            let service = &approvals.service;
            Some(ServiceRoute {
                cluster: service.cluster.clone(),
                authority: service.authority.clone(),
                prefix: service.holds_path.strip_suffix("/v1/holds").unwrap_or_default().to_string(),
                token_credential: service.token_credential.clone(),
            })
        }
        (None, None) => {
            check.error(
                format!("{section}.service"),
                format!("needed when the policy has no `approvals` section {purpose}"),
            );
            None
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use crate::core::policy::config::AuditMode;
    use crate::core::policy::tests::errors_of;
    use crate::core::policy::Policy;

    /// A policy with `approvals` and `audit: {}` (other sections' tests start from it too).
    pub(in crate::core::policy) const POLICY: &str = r#"
version: 1
identity: {}
credentials:
  main: { env: ANTHROPIC_API_KEY }
  approvals-token: { env: T }
  approvals-verdict-key: { env: V }
approvals:
  service: { url: "https://warden-serve.internal/gw", token: approvals-token, verdict_key: approvals-verdict-key }
audit: {}
roles:
  developer:
    credential: main
    models: ["claude-*"]
"#;

    #[test]
    fn records_go_to_the_approval_service_by_default_and_fail_closed() {
        let audit = Policy::parse(POLICY).unwrap().audit.unwrap();
        assert_eq!(audit.cluster, "warden_approvals");
        assert_eq!(audit.authority, "warden-serve.internal");
        assert_eq!(audit.records_path, "/gw/v1/audit/records");
        assert_eq!(audit.token_credential, "approvals-token");
        assert_eq!((audit.mode, audit.buffer_records, audit.max_outage_seconds), (AuditMode::FailClosed, 10_000, 60));
        assert_eq!(audit.source, None);
        assert_eq!(audit.buffer_bytes, 64 << 20);
    }

    #[test]
    fn the_buffer_is_bounded_by_bytes_and_a_tiny_bound_is_refused() {
        let audit =
            Policy::parse(&POLICY.replace("audit: {}", "audit: { buffer_bytes: 8MiB }")).unwrap().audit.unwrap();
        assert_eq!(audit.buffer_bytes, 8 << 20);
        let errors = errors_of(&POLICY.replace("audit: {}", "audit: { buffer_bytes: 1KiB }"));
        assert!(errors.iter().any(|e| e.contains("audit.buffer_bytes")), "{errors:?}");
    }

    #[test]
    fn a_service_of_its_own_gets_its_own_cluster() {
        let text = POLICY.replace(
            "audit: {}",
            "audit:\n  service: { url: \"http://audit.internal:9000\", token: approvals-token }\n  mode: fail_open",
        );
        let audit = Policy::parse(&text).unwrap().audit.unwrap();
        assert_eq!((audit.cluster.as_str(), audit.authority.as_str()), ("warden_audit", "audit.internal:9000"));
        assert_eq!(audit.records_path, "/v1/audit/records");
        assert_eq!(audit.mode, AuditMode::FailOpen);
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        let text = POLICY.replace("audit: {}", "audit: { source: \"gw one\", buffer_records: 0 }");
        assert_eq!(
            errors_of(&text),
            vec![
                "audit.source: must be 1-64 letters, digits, '-', '_' or '.'",
                "audit.buffer_records: must be at least 1"
            ]
        );
        let start = POLICY.find("approvals:\n").unwrap();
        let end = POLICY.find("audit:").unwrap();
        let text = format!("{}{}", &POLICY[..start], &POLICY[end..]);
        assert_eq!(
            errors_of(&text),
            vec!["audit.service: needed when the policy has no `approvals` section to send records to"]
        );
    }
}
