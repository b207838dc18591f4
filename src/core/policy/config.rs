//! The policy file as written: a strict serde model.
//!
//! Every struct rejects unknown fields, so a typo (`modles:`) is an error naming its path rather
//! than a silently ignored rule. Defaults are the least-privileged sensible choice and are
//! documented on each field and in `docs/policy.md`. This module only describes the shape; the
//! cross-references (roles, credentials, globs) are checked when [`super::compile`] builds the
//! runtime [`super::Policy`].

pub use super::sources::{CredentialConfig, JwksSource};
use super::units::{Bytes, Seconds};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The whole policy file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Format version; must be `1`.
    pub version: u32,
    /// How callers are identified: OIDC providers and how claims are read.
    pub identity: IdentityConfig,
    /// Named upstream credentials (Anthropic keys), by where to read them — never the key itself.
    #[serde(default)]
    pub credentials: BTreeMap<String, CredentialConfig>,
    /// Group or claim → role bindings, in priority order.
    #[serde(default)]
    pub bindings: Vec<BindingConfig>,
    /// Roles by name.
    pub roles: BTreeMap<String, RoleConfig>,
    /// Gateway-wide limits that apply whatever the role.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Secret and personal-data masking: extra detectors and the profiles roles pick.
    #[serde(default)]
    pub dlp: DlpConfig,
    /// Just-in-time approval: where the approval service is and how long requests wait. Required
    /// when a role has an `approval` section.
    #[serde(default)]
    pub approvals: Option<ApprovalsConfig>,
    /// The audit trail: where records go and what happens when they cannot. Default: no records.
    #[serde(default)]
    pub audit: Option<AuditConfig>,
    /// What models cost: rows of model globs with prices. Required by `cost` budgets; without it
    /// records carry no cost.
    #[serde(default)]
    pub pricing: Option<PricingConfig>,
    /// How budget reservations are estimated and the budget ledger bounded.
    #[serde(default)]
    pub accounting: AccountingConfig,
    /// The token service `warden serve` runs: short-lived Warden tokens in exchange for a proof
    /// of identity (docs/identity.md). Default: none.
    #[serde(default)]
    pub token_service: Option<super::token_service::TokenServiceConfig>,
}

/// The price table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    /// Currency label shown in messages (letters, 1-8). Default `USD`.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Rows in priority order: the first whose `models` match prices a model. A model no row
    /// matches costs the dearest of every row, component by component. At least one row.
    pub models: Vec<PriceRowConfig>,
}

/// Prices of the models a row matches, per million tokens (per thousand for web search).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceRowConfig {
    /// Model globs (`claude-sonnet-4*`); at least one.
    pub models: Vec<String>,
    /// Input tokens, per million.
    pub input: f64,
    /// Output tokens, per million.
    pub output: f64,
    /// Tokens written to the 5-minute prompt cache, per million. Default 1.25 × `input`.
    #[serde(default)]
    pub cache_write_5m: Option<f64>,
    /// Tokens written to the 1-hour prompt cache, per million. Default 2 × `input`.
    #[serde(default)]
    pub cache_write_1h: Option<f64>,
    /// Tokens read from the prompt cache, per million. Default 0.1 × `input`.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Web searches, per thousand. Default 10.
    #[serde(default = "default_web_search_price")]
    pub web_search: f64,
}

/// Reservation estimates and ledger bounds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountingConfig {
    /// Request body bytes per estimated input token; smaller is more conservative. Default 2.
    #[serde(default = "default_bytes_per_token")]
    pub input_bytes_per_token: u64,
    /// Output tokens reserved when below `max_tokens`. Default: reserve all of `max_tokens`.
    #[serde(default)]
    pub expected_output_tokens: Option<u64>,
    /// Web searches reserved for a request declaring a web search tool. Default 10.
    #[serde(default = "default_web_searches_reserved")]
    pub web_searches_reserved: u64,
    /// Most budget ledger entries in Envoy's shared data. Default 100000.
    #[serde(default = "default_max_keys")]
    pub max_keys: u64,
    /// Ledger entries one subject's jobs may use per job budget (jobs beyond share them).
    /// Default 64.
    #[serde(default = "default_jobs_per_subject")]
    pub jobs_per_subject: u64,
    /// Leases from `warden serve`, so that several gateway instances share each budget. Default:
    /// none (this instance enforces every budget's whole limit on its own).
    #[serde(default)]
    pub leases: Option<LeasesConfig>,
}

