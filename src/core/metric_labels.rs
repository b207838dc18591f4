//! Warden's metrics as Prometheus series with labels, built from stat names Envoy can take apart.
//!
//! proxy-wasm metrics have a name only, no tags. Warden encodes each label in the name as a
//! `.<key>.<value>` pair between `warden` and the metric's own name, which comes last:
//! `warden.role.analyst.decision.denied.reason.model_not_allowed.requests`. Envoy shows it in
//! `/stats` with its `wasmcustom.` prefix; the rendered bootstrap's `stats_config.stats_tags`
//! (one regex per label key, scripts/render_envoy.py) cuts every pair out of the name and makes
//! it a tag, so `/stats/prometheus` prints
//! `warden_requests{role="analyst",decision="denied",reason="model_not_allowed"}`. Every family is
//! listed in [`FAMILIES`] and documented in docs/metrics.md.
//!
//! Algorithm: [`Registry`] turns an event (a decision, usage, a DLP finding, …) into label values
//! and finds the series by a hash of those values as given (no name is built, nothing is
//! allocated); the first time, it builds the stat name and asks its [`StatSink`] to define it,
//! and remembers the id; then it adds to the counter. Values are sanitized ([`sanitize`]): only `A-Z a-z 0-9 _ -` survive (any
//! other character becomes `_`: no `.` can shift a pair, no `=` or `;` can meet a tag regex), at
//! most [`MAX_VALUE_CHARS`]; empty is `none`.
//!
//! Cardinality is an attack surface, so every label value comes from a bounded set: roles,
//! reasons, detectors and budget names from the policy or the code; the model is the one the
//! upstream reported (never the one the client sent), kept only when the role allows it, and at
//! most [`MAX_MODELS`] distinct models per VM ([`ModelLabels`]); anything else is `other`. On top,
//! each family holds at most [`MAX_SERIES_PER_FAMILY`] series per VM: later new label sets all go
//! to one overflow series whose every label is `other`.
//!
//! Limits: the bounds are per VM (one per Envoy worker), so an Envoy with `n` workers shows at
//! most `n ×` the bound, and values that differ only in characters `sanitize` replaces share a
//! series. A sink that refuses a definition loses that series (remembered, not retried); it never
//! changes a decision.

use crate::core::audit::transcript::Usage;
use crate::core::dlp::engine::Action;
use crate::core::dlp::mask::Tally;
use crate::core::errors::Reason;
use crate::core::policy::glob::GlobSet;
use std::collections::HashMap;
use std::hash::BuildHasher;

/// The value of a label whose real value is outside its bounded set.
pub const OTHER: &str = "other";
/// The value of a label that has no value (a refusal before a role was known, an allowed request's
/// reason).
pub const NONE: &str = "none";
/// Longest label value kept, in characters.
pub const MAX_VALUE_CHARS: usize = 48;
/// Most series one family defines per VM; new label sets beyond go to the overflow series.
pub const MAX_SERIES_PER_FAMILY: usize = 512;
/// Most distinct model labels per VM; more models are counted as `other`.
pub const MAX_MODELS: usize = 16;
/// Longest reported model name labelled as itself, in bytes (a longer one is `other`, and is
/// never kept).
pub const MAX_MODEL_BYTES: usize = 128;

/// One metric family: its name (the last part of the stat name) and its label keys, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The metric's name: `warden_<metric>` in Prometheus.
    pub metric: &'static str,
    /// Its label keys, in the order they appear in the stat name.
    pub keys: &'static [&'static str],
}

/// Requests by final decision (`allowed`, `clamped`, `denied`), refusal reason and role.
pub const REQUESTS: Family = Family { metric: "requests", keys: &["role", "decision", "reason"] };
/// Tokens Anthropic reported, by role, model and kind (`input`, `output`, `cache_write`, `cache_read`).
pub const TOKENS: Family = Family { metric: "tokens", keys: &["role", "model", "kind"] };
/// Cost in billionths of a US dollar, by role and model.
pub const COST: Family = Family { metric: "cost_nano_usd", keys: &["role", "model"] };
/// Requests refused because a budget had no room, by budget.
pub const BUDGET_REFUSALS: Family = Family { metric: "budget_refusals", keys: &["budget"] };
/// Answers cut short because a budget ran out mid-stream, by budget.
pub const STREAM_CUTS: Family = Family { metric: "stream_cuts", keys: &["budget"] };
/// DLP findings by detector and action (`masked`, `blocked`, `audited`).
pub const DLP_FINDINGS: Family = Family { metric: "dlp_findings", keys: &["detector", "action"] };
/// Held requests by how their approval ended.
pub const APPROVALS: Family = Family { metric: "approvals", keys: &["outcome"] };

