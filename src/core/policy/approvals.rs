//! The `approvals` section and each role's `approval` rules, compiled.
//!
//! The filter uses the service target (cluster, authority, path, credentials), the hold and each
//! role's triggers (the compiled [`Trigger`]s here, judged by [`crate::core::approval`]); `warden serve` uses the review and grant lifetimes
//! and each role's approver rules. Both read them from the same policy file.
//!
//! Checks: the service URL is `http(s)://host[:port][/prefix]`, the hold lies within 1–600 s
//! (the service never holds longer), every trigger has exactly one condition, regexes and globs
//! compile, windows are `HH:MM` with at least one day, and a role with approval rules needs the
//! `approvals` section.

use super::config::{ApprovalsConfig, CredentialConfig, RoleApprovalConfig, TriggerConfig, Weekday, WindowConfig};
use super::{is_token, Checker};
use super::glob::GlobSet;
use regex_automata::meta::Regex;
use std::collections::BTreeMap;

/// Days and minutes of the week (UTC) when requests need no approval for being out of hours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Monday first.
    pub days: [bool; 7],
    /// Minute of the day the window opens (0–1439).
    pub start_minute: u16,
    /// Minute of the day the window closes; below `start_minute` the window wraps past midnight.
    pub end_minute: u16,
}

impl Window {
    /// Whether `unix_seconds` falls inside the window.
    pub fn contains(&self, unix_seconds: i64) -> bool {
        let day = unix_seconds.div_euclid(86_400);
        let minute = (unix_seconds.rem_euclid(86_400) / 60) as u16;
        // 1970-01-01 was a Thursday: Monday-first index 3.
        let weekday = |day: i64| (day + 3).rem_euclid(7) as usize;
        let opens_today = self.days.get(weekday(day)).copied().unwrap_or(false);
        if self.start_minute <= self.end_minute {
            opens_today && minute >= self.start_minute && minute < self.end_minute
        } else {
            let opened_yesterday = self.days.get(weekday(day - 1)).copied().unwrap_or(false);
            (opens_today && minute >= self.start_minute) || (opened_yesterday && minute < self.end_minute)
        }
    }
}

/// What makes a trigger fire.
#[derive(Debug)]
pub enum Condition {
    /// The model matches one of these globs.
    Models(GlobSet),
    /// A declared tool's name matches one of these globs.
    Tools(GlobSet),
    /// The conversation ([`crate::core::approval::conversation_text`]) matches this regex.
    Prompt(Regex),
    /// `max_tokens` is above this.
    MaxTokensAbove(u64),
    /// The body is larger than this many bytes.
    BodyBytesAbove(u64),
    /// The request lists MCP servers.
    McpServers,
    /// The request arrives outside this window.
    OutsideWindow(Window),
}

/// A condition and the reason code shown to the approver when it fires (judged by
/// [`crate::core::approval::reasons`]).
#[derive(Debug)]
pub struct Trigger {
    /// Stable reason code (`opus_model`, `bash_tool`…), chosen by the policy author.
    pub reason: String,
    /// When it fires.
    pub condition: Condition,
}

/// Longest hold the service grants, in seconds.
pub const MAX_HOLD_SECONDS: u64 = 600;

/// The bounds of `approvals.max_session_grant`, in seconds (1 minute to 24 hours).
pub const SESSION_GRANT_BOUNDS: (u64, u64) = (60, 86_400);

/// Cluster name the renderer gives the approval service.
pub const DEFAULT_CLUSTER: &str = "warden_approvals";

/// Where and how long requests wait for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalSettings {
    /// How the filter reaches the service.
    pub service: ServiceTarget,
    /// Longest wait for a decision, in seconds.
    pub hold_seconds: u64,
    /// Lifetime of an undecided review, in seconds.
    pub review_ttl_seconds: u64,
    /// Lifetime of an approval after the decision, in seconds.
    pub grant_ttl_seconds: u64,
    /// The audience only approvers' tokens carry: `warden serve` requires it, the gateway
    /// refuses it.
    pub approver_audience: String,
    /// Groups whose members may read session transcripts.
    pub auditors: Vec<String>,
    /// Most reviews one requester may open per [`ApprovalSettings::review_rate_seconds`].
    pub review_rate_reviews: u32,
    /// The sliding window of the review rate, in seconds.
    pub review_rate_seconds: u64,
    /// Longest session grant an approver may give, in seconds.
    pub max_session_grant_seconds: u64,
}