/// How this instance leases its share of each budget from `warden serve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeasesConfig {
    /// Share of each windowed limit in one slice, in percent (1-50): what an instance may use
    /// before it hears from the service, and what each further grant adds. Default 5.
    #[serde(default = "default_slice_percent")]
    pub slice_percent: u64,
    /// Least time between two asks for one budget key when its grant runs low. Default `1s`.
    #[serde(default = "default_ask_every")]
    pub ask_every: Seconds,
    /// How often every budget key in use is reported even with room left (keeps its lease
    /// alive). Default `5s`.
    #[serde(default = "default_heartbeat")]
    pub heartbeat: Seconds,
    /// Where leases come from: `warden serve`'s URL, cluster (default `warden_leases`) and token.
    /// Default: the approval service (`approvals.service`).
    #[serde(default)]
    pub service: Option<AuditServiceConfig>,
}

fn default_slice_percent() -> u64 {
    5
}

fn default_ask_every() -> Seconds {
    Seconds(1)
}

fn default_heartbeat() -> Seconds {
    Seconds(5)
}

impl Default for AccountingConfig {
    fn default() -> Self {
        Self {
            input_bytes_per_token: default_bytes_per_token(),
            expected_output_tokens: None,
            web_searches_reserved: default_web_searches_reserved(),
            max_keys: default_max_keys(),
            jobs_per_subject: default_jobs_per_subject(),
            leases: None,
        }
    }
}

fn default_currency() -> String {
    "USD".to_string()
}

fn default_web_search_price() -> f64 {
    10.0
}

fn default_bytes_per_token() -> u64 {
    2
}

fn default_web_searches_reserved() -> u64 {
    10
}

fn default_max_keys() -> u64 {
    100_000
}

fn default_jobs_per_subject() -> u64 {
    64
}

/// A budget: limits on what a role, each member, each group or each job may use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Name in 429 messages and metrics (letters, digits, `-`, `_`, `.`), unique in the policy.
    pub name: String,
    /// Whom it counts for: `role` (everyone together, default), `subject` (each member), `group`
    /// (each bound group), `job` (each job).
    #[serde(default)]
    pub per: ScopeConfig,
    /// The window `tokens`, `cost` and `requests` count in: `minute`, `hour`, `day`, `month`.
    /// Required with any of them.
    #[serde(default)]
    pub window: Option<PeriodConfig>,
    /// The zone windows are cut in: `UTC` (default) or a fixed offset `+HH:MM` / `-HH:MM`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Tokens per window (input, cache writes and reads, output).
    #[serde(default)]
    pub tokens: Option<u64>,
    /// Cost per window, in the price table's currency (needs `pricing`).
    #[serde(default)]
    pub cost: Option<f64>,
    /// Requests per window.
    #[serde(default)]
    pub requests: Option<u64>,
    /// Requests in flight at once.
    #[serde(default)]
    pub concurrent: Option<u64>,
    /// `refuse` (default): 429 when the reservation does not fit; `clamp`: lower `max_tokens` to
    /// what is left (needs `tokens` or `cost`).
    #[serde(default)]
    pub on_exhausted: OnExhaustedConfig,
    /// Smallest `max_tokens` a clamp may leave; below it the request is refused. Default 256.
    #[serde(default = "default_clamp_min_tokens")]
    pub clamp_min_tokens: u64,
}

/// Whom a budget counts for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ScopeConfig {
    #[default]
    Role,
    Subject,
    Group,
    Job,
}

/// A budget window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum PeriodConfig {
    Minute,
    Hour,
    Day,
    Month,
}

/// What happens when a budget cannot fit a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum OnExhaustedConfig {
    #[default]
    Refuse,
    Clamp,
}

fn default_time_zone() -> String {
    "UTC".to_string()
}

fn default_clamp_min_tokens() -> u64 {
    256
}