/// Tool calls Claude proposed in answers, by role, the rules' action (`allow`, `deny`,
/// `approve`) and what became of them (`allowed`, `denied`, `approved`, `refused_by_reviewer`,
/// `timed_out`, `incomplete`).
pub const TOOL_CALLS: Family = Family { metric: "tool_calls", keys: &["role", "action", "outcome"] };

/// Calls asking `warden serve` for budget leases, by outcome.
pub const LEASE_CALLS: Family = Family { metric: "lease_calls", keys: &["outcome"] };

/// Refreshes of the revocation list from `warden serve`, by outcome.
pub const REVOCATION_REFRESHES: Family = Family { metric: "revocation_refreshes", keys: &["outcome"] };

/// Every labelled family (the unlabelled ones are defined up front by the glue).
pub const FAMILIES: [Family; 10] = [
    REQUESTS,
    TOKENS,
    COST,
    BUDGET_REFUSALS,
    STREAM_CUTS,
    DLP_FINDINGS,
    APPROVALS,
    TOOL_CALLS,
    LEASE_CALLS,
    REVOCATION_REFRESHES,
];

impl Family {
    /// The stat name for `values` (one per key, sanitized; a missing one is `none`), without
    /// Envoy's `wasmcustom.` prefix.
    pub fn stat_name(&self, values: &[&str]) -> String {
        let mut name = String::from("warden");
        for (index, key) in self.keys.iter().enumerate() {
            name.push('.');
            name.push_str(key);
            name.push('.');
            name.push_str(&sanitize(values.get(index).copied().unwrap_or(NONE)));
        }
        name.push('.');
        name.push_str(self.metric);
        name
    }
}

/// A label value that cannot break a stat name or a tag regex: `A-Z a-z 0-9 _ -` kept, any other
/// character `_`, at most [`MAX_VALUE_CHARS`] characters, `none` when empty.
pub fn sanitize(value: &str) -> String {
    let kept: String = value
        .chars()
        .take(MAX_VALUE_CHARS)
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    if kept.is_empty() {
        NONE.to_string()
    } else {
        kept
    }
}

/// What happened to a request, as the `decision` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Forwarded as asked (or as masked).
    Allowed,
    /// Forwarded with a value clamped to the role's cap.
    Clamped,
    /// Refused by Warden.
    Denied,
}

impl Decision {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Allowed => "allowed",
            Self::Clamped => "clamped",
            Self::Denied => "denied",
        }
    }
}

/// How a held request's approval ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalOutcome {
    /// A reviewer approved: the request went on.
    Approved,
    /// A reviewer denied it.
    Denied,
    /// Nobody decided in time.
    TimedOut,
    /// The service's answer did not verify.
    Invalid,
    /// The approval service could not be reached or failed.
    Error,
}

impl ApprovalOutcome {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::TimedOut => "timed_out",
            Self::Invalid => "invalid",
            Self::Error => "error",
        }
    }

    /// The outcome a refusal of a held request stands for (`None` for a reason that is not
    /// about the approval).
    pub fn of_refusal(reason: Reason) -> Option<Self> {
        match reason {
            Reason::ApprovalDenied => Some(Self::Denied),
            Reason::ApprovalPending => Some(Self::TimedOut),
            Reason::ApprovalInvalid => Some(Self::Invalid),
            Reason::ApprovalUnavailable | Reason::InternalError => Some(Self::Error),
            _ => None,
        }
    }
}

/// How a call asking `warden serve` for budget leases ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// The service answered with one grant per ask: the grants were applied.
    Granted,
    /// The service answered, but not with a usable answer (a status other than 200, or not one
    /// grant per ask).
    Refused,
    /// No answer: the service could not be reached or timed out.
    Unreachable,
    /// The call could not be sent.
    Error,
}

impl LeaseOutcome {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Refused => "refused",
            Self::Unreachable => "unreachable",
            Self::Error => "error",
        }
    }
}