/// The approval service as the filter calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTarget {
    /// The base URL as written, without a trailing `/`.
    pub url: String,
    /// Envoy cluster to call.
    pub cluster: String,
    /// `:authority` of the callout (`host[:port]` from the URL).
    pub authority: String,
    /// Path of the hold endpoint (`<prefix>/v1/holds`).
    pub holds_path: String,
    /// Credential holding the gateway's bearer token.
    pub token_credential: String,
    /// Credential holding the service's Ed25519 public key.
    pub verdict_key_credential: String,
}

/// A role's approval rules.
#[derive(Debug)]
pub struct RoleApproval {
    /// Groups whose members may decide.
    pub approvers: Vec<String>,
    /// Whether two different approvers must approve.
    pub two_person: bool,
    /// Identical requests one approval lets through.
    pub grant_uses: u32,
    /// Conditions that hold a request.
    pub triggers: Vec<Trigger>,
}

/// `gateway_audiences` are the identity providers' audiences (what agents' tokens carry).
pub(super) fn compile_settings(
    check: &mut Checker,
    config: &ApprovalsConfig,
    credentials: &BTreeMap<String, CredentialConfig>,
    gateway_audiences: &[&str],
) -> Option<ApprovalSettings> {
    let service = &config.service;
    let target = parse_service_url(&service.url).map_err(|e| check.error("approvals.service.url", e)).ok();
    let cluster = service.cluster.clone().unwrap_or_else(|| DEFAULT_CLUSTER.to_string());
    if cluster.is_empty() {
        check.error("approvals.service.cluster", "must not be empty");
    }
    for (field, name) in [("token", &service.token), ("verdict_key", &service.verdict_key)] {
        if !credentials.contains_key(name) {
            check.error(format!("approvals.service.{field}"), format!("unknown credential {name:?}"));
        }
    }
    if !(1..=MAX_HOLD_SECONDS).contains(&config.hold.0) {
        check.error("approvals.hold", format!("must be between 1s and {MAX_HOLD_SECONDS}s"));
    }
    for (field, value) in [("review_ttl", config.review_ttl.0), ("grant_ttl", config.grant_ttl.0)] {
        if value == 0 {
            check.error(format!("approvals.{field}"), "must be greater than 0");
        }
    }
    let audience = config.approver_audience.trim();
    if audience.is_empty() {
        check.error("approvals.approver_audience", "must not be empty");
    } else if gateway_audiences.contains(&audience) {
        check.error(
            "approvals.approver_audience",
            format!(
                "{audience:?} is also an identity provider's audience: agents' tokens would carry it; \
                 approvers need an audience of their own"
            ),
        );
    }
    if config.auditors.iter().any(|g| g.trim().is_empty()) {
        check.error("approvals.auditors", "group names must not be empty");
    }
    if config.review_rate.reviews == 0 {
        check.error("approvals.review_rate.reviews", "must be at least 1");
    }
    if config.review_rate.per.0 == 0 {
        check.error("approvals.review_rate.per", "must be greater than 0");
    }
    let (shortest, longest) = SESSION_GRANT_BOUNDS;
    if !(shortest..=longest).contains(&config.max_session_grant.0) {
        check.error("approvals.max_session_grant", "must be between 1m and 24h");
    }
    let (url, authority, prefix) = target?;
    Some(ApprovalSettings {
        service: ServiceTarget {
            url,
            cluster,
            authority,
            holds_path: format!("{prefix}/v1/holds"),
            token_credential: service.token.clone(),
            verdict_key_credential: service.verdict_key.clone(),
        },
        hold_seconds: config.hold.0,
        review_ttl_seconds: config.review_ttl.0,
        grant_ttl_seconds: config.grant_ttl.0,
        approver_audience: audience.to_string(),
        auditors: config.auditors.clone(),
        review_rate_reviews: config.review_rate.reviews,
        review_rate_seconds: config.review_rate.per.0,
        max_session_grant_seconds: config.max_session_grant.0,
    })
}