/// Identity settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    /// OIDC providers whose tokens Envoy's `jwt_authn` verifies. Warden also refuses tokens whose
    /// `iss` is not one of these issuers.
    #[serde(default)]
    pub providers: Vec<ProviderConfig>,
    /// Longest accepted token lifetime (`exp - iat`). Default `1h`.
    #[serde(default = "default_max_token_lifetime")]
    pub max_token_lifetime: Seconds,
    /// Claim holding the caller's groups; dots descend into objects (`realm_access.roles`).
    /// Default `groups`.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Extra string claims recorded with the caller when present (CI job claims).
    /// Default: GitHub Actions' `repository`, `workflow`, `run_id`, `actor`.
    #[serde(default = "default_job_claims")]
    pub job_claims: Vec<String>,
    /// Request header with which a caller picks one of its entitled roles. Default `x-warden-role`.
    #[serde(default = "default_role_header")]
    pub role_header: String,
    /// The kill switch: the revocation list the gateway refreshes from `warden serve`
    /// (docs/identity.md, "The kill switch"). Default: none (nothing is checked).
    #[serde(default)]
    pub revocation: Option<RevocationConfig>,
    /// Key of `jwt_authn`'s dynamic metadata holding the verified payload (its providers'
    /// `payload_in_metadata`). Default `jwt_payload` (what `scripts/render_envoy.py` configures);
    /// `payload` for Istio 1.21 and later; `{issuer}` reads the key named by each provider's
    /// issuer (Istio before 1.21).
    #[serde(default = "default_payload_metadata_key")]
    pub payload_metadata_key: String,
}

/// One OIDC provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Provider name, used to name Envoy resources.
    pub name: String,
    /// Expected `iss` claim.
    pub issuer: String,
    /// Accepted `aud` values; a token must carry at least one. Must not be empty.
    pub audiences: Vec<String>,
    /// Where the provider's signing keys come from.
    pub jwks: JwksSource,
    /// Claim holding the groups in this provider's tokens (dotted path); default
    /// `identity.groups_claim`.
    #[serde(default)]
    pub groups_claim: Option<String>,
}

/// Binds callers to a role: members of a group, or tokens whose claims match. Exactly one of
/// `group` and `claims` is set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingConfig {
    /// Group name as it appears in the groups claim (exact match).
    #[serde(default)]
    pub group: Option<String>,
    /// Claims the token must carry, each matching its glob (or any glob of a list): claim name
    /// (a dotted path, e.g. `kubernetes.io.namespace`) → pattern(s). Every listed claim must
    /// match.
    #[serde(default)]
    pub claims: Option<BTreeMap<String, ClaimPatterns>>,
    /// The binding applies only to tokens of this issuer (one of `identity.providers`);
    /// required with `claims`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Role granted.
    pub role: String,
}

/// One glob or a list of globs (any of them matches).
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings (quote numbers: \"1\")")]
pub enum ClaimPatterns {
    /// A single pattern.
    One(String),
    /// Patterns, any of which matches.
    AnyOf(Vec<String>),
}

impl ClaimPatterns {
    /// The patterns, as a slice.
    pub fn as_slice(&self) -> &[String] {
        match self {
            Self::One(pattern) => std::slice::from_ref(pattern),
            Self::AnyOf(patterns) => patterns,
        }
    }
}

/// An Anthropic API endpoint a role may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointName {
    /// `POST /v1/messages` (with or without `?beta=true`).
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
    /// `GET /v1/models` and `GET /v1/models/{id}`.
    Models,
}

/// What a role may do.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// Name of the credential (under `credentials`) this role's requests use upstream.
    pub credential: String,
    /// Endpoints the role may call. Default: `[messages, count_tokens, models]`.
    #[serde(default = "default_endpoints")]
    pub endpoints: Vec<EndpointName>,
    /// Model globs the role may use (`claude-haiku-*`). Required; empty allows no model.
    pub models: Vec<String>,
    /// Cap on `max_tokens`. Default: no cap beyond the model's own.
    #[serde(default)]
    pub max_tokens: Option<CapConfig>,
    /// Cap on `thinking.budget_tokens`; limit `0` forbids extended thinking. Default: no cap.
    #[serde(default)]
    pub thinking_budget: Option<CapConfig>,
    /// Tools the role may declare. Default: none.
    #[serde(default)]
    pub tools: ToolsConfig,
    /// URL patterns for `mcp_servers[].url`, matched part by part (scheme, host, port, path;
    /// `url_glob`). Default: none (requests with MCP servers are refused).
    #[serde(default)]
    pub mcp_servers: Vec<String>,
    /// Globs for `anthropic-beta` header values. Default: none (any beta header is refused).
    #[serde(default)]
    pub betas: Vec<String>,
    /// Whether `stream: true` is allowed. Default `true`.
    #[serde(default = "default_true")]
    pub streaming: bool,
    /// Largest request body. Default: `limits.max_body_bytes`; cannot exceed it.
    #[serde(default)]
    pub max_body_bytes: Option<Bytes>,
    /// Name of the DLP profile (under `dlp.profiles`, or the built-in `default` and `off`).
    /// Default `default`.
    #[serde(default = "default_profile_name")]
    pub dlp: String,
    /// Requests that must wait for a human's approval, and who may give it. Default: none.
    #[serde(default)]
    pub approval: Option<RoleApprovalConfig>,
    /// Budgets the role's `messages` requests count against. Default: none.
    #[serde(default)]
    pub budgets: Vec<BudgetConfig>,
}