/// How a refresh of the revocation list ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationOutcome {
    /// A new list was received and published.
    Changed,
    /// The service said the list is unchanged (304).
    Unchanged,
    /// The service answered, but not with a usable list (another status, or a list the gateway
    /// refuses).
    Refused,
    /// No answer: the service could not be reached or timed out.
    Unreachable,
    /// The call could not be sent.
    Error,
}

impl RevocationOutcome {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Unchanged => "unchanged",
            Self::Refused => "refused",
            Self::Unreachable => "unreachable",
            Self::Error => "error",
        }
    }
}

/// Token counts of one exchange, as plain numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCounts {
    /// Input tokens billed at the normal rate.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read: u64,
}

impl From<&Usage> for TokenCounts {
    fn from(usage: &Usage) -> Self {
        Self {
            input: usage.input_tokens.unwrap_or(0),
            output: usage.output_tokens.unwrap_or(0),
            cache_write: usage.cache_creation_input_tokens.unwrap_or(0),
            cache_read: usage.cache_read_input_tokens.unwrap_or(0),
        }
    }
}

/// The bounded set of model labels of one VM.
#[derive(Debug, Default)]
pub struct ModelLabels {
    /// The models labelled so far: as reported, and their label.
    seen: Vec<(String, String)>,
}

impl ModelLabels {
    /// The label for the model the upstream `reported`: itself (sanitized) when `allowed` admits
    /// it, it is at most [`MAX_MODEL_BYTES`] long and it is one of the first [`MAX_MODELS`] models
    /// seen, else `other`.
    pub fn label(&mut self, reported: Option<&str>, allowed: impl Fn(&str) -> bool) -> &str {
        let Some(model) = reported.filter(|m| m.len() <= MAX_MODEL_BYTES && allowed(m)) else { return OTHER };
        // Found by the reported name without building its label (the common case).
        if let Some(index) = self.seen.iter().position(|(raw, _)| raw == model) {
            return self.seen.get(index).map_or(OTHER, |(_, label)| label.as_str());
        }
        let label = sanitize(model);
        // Another spelling of a model already labelled shares its label.
        if let Some(index) = self.seen.iter().position(|(_, seen)| *seen == label) {
            return self.seen.get(index).map_or(OTHER, |(_, label)| label.as_str());
        }
        if self.seen.len() >= MAX_MODELS {
            return OTHER;
        }
        self.seen.push((model.to_string(), label));
        self.seen.last().map_or(OTHER, |(_, label)| label.as_str())
    }
}

/// Where series are defined and counted (Envoy's stats in the filter; a recorder in tests).
pub trait StatSink {
    /// A metric's handle.
    type Id: Copy;
    /// Defines the counter `name`; `None` when the host refuses.
    fn define_counter(&mut self, name: &str) -> Option<Self::Id>;
    /// Adds `n` to a counter.
    fn add(&mut self, id: Self::Id, n: u64);
}

/// A series' label values as given, and its id (`None`: the sink refused it).
type Known<Id> = (Box<[String]>, Option<Id>);

/// The series of one family defined so far, at most [`MAX_SERIES_PER_FAMILY`] plus the overflow.
#[derive(Debug)]
struct Series<Id> {
    family: Family,
    /// Ids by the hash of the label values as given (before sanitizing), each bucket holding
    /// those values: a count finds its series without building its name or allocating.
    ids: HashMap<u64, Vec<Known<Id>>>,
    /// How many series `ids` holds.
    defined: usize,
    overflow: Option<Option<Id>>,
}

impl<Id: Copy> Series<Id> {
    fn new(family: Family) -> Self {
        Self { family, ids: HashMap::new(), defined: 0, overflow: None }
    }

    /// The id of the series for `values`, defined on first use.
    fn id<S: StatSink<Id = Id>>(&mut self, sink: &mut S, values: &[&str]) -> Option<Id> {
        let hash = self.ids.hasher().hash_one(values);
        let same = |(known, _): &&Known<Id>| known.iter().map(String::as_str).eq(values.iter().copied());
        if let Some((_, id)) = self.ids.get(&hash).and_then(|bucket| bucket.iter().find(same)) {
            return *id;
        }
        if self.defined >= MAX_SERIES_PER_FAMILY {
            let family = self.family;
            return *self.overflow.get_or_insert_with(|| {
                let others = vec![OTHER; family.keys.len()];
                sink.define_counter(&family.stat_name(&others))
            });
        }
        let id = sink.define_counter(&self.family.stat_name(values));
        let known = values.iter().map(|v| v.to_string()).collect();
        self.ids.entry(hash).or_default().push((known, id));
        self.defined = self.defined.saturating_add(1);
        id
    }