/// Splits `http(s)://host[:port][/prefix]` into (url without trailing `/`, authority, prefix).
pub(super) fn parse_service_url(url: &str) -> Result<(String, String, String), String> {
    let url = url.trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("must start with http:// or https://")?;
    let (authority, prefix) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let valid_authority = !authority.is_empty()
        && authority.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    if !valid_authority {
        return Err("needs a host name or address (no user info)".to_string());
    }
    if prefix.contains(['?', '#']) {
        return Err("must not have a query or fragment".to_string());
    }
    Ok((url.to_string(), authority.to_string(), prefix.to_string()))
}

/// `approves_tool_calls`: the role has a tool rule whose action is `approve`, which is reason
/// enough for the section without request triggers.
pub(super) fn compile_role(
    check: &mut Checker,
    path: &str,
    config: &RoleApprovalConfig,
    approves_tool_calls: bool,
) -> RoleApproval {
    if config.approvers.is_empty() || config.approvers.iter().any(String::is_empty) {
        check.error(format!("{path}.approvers"), "at least one approver group is required");
    }
    if config.grant_uses == 0 {
        check.error(format!("{path}.grant_uses"), "must be at least 1");
    }
    if config.triggers.is_empty() && !approves_tool_calls {
        check
            .error(format!("{path}.triggers"), "at least one trigger (or a tool rule with action approve) is required");
    }
    let triggers = config
        .triggers
        .iter()
        .enumerate()
        .filter_map(|(i, trigger)| compile_trigger(check, &format!("{path}.triggers[{i}]"), trigger))
        .collect();
    RoleApproval {
        approvers: config.approvers.clone(),
        two_person: config.two_person,
        grant_uses: config.grant_uses,
        triggers,
    }
}

fn compile_trigger(check: &mut Checker, path: &str, config: &TriggerConfig) -> Option<Trigger> {
    if !is_token(&config.reason) {
        check.error(format!("{path}.reason"), "must be letters, digits, '_', '-' or '.'");
    }
    let mut conditions = Vec::new();
    if let Some(models) = &config.models {
        conditions.push(Condition::Models(check.globs(&format!("{path}.models"), models)));
    }
    if let Some(tools) = &config.tools {
        conditions.push(Condition::Tools(check.globs(&format!("{path}.tools"), tools)));
    }
    if let Some(pattern) = &config.prompt {
        match regex_automata::meta::Regex::new(pattern) {
            Ok(regex) => conditions.push(Condition::Prompt(regex)),
            Err(e) => check.error(format!("{path}.prompt"), format!("invalid regex: {e}")),
        }
    }
    if let Some(limit) = config.max_tokens_above {
        conditions.push(Condition::MaxTokensAbove(limit));
    }
    if let Some(limit) = config.body_bytes_above {
        conditions.push(Condition::BodyBytesAbove(limit.0));
    }
    match config.mcp_servers {
        Some(true) => conditions.push(Condition::McpServers),
        Some(false) => check.error(format!("{path}.mcp_servers"), "only `true` is meaningful; remove the trigger"),
        None => {}
    }
    if let Some(window) = &config.outside {
        if let Some(window) = compile_window(check, &format!("{path}.outside"), window) {
            conditions.push(Condition::OutsideWindow(window));
        }
    }
    let given = [
        config.models.is_some(),
        config.tools.is_some(),
        config.prompt.is_some(),
        config.max_tokens_above.is_some(),
        config.body_bytes_above.is_some(),
        config.mcp_servers.is_some(),
        config.outside.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        check.error(
            path.to_string(),
            "needs exactly one condition: models, tools, prompt, max_tokens_above, body_bytes_above, \
             mcp_servers or outside",
        );
        return None;
    }
    let condition = conditions.pop()?;
    Some(Trigger { reason: config.reason.clone(), condition })
}