/// A numeric cap and what to do above it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapConfig {
    /// Largest allowed value.
    pub limit: u64,
    /// `deny` (default) refuses the request; `clamp` rewrites the value down to `limit`.
    #[serde(default)]
    pub action: CapAction,
}

/// What happens to a value above its cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CapAction {
    /// Refuse the request (403).
    #[default]
    Deny,
    /// Lower the value to the limit and forward the request.
    Clamp,
}

/// Tool allowlists.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsConfig {
    /// Globs for client (custom) tool names, e.g. `Bash`, `Read`, `mcp__github__*`.
    #[serde(default)]
    pub client: Vec<String>,
    /// Globs for Anthropic-defined tool types, e.g. `web_search_*`, `bash_20250124`. These
    /// are the tools declared with a `type` other than `custom`, whether Anthropic runs them
    /// (web search, code execution) or the client does (bash, text editor, computer use).
    #[serde(default)]
    pub server: Vec<String>,
    /// Rules over the calls Claude proposes, tried in order; the first match decides
    /// (docs/tools.md). Default: none (every proposed call is delivered as sent).
    #[serde(default)]
    pub rules: Vec<ToolRuleConfig>,
    /// Largest `tool_result` block the role may send back, in bytes. Default: no limit beyond
    /// the body size.
    #[serde(default)]
    pub max_result_bytes: Option<Bytes>,
}

/// One tool rule (docs/tools.md, "Rules"): which calls it covers, its conditions (all present
/// ones must hold) and what happens to a matching call. Rules are tried in order; the first
/// match decides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRuleConfig {
    /// Reason code named in records, approvals and grants (letters, digits, `_`, `-`, `.`),
    /// unique in the role. Default `tools.rules[N]`.
    #[serde(default)]
    pub id: Option<String>,
    /// Tool name globs, a string or a list (`Bash`, `mcp__github__*`, `web_*`). An
    /// `mcp_tool_use` call is named `mcp__<server_name>__<name>`, like Claude Code's MCP tools.
    /// Default: every tool.
    #[serde(default)]
    pub tools: Option<ClaimPatterns>,
    /// Which agents the rule covers: `any` (default), `main` (not a subagent) or `subagent`.
    #[serde(default)]
    pub agents: AgentsConfig,
    /// What happens to a matching call: `allow`, `deny` or `approve`.
    pub action: ToolActionConfig,
    /// Words shown to the agent's user (in the refusal) and to the approver. Default: a sentence
    /// naming the rule.
    #[serde(default)]
    pub reason: Option<String>,
    /// Conditions over the parsed shell command of a Bash-like tool (`input.command`).
    #[serde(default)]
    pub command: Option<CommandConditionConfig>,
    /// Conditions over a file tool's paths (`file_path`, `path`, `notebook_path`, Glob's
    /// `pattern`).
    #[serde(default)]
    pub path: Option<PathConditionConfig>,
    /// Conditions over the host of a fetch tool's `input.url`.
    #[serde(default)]
    pub url: Option<UrlConditionConfig>,
    /// JSON-path conditions over the call's input; every one must hold.
    #[serde(default)]
    pub input: Vec<InputConditionConfig>,
}

/// Which agents a tool rule covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentsConfig {
    /// Every agent.
    #[default]
    Any,
    /// Only the main agent (requests not marked as a subagent's).
    Main,
    /// Only subagents (`x-claude-code-agent-id` names a subagent).
    Subagent,
}