    fn add<S: StatSink<Id = Id>>(&mut self, sink: &mut S, values: &[&str], n: u64) {
        if n == 0 {
            return;
        }
        if let Some(id) = self.id(sink, values) {
            sink.add(id, n);
        }
    }
}

/// Every labelled series of one VM, defined lazily through its sink.
#[derive(Debug)]
pub struct Registry<S: StatSink> {
    sink: S,
    requests: Series<S::Id>,
    tokens: Series<S::Id>,
    cost: Series<S::Id>,
    budget_refusals: Series<S::Id>,
    stream_cuts: Series<S::Id>,
    dlp_findings: Series<S::Id>,
    approvals: Series<S::Id>,
    tool_calls: Series<S::Id>,
    lease_calls: Series<S::Id>,
    revocation_refreshes: Series<S::Id>,
    models: ModelLabels,
}

impl<S: StatSink> Registry<S> {
    /// A registry that defines nothing until something is counted.
    pub fn new(sink: S) -> Self {
        Self {
            sink,
            requests: Series::new(REQUESTS),
            tokens: Series::new(TOKENS),
            cost: Series::new(COST),
            budget_refusals: Series::new(BUDGET_REFUSALS),
            stream_cuts: Series::new(STREAM_CUTS),
            dlp_findings: Series::new(DLP_FINDINGS),
            approvals: Series::new(APPROVALS),
            tool_calls: Series::new(TOOL_CALLS),
            lease_calls: Series::new(LEASE_CALLS),
            revocation_refreshes: Series::new(REVOCATION_REFRESHES),
            models: ModelLabels::default(),
        }
    }

    /// The sink (for tests and the glue's unlabelled metrics).
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// A request's final decision: `role` is the role's name (`None` before one was bound),
    /// `reason` the refusal's reason (`None` for a forwarded request).
    pub fn request(&mut self, role: Option<&str>, decision: Decision, reason: Option<Reason>) {
        let values = [role.unwrap_or(NONE), decision.label(), reason.map_or(NONE, Reason::code)];
        self.requests.add(&mut self.sink, &values, 1);
    }

    /// Tokens (and cost, in billionths of a dollar, when known) of one exchange of the role
    /// named `role`, for the model the upstream `reported` (labelled only when the role's
    /// `models` allow it, see [`ModelLabels`]).
    pub fn usage(
        &mut self,
        role: &str,
        models: &GlobSet,
        reported: Option<&str>,
        tokens: &TokenCounts,
        cost_nanos: Option<u64>,
    ) {
        let model = self.models.label(reported, |m| models.matches(m));
        for (kind, count) in [
            ("input", tokens.input),
            ("output", tokens.output),
            ("cache_write", tokens.cache_write),
            ("cache_read", tokens.cache_read),
        ] {
            self.tokens.add(&mut self.sink, &[role, model, kind], count);
        }
        if let Some(cost) = cost_nanos {
            self.cost.add(&mut self.sink, &[role, model], cost);
        }
    }

    /// A request refused because the policy budget `budget` had no room for it.
    pub fn budget_refused(&mut self, budget: &str) {
        self.budget_refusals.add(&mut self.sink, &[budget], 1);
    }

    /// An answer cut short because the policy budget `budget` ran out while it streamed.
    pub fn stream_cut(&mut self, budget: &str) {
        self.stream_cuts.add(&mut self.sink, &[budget], 1);
    }

    /// An exchange's DLP findings, per detector and action.
    pub fn dlp(&mut self, tally: &Tally) {
        for (detector, action, count) in tally.entries() {
            let action = match action {
                Action::Mask => "masked",
                Action::Block => "blocked",
                Action::Audit => "audited",
                Action::Off => continue,
            };
            self.dlp_findings.add(&mut self.sink, &[detector, action], u64::from(count));
        }
    }

    /// How a held request's approval ended.
    pub fn approval(&mut self, outcome: ApprovalOutcome) {
        self.approvals.add(&mut self.sink, &[outcome.label()], 1);
    }