fn compile_window(check: &mut Checker, path: &str, config: &WindowConfig) -> Option<Window> {
    if config.days.is_empty() {
        check.error(format!("{path}.days"), "at least one day is required");
    }
    let mut days = [false; 7];
    for day in &config.days {
        let index = match day {
            Weekday::Mon => 0,
            Weekday::Tue => 1,
            Weekday::Wed => 2,
            Weekday::Thu => 3,
            Weekday::Fri => 4,
            Weekday::Sat => 5,
            Weekday::Sun => 6,
        };
        if let Some(slot) = days.get_mut(index) {
            *slot = true;
        }
    }
    let from = clock_minutes(&config.from).map_err(|e| check.error(format!("{path}.from"), e)).ok();
    let to = clock_minutes(&config.to).map_err(|e| check.error(format!("{path}.to"), e)).ok();
    let (start_minute, end_minute) = (from?, to?);
    if start_minute == end_minute {
        check.error(path.to_string(), "`from` and `to` must differ");
        return None;
    }
    Some(Window { days, start_minute, end_minute })
}

/// `HH:MM` (00:00–24:00) → minutes since midnight.
fn clock_minutes(text: &str) -> Result<u16, String> {
    let invalid = || format!("{text:?} is not a time of day; use HH:MM (UTC), e.g. 08:00");
    let (hours, minutes) = text.trim().split_once(':').ok_or_else(invalid)?;
    let (hours, minutes): (u16, u16) = (hours.parse().map_err(|_| invalid())?, minutes.parse().map_err(|_| invalid())?);
    if hours > 24 || minutes > 59 || (hours == 24 && minutes > 0) || text.trim().len() != 5 {
        return Err(invalid());
    }
    Ok(hours * 60 + minutes)
}

#[cfg(test)]
mod tests {
    use crate::core::policy::tests::errors_of;
    use crate::core::policy::Policy;

    const POLICY: &str = r#"
version: 1
identity: {}
credentials:
  main: { env: ANTHROPIC_API_KEY }
  approvals-token: { env: T }
  approvals-verdict-key: { env: V }
approvals:
  service: { url: "https://warden-serve.internal", token: approvals-token, verdict_key: approvals-verdict-key }
roles:
  developer:
    credential: main
    models: ["claude-*"]
    approval:
      approvers: [leads]
      triggers:
        - { reason: opus_model, models: ["claude-opus-*"] }
"#;

    #[test]
    fn defaults_hold_two_minutes_reviews_an_hour_and_grants_fifteen_minutes_once() {
        let policy = Policy::parse(POLICY).unwrap();
        let settings = policy.approvals.unwrap();
        assert_eq!((settings.hold_seconds, settings.review_ttl_seconds, settings.grant_ttl_seconds), (120, 3600, 900));
        assert_eq!(settings.approver_audience, "warden-approvals");
        assert!(settings.auditors.is_empty(), "nobody reads transcripts unless named");
        assert_eq!((settings.review_rate_reviews, settings.review_rate_seconds), (30, 3600));
        assert_eq!(settings.max_session_grant_seconds, 3600, "session grants last at most an hour by default");
        assert_eq!(settings.service.cluster, "warden_approvals");
        assert_eq!(settings.service.authority, "warden-serve.internal");
        assert_eq!(settings.service.holds_path, "/v1/holds");
        let rules = policy.roles[0].approval.as_ref().unwrap();
        assert_eq!((rules.grant_uses, rules.two_person), (1, false));
    }

    #[test]
    fn session_grants_are_bounded_between_a_minute_and_a_day() {
        let with = |value: &str| POLICY.replace("approvals:\n", &format!("approvals:\n  max_session_grant: {value}\n"));
        assert_eq!(Policy::parse(&with("24h")).unwrap().approvals.unwrap().max_session_grant_seconds, 86_400);
        for bad in ["25h", "30s"] {
            assert_eq!(errors_of(&with(bad)), vec!["approvals.max_session_grant: must be between 1m and 24h"], "{bad}");
        }
    }