/// What a tool rule does with a matching call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolActionConfig {
    /// Deliver the call unchanged.
    Allow,
    /// Replace the call with a text block saying it was refused and why.
    Deny,
    /// Hold the call for a human's decision.
    Approve,
}

/// Conditions over a shell command line. The per-command matchers (`program`, `subcommand`,
/// `args_any`, `paths`, `paths_outside_workspace`, `writes_to`, `git`) must all hold for one and
/// the same simple command, wherever it sits (pipelines, lists, subshells, substitutions,
/// `bash -c`); `pipe_to_shell` and `matches` look at the whole line. At least one matcher.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandConditionConfig {
    /// Program name globs, matched against the program's base name once wrappers (`sudo`, `env`,
    /// `timeout`, `xargs`, …) are seen through: `rm` also matches `/usr/bin/rm` and `sudo rm`.
    #[serde(default)]
    pub program: Option<ClaimPatterns>,
    /// Program and leading words, space-separated (`git push`, `kubectl delete`); options before
    /// the words are skipped.
    #[serde(default)]
    pub subcommand: Option<String>,
    /// Holds when any entry is present among the arguments: a short-flag cluster (`-rf`: every
    /// letter present, in any clusters), a long flag (`--force`, also `--force=…` and the
    /// abbreviations getopt accepts), or a glob over a whole argument.
    #[serde(default)]
    pub args_any: Option<Vec<String>>,
    /// Path globs over the command's path-like arguments, normalised like file tools' paths.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// `true`: holds when any path-like argument resolves outside the workspace.
    #[serde(default)]
    pub paths_outside_workspace: Option<bool>,
    /// Path globs over where the command writes: redirection targets (`>`, `>>`, `&>`, `2>`)
    /// and `tee`'s files.
    #[serde(default)]
    pub writes_to: Option<Vec<String>>,
    /// `true`: holds when the line feeds a command's output to an interpreter (`curl … | sh`,
    /// `bash <(curl …)`, `sh -c "$(curl …)"`, `eval "$(…)"`).
    #[serde(default)]
    pub pipe_to_shell: Option<bool>,
    /// A built-in git check: `push_force` (`git push` with `-f`, `--force`,
    /// `--force-with-lease`, `--mirror` or a `+refspec`).
    #[serde(default)]
    pub git: Option<GitCheckConfig>,
    /// A regex (Rust `regex` syntax) over the raw command string, as a last resort.
    #[serde(default)]
    pub matches: Option<String>,
}

/// Built-in git checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GitCheckConfig {
    /// `git push` that can overwrite the remote's history.
    PushForce,
}

/// Conditions over a file tool's paths.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathConditionConfig {
    /// Path globs; holds when any of the call's paths matches one (`**/.env`, `~/.ssh/**`).
    #[serde(default)]
    pub globs: Option<Vec<String>>,
    /// `true`: holds when any path resolves outside the workspace; `false`: when every path is
    /// inside it.
    #[serde(default)]
    pub outside_workspace: Option<bool>,
}

/// Conditions over a fetch tool's URL host.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlConditionConfig {
    /// Host globs; holds when the URL's host matches one (`github.com`, `*.github.com`).
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    /// Host globs; holds when the URL's host matches none (an allowlist for a deny rule).
    #[serde(default)]
    pub not_hosts: Option<Vec<String>>,
}

/// A condition over one place in the call's input.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConditionConfig {
    /// JSON path: `$` then `.name`, `["name"]`, `[N]` or `[*]` steps (`$.options.force`,
    /// `$.edits[*].new_string`).
    pub path: String,
    /// Holds when a selected value equals this JSON value.
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    /// Holds when a selected string matches this regex.
    #[serde(default)]
    pub matches: Option<String>,
    /// `true`: holds when the path selects a value; `false`: when it selects none.
    #[serde(default)]
    pub exists: Option<bool>,
}

/// Gateway-wide limits.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body for any role. Default `32MiB`. Envoy's buffer limit
    /// (`per_connection_buffer_limit_bytes`, 64 MiB in the shipped configs) must be larger.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: Bytes,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { max_body_bytes: default_max_body_bytes() }
    }
}