    /// One tool call of an answer of the role named `role`: the rules' `action` and the call's
    /// `outcome` (their labels).
    pub fn tool_call(&mut self, role: &str, action: &str, outcome: &str) {
        self.tool_calls.add(&mut self.sink, &[role, action, outcome], 1);
    }

    /// How a call asking `warden serve` for budget leases ended.
    pub fn lease_call(&mut self, outcome: LeaseOutcome) {
        self.lease_calls.add(&mut self.sink, &[outcome.label()], 1);
    }

    /// How a refresh of the revocation list ended.
    pub fn revocation_refresh(&mut self, outcome: RevocationOutcome) {
        self.revocation_refreshes.add(&mut self.sink, &[outcome.label()], 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::glob::Glob;

    /// Records definitions and totals by stat name; refuses names containing `refuse`.
    #[derive(Debug, Default)]
    struct Recorder {
        names: Vec<String>,
        totals: Vec<u64>,
        definitions: usize,
    }

    impl StatSink for Recorder {
        type Id = usize;
        fn define_counter(&mut self, name: &str) -> Option<usize> {
            self.definitions += 1;
            if name.contains("refuse") {
                return None;
            }
            self.names.push(name.to_string());
            self.totals.push(0);
            Some(self.names.len() - 1)
        }
        fn add(&mut self, id: usize, n: u64) {
            self.totals[id] += n;
        }
    }

    impl Recorder {
        fn total(&self, name: &str) -> u64 {
            self.names.iter().position(|n| n == name).map_or(0, |i| self.totals[i])
        }
    }

    fn globs(models: &[&str]) -> GlobSet {
        GlobSet::new(models.iter().map(|m| Glob::parse(m).unwrap()).collect())
    }

    #[test]
    fn stat_names_put_each_label_as_a_key_value_pair_before_the_metric() {
        assert_eq!(
            REQUESTS.stat_name(&["analyst", "denied", "model_not_allowed"]),
            "warden.role.analyst.decision.denied.reason.model_not_allowed.requests"
        );
        assert_eq!(APPROVALS.stat_name(&[]), "warden.outcome.none.approvals", "a missing value is none");
    }

    #[test]
    fn sanitizing_leaves_no_character_that_could_shift_a_pair_or_meet_a_tag_regex() {
        assert_eq!(sanitize("claude-sonnet-4-5_x"), "claude-sonnet-4-5_x");
        assert_eq!(sanitize("a.b=c;d e/f*"), "a_b_c_d_e_f_");
        assert_eq!(sanitize("rôle"), "r_le");
        assert_eq!(sanitize(""), "none");
        assert_eq!(sanitize(&"x".repeat(1000)).len(), MAX_VALUE_CHARS);
        assert_eq!(sanitize(&"é".repeat(1000)), "_".repeat(MAX_VALUE_CHARS));
    }

    #[test]
    fn a_hostile_value_stays_inside_its_own_label() {
        let name = REQUESTS.stat_name(&["x.decision.allowed", "denied", "r"]);
        assert_eq!(name, "warden.role.x_decision_allowed.decision.denied.reason.r.requests");
        assert_eq!(name.split('.').count(), 2 + 2 * REQUESTS.keys.len());
    }

    #[test]
    fn decisions_are_counted_by_role_decision_and_reason() {
        let mut registry = Registry::new(Recorder::default());
        registry.request(Some("dev"), Decision::Allowed, None);
        registry.request(Some("dev"), Decision::Allowed, None);
        registry.request(None, Decision::Denied, Some(Reason::TokenMissing));
        registry.request(Some("dev"), Decision::Clamped, None);
        let sink = registry.sink();
        assert_eq!(sink.total("warden.role.dev.decision.allowed.reason.none.requests"), 2);
        assert_eq!(sink.total("warden.role.none.decision.denied.reason.token_missing.requests"), 1);
        assert_eq!(sink.total("warden.role.dev.decision.clamped.reason.none.requests"), 1);
        assert_eq!(sink.definitions, 3, "each series is defined once, on first use");
    }

    #[test]
    fn budget_refusals_and_stream_cuts_are_counted_by_budget() {
        let mut registry = Registry::new(Recorder::default());
        registry.budget_refused("analyst-daily");
        registry.budget_refused("analyst-daily");
        registry.budget_refused("team.cost");
        registry.stream_cut("analyst-daily");
        let sink = registry.sink();
        assert_eq!(sink.total("warden.budget.analyst-daily.budget_refusals"), 2);
        assert_eq!(sink.total("warden.budget.team_cost.budget_refusals"), 1);
        assert_eq!(sink.total("warden.budget.analyst-daily.stream_cuts"), 1);
    }

    #[test]
    fn usage_counts_every_kind_of_token_and_the_cost_by_role_and_reported_model() {
        let mut registry = Registry::new(Recorder::default());
        let models = globs(&["claude-*"]);
        let tokens = TokenCounts { input: 10, output: 20, cache_write: 0, cache_read: 5000 };
        registry.usage("dev", &models, Some("claude-sonnet-4-5"), &tokens, Some(1_500));
        registry.usage("dev", &models, Some("claude-sonnet-4-5"), &tokens, None);
        let sink = registry.sink();
        let name = |kind: &str| format!("warden.role.dev.model.claude-sonnet-4-5.kind.{kind}.tokens");
        assert_eq!(sink.total(&name("input")), 20);
        assert_eq!(sink.total(&name("output")), 40);
        assert_eq!(sink.total(&name("cache_read")), 10_000);
        assert!(!sink.names.contains(&name("cache_write")), "nothing is defined for a zero count");
        assert_eq!(sink.total("warden.role.dev.model.claude-sonnet-4-5.cost_nano_usd"), 1_500);
    }

    #[test]
    fn a_model_the_role_does_not_allow_or_none_reported_is_other() {
        let mut registry = Registry::new(Recorder::default());
        let models = globs(&["claude-haiku-*"]);
        let tokens = TokenCounts { output: 1, ..TokenCounts::default() };
        registry.usage("analyst", &models, Some("claude-opus-4-6"), &tokens, None);
        registry.usage("analyst", &models, None, &tokens, None);
        assert_eq!(registry.sink().total("warden.role.analyst.model.other.kind.output.tokens"), 2);
    }

    #[test]
    fn a_huge_reported_model_name_is_other_and_never_kept() {
        let mut labels = ModelLabels::default();
        let huge = format!("claude-{}", "x".repeat(1 << 20));
        assert_eq!(labels.label(Some(&huge), |_| true), OTHER);
        assert!(labels.seen.is_empty());
        assert_eq!(labels.label(Some("claude-haiku-4-5"), |_| true), "claude-haiku-4-5");
        assert_eq!(labels.label(Some("claude haiku 4 5"), |_| true), "claude_haiku_4_5");
        assert_eq!(labels.label(Some("claude_haiku_4_5"), |_| true), "claude_haiku_4_5", "shares the label");
        assert_eq!(labels.seen.len(), 2);
    }

    #[test]
    fn a_flood_of_distinct_model_names_stays_within_the_bound() {
        let mut registry = Registry::new(Recorder::default());
        let models = globs(&["claude-*"]);
        let tokens = TokenCounts { output: 1, ..TokenCounts::default() };
        for n in 0..10_000 {
            registry.usage("dev", &models, Some(&format!("claude-{n}")), &tokens, Some(1));
        }
        let sink = registry.sink();
        let tokens_series = sink.names.iter().filter(|n| n.ends_with(".tokens")).count();
        assert_eq!(tokens_series, MAX_MODELS + 1, "the first models, then other");
        assert_eq!(sink.total("warden.role.dev.model.other.kind.output.tokens"), 10_000 - MAX_MODELS as u64);
        assert_eq!(sink.total("warden.role.dev.model.claude-0.kind.output.tokens"), 1);
        assert_eq!(sink.names.len(), 2 * (MAX_MODELS + 1));
    }

    #[test]
    fn a_family_never_defines_more_than_its_bound_and_counts_the_rest_in_one_overflow_series() {
        let mut registry = Registry::new(Recorder::default());
        for n in 0..5_000 {
            registry.budget_refused(&format!("budget-{n}"));
        }
        let sink = registry.sink();
        assert_eq!(sink.names.len(), MAX_SERIES_PER_FAMILY + 1);
        assert_eq!(sink.total("warden.budget.other.budget_refusals"), 5_000 - MAX_SERIES_PER_FAMILY as u64);
        assert_eq!(sink.definitions, MAX_SERIES_PER_FAMILY + 1, "the overflow is defined once");
    }

    #[test]
    fn a_refused_definition_loses_that_series_only_and_is_not_retried() {
        let mut registry = Registry::new(Recorder::default());
        registry.budget_refused("refuse-me");
        registry.budget_refused("refuse-me");
        registry.budget_refused("daily");
        let sink = registry.sink();
        assert_eq!(sink.definitions, 2);
        assert_eq!(sink.total("warden.budget.daily.budget_refusals"), 1);
    }

    #[test]
    fn dlp_findings_are_counted_by_detector_and_action() {
        let mut tally = Tally::default();
        tally.add("github-pat", Action::Mask);
        tally.add("github-pat", Action::Mask);
        tally.add("email", Action::Audit);
        tally.add("aws-key", Action::Block);
        let mut registry = Registry::new(Recorder::default());
        registry.dlp(&tally);
        let sink = registry.sink();
        assert_eq!(sink.total("warden.detector.github-pat.action.masked.dlp_findings"), 2);
        assert_eq!(sink.total("warden.detector.email.action.audited.dlp_findings"), 1);
        assert_eq!(sink.total("warden.detector.aws-key.action.blocked.dlp_findings"), 1);
    }

    #[test]
    fn lease_calls_are_counted_by_outcome() {
        let mut registry = Registry::new(Recorder::default());
        registry.lease_call(LeaseOutcome::Unreachable);
        registry.lease_call(LeaseOutcome::Unreachable);
        registry.lease_call(LeaseOutcome::Granted);
        assert_eq!(registry.sink().total("warden.outcome.unreachable.lease_calls"), 2);
        assert_eq!(registry.sink().total("warden.outcome.granted.lease_calls"), 1);
    }

    #[test]
    fn revocation_refreshes_are_counted_by_outcome() {
        let mut registry = Registry::new(Recorder::default());
        registry.revocation_refresh(RevocationOutcome::Unchanged);
        registry.revocation_refresh(RevocationOutcome::Changed);
        registry.revocation_refresh(RevocationOutcome::Unchanged);
        assert_eq!(registry.sink().total("warden.outcome.unchanged.revocation_refreshes"), 2);
        assert_eq!(registry.sink().total("warden.outcome.changed.revocation_refreshes"), 1);
    }

    #[test]
    fn approval_outcomes_are_named_from_the_refusal_reason() {
        let outcome = |r| ApprovalOutcome::of_refusal(r).map(ApprovalOutcome::label);
        assert_eq!(outcome(Reason::ApprovalDenied), Some("denied"));
        assert_eq!(outcome(Reason::ApprovalPending), Some("timed_out"));
        assert_eq!(outcome(Reason::ApprovalInvalid), Some("invalid"));
        assert_eq!(outcome(Reason::ApprovalUnavailable), Some("error"));
        assert_eq!(outcome(Reason::ModelNotAllowed), None);
        let mut registry = Registry::new(Recorder::default());
        registry.approval(ApprovalOutcome::Approved);
        assert_eq!(registry.sink().total("warden.outcome.approved.approvals"), 1);
    }

    #[test]
    fn every_label_key_has_a_tag_regex_in_the_rendered_config() {
        let renderer = include_str!("../../scripts/render_envoy.py");
        let start = renderer.find("WARDEN_LABEL_KEYS = (").unwrap();
        let end = start + renderer[start..].find(')').unwrap();
        let mut listed: Vec<&str> = renderer[start..end].split('"').skip(1).step_by(2).collect();
        listed.sort_unstable();
        let mut keys: Vec<&str> = FAMILIES.iter().flat_map(|f| f.keys.iter().copied()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys, listed);
    }

    #[test]
    fn keys_and_metric_names_fit_the_tag_regexes() {
        // The regexes read keys and metric names as `[a-z_]+`.
        let fits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        for family in FAMILIES {
            assert!(fits(family.metric), "{}", family.metric);
            assert!(family.keys.iter().all(|k| fits(k)), "{:?}", family.keys);
        }
    }

    #[test]
    fn token_counts_take_what_anthropic_reported() {
        let usage = Usage {
            input_tokens: Some(3),
            output_tokens: Some(7),
            cache_creation_input_tokens: None,
            cache_read_input_tokens: Some(11),
            ..Usage::default()
        };
        assert_eq!(TokenCounts::from(&usage), TokenCounts { input: 3, output: 7, cache_write: 0, cache_read: 11 });
    }
}