    #[test]
    fn a_trigger_needs_exactly_one_condition() {
        let text = POLICY.replace(r#"models: ["claude-opus-*"] }"#, r#"models: ["claude-opus-*"], tools: [Bash] }"#);
        assert_eq!(
            errors_of(&text),
            vec![
                "roles.developer.approval.triggers[0]: needs exactly one condition: models, tools, prompt, \
                  max_tokens_above, body_bytes_above, mcp_servers or outside"
            ]
        );
        let text = POLICY.replace(r#", models: ["claude-opus-*"] }"#, " }");
        assert_eq!(errors_of(&text).len(), 1);
    }

    #[test]
    fn errors_name_the_field_at_fault() {
        let cases = [
            (
                "url: \"https://warden-serve.internal\"",
                "url: \"ftp://x\"",
                "approvals.service.url: must start with http:// or https://",
            ),
            ("token: approvals-token", "token: nope", "approvals.service.token: unknown credential \"nope\""),
            (
                "approvers: [leads]",
                "approvers: []",
                "roles.developer.approval.approvers: at least one approver group is required",
            ),
            (
                "reason: opus_model",
                "reason: \"opus model\"",
                "roles.developer.approval.triggers[0].reason: must be letters, digits, '_', '-' or '.'",
            ),
            (
                r#"models: ["claude-opus-*"]"#,
                r#"prompt: "(unclosed""#,
                "roles.developer.approval.triggers[0].prompt: invalid regex",
            ),
            (
                r#"models: ["claude-opus-*"]"#,
                r#"outside: { days: [mon], from: "8:00", to: "19:00" }"#,
                "roles.developer.approval.triggers[0].outside.from: \"8:00\" is not a time of day",
            ),
        ];
        for (from, to, expected) in cases {
            let errors = errors_of(&POLICY.replace(from, to));
            assert_eq!(errors.len(), 1, "{to}: {errors:?}");
            assert!(errors[0].starts_with(expected), "{to}: {errors:?}");
        }
        let errors = errors_of(&POLICY.replace("service:", "hold: 601s\n  service:"));
        assert_eq!(errors, vec!["approvals.hold: must be between 1s and 600s"]);
        let errors = errors_of(&POLICY.replace("service:", "review_rate: { reviews: 0 }\n  service:"));
        assert_eq!(errors, vec!["approvals.review_rate.reviews: must be at least 1"]);
    }

    #[test]
    fn approvers_need_an_audience_agents_tokens_never_carry() {
        let text = POLICY
            .replace("identity: {}", "identity:\n  providers:\n    - { name: idp, issuer: i, audiences: [warden, ops], jwks: { file: j.json } }")
            .replace("service:", "approver_audience: ops\n  service:");
        let errors = errors_of(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("approvals.approver_audience: \"ops\" is also an identity provider's audience"));
    }

    #[test]
    fn approval_rules_without_the_approvals_section_are_an_error() {
        let start = POLICY.find("approvals:\n").unwrap();
        let end = POLICY.find("roles:").unwrap();
        let text = format!("{}{}", &POLICY[..start], &POLICY[end..]);
        assert_eq!(
            errors_of(&text),
            vec!["roles.developer.approval: needs the top-level `approvals` section (where the approval service is)"]
        );
    }

    #[test]
    fn a_window_may_wrap_past_midnight() {
        let text =
            POLICY.replace(r#"models: ["claude-opus-*"]"#, r#"outside: { days: [fri], from: "22:00", to: "06:00" }"#);
        let policy = Policy::parse(&text).unwrap();
        let trigger = &policy.roles[0].approval.as_ref().unwrap().triggers[0];
        match &trigger.condition {
            super::Condition::OutsideWindow(window) => {
                assert_eq!((window.start_minute, window.end_minute), (22 * 60, 6 * 60));
                assert_eq!(window.days, [false, false, false, false, true, false, false]);
            }
            other => panic!("unexpected condition {other:?}"),
        }
    }

    #[test]
    fn a_role_whose_tool_rules_approve_needs_no_request_trigger() {
        let without_triggers =
            POLICY.replace("      triggers:\n        - { reason: opus_model, models: [\"claude-opus-*\"] }\n", "");
        assert_eq!(
            errors_of(&without_triggers),
            vec!["roles.developer.approval.triggers: at least one trigger (or a tool rule with action approve) is required"]
        );
        let approving = without_triggers.replace(
            "    approval:\n",
            "    tools:\n      rules:\n        - { id: force_push, tools: Bash, action: approve, reason: force push, \
             command: { matches: \"push --force\" } }\n    approval:\n",
        );
        let policy = Policy::parse(&approving).unwrap();
        assert!(policy.roles[0].approval.as_ref().unwrap().triggers.is_empty());
    }
}