/// Data-loss prevention settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlpConfig {
    /// Name of a credential (under `credentials`) whose value keys the mask hash, so masks stay
    /// the same when upstream keys rotate and across roles. Default: a key derived from each
    /// role's upstream credential.
    #[serde(default)]
    pub mask_key: Option<String>,
    /// Detectors added to the built-in catalog.
    #[serde(default)]
    pub detectors: Vec<CustomDetectorConfig>,
    /// Profiles by name; `default` (if defined here) replaces the built-in default, `off` is
    /// reserved.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileConfig>,
}

/// A detector written in the policy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomDetectorConfig {
    /// Kebab-case id, unique among all detectors; shown in masks.
    pub id: String,
    /// Literals (ASCII case-insensitive) a match starts with; at least one. Text without any of
    /// them is never searched with `regex`, which keeps scanning fast.
    pub keywords: Vec<String>,
    /// Regex (Rust `regex` syntax) matched anchored at each keyword occurrence. A named group
    /// `secret` masks only that part (`token=(?P<secret>\w+)`); otherwise the whole match.
    pub regex: String,
    /// `credential` (default; placeholders such as `<your-key>` are ignored) or `pii`.
    #[serde(default)]
    pub category: CategoryConfig,
    /// Longest match in bytes. Default 256.
    #[serde(default = "default_detector_max_len")]
    pub max_len: usize,
    /// Checksum the masked span must pass: `luhn`, `iban` or `us_ssn`. Default: none.
    #[serde(default)]
    pub validator: Option<ValidatorConfig>,
    /// Fewest bits of Shannon entropy per character of the masked span. Default: no minimum.
    #[serde(default)]
    pub min_entropy: Option<f64>,
}

/// A detector's category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoryConfig {
    /// Keys, tokens, passwords.
    #[default]
    Credential,
    /// Personal data.
    Pii,
}

/// A checksum validator for custom detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidatorConfig {
    /// Luhn (payment cards).
    Luhn,
    /// ISO 7064 mod-97 (IBANs).
    Iban,
    /// US social security number ranges.
    UsSsn,
}

/// What a role's traffic is scanned for, per direction.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Rules for what the client sends (user text, tool results, text documents). The first
    /// rule selecting a detector decides its action; unselected detectors are off.
    #[serde(default)]
    pub request: Vec<RuleConfig>,
    /// Rules for what Claude returns (text, tool-call arguments, thinking, citations).
    #[serde(default)]
    pub response: Vec<RuleConfig>,
}

/// Selects detectors and gives them an action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Detector ids or id globs (`github-*`), or the groups `credentials`, `pii`, `custom`, `*`.
    pub detectors: Vec<String>,
    /// `mask`, `block`, `audit-only` or `off`.
    pub action: ActionConfig,
}

/// What happens to a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActionConfig {
    /// Replace the value with `[REDACTED:<id>:<hash>]`.
    Mask,
    /// Refuse the request (403) or end the response with an error.
    Block,
    /// Count it for the audit record and leave it.
    AuditOnly,
    /// Do not look for it.
    Off,
}

/// Where the approval service is and the timing of reviews.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// How the filter reaches `warden serve`.
    pub service: ApprovalServiceConfig,
    /// How long a held request waits for a decision before it is refused as pending (1s–600s).
    /// Default `120s`. Envoy's stream idle timeout is raised above it by the renderer.
    #[serde(default = "default_hold")]
    pub hold: Seconds,
    /// How long a review nobody decided stays open. Default `1h`.
    #[serde(default = "default_review_ttl")]
    pub review_ttl: Seconds,
    /// How long an approval lets the approved request through after the decision. Default `15m`.
    #[serde(default = "default_grant_ttl")]
    pub grant_ttl: Seconds,
    /// Audience (`aud`) an approver's token must carry for `warden serve` (reviews, pages); the
    /// gateway refuses every token that carries it, so an agent's token never approves and an
    /// approver's never calls Claude. Must differ from every provider's `audiences`. Default
    /// `warden-approvals`.
    #[serde(default = "default_approver_audience")]
    pub approver_audience: String,
    /// Groups whose members may read session transcripts (`warden serve`'s `/sessions` pages),
    /// with a token of the approvers' audience. Default none: deciding reviews does not let
    /// anyone read what other users sent Claude.
    #[serde(default)]
    pub auditors: Vec<String>,
    /// How many reviews one requester (issuer + subject) may open in a sliding window; a hold
    /// that would open one more is refused (`approval_unavailable`) until older ones age out.
    /// Default 30 per `1h`.
    #[serde(default)]
    pub review_rate: ReviewRateConfig,
    /// Longest "approve for this session" an approver may give (1m–24h): such an approval covers
    /// later holds of the same agent session by the same caller for the same reasons until it
    /// ends (docs/approvals.md, "Session grants"). Default `1h`.
    #[serde(default = "default_max_session_grant")]
    pub max_session_grant: Seconds,
}

/// A limit on new reviews per requester.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRateConfig {
    /// Reviews one requester may open per window (at least 1). Default 30.
    #[serde(default = "default_rate_reviews")]
    pub reviews: u32,
    /// The sliding window. Default `1h`.
    #[serde(default = "default_rate_per")]
    pub per: Seconds,
}

impl Default for ReviewRateConfig {
    fn default() -> Self {
        Self { reviews: default_rate_reviews(), per: default_rate_per() }
    }
}

fn default_rate_reviews() -> u32 {
    30
}

fn default_rate_per() -> Seconds {
    Seconds(3600)
}

fn default_approver_audience() -> String {
    "warden-approvals".to_string()
}

/// The approval service as the filter reaches it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalServiceConfig {
    /// Base URL of `warden serve` as Envoy reaches it (`http://` or `https://`, optional path
    /// prefix). The renderer makes it the Envoy cluster `warden_approvals`.
    pub url: String,
    /// Name of an existing Envoy cluster to call instead of the rendered one (Istio). Default
    /// `warden_approvals`.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Credential (under `credentials`) holding the bearer token the gateway presents.
    pub token: String,
    /// Credential holding the service's Ed25519 public key, base64 of its 32 bytes; only verdicts
    /// signed with the matching private key count.
    pub verdict_key: String,
}

/// The audit trail's delivery.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Where records go: `warden serve`'s URL, cluster and token, as for approvals. Default: the
    /// approval service (`approvals.service`).
    #[serde(default)]
    pub service: Option<AuditServiceConfig>,
    /// Names this gateway in records (letters, digits, `-`, `_`, `.`). Default: a random id per
    /// Envoy start.
    #[serde(default)]
    pub source: Option<String>,
    /// `fail_closed` (default): refuse new requests when records cannot be kept; `fail_open`:
    /// let them through and count the records dropped.
    #[serde(default)]
    pub mode: AuditMode,
    /// Records held in Envoy waiting for the service, at most. Default 10000.
    #[serde(default = "default_audit_buffer")]
    pub buffer_records: u64,
    /// Bytes of records held in Envoy per worker waiting for the service, at most (a size such
    /// as `64MiB`). Default `64MiB`.
    #[serde(default = "default_audit_buffer_bytes")]
    pub buffer_bytes: Bytes,
    /// How long the service may be unreachable (with records waiting) before `mode` applies.
    /// Default `60s`.
    #[serde(default = "default_audit_outage")]
    pub max_outage: Seconds,
}

/// The service records (or lease asks) are sent to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditServiceConfig {
    /// Base URL of `warden serve` as Envoy reaches it.
    pub url: String,
    /// Name of an existing Envoy cluster to call instead of the rendered one. Default
    /// `warden_audit`.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Credential holding the bearer token the gateway presents.
    pub token: String,
}

/// What happens when records cannot be kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditMode {
    /// Refuse new requests (503 `audit_unavailable`) until records flow again.
    #[default]
    FailClosed,
    /// Let requests through; count and log the records dropped.
    FailOpen,
}

fn default_audit_buffer() -> u64 {
    10_000
}

fn default_audit_buffer_bytes() -> Bytes {
    Bytes(64 << 20)
}

fn default_audit_outage() -> Seconds {
    Seconds(60)
}

/// A role's approval rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleApprovalConfig {
    /// Groups whose members may approve or deny this role's requests; at least one.
    pub approvers: Vec<String>,
    /// Whether two different approvers must approve (one denial denies). Default `false`.
    #[serde(default)]
    pub two_person: bool,
    /// How many identical requests (same fingerprint) one approval lets through within
    /// `approvals.grant_ttl`. Default `1`.
    #[serde(default = "default_grant_uses")]
    pub grant_uses: u32,
    /// Conditions that hold a request for approval; at least one, unless a tool rule of the
    /// role has action `approve`. Default: none.
    #[serde(default)]
    pub triggers: Vec<TriggerConfig>,
}

/// One trigger: a reason code and exactly one condition.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerConfig {
    /// Reason code shown to the approver and the caller (`opus_model`): letters, digits, `_`,
    /// `-`, `.`.
    pub reason: String,
    /// Fires when the model matches one of these globs.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// Fires when a declared client tool's name (or an Anthropic tool's type) matches one of these
    /// globs.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// Fires when this regex (Rust `regex` syntax) matches the newest user turn: its text and
    /// tool results.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Fires when `max_tokens` is above this.
    #[serde(default)]
    pub max_tokens_above: Option<u64>,
    /// Fires when the request body is larger than this.
    #[serde(default)]
    pub body_bytes_above: Option<Bytes>,
    /// `true`: fires when the request lists MCP servers.
    #[serde(default)]
    pub mcp_servers: Option<bool>,
    /// Fires when the request arrives outside this weekly window (UTC).
    #[serde(default)]
    pub outside: Option<WindowConfig>,
}

/// A weekly time window in UTC.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    /// Days the window opens on (`mon` … `sun`); at least one.
    pub days: Vec<Weekday>,
    /// Opening time, `HH:MM` (UTC).
    pub from: String,
    /// Closing time, `HH:MM` (UTC); earlier than `from` means the window ends the next day.
    pub to: String,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

fn default_hold() -> Seconds {
    Seconds(120)
}

fn default_review_ttl() -> Seconds {
    Seconds(3600)
}

fn default_max_session_grant() -> Seconds {
    Seconds(3600)
}

fn default_grant_ttl() -> Seconds {
    Seconds(900)
}

fn default_grant_uses() -> u32 {
    1
}

fn default_detector_max_len() -> usize {
    256
}

fn default_profile_name() -> String {
    "default".to_string()
}

fn default_max_token_lifetime() -> Seconds {
    Seconds(3600)
}

fn default_groups_claim() -> String {
    "groups".to_string()
}

fn default_job_claims() -> Vec<String> {
    ["repository", "workflow", "run_id", "actor"].iter().map(|s| s.to_string()).collect()
}

fn default_role_header() -> String {
    "x-warden-role".to_string()
}

fn default_payload_metadata_key() -> String {
    "jwt_payload".to_string()
}

fn default_endpoints() -> Vec<EndpointName> {
    vec![EndpointName::Messages, EndpointName::CountTokens, EndpointName::Models]
}

fn default_true() -> bool {
    true
}

fn default_max_body_bytes() -> Bytes {
    Bytes(32 << 20)
}

/// `identity.revocation` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationConfig {
    /// How often the gateway asks `warden serve` for the list (one ask per Envoy, not per
    /// worker). Default `1s`.
    #[serde(default = "default_refresh")]
    pub refresh: Seconds,
    /// Age beyond which the gateway's copy of the list no longer counts as current, and
    /// `on_unavailable` applies. Default `5s`.
    #[serde(default = "default_max_staleness")]
    pub max_staleness: Seconds,
    /// What happens while the list is stale: `refuse` (default: 503 `revocation_unavailable`)
    /// or `allow` (check against the last list received).
    #[serde(default)]
    pub on_unavailable: OnUnavailable,
    /// Whether live answers (event streams) of a caller revoked mid-stream are ended at their
    /// next chunk. Default `true`.
    #[serde(default = "default_cut_streams")]
    pub cut_streams: bool,
    /// Groups whose approver-audience tokens may revoke and lift on `warden serve` (its page,
    /// API and `warden revoke`). Default none: only the holder of the gateway token can.
    #[serde(default)]
    pub revokers: Vec<String>,
    /// Where the list comes from: `warden serve`'s URL, cluster (default `warden_revocations`)
    /// and token. Default: the approval service (`approvals.service`).
    #[serde(default)]
    pub service: Option<AuditServiceConfig>,
}

/// What a gateway does while its revocation list is stale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnavailable {
    /// Refuse every authenticated request (fail closed).
    #[default]
    Refuse,
    /// Let requests through, checked against the last list received (fail open).
    Allow,
}

fn default_refresh() -> Seconds {
    Seconds(1)
}

fn default_max_staleness() -> Seconds {
    Seconds(5)
}

fn default_cut_streams() -> bool {
    true
}
