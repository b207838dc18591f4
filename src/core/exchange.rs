//! One request through the gateway, from its first header to its audit record: the state
//! machine the glue drives, which owns the request's whole lifecycle.
//!
//! Push style: the glue copies plain values out of Envoy and calls, in order,
//! [`Exchange::start`] (request headers; [`Exchange::turned_away`] when the glue could not even
//! read them), then — while [`Exchange::wants_body`] — [`Exchange::on_body_progress`] as body
//! bytes arrive and [`Exchange::on_body_complete`] with the whole body, then — while
//! [`Exchange::is_held`] — [`Exchange::on_approval_answer`], then the response calls, and at the
//! end [`Exchange::finish_record`]. Each call returns the step to perform; a host call the glue
//! could not make is reported with [`Exchange::on_host_failure`]. The core never calls the host.
//!
//! Lifecycle: every request the filter sees gets an exchange — refused at its headers included —
//! and the exchange alone decides: its phase (body, held, forwarded, refused), its response mode
//! ([`ResponseMode`]), what the record says, and that the record is made exactly once. A refusal
//! is final: later calls pass, change nothing, and never forward. An exchange that ends before
//! a decision is recorded as not allowed. The record names the caller whenever the token
//! verified, with or without a role.
//!
//! Identity: a request carrying two different credentials (`Authorization` and `x-api-key`, or
//! a header repeated) is refused (401); the same token in both is Claude Code's `apiKeyHelper`,
//! and an expired one is refused without `x-should-retry`, so Claude Code runs the helper again
//! and retries ([`crate::core::identity`] for the rest).
//!
//! Order of checks: identity (401) → endpoint (404/403) → role's endpoint list → headers
//! (`anthropic-beta`, content type and encoding, declared length) → body (size as it streams in,
//! then JSON policy). Headers are edited as soon as identity and role are known: every client
//! credential and identity header is removed, `accept-encoding` is dropped so the upstream answers
//! in plain bytes the filter can inspect, and the role's key becomes the only `x-api-key`.
//! Requests with a body stay paused until the body is judged, so nothing reaches the upstream
//! before the decision. An accepted Messages body then has its user text, tool results and
//! documents masked per the role's DLP profile ([`crate::core::dlp::request`]).
//!
//! Approval: when a trigger of the role's approval rules fires on an accepted body, the body step
//! is [`BodyStep::Hold`]: the glue applies the (possibly masked) body, keeps the request paused
//! and sends the [`Callout`] to the approval service; [`Exchange::on_approval_answer`] turns the
//! answer into forward or refuse. Only a verdict signed with the configured key, for this request
//! and caller, that says `approved` forwards; anything else refuses (fail closed).
//!
//! Responses: [`Exchange::on_response_headers`] picks how the body is handled — event streams
//! masked chunk by chunk ([`Exchange::on_response_chunk`], [`Exchange::on_response_end`]),
//! anything else whole ([`Exchange::on_response_body`]), a `GET /v1/models` list filtered by the
//! role's models ([`crate::core::request::model_list`]); compressed responses are refused, since they
//! cannot be inspected. [`Exchange::tally`] counts what was found in both directions. A
//! streamed answer given an output allowance ([`Exchange::set_output_allowance`], by budget
//! admission) is also counted after masking and ended at the allowance
//! ([`crate::core::response::stream_cut`]); [`Exchange::stream_cut`] tells the glue to reset the stream.

use crate::core::approval::{self, AgentView, CallerView, HoldRequest, RequestFacts, ToolCallView, EXCERPT_CHARS};
use crate::core::audit::record::{
    job_id, AgentRecord, ApprovalView, BlobNames, Forwarded, GrantView, Record, Recorder, ToolResultRecord, JOB_HEADER,
    SESSION_HEADER,
};
use crate::core::audit::trail::{ClientLabels, Ending, Trail};
use crate::core::budget::ledger::{Amount, MemoryStore, Store};
use crate::core::budget::usage::{Metered, Usage, UsageMeter};
use crate::core::budget::{self as budget, Admitted, Ask, Priced, Refusal, Unsettled, Who};
use crate::core::dlp::engine::Action;
use crate::core::dlp::mask::{MaskKey, Tally};
use crate::core::dlp::memo::{CleanMemo, SessionMemo};
use crate::core::dlp::request::{mask_messages, Known};
use crate::core::dlp::response::{redact_body, StreamRedactor};
use crate::core::dlp::text::{redact, Redaction};
use crate::core::request::endpoint::{classify, Endpoint};
use crate::core::errors::{Denial, LocalReply, Reason};
use crate::core::identity::{authenticate, claims_expired, expired, Caller, TokenStatus};
use crate::core::request::messages::{check_betas, check_body_with, check_model_id, BodyKind, Parsed};
use crate::core::request::model_list::filter_model_list;
use crate::core::policy::approvals::ApprovalSettings;
use crate::core::policy::{ApprovalKeys, Policy, PolicyErrors, Role, RoleKeys};
use crate::core::secret::Secret;
use crate::core::request::splice::{apply, splice_of};
use crate::core::response::stream_cut::{Cut, EndingStyle, StreamCut};
use crate::core::tools::agents::{read_agent_headers, AGENT_HEADER, PARENT_AGENT_HEADER};
use crate::core::tools::govern::{self, Answered, Governor, Judge, RequestGist};
use crate::core::tools::results::{examine, with_withheld, CallMemo, Examined};
use crate::core::tools::rules::ToolRules;
use crate::core::tools::{AgentIds, CallContext, Judgement, ToolAction, ToolCall};
use crate::core::approval::verdict::{self, Decision};
use serde_json::value::RawValue;
use std::cell::RefCell;

/// A compiled policy with its resolved keys: what one filter configuration enforces.
#[derive(Debug)]
pub struct Gateway {
    /// The compiled policy.
    pub policy: Policy,
    keys: RoleKeys,
    /// Request texts already scanned and found clean (per VM).
    memo: CleanMemo,
    /// Each session's clean leading messages, shared by every worker through the ledger's
    /// store (Envoy's shared data in the filter).
    sessions: SessionMemo,
    /// Every detector set to mask: what the approver's excerpt and audit records go through.
    mask_everything: Vec<Action>,
    /// Audit blobs this worker already sent (when the policy has `audit`).
    audit_blobs: Option<RefCell<BlobNames>>,
    /// The budget ledger: Envoy's shared data in the filter, in-process otherwise.
    ledger: Box<dyn Store>,
    /// Settlements the ledger refused, tried again on the tick ([`Gateway::retry_unsettled`]).
    unsettled: RefCell<Vec<Unsettled>>,
    /// The tool calls this worker's answers proposed, for the provenance of the `tool_result`s
    /// that answer them ([`crate::core::tools::results`]).
    tool_calls: RefCell<CallMemo>,
}

/// Most refused settlements a worker keeps for another try; beyond, the oldest are given up (its
/// reservation then stays until the process ends: under-use, never over-spend).
pub const MAX_UNSETTLED: usize = 10_000;

impl Gateway {
    /// Compiles `policy_text` and reads every credential through `lookup`.
    pub fn new(policy_text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, PolicyErrors> {
        let policy = Policy::parse(policy_text)?;
        let keys = policy.resolve_credentials(lookup)?;
        let memo_key = keys.upstream.first().map(|k| k.expose().as_bytes()).unwrap_or_default();
        let memo = CleanMemo::new(memo_key);
        let sessions = SessionMemo::new(memo_key, policy_text);
        let mask_everything = vec![Action::Mask; policy.dlp.engine.specs().len()];
        let audit_blobs = policy.audit.as_ref().map(|_| RefCell::new(BlobNames::new()));
        Ok(Self {
            policy,
            keys,
            memo,
            sessions,
            mask_everything,
            audit_blobs,
            ledger: Box::new(MemoryStore::default()),
            unsettled: RefCell::new(Vec::new()),
            tool_calls: RefCell::new(CallMemo::default()),
        })
    }

    /// The gateway with its budget ledger kept in `ledger` (the filter passes Envoy's shared
    /// data, which every worker sees).
    pub fn with_ledger(mut self, ledger: Box<dyn Store>) -> Self {
        self.ledger = ledger;
        self
    }

    /// The budget ledger.
    pub fn ledger(&self) -> &dyn Store {
        self.ledger.as_ref()
    }

    /// Keeps settlements the ledger refused for [`Gateway::retry_unsettled`] (at most
    /// [`MAX_UNSETTLED`]; beyond, the oldest are given up and logged).
    fn keep_unsettled(&self, more: Vec<Unsettled>) {
        if more.is_empty() {
            return;
        }
        let mut unsettled = self.unsettled.borrow_mut();
        unsettled.extend(more);
        let excess = unsettled.len().saturating_sub(MAX_UNSETTLED);
        if excess > 0 {
            log::error!("{excess} budget settlements given up (over {MAX_UNSETTLED} waiting); their reservations stay");
            unsettled.drain(..excess);
        }
    }

    /// Tries again the settlements the ledger refused (the root context calls it on its tick);
    /// returns how many still wait.
    pub fn retry_unsettled(&self, now_ms: u64) -> usize {
        let mut unsettled = self.unsettled.borrow_mut();
        if !unsettled.is_empty() {
            budget::retry(self.ledger(), &mut unsettled, now_ms, self.policy.accounting.max_keys);
        }
        unsettled.len()
    }

    /// The audit service's bearer token (when the policy has `audit`).
    pub fn audit_token(&self) -> Option<&Secret> {
        self.keys.audit_token.as_ref()
    }

    /// The lease service's bearer token (when the policy has `accounting.leases`).
    pub fn lease_token(&self) -> Option<&Secret> {
        self.keys.lease_token.as_ref()
    }

    /// The revocation list's bearer token (when the policy has `identity.revocation`).
    pub fn revocation_token(&self) -> Option<&Secret> {
        self.keys.revocation_token.as_ref()
    }

    /// Whether the policy keeps an audit record of every exchange.
    pub fn audits(&self) -> bool {
        self.audit_blobs.is_some()
    }

    /// The worker's memo of audit blobs (when the policy has `audit`): audit delivery marks a
    /// blob known once the service acknowledged a record carrying it.
    pub fn audit_blobs(&self) -> Option<&RefCell<BlobNames>> {
        self.audit_blobs.as_ref()
    }

    /// Every detector masking, with the role's mask key: for texts that leave the request path
    /// (the approver's excerpt, audit records).
    fn mask_everything(&self, role: usize) -> Option<Redaction<'_>> {
        Some(Redaction {
            engine: &self.policy.dlp.engine,
            actions: &self.mask_everything,
            key: self.keys.mask.get(role)?,
        })
    }

    /// What judges the tool calls of the role's answers (fails closed when the role is unknown).
    fn tool_judge(&self, role: usize) -> RoleJudge<'_> {
        RoleJudge { rules: self.policy.roles.get(role).map(|r| &r.tool_rules), mask: self.mask_everything(role) }
    }

    fn key(&self, role: usize) -> Option<&Secret> {
        self.keys.upstream.get(role)
    }

    /// What the role's DLP profile looks for in one direction, with the role's mask key.
    fn redaction(&self, role: usize, response: bool) -> Option<Redaction<'_>> {
        let profile = self.policy.dlp.profiles.get(self.policy.roles.get(role)?.dlp_profile)?;
        let actions = if response { &profile.response } else { &profile.request };
        let key: &MaskKey = self.keys.mask.get(role)?;
        Some(Redaction { engine: &self.policy.dlp.engine, actions, key })
    }
}

/// The request as the glue copied it when headers arrived.
#[derive(Debug, Clone)]
pub struct RequestHead<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path` including the query.
    pub path: &'a str,
    /// All request headers, names lower-case, in arrival order (repeats kept).
    pub headers: &'a [(String, String)],
    /// What `jwt_authn` concluded.
    pub token: TokenStatus,
    /// Seconds since the epoch.
    pub now: f64,
}

impl RequestHead<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn header_values<'h>(&'h self, name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Request header changes to make before forwarding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Header names to remove (every value).
    pub remove: Vec<String>,
    /// The role's upstream key, to set as the only `x-api-key` (its `Debug` output is redacted).
    pub api_key: Secret,
}

/// What to do after the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadersStep {
    /// Refuse now with this reply.
    Reply(LocalReply),
    /// Apply the edits and forward; there is no body to inspect.
    Forward(HeaderEdits),
    /// Apply the edits, keep the request paused and hand over the body.
    InspectBody(HeaderEdits),
}

/// What to do once the body is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStep {
    /// Forward the body as it is.
    Forward,
    /// Replace the body with these bytes (and fix `content-length` if the request had one).
    Replace {
        /// The new body.
        body: Vec<u8>,
        /// Whether a cap clamped a value (otherwise only masks changed).
        clamped: bool,
    },
    /// Refuse with this reply.
    Reply(LocalReply),
    /// Replace the body if `body` is set, keep the request paused, and send `callout`; then
    /// call [`Exchange::on_approval_answer`].
    Hold {
        /// The new body, when a value was clamped or masked.
        body: Option<Vec<u8>>,
        /// Whether a cap clamped a value.
        clamped: bool,
        /// The request to the approval service.
        callout: Callout,
    },
}

/// What to do with a complete (buffered) response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBodyStep {
    /// Deliver it as it is.
    Deliver,
    /// Deliver these bytes instead (masked).
    Replace(Vec<u8>),
    /// Replace the response with this refusal.
    Reply(LocalReply),
    /// Keep the response paused and send [`Exchange::take_tool_callout`]: a tool call in it
    /// waits for a human ([`Exchange::on_tool_approval_answer`] gives the body).
    Hold,
}

/// What to deliver once the approval service answered about a held tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolAnswerStep {
    /// Bytes to deliver now, after what was already delivered (a whole JSON answer: the body).
    pub bytes: Vec<u8>,
    /// Whether the answer is complete: resume the paused response (else another call waits:
    /// send [`Exchange::take_tool_callout`]).
    pub done: bool,
}

/// A request to the approval service, for the glue to send through Envoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    /// Envoy cluster of the service.
    pub cluster: String,
    /// `:authority`.
    pub authority: String,
    /// `:path` of the hold endpoint.
    pub path: String,
    /// The gateway's token, sent as `authorization: Bearer` (its `Debug` output is redacted).
    pub bearer: Secret,
    /// JSON body ([`HoldRequest`]).
    pub body: Vec<u8>,
    /// How long Envoy waits for the answer, in milliseconds: the hold plus a margin.
    pub timeout_ms: u64,
}

impl Callout {
    /// A hold (`body`, a [`HoldRequest`]) to the approval service `settings` name, with the
    /// gateway's token; Envoy waits the hold plus [`CALLOUT_MARGIN_SECONDS`].
    fn hold(settings: &ApprovalSettings, keys: &ApprovalKeys, body: Vec<u8>) -> Self {
        let service = &settings.service;
        Callout {
            cluster: service.cluster.clone(),
            authority: service.authority.clone(),
            path: service.holds_path.clone(),
            bearer: keys.token.clone(),
            body,
            timeout_ms: (settings.hold_seconds + CALLOUT_MARGIN_SECONDS) * 1000,
        }
    }
}

/// What to do once the approval service answered (or failed to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalStep {
    /// Approved: resume the paused request.
    Forward {
        /// Whether a cap clamped a value in the held body (for the metric).
        clamped: bool,
    },
    /// Refuse with this reply.
    Reply(LocalReply),
}

/// Seconds Envoy waits for the approval service beyond the hold before the callout fails.
pub const CALLOUT_MARGIN_SECONDS: u64 = 10;

/// How the response body is handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseStep {
    /// Nothing to mask or record: let the body through untouched.
    Pass,
    /// Nothing to mask, but the audit record wants the answer: let each chunk through untouched
    /// and hand a copy to [`Exchange::on_delivered`].
    Observe,
    /// An event stream: remove `content-length` and pass each chunk through
    /// [`Exchange::on_response_chunk`].
    Stream,
    /// Anything else: remove `content-length`, hold the headers, and hand the complete body to
    /// [`Exchange::on_response_body`].
    Buffer,
    /// The body cannot be inspected: answer this instead.
    Reply(LocalReply),
}

/// How the glue handles the response body, as the exchange decided it (see [`ResponseStep`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// Untouched (no response yet, or nothing to mask or record).
    Pass,
    /// Passed untouched, a copy of each chunk handed to [`Exchange::on_delivered`].
    Observe,
    /// Rewritten chunk by chunk ([`Exchange::on_response_chunk`]).
    Stream,
    /// Buffered and rewritten whole ([`Exchange::on_response_body`]).
    Buffer,
    /// Done (finished, or Warden answered instead): later callbacks pass.
    Done,
}

/// Where the exchange is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The headers were accepted and the body is awaited.
    Body,
    /// The request waits for the approval service's answer.
    Held,
    /// The request went (or goes) upstream.
    Forwarded,
    /// Warden answered instead of the upstream: nothing more is decided.
    Refused,
}

/// One request through the gateway, from its headers to its record, whatever happens to it:
/// refused at any phase, held, forwarded, answered, cut short. The glue creates one for every
/// request that reaches the filter and asks it for the record once, when the stream ends.
#[derive(Debug)]
pub struct Exchange {
    /// The id put on every reply (`request-id`) and log line.
    pub request_id: String,
    /// The authenticated caller, bound to a role (`None` until, or unless, both are known).
    caller: Option<Caller>,
    /// A caller whose token verified but who got no role: named in the record, never served.
    unbound: Option<Caller>,
    /// The endpoint called (`None` until, or unless, the path is classified).
    endpoint: Option<Endpoint>,
    max_body_bytes: u64,
    /// What DLP found in the request and the response so far.
    tally: Tally,
    /// The response stream's redactor, once an event stream started.
    stream: Option<StreamRedactor>,
    /// Seconds since the epoch when the request headers arrived.
    started_at: f64,
    /// The request waiting for an approval verdict.
    held: Option<Held>,
    /// What the audit record will say (when the policy has `audit`; taken when it is made).
    trail: Option<Trail>,
    /// Where the exchange is.
    phase: Phase,
    /// How the response body is handled.
    response: ResponseMode,
    /// The upstream's `:status`, once the response headers arrived.
    status: Option<u16>,
    /// The job the client declared (`x-warden-job-id`), bounded.
    job_header: Option<String>,
    /// What the request reserves and costs (a `messages` request when the role has budgets or
    /// the policy prices models).
    budget: Option<BudgetTrack>,
    /// The budget that refused the request, if one did.
    budget_refusal: Option<String>,
    /// The budget ledger keys admission checked (key, budget name), with leases only.
    budget_keys: Vec<(String, String)>,
    /// The key whose lease could not fit the request, and what the request needed there.
    lease_wanted: Option<(String, Amount)>,
    /// Output tokens a streamed answer may produce, and the budget that allows them
    /// ([`Exchange::set_output_allowance`]).
    allowance: Option<(u64, String)>,
    /// The response stream's cut at the allowance, once an event stream started with one.
    cut: Option<StreamCut>,
    /// Whether the cut was logged and told to the trail.
    cut_noted: bool,
    /// How a cut answer ends for this client (from its `user-agent`).
    cut_ending: EndingStyle,
    /// The (sub)agent that sent the request, once its headers were judged ([`Exchange::agent`]).
    agent: AgentIds,
    /// The `tool_result` blocks of the request's newest message, for the record.
    tool_results: Vec<ToolResultRecord>,
    /// The agent session the client's `x-claude-code-session-id` names, for the session
    /// prefix memo and the approval service (a session grant covers a session); the body's
    /// `metadata.user_id` is read when it is missing.
    session_header: Option<String>,
    /// The answer's tool calls, governed (only when the role has tool rules).
    tools: Option<Box<ToolTrack>>,
}

/// The tool side of an exchange whose role has tool rules ([`crate::core::tools::govern`]).
#[derive(Debug, Default)]
struct ToolTrack {
    /// What the request said.
    gist: RequestGist,
    /// The answer's calls, once a Messages answer (status 200) started.
    governor: Option<Governor>,
    /// The approval the call waiting for a human needs (fingerprint and reason).
    held: Option<Held>,
    /// The callout asking about it, until the glue takes it.
    callout: Option<Callout>,
    /// Bytes decided while the upstream still streamed: delivered with its next chunk.
    backlog: Vec<u8>,
}

/// The role's tool rules and the every-detector mask, as the governor needs them.
struct RoleJudge<'g> {
    rules: Option<&'g ToolRules>,
    mask: Option<Redaction<'g>>,
}

impl Judge for RoleJudge<'_> {
    fn judge(&self, call: &ToolCall, context: &CallContext) -> Judgement {
        match self.rules {
            Some(rules) => rules.judge(call, context),
            None => Judgement { action: ToolAction::Deny, rule: None, reason: "the role's rules are unknown".into() },
        }
    }

    fn mask(&self, text: &str) -> String {
        match self.mask.as_ref().map(|r| redact(r, text, &mut Tally::default())) {
            Some(Ok(masked)) => masked.into_owned(),
            // Every detector masks, so nothing blocks; keep nothing rather than the text.
            _ => String::new(),
        }
    }
}

/// The budget side of an exchange: the estimate, the reservations, the meter, the settlement.
#[derive(Debug)]
struct BudgetTrack {
    model: String,
    /// Whether the request asked for a streamed answer (only those are given an output
    /// allowance: a JSON answer cannot be cut).
    stream: bool,
    /// The request's `max_tokens` (0 when absent: Anthropic refuses such a request).
    max_tokens: u64,
    ask: Ask,
    admitted: Option<Admitted>,
    /// Whether the request went upstream (only then is anything charged).
    forwarded: bool,
    meter: Option<UsageMeter>,
    settled: Option<Settlement>,
}

/// What an exchange was charged when it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The model asked for.
    pub model: String,
    /// The usage charged: the answer's own figures, or conservative ones when it ended without
    /// them (`conservative`).
    pub usage: Usage,
    /// Its cost in nanos (`None` without a price table).
    pub cost_nanos: Option<u64>,
    /// Whether the reservation stood in for figures the answer never gave (abort, reset, cut).
    pub conservative: bool,
}

/// A request held for approval: what the verdict must be about, and what forwarding means.
#[derive(Debug)]
struct Held {
    fingerprint: String,
    reasons: Vec<String>,
    clamped: bool,
}

/// Headers a client may use to claim a credential or an identity; never forwarded (nor are
/// `x-jwt-*`, `x-warden-*` and the role header).
const CLIENT_IDENTITY_HEADERS: [&str; 4] = ["authorization", "x-api-key", "proxy-authorization", "cookie"];

impl Exchange {
    /// Judges the request headers. The exchange is returned whatever the step, a refusal
    /// included: it makes the request's record.
    pub fn start(gateway: &Gateway, head: &RequestHead) -> (Exchange, HeadersStep) {
        let mut exchange = Self::new(gateway, head);
        match exchange.judge_headers(gateway, head) {
            Ok(step) => (exchange, step),
            Err(denial) => {
                let refreshable = denial.reason == Reason::TokenExpired && sent_by_key_helper(head);
                let reply = exchange.refuse(denial);
                let reply = if refreshable { reply.letting_the_client_refresh() } else { reply };
                (exchange, HeadersStep::Reply(reply))
            }
        }
    }

    /// An exchange refused with `denial` before its headers could be judged (the glue could not
    /// read what the core needs, or the audit trail cannot take more records). Who the caller is
    /// and which endpoint they called are still worked out for the record; nothing else is.
    ///
    /// An `audit_unavailable` refusal is made because the trail cannot take records: its record
    /// names no caller, so the outbox counts it in the summary of unauthenticated refusals
    /// instead of queueing it (which would only fill the queue it waits on).
    pub fn turned_away(gateway: &Gateway, head: &RequestHead, denial: Denial) -> (Exchange, LocalReply) {
        let mut exchange = Self::new(gateway, head);
        if denial.reason != Reason::AuditUnavailable {
            exchange.identify(gateway, head).ok();
        }
        exchange.endpoint = classify(head.method, head.path).ok();
        exchange.note_endpoint();
        let reply = exchange.refuse(denial);
        (exchange, reply)
    }

    fn new(gateway: &Gateway, head: &RequestHead) -> Exchange {
        let request_id = request_id_for(head.header("x-request-id"));
        let trail = gateway.audits().then(|| {
            let labels = ClientLabels {
                session: head.header(SESSION_HEADER).map(str::to_string),
                job: head.header(JOB_HEADER).map(str::to_string),
            };
            Trail::new(millis(head.now), &request_id, "unknown", head.method, head.path, labels)
        });
        Exchange {
            request_id,
            caller: None,
            unbound: None,
            endpoint: None,
            max_body_bytes: 0,
            tally: Tally::default(),
            stream: None,
            started_at: head.now,
            held: None,
            trail,
            phase: Phase::Body,
            response: ResponseMode::Pass,
            status: None,
            job_header: head.header(JOB_HEADER).map(|v| v.chars().take(128).collect()),
            budget: None,
            budget_refusal: None,
            budget_keys: Vec::new(),
            lease_wanted: None,
            allowance: None,
            cut: None,
            cut_noted: false,
            cut_ending: EndingStyle::for_client(head.header("user-agent")),
            agent: AgentIds::default(),
            tool_results: Vec::new(),
            tools: None,
            // The session prefix memo and session grants read it.
            session_header: head.header(SESSION_HEADER).map(str::to_string),
        }
    }

    /// The (sub)agent that sent the request, as Claude Code's headers say (empty for the main
    /// agent, and until the headers were judged): the tool rules' [`crate::core::tools::CallContext`]
    /// reads it.
    pub fn agent(&self) -> &AgentIds {
        &self.agent
    }

    /// Authenticates the caller and binds the role; a caller whose token verified but who gets
    /// no role is kept as `unbound`, so the record names them.
    fn identify(&mut self, gateway: &Gateway, head: &RequestHead) -> Result<(), Denial> {
        let policy = &gateway.policy;
        let requested_role = head.header(&policy.identity.role_header);
        if let Some(denial) = two_credentials(head) {
            return Err(denial);
        }
        match authenticate(policy, head.token.clone(), requested_role, head.now) {
            Ok(caller) => {
                self.caller = Some(caller);
                Ok(())
            }
            Err(denial) => {
                // Role selection comes after every check of the token: these two reasons mean
                // the claims verified.
                if matches!(denial.reason, Reason::NoRoleBinding | Reason::RoleNotEntitled) {
                    self.unbound = verified_caller(&head.token);
                }
                let denial = if matches!(head.token, TokenStatus::Failed(_))
                    && credentials(head).any(|token| claims_expired(token, head.now))
                {
                    expired()
                } else {
                    denial
                };
                Err(with_credential_hint(denial, head))
            }
        }
    }

    /// Tells the trail which endpoint was called, once it is known.
    fn note_endpoint(&mut self) {
        if let (Some(trail), Some(endpoint)) = (self.trail.as_mut(), self.endpoint.as_ref()) {
            trail.on_endpoint(endpoint.label());
        }
    }

    fn judge_headers(&mut self, gateway: &Gateway, head: &RequestHead) -> Result<HeadersStep, Denial> {
        let policy = &gateway.policy;
        self.identify(gateway, head)?;
        self.agent = read_agent_headers(head.header_values(AGENT_HEADER), head.header_values(PARENT_AGENT_HEADER))?;
        let endpoint = classify(head.method, head.path)?;
        self.endpoint = Some(endpoint.clone());
        self.note_endpoint();
        let role_index = self.caller.as_ref().map(|c| c.role).unwrap_or(usize::MAX);
        let role =
            policy.roles.get(role_index).ok_or_else(|| Denial::new(Reason::InternalError, "role table out of sync"))?;
        self.max_body_bytes = role.max_body_bytes;
        if !role.endpoints.contains(&endpoint.policy_name()) {
            return Err(Denial::new(
                Reason::EndpointNotAllowed,
                format!("{} {} is not allowed for role {}", head.method, head.path, role.name),
            ));
        }
        if let Endpoint::GetModel(id) = &endpoint {
            check_model_id(role, id)?;
        }
        check_betas(role, head.header_values("anthropic-beta"))?;
        let edits = Self::edits(gateway, head, role_index)?;
        if !endpoint.has_body() {
            self.phase = Phase::Forwarded;
            self.log_allowed(policy, None);
            return Ok(HeadersStep::Forward(edits));
        }
        check_body_headers(head, self.max_body_bytes)?;
        Ok(HeadersStep::InspectBody(edits))
    }

    /// Removes every client credential and identity header the request carries (only those: each
    /// removal is a host call) and `accept-encoding`, and sets the role's key.
    fn edits(gateway: &Gateway, head: &RequestHead, role: usize) -> Result<HeaderEdits, Denial> {
        let key = gateway
            .key(role)
            .ok_or_else(|| Denial::new(Reason::InternalError, "no upstream credential for the role"))?;
        let mut remove: Vec<String> = Vec::new();
        for (name, _) in head.headers {
            let strip = CLIENT_IDENTITY_HEADERS.contains(&name.as_str())
                || name == "accept-encoding"
                || name.starts_with("x-jwt-")
                || name.starts_with("x-warden-")
                || *name == gateway.policy.identity.role_header;
            if strip && !remove.contains(name) {
                remove.push(name.clone());
            }
        }
        Ok(HeaderEdits { remove, api_key: key.clone() })
    }

    /// Called as body bytes accumulate; refuses as soon as the body passes the role's limit,
    /// without waiting for the rest.
    pub fn on_body_progress(&mut self, buffered_bytes: usize) -> Option<LocalReply> {
        if self.phase != Phase::Body {
            return None;
        }
        if buffered_bytes as u64 > self.max_body_bytes {
            Some(self.refuse(too_large(self.max_body_bytes)))
        } else {
            None
        }
    }

    /// Judges the complete body, masks what the caller sends per the role's DLP profile, and holds
    /// the request for approval when one of the role's triggers fires.
    pub fn on_body_complete(&mut self, gateway: &Gateway, body: &[u8]) -> BodyStep {
        if self.phase != Phase::Body {
            // The glue asks [`Exchange::wants_body`] first; a body out of turn is never forwarded.
            let denial = Denial::new(Reason::InternalError, "a request body after the request was decided");
            return BodyStep::Reply(self.refuse(denial));
        }
        if let Some(reply) = self.on_body_progress(body.len()) {
            return BodyStep::Reply(reply);
        }
        let kind = match self.endpoint {
            Some(Endpoint::CountTokens) => BodyKind::CountTokens,
            _ => BodyKind::Messages,
        };
        let role_index = self.role_index();
        let Some(role) = gateway.policy.roles.get(role_index) else {
            return BodyStep::Reply(self.refuse(Denial::new(Reason::InternalError, "role table out of sync")));
        };
        let Some(redaction) = gateway.redaction(role_index, false) else {
            return BodyStep::Reply(self.refuse(Denial::new(Reason::InternalError, "no DLP profile for the role")));
        };
        let memo = Some((&gateway.memo, role.dlp_profile as u64));
        let tally = &mut self.tally;
        let wants_approval = role.approval.is_some() && kind == BodyKind::Messages;
        // Each message is hashed once: the digest serves DLP's memo and the audit record's.
        let mut digests = Vec::new();
        let wants_digests = redaction.is_active() || self.trail.is_some();
        let records = self.trail.is_some();
        let governs = !role.tool_rules.is_empty() && kind == BodyKind::Messages;
        let mut gist = RequestGist::default();
        let (result_limit, list_results) = (role.max_tool_result_bytes, self.trail.is_some());
        let mut results = Examined::default();
        let (session_header, caller) = (self.session_header.as_deref(), self.caller.as_ref());
        let checked = check_body_with(role, kind, body, |parsed: Parsed| {
            let Parsed { text, messages, system, metadata } = parsed;
            if governs {
                gist = govern::gist_of(messages, system, role.approval.is_some());
            }
            // The session's prefix judged clean on any worker is neither scanned nor hashed again.
            let session = caller
                .filter(|_| redaction.is_active() && kind == BodyKind::Messages && !messages.is_empty())
                .and_then(|caller| {
                    let session = govern::session_of(session_header, metadata.map(|m| m.get().as_bytes()))?;
                    Some((caller, session))
                });
            let spans: Vec<std::ops::Range<usize>> = match session {
                Some(_) => messages.iter().map(|m| span_of(text, m.get())).collect(),
                None => Vec::new(),
            };
            let pass = session.map(|(caller, session)| {
                let profile = (role.dlp_profile as u64).to_le_bytes();
                let owner = [caller.issuer.as_bytes(), caller.subject.as_bytes(), &profile, session.as_bytes()];
                gateway.sessions.begin(gateway.ledger(), gateway.sessions.slot(&owner), body, &spans)
            });
            let clean_prefix = pass.as_ref().map_or(0, |pass| pass.known);
            // The record names every message, so it needs every digest; DLP only the new ones.
            let digests_from = if records { 0 } else { clean_prefix };
            if wants_digests {
                let rest = messages.get(digests_from..).unwrap_or_default();
                digests = rest.iter().map(|m| gateway.memo.digest(m.get().as_bytes())).collect();
            }
            let known = Known { clean_prefix, digests: &digests, digests_from };
            let masking = mask_messages(&redaction, text, messages, system, known, tally, memo)?;
            if let Some(pass) = pass {
                gateway.sessions.finish(gateway.ledger(), pass, body, &spans, masking.clean_leading);
            }
            results = examine(text, messages, result_limit, list_results)?;
            Ok(with_withheld(masking.splices, std::mem::take(&mut results.withheld)))
        });
        let mut verdict = match checked {
            Ok(verdict) => verdict,
            Err(denial) => return BodyStep::Reply(self.refuse(denial)),
        };
        self.note_tool_results(gateway, results);
        if governs && role.approval.is_some() {
            // Only a call held for a human needs the session (a session grant covers it).
            let forwarded = verdict.rewritten.as_deref().unwrap_or(body);
            let metadata = verdict.outline.params.iter().find(|(name, _)| name == "metadata");
            let metadata = metadata.and_then(|(_, range)| forwarded.get(range.clone()));
            gist.session = govern::session_of(self.session_header.as_deref(), metadata);
        }
        if let (Some(trail), Some(names)) = (self.trail.as_mut(), gateway.audit_blobs.as_ref()) {
            let forwarded = verdict.rewritten.as_deref().unwrap_or(body);
            let outline = std::mem::take(&mut verdict.outline);
            let digest = |text: &[u8]| gateway.memo.digest(text);
            let tools = verdict.tools.clone();
            names.borrow_mut().expire(millis(self.started_at));
            trail.on_forwarded_body(Forwarded::take(forwarded, outline, &digests, &names.borrow(), &digest, tools));
        }
        if governs {
            gist.model = verdict.model.clone();
            gist.tools = verdict.tools.clone();
            gist.max_tokens = verdict.max_tokens;
            gist.body_bytes = body.len() as u64;
            gist.mcp_servers = verdict.mcp_servers;
            self.tools = Some(Box::new(ToolTrack { gist, ..ToolTrack::default() }));
        }
        if kind == BodyKind::Messages && (!role.budgets.is_empty() || gateway.policy.pricing.is_some()) {
            let forwarded_len = verdict.rewritten.as_ref().map_or(body.len(), Vec::len) as u64;
            let web_search = verdict.tools.iter().any(|t| t.starts_with("web_search"));
            self.budget = Some(BudgetTrack {
                model: verdict.model.clone(),
                stream: verdict.stream,
                max_tokens: verdict.max_tokens.unwrap_or(0),
                ask: Ask::estimate(
                    &gateway.policy.accounting,
                    forwarded_len,
                    verdict.max_tokens.unwrap_or(0),
                    web_search,
                ),
                admitted: None,
                forwarded: false,
                meter: None,
                settled: None,
            });
        }
        if wants_approval {
            let facts = RequestFacts {
                model: verdict.model.clone(),
                tools: std::mem::take(&mut verdict.tools),
                max_tokens: verdict.max_tokens,
                body_bytes: body.len() as u64,
                mcp_servers: verdict.mcp_servers,
                conversation: String::new(),
            };
            let forwarded = verdict.rewritten.as_deref().unwrap_or(body);
            match self.approval_callout(gateway, role, facts, forwarded, verdict.clamped) {
                Ok(Some(callout)) => {
                    self.phase = Phase::Held;
                    return BodyStep::Hold { body: verdict.rewritten, clamped: verdict.clamped, callout };
                }
                Ok(None) => {}
                Err(denial) => return BodyStep::Reply(self.refuse(denial)),
            }
        }
        let forwarded = verdict.rewritten.as_deref().unwrap_or(body);
        let clamped_body = match self.admit(gateway, Some(forwarded), self.started_at) {
            Ok(clamped) => clamped,
            Err(reply) => return BodyStep::Reply(reply),
        };
        self.forwarded();
        self.log_allowed(&gateway.policy, Some((&verdict.model, verdict.stream, verdict.clamped)));
        match (clamped_body, verdict.rewritten) {
            (Some(body), _) => BodyStep::Replace { body, clamped: true },
            (None, Some(body)) => BodyStep::Replace { body, clamped: verdict.clamped },
            (None, None) => BodyStep::Forward,
        }
    }

    /// Keeps the newest message's `tool_result`s for the record, with what this worker remembers
    /// of the calls they answer, and logs the results withheld over the role's limit.
    fn note_tool_results(&mut self, gateway: &Gateway, results: Examined) {
        let withheld = results.newest.iter().filter(|r| r.over_limit).count();
        if withheld > 0 {
            log::info!("{} withheld {withheld} tool result(s) over the role's max_result_bytes", self.request_id);
        }
        let memo = gateway.tool_calls.borrow();
        self.tool_results = results.newest.into_iter().map(|seen| memo.record_of(seen)).collect();
    }

    /// The request goes upstream from here.
    fn forwarded(&mut self) {
        self.phase = Phase::Forwarded;
        if let Some(track) = self.budget.as_mut() {
            track.forwarded = true;
        }
    }

    /// Reserves the request's estimate in every budget that applies to it (all or nothing; see
    /// [`crate::core::budget`]). `forwarded`: the body as it will be forwarded, when `max_tokens`
    /// may still be clamped in it; `Ok(Some(body))` is the body with `max_tokens` clamped.
    /// Refuses with `budget_exhausted` (429, `retry-after`) or `budget_unavailable` (503).
    fn admit(&mut self, gateway: &Gateway, forwarded: Option<&[u8]>, now: f64) -> Result<Option<Vec<u8>>, LocalReply> {
        let (Some(track), Some(caller)) = (self.budget.as_ref(), self.caller.as_ref()) else { return Ok(None) };
        let Some(role) = gateway.policy.roles.get(caller.role) else {
            return Err(self.refuse(Denial::new(Reason::InternalError, "role table out of sync")));
        };
        let policy = &gateway.policy;
        let groups = policy
            .bindings
            .iter()
            .filter(|b| b.role == caller.role)
            .filter_map(|b| b.group())
            .filter(|group| caller.groups.iter().any(|g| g == group))
            .collect();
        let job = job_id(&caller.job, self.job_header.as_deref());
        let who =
            Who { role: &role.name, issuer: &caller.issuer, subject: &caller.subject, groups, job: job.as_deref() };
        let applicable = budget::applicable(&role.budgets, &who, &policy.accounting);
        if policy.leases.is_some() {
            self.budget_keys = applicable.iter().map(|a| (a.key.clone(), a.budget.name.clone())).collect();
        }
        let priced = policy
            .pricing
            .as_ref()
            .map(|table| Priced { prices: table.prices_for(&track.model), currency: &table.currency });
        let now_ms = millis(now);
        let outcome = budget::admit(
            gateway.ledger(),
            &applicable,
            track.ask,
            priced,
            &policy.accounting,
            now_ms,
            forwarded.is_some(),
        );
        let admitted = match outcome {
            Ok(admitted) => admitted,
            Err(Refusal::Exhausted { budget, message, retry_after, retryable, short_of_lease }) => {
                self.budget_refusal = Some(budget);
                self.lease_wanted = short_of_lease;
                let mut reply = self.refuse(Denial::new(Reason::BudgetExhausted, message));
                reply.headers.retain(|(name, _)| name != "x-should-retry");
                reply.headers.push(("x-should-retry".to_string(), retryable.to_string()));
                reply.headers.push(("retry-after".to_string(), retry_after.to_string()));
                return Err(reply);
            }
            Err(Refusal::Ledger(error)) => {
                log::error!("{} budget ledger: {}", self.request_id, error.describe());
                return Err(self.refuse(Denial::new(
                    Reason::BudgetUnavailable,
                    format!("{}; the request is refused rather than let through uncounted", error.describe()),
                )));
            }
        };
        let clamp_to = admitted.clamp_to;
        // Anthropic stops at `max_tokens`: an allowance at least that large could only be
        // crossed by the cut's own over-estimate, so the stream is not watched at all.
        let max_tokens = clamp_to.unwrap_or(track.max_tokens);
        if let Some(allowance) = admitted.output_allowance.as_ref().filter(|a| track.stream && a.tokens < max_tokens) {
            self.set_output_allowance(allowance.tokens, &allowance.budget);
        }
        if let Some(track) = self.budget.as_mut() {
            track.admitted = Some(admitted);
        }
        let (Some(limit), Some(body)) = (clamp_to, forwarded) else { return Ok(None) };
        match with_max_tokens(body, limit) {
            Some(clamped) => {
                log::info!("{} max_tokens clamped to {limit} by a budget", self.request_id);
                Ok(Some(clamped))
            }
            None => Err(self.refuse(Denial::new(Reason::InternalError, "clamping max_tokens for a budget failed"))),
        }
    }

    /// Ends the exchange's budget side, once: replaces its reservations by what it really cost
    /// (nothing when it never went upstream; the answer's usage when it reported it; else, for
    /// an abort, a reset or a cut, what was seen with the reserved estimate as a floor) and
    /// prices it. Later calls return the same settlement. `now_ms`: the clock.
    pub fn settle(&mut self, gateway: &Gateway, now_ms: u64) -> Option<&Settlement> {
        let status = self.status;
        let track = self.budget.as_mut()?;
        if track.settled.is_none() {
            let metered = track.meter.take().map(UsageMeter::finish).unwrap_or_default();
            let reserved_output = track.admitted.as_ref().map_or(track.ask.output_tokens, |a| a.output_tokens);
            let (mut usage, mut conservative) =
                charged_usage(track.forwarded, status, metered, &track.ask, reserved_output);
            if let Some(cut) = self.cut.as_ref().and_then(StreamCut::cut) {
                // A cut answer's figures are the cut's own running count (the delivered ending
                // may carry it, or not): charge at least that, and never less than reserved.
                usage.output_tokens =
                    Some(usage.output_tokens.unwrap_or(0).max(cut.output_tokens).max(reserved_output));
                conservative = true;
            }
            let prices = gateway.policy.pricing.as_ref().map(|table| table.prices_for(&track.model));
            let mut cost_nanos = prices.map(|p| p.cost(&usage));
            let mut actual = Amount { tokens: usage.total_tokens(), nanos: cost_nanos.unwrap_or(0) };
            if conservative {
                // Never cheaper than the reservation (whose input is priced at the dearest rate).
                let floor = Ask { output_tokens: reserved_output, ..track.ask }.amount(prices);
                actual = Amount { tokens: actual.tokens.max(floor.tokens), nanos: actual.nanos.max(floor.nanos) };
                cost_nanos = cost_nanos.map(|_| actual.nanos);
            }
            if let Some(admitted) = &track.admitted {
                let max_keys = gateway.policy.accounting.max_keys;
                let unsettled = budget::settle(gateway.ledger(), &admitted.reservations, actual, now_ms, max_keys);
                for pending in &unsettled {
                    log::warn!(
                        "{} settling budget {} failed ({}); tried again on the next tick",
                        self.request_id,
                        pending.reservation.budget,
                        pending.error.describe()
                    );
                }
                gateway.keep_unsettled(unsettled);
            }
            track.settled = Some(Settlement { model: track.model.clone(), usage, cost_nanos, conservative });
        }
        track.settled.as_ref()
    }

    /// What the exchange was charged, once [`Exchange::settle`] ran.
    pub fn settlement(&self) -> Option<&Settlement> {
        self.budget.as_ref().and_then(|t| t.settled.as_ref())
    }

    /// The reservations the request holds, once admitted, with the output allowance a streamed
    /// answer was given from them ([`Exchange::set_output_allowance`]).
    pub fn budget_reservations(&self) -> Option<&Admitted> {
        self.budget.as_ref().and_then(|t| t.admitted.as_ref())
    }

    /// The budget ledger keys the request was checked against, admitted or refused, each with
    /// its budget's name — kept only when the policy leases budgets (`accounting.leases`), for
    /// the worker that renews them.
    pub fn budget_keys(&self) -> &[(String, String)] {
        &self.budget_keys
    }

    /// When the request was refused because this instance's lease could not fit it (the budget
    /// itself could): the ledger key and what the request needed there, for the next ask.
    pub fn lease_wanted(&self) -> Option<&(String, Amount)> {
        self.lease_wanted.as_ref()
    }

    /// The name of the budget that refused the request (`budget_exhausted`), if one did.
    pub fn budget_refusal(&self) -> Option<&str> {
        self.budget_refusal.as_deref()
    }

    /// The callout asking for approval when one of the role's triggers fires; `None` when none
    /// fires. `forwarded` is the body as it will be forwarded (masked, clamped): the triggers read
    /// it, the fingerprint binds it and the approver is shown it.
    fn approval_callout(
        &mut self,
        gateway: &Gateway,
        role: &Role,
        mut facts: RequestFacts,
        forwarded: &[u8],
        clamped: bool,
    ) -> Result<Option<Callout>, Denial> {
        let Some(rules) = &role.approval else { return Ok(None) };
        // Parsed only when a trigger reads the conversation or one fired; the body was accepted,
        // so it parses (the parser's nesting limit bounds every walk below).
        let parse = || {
            serde_json::from_slice::<serde_json::Value>(forwarded)
                .map_err(|_| Denial::new(Reason::InvalidRequest, "the request body could not be read for approval"))
        };
        let mut parsed = None;
        if approval::reads_conversation(&rules.triggers) {
            let value = parse()?;
            facts.conversation = approval::conversation_text(&value);
            parsed = Some(value);
        }
        let reasons = approval::reasons(&rules.triggers, &facts, self.started_at as i64);
        if reasons.is_empty() {
            return Ok(None);
        }
        let value = match parsed {
            Some(value) => value,
            None => parse()?,
        };
        let facts = &facts;
        let (Some(settings), Some(keys)) = (&gateway.policy.approvals, &gateway.keys.approvals) else {
            return Err(Denial::new(Reason::InternalError, "approval rules without an approval service"));
        };
        let Some(caller) = &self.caller else {
            return Err(Denial::new(Reason::InternalError, "an approval for a request without a caller"));
        };
        let comparable = crate::core::request::comparable::comparable_bytes(&value);
        let fingerprint = approval::fingerprint(&caller.issuer, &caller.subject, &role.name, &reasons, &comparable);
        let excerpt_redaction = gateway
            .mask_everything(caller.role)
            .ok_or_else(|| Denial::new(Reason::InternalError, "no mask key for the role"))?;
        // Masked before it is cut, so a cut never exposes part of a secret. Block cannot happen:
        // every detector masks.
        let shown = approval::BodyView::of(&value);
        let mask = |text: &str, chars: usize| {
            redact(&excerpt_redaction, text, &mut Tally::default())
                .map(|masked| approval::excerpt(&masked, chars))
                .map_err(|_| Denial::new(Reason::InternalError, "masking the approval excerpt failed"))
        };
        let excerpt = mask(&shown.newest_turn, EXCERPT_CHARS)?;
        let system_excerpt = mask(&shown.system, EXCERPT_CHARS)?;
        let prefill_excerpt = mask(&shown.prefill, EXCERPT_CHARS)?;
        let mcp_server_urls =
            shown.mcp_server_urls.iter().map(|url| mask(url, approval::URL_CHARS)).collect::<Result<Vec<_>, _>>()?;
        let session_id = crate::core::audit::record::session_id(self.session_header.as_deref(), value.as_object());
        let agent = agent_view(&self.agent);
        let hold = HoldRequest {
            version: 1,
            request_id: &self.request_id,
            fingerprint: &fingerprint,
            caller: CallerView::of(caller),
            role: &role.name,
            reasons: &reasons,
            model: &facts.model,
            tools: &facts.tools,
            max_tokens: facts.max_tokens,
            body_bytes: facts.body_bytes,
            mcp_servers: facts.mcp_servers,
            mcp_server_urls: &mcp_server_urls,
            messages: shown.messages,
            excerpt: &excerpt,
            system_excerpt: &system_excerpt,
            prefill_excerpt: &prefill_excerpt,
            hold_seconds: settings.hold_seconds,
            session_id: session_id.as_deref(),
            agent,
            tool_call: None,
        };
        let body = serde_json::to_vec(&hold)
            .map_err(|_| Denial::new(Reason::InternalError, "encoding the approval request failed"))?;
        log::info!(
            "{} held for approval sub={:?} role={} reasons={} fp={}",
            self.request_id,
            caller.subject,
            role.name,
            reasons.join(","),
            fingerprint.get(..16).unwrap_or_default()
        );
        let reasons: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
        if let Some(trail) = self.trail.as_mut() {
            trail.on_held(&reasons);
        }
        self.held = Some(Held { fingerprint, reasons, clamped });
        Ok(Some(Callout::hold(settings, keys, body)))
    }

    /// Judges the approval service's answer: `None` when the callout failed before any answer,
    /// else the HTTP status and body. `now` is seconds since the epoch.
    pub fn on_approval_answer(&mut self, gateway: &Gateway, answer: Option<(u16, &[u8])>, now: f64) -> ApprovalStep {
        let Some(held) = self.held.take() else {
            return ApprovalStep::Reply(
                self.refuse(Denial::new(Reason::InternalError, "an approval answer for a request that was not held")),
            );
        };
        let decided = self.decision(gateway, &held, answer, now);
        if let Some(trail) = self.trail.as_mut() {
            match &decided {
                Ok((decision, verdict, grant)) => {
                    let (name, review, reviewer) = match decision {
                        Decision::Approved { review, reviewer } => ("approved", review, Some(reviewer.as_str())),
                        Decision::Denied { review, reviewer, .. } => ("denied", review, Some(reviewer.as_str())),
                        Decision::Pending { review, .. } => ("pending", review, None),
                    };
                    trail.on_approval(name, Some(review), reviewer, Some(verdict));
                    if let Some(grant) = grant {
                        trail.on_grant(grant.clone());
                    }
                }
                Err(denial) if denial.reason == Reason::ApprovalInvalid => {
                    trail.on_approval("invalid", None, None, None)
                }
                Err(_) => trail.on_approval("unavailable", None, None, None),
            }
        }
        match decided.map(|(decision, _, _)| decision) {
            Ok(Decision::Approved { review, reviewer }) => {
                log::info!("{} approved by {reviewer:?} (review {review})", self.request_id);
                // The held body is already in place: budgets refuse rather than clamp here.
                if let Err(reply) = self.admit(gateway, None, now) {
                    return ApprovalStep::Reply(reply);
                }
                self.forwarded();
                ApprovalStep::Forward { clamped: held.clamped }
            }
            Ok(Decision::Denied { review, reviewer, comment }) => ApprovalStep::Reply(self.refuse(Denial::new(
                Reason::ApprovalDenied,
                format!("{reviewer} denied this request (review {review}): {comment}"),
            ))),
            Ok(Decision::Pending { review, url }) => ApprovalStep::Reply(self.refuse(Denial::new(
                Reason::ApprovalPending,
                format!(
                    "this request needs approval ({}); review {review} is waiting for an approver at {url} \
                     — re-send the same request once it is approved",
                    held.reasons.join(", ")
                ),
            ))),
            Err(denial) => ApprovalStep::Reply(self.refuse(denial)),
        }
    }

    /// The verified decision in an answer, the signed verdict it came in and the session grant it
    /// names, or the denial that replaces it.
    fn decision(
        &self,
        gateway: &Gateway,
        held: &Held,
        answer: Option<(u16, &[u8])>,
        now: f64,
    ) -> Result<(Decision, String, Option<verdict::Grant>), Denial> {
        #[derive(serde::Deserialize)]
        struct Answer {
            verdict: String,
        }
        let unavailable = |what: String| {
            Denial::new(
                Reason::ApprovalUnavailable,
                format!(
                    "this request needs approval ({}) but the approval service {what}; it is refused",
                    held.reasons.join(", ")
                ),
            )
        };
        let (status, body) = answer.ok_or_else(|| unavailable("could not be called".to_string()))?;
        match status {
            200 => {}
            503 => return Err(unavailable("is unreachable (HTTP 503)".to_string())),
            504 => return Err(unavailable("did not answer in time (HTTP 504)".to_string())),
            429 => {
                return Err(unavailable(
                    "refused to open another review: too many were opened for you recently \
                     (approvals.review_rate); wait for a decision on the pending ones"
                        .to_string(),
                ))
            }
            other => return Err(unavailable(format!("answered HTTP {other}"))),
        }
        let answer: Answer =
            serde_json::from_slice(body).map_err(|_| unavailable("sent a malformed answer".to_string()))?;
        let key = gateway
            .keys
            .approvals
            .as_ref()
            .map(|k| k.verdict_key)
            .ok_or_else(|| Denial::new(Reason::InternalError, "no approval verdict key"))?;
        let Some(caller) = &self.caller else {
            return Err(Denial::new(Reason::InternalError, "an approval answer for a request without a caller"));
        };
        let caller = (caller.issuer.as_str(), caller.subject.as_str());
        let (decision, grant) = verdict::verify_with_grant(&answer.verdict, &key, &held.fingerprint, caller, now)
            .map_err(|e| {
                log::warn!("{} approval verdict rejected: {e}", self.request_id);
                Denial::new(Reason::ApprovalInvalid, format!("{e}; the request is refused"))
            })?;
        Ok((decision, answer.verdict, grant))
    }

    /// Decides how the response body is handled, from the response headers: masked (event
    /// streams chunk by chunk, anything else whole), observed for the record, or passed. A model
    /// list is always buffered, to be filtered by the role's models. A response to a request
    /// Warden refused (its own reply) passes untouched and changes nothing.
    pub fn on_response_headers(&mut self, gateway: &Gateway, headers: &[(String, String)]) -> ResponseStep {
        if self.phase == Phase::Refused || self.response != ResponseMode::Pass {
            return ResponseStep::Pass;
        }
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let content_type = header("content-type").unwrap_or("");
        let event_stream = crate::core::response::sse::is_event_stream(content_type);
        self.status = header(":status").and_then(|s| s.trim().parse().ok());
        if let Some(trail) = self.trail.as_mut() {
            trail.on_response_headers(self.status, header("request-id"), event_stream);
        }
        if self.phase != Phase::Forwarded {
            // Nothing went upstream: this is the proxy's own answer (a timeout while held).
            self.response = if self.trail.is_some() { ResponseMode::Observe } else { ResponseMode::Done };
            return if self.trail.is_some() { ResponseStep::Observe } else { ResponseStep::Pass };
        }
        if let Some(track) = self.budget.as_mut() {
            track.meter = Some(UsageMeter::new(event_stream));
        }
        let role = self.role_index();
        let active = gateway.redaction(role, true).is_some_and(|r| r.is_active());
        let lists_models = self.endpoint == Some(Endpoint::ListModels);
        let cuts = event_stream && !lists_models && self.allowance.is_some();
        let governs = self.start_governing(event_stream);
        if !active && !lists_models && !cuts && !governs {
            return if self.trail.is_some() || self.budget.is_some() {
                self.response = ResponseMode::Observe;
                ResponseStep::Observe
            } else {
                self.response = ResponseMode::Done;
                ResponseStep::Pass
            };
        }
        let encoding = header("content-encoding").unwrap_or("").trim();
        if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
            return ResponseStep::Reply(self.refuse(Denial::new(
                Reason::ResponseUninspectable,
                format!(
                    "the upstream answered with content-encoding {encoding:?}, which cannot be inspected for masking \
                     or counting"
                ),
            )));
        }
        if event_stream && !lists_models {
            self.stream = active.then(StreamRedactor::default);
            let ending = self.cut_ending;
            self.cut = self.allowance.take().map(|(tokens, budget)| StreamCut::new(tokens, &budget, ending));
            self.response = ResponseMode::Stream;
            ResponseStep::Stream
        } else {
            self.response = ResponseMode::Buffer;
            ResponseStep::Buffer
        }
    }

    /// How the glue handles the response body now.
    pub fn response_mode(&self) -> ResponseMode {
        self.response
    }

    /// Gives a streamed answer an output allowance: once the answer has produced more than
    /// `tokens` output tokens, it is ended for the client and the upstream stream is reset
    /// ([`crate::core::response::stream_cut`]); `budget` names the budget in the ending. This is the seam
    /// admission calls for a streaming exchange it admits, before the response headers
    /// arrive (later calls change nothing). A JSON answer cannot be cut: its bound is the
    /// reservation of its `max_tokens`.
    pub fn set_output_allowance(&mut self, tokens: u64, budget: &str) {
        if self.response == ResponseMode::Pass && self.status.is_none() {
            self.allowance = Some((tokens, budget.to_string()));
        }
    }

    /// The stream's cut, once the answer was ended at its allowance (or because it could not
    /// be parsed: `budget` is `None`). From then on every upstream byte is dropped: the glue
    /// resets the stream at the next upstream chunk that is not the last.
    pub fn stream_cut(&self) -> Option<&Cut> {
        self.cut.as_ref().and_then(StreamCut::cut)
    }

    /// Masks a chunk of an event stream and counts its output against the allowance; returns
    /// the bytes to deliver now.
    pub fn on_response_chunk(&mut self, gateway: &Gateway, chunk: &[u8]) -> Vec<u8> {
        if self.response != ResponseMode::Stream {
            return chunk.to_vec();
        }
        if self.stream_cut().is_some() {
            // The answer was ended: nothing more is masked, counted or delivered.
            return Vec::new();
        }
        let role = self.role_index();
        let masked = match (self.stream.as_mut(), gateway.redaction(role, true)) {
            (Some(stream), Some(redaction)) => stream.push(&redaction, chunk),
            _ => chunk.to_vec(),
        };
        let governed = self.govern_stream(gateway, masked, false);
        self.count_output(governed, false)
    }

    /// Passes delivered stream bytes through the cut (when the answer has an allowance); `end`:
    /// the stream ended.
    fn count_output(&mut self, bytes: Vec<u8>, end: bool) -> Vec<u8> {
        let Some(cut) = self.cut.as_mut() else { return bytes };
        let mut out = cut.push(&bytes);
        if end {
            out.extend(cut.finish());
        }
        if let (Some(done), false) = (cut.cut(), self.cut_noted) {
            self.cut_noted = true;
            match &done.budget {
                Some(budget) => {
                    log::info!(
                        "{} stream cut by budget {budget:?} after about {} output tokens (allowance {})",
                        self.request_id,
                        done.output_tokens,
                        done.allowance
                    );
                    if let Some(trail) = self.trail.as_mut() {
                        trail.on_cut(done.output_tokens);
                    }
                }
                None => log::info!("{} response stream ended early: it cannot be parsed", self.request_id),
            }
        }
        out
    }

    /// The event stream ended (or trailers arrived): returns what was still held back.
    pub fn on_response_end(&mut self, gateway: &Gateway) -> Vec<u8> {
        if self.response == ResponseMode::Stream {
            self.response = ResponseMode::Done;
        }
        let mut out = Vec::new();
        if let Some(mut stream) = self.stream.take() {
            if let Some(redaction) = gateway.redaction(self.role_index(), true) {
                out = stream.finish(&redaction);
            }
            if let Some(reason) = stream.ended() {
                log::info!("{} response stream ended early: {}", self.request_id, reason.code());
            }
            self.tally.merge(stream.tally());
        }
        let out = self.govern_stream(gateway, out, true);
        let done = self.tool_calls_done();
        self.count_output(out, done)
    }

    /// Masks a complete (non-stream) response body; a model list is first filtered by the
    /// role's models.
    pub fn on_response_body(&mut self, gateway: &Gateway, body: &[u8]) -> ResponseBodyStep {
        if self.response != ResponseMode::Buffer {
            return ResponseBodyStep::Deliver;
        }
        self.response = ResponseMode::Done;
        let role = self.role_index();
        let mut filtered = None;
        if self.endpoint == Some(Endpoint::ListModels) && self.status == Some(200) {
            let Some(models) = gateway.policy.roles.get(role).map(|r| &r.models) else {
                return ResponseBodyStep::Reply(
                    self.refuse(Denial::new(Reason::InternalError, "role table out of sync")),
                );
            };
            match filter_model_list(body, |id| models.matches(id)) {
                Ok(list) => filtered = list,
                Err(denial) => return ResponseBodyStep::Reply(self.refuse(denial)),
            }
        }
        let current = filtered.as_deref().unwrap_or(body);
        let step = match gateway.redaction(role, true).filter(|r| r.is_active()) {
            None => filtered.map_or(ResponseBodyStep::Deliver, ResponseBodyStep::Replace),
            Some(redaction) => match redact_body(&redaction, current, &mut self.tally) {
                Ok(Some(masked)) => ResponseBodyStep::Replace(masked),
                Ok(None) => filtered.map_or(ResponseBodyStep::Deliver, ResponseBodyStep::Replace),
                Err(denial) => ResponseBodyStep::Reply(self.refuse(denial)),
            },
        };
        self.govern_body(gateway, body, step)
    }

    /// Bytes delivered to the client at `now_ms` (after masking), for the audit record.
    pub fn on_delivered(&mut self, bytes: &[u8], now_ms: u64) {
        if self.phase == Phase::Refused {
            // Warden's own reply: the record keeps the refusal, not its bytes.
            return;
        }
        if let Some(meter) = self.budget.as_mut().and_then(|t| t.meter.as_mut()) {
            meter.push(bytes);
        }
        if let Some(trail) = self.trail.as_mut() {
            trail.on_delivered(bytes, now_ms);
        }
    }

    /// A host call the glue needed failed (`what` names it): the request is refused with
    /// `internal_error` and never passed unchecked. Returns the reply to send.
    pub fn on_host_failure(&mut self, what: &str) -> LocalReply {
        log::error!("{} {what} failed; refusing the request", self.request_id);
        self.refuse(Denial::new(Reason::InternalError, format!("{what} failed")))
    }

    /// Whether the request body is awaited ([`Exchange::on_body_progress`],
    /// [`Exchange::on_body_complete`]).
    pub fn wants_body(&self) -> bool {
        self.phase == Phase::Body
    }

    /// Whether the request waits for the approval service's answer
    /// ([`Exchange::on_approval_answer`]).
    pub fn is_held(&self) -> bool {
        self.phase == Phase::Held
    }

    /// Whether Warden answered this request itself (at any phase).
    pub fn is_refused(&self) -> bool {
        self.phase == Phase::Refused
    }

    /// The authenticated caller bound to a role, once known.
    pub fn caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }

    /// The endpoint called, once classified.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    /// The role's index (out of range, so every lookup fails closed, while no role is bound).
    fn role_index(&self) -> usize {
        self.caller.as_ref().map(|c| c.role).unwrap_or(usize::MAX)
    }

    /// The audit record of the exchange, made once: the first call after the exchange ended
    /// returns it, any later call `None` (as does a policy without `audit`). Whatever happened
    /// to the request — refused at any phase, held, forwarded, cut short — it has one record,
    /// naming the caller whenever their token verified.
    pub fn finish_record(&mut self, gateway: &Gateway, ending: Ending) -> Option<Record> {
        self.trail.as_ref()?;
        let settled = self.settle(gateway, ending.at_ms).cloned();
        let mut trail = self.trail.take()?;
        match self.phase {
            Phase::Body => trail.on_undecided("while its body was read"),
            Phase::Held => trail.on_undecided("while it was held for approval"),
            Phase::Forwarded | Phase::Refused => {}
        }
        let tally = self.tally();
        let who = match (&self.caller, &self.unbound) {
            (Some(caller), _) => {
                let role = gateway.policy.roles.get(caller.role).map(|r| r.name.as_str()).unwrap_or("?");
                Some((caller, role))
            }
            // Verified, but no role was granted: the record names the caller without one.
            (None, Some(caller)) => Some((caller, "")),
            (None, None) => None,
        };
        let mut names = gateway.audit_blobs.as_ref()?.borrow_mut();
        // Before a role is bound nothing was read that needs masking; any role's key serves.
        let redaction = gateway.mask_everything(self.caller.as_ref().map(|c| c.role).unwrap_or(0));
        let mut mask = |text: &str| match redaction.as_ref().map(|r| redact(r, text, &mut Tally::default())) {
            Some(Ok(masked)) => masked.into_owned(),
            // Every detector masks, so nothing blocks; keep nothing rather than the text.
            _ => String::new(),
        };
        let recorder = Recorder { names: &mut names, mask: &mut mask };
        let mut record = trail.finish(who, &tally, ending, recorder);
        if let Some(governor) = self.tools.as_ref().and_then(|t| t.governor.as_ref()) {
            record.tool_calls = governor.records();
        }
        record.mask_labels(&mut mask);
        record.agent = self
            .agent
            .is_subagent()
            .then(|| AgentRecord { id: self.agent.agent_id.clone(), parent: self.agent.parent_agent_id.clone() });
        record.tool_results = std::mem::take(&mut self.tool_results);
        gateway.tool_calls.borrow_mut().remember(&self.request_id, &record.tool_calls);
        match settled {
            Some(settled) => {
                record.usage = settled.usage;
                record.cost_nanos = settled.cost_nanos;
            }
            None => record.cost_nanos = gateway.policy.pricing.as_ref().map(|_| 0),
        }
        Some(record)
    }

    /// What DLP found so far, in both directions (counts only).
    pub fn tally(&self) -> Tally {
        let mut tally = self.tally.clone();
        if let Some(stream) = &self.stream {
            tally.merge(stream.tally());
        }
        tally
    }

    /// Renders a refusal for this exchange: logs it, notes it for the audit record, and ends
    /// the exchange's decisions (later response callbacks pass untouched).
    pub fn refuse(&mut self, denial: Denial) -> LocalReply {
        let subject = self.caller.as_ref().or(self.unbound.as_ref()).map(|c| c.subject.as_str());
        log::info!("{} denied {} sub={:?}: {}", self.request_id, denial.reason.code(), subject, denial.detail);
        let reply = denial.to_reply(&self.request_id);
        // The first refusal is the decision; a later one (a call out of turn) changes nothing.
        if let (Some(trail), false) = (self.trail.as_mut(), self.phase == Phase::Refused) {
            trail.on_refused(&reply);
        }
        self.phase = Phase::Refused;
        self.held = None;
        self.response = ResponseMode::Done;
        reply
    }

    fn log_allowed(&self, policy: &Policy, body: Option<(&str, bool, bool)>) {
        // Allowed requests log at debug level: skip the formatting when that level is off.
        if !log::log_enabled!(log::Level::Debug) {
            return;
        }
        let Some(caller) = &self.caller else { return };
        let role = policy.roles.get(caller.role).map(|r| r.name.as_str()).unwrap_or("?");
        let job: String = caller.job.iter().map(|(k, v)| format!(" {k}={v:?}")).collect();
        let body = body
            .map(|(model, stream, clamped)| format!(" model={model:?} stream={stream} clamped={clamped}"))
            .unwrap_or_default();
        log::debug!(
            "{} allowed {} sub={:?} role={role}{body}{job}",
            self.request_id,
            self.endpoint.as_ref().map(Endpoint::label).unwrap_or("unknown"),
            caller.subject
        );
    }
}

/// Governing the tool calls of an answer ([`crate::core::tools::govern`]): the exchange's side.
impl Exchange {
    /// The tool calls of the answer so far, with their fate (empty when the role has no tool
    /// rules).
    pub fn tool_calls(&self) -> &[govern::GovernedCall] {
        self.tools.as_ref().and_then(|t| t.governor.as_ref()).map_or(&[], Governor::calls)
    }

    /// Starts governing the answer's tool calls when the role has tool rules and this is a
    /// Messages answer that succeeded; returns whether it did.
    fn start_governing(&mut self, event_stream: bool) -> bool {
        let messages = self.endpoint == Some(Endpoint::Messages) && self.status == Some(200);
        let Some(track) = self.tools.as_mut().filter(|_| messages) else { return false };
        let context = CallContext { workspace: track.gist.workspace.clone(), subagent: self.agent.is_subagent() };
        track.governor = Some(if event_stream { Governor::stream(context) } else { Governor::json(context) });
        true
    }

    /// Passes masked stream bytes through the governor (`end`: the upstream ended); returns
    /// what may be delivered now.
    fn govern_stream(&mut self, gateway: &Gateway, bytes: Vec<u8>, end: bool) -> Vec<u8> {
        let judge = gateway.tool_judge(self.role_index());
        let Some(track) = self.tools.as_mut() else { return bytes };
        let Some(governor) = track.governor.as_mut() else { return bytes };
        let mut out = std::mem::take(&mut track.backlog);
        out.extend(governor.push(&bytes, &judge));
        if end {
            out.extend(governor.end(&judge));
        }
        self.ask_for_tool_approval(gateway, &mut out);
        out
    }

    /// Whether every tool call of the answer is decided and delivered (true without rules).
    fn tool_calls_done(&self) -> bool {
        self.tools.as_ref().and_then(|t| t.governor.as_ref()).is_none_or(Governor::is_done)
    }

    /// Judges the calls of a whole answer once it is masked (`step`, from `original`).
    fn govern_body(&mut self, gateway: &Gateway, original: &[u8], step: ResponseBodyStep) -> ResponseBodyStep {
        let judge = gateway.tool_judge(self.role_index());
        let Some(governor) = self.tools.as_mut().and_then(|t| t.governor.as_mut()) else { return step };
        let current = match &step {
            ResponseBodyStep::Deliver => original,
            ResponseBodyStep::Replace(bytes) => bytes.as_slice(),
            ResponseBodyStep::Reply(_) | ResponseBodyStep::Hold => return step,
        };
        let decided = governor.json_body(current, &judge);
        let changed = decided.as_deref().is_some_and(|body| body != current);
        let mut out = decided.unwrap_or_default();
        self.ask_for_tool_approval(gateway, &mut out);
        if !self.tool_calls_done() {
            return ResponseBodyStep::Hold;
        }
        if changed || out.as_slice() != current {
            ResponseBodyStep::Replace(out)
        } else {
            step
        }
    }

    /// When a call waits for a human and nobody was asked yet, prepares the callout; a callout
    /// that cannot be made refuses the call at once (fail closed), its text added to `out`.
    fn ask_for_tool_approval(&mut self, gateway: &Gateway, out: &mut Vec<u8>) {
        let judge = gateway.tool_judge(self.role_index());
        loop {
            let Some(track) = self.tools.as_ref() else { return };
            let asking = track.governor.as_ref().and_then(Governor::asking);
            if track.held.is_some() || asking.is_none() {
                return;
            }
            match self.tool_callout(gateway) {
                Ok((callout, held)) => {
                    let view = ApprovalView {
                        decision: "asked".to_string(),
                        reasons: held.reasons.clone(),
                        review: None,
                        reviewer: None,
                        verdict: None,
                        grant: None,
                    };
                    if let Some(track) = self.tools.as_mut() {
                        if let Some(governor) = track.governor.as_mut() {
                            governor.note_approval(view);
                        }
                        track.callout = Some(callout);
                        track.held = Some(held);
                    }
                    return;
                }
                Err(denial) => {
                    log::warn!(
                        "{} a tool call needs approval, which cannot be asked: {}",
                        self.request_id,
                        denial.detail
                    );
                    let why = Answered::Failed { why: denial.detail };
                    if let Some(governor) = self.tools.as_mut().and_then(|t| t.governor.as_mut()) {
                        out.extend(governor.answer(why, &judge));
                    }
                }
            }
        }
    }

    /// The callout asking the approval service about the call that waits, and what its verdict
    /// must be about: the fingerprint binds caller, role, the rule and the call (kind, name,
    /// MCP server, masked input — exactly what the approver sees; not the block id, so Claude
    /// proposing the same call again after a late approval is released at once).
    fn tool_callout(&self, gateway: &Gateway) -> Result<(Callout, Held), Denial> {
        let internal = |what: &str| Denial::new(Reason::InternalError, what.to_string());
        let track = self.tools.as_ref().ok_or_else(|| internal("no tool calls are governed"))?;
        let governed = track.governor.as_ref().and_then(Governor::asking).ok_or_else(|| internal("no call waits"))?;
        let (Some(settings), Some(keys)) = (&gateway.policy.approvals, &gateway.keys.approvals) else {
            return Err(Denial::new(Reason::ApprovalUnavailable, "no approval service is configured"));
        };
        let caller = self.caller.as_ref().ok_or_else(|| internal("a tool approval without a caller"))?;
        let role = gateway.policy.roles.get(caller.role).ok_or_else(|| internal("role table out of sync"))?;
        let reason = governed.approval_reason();
        let reasons = [reason.as_str()];
        let call = &governed.call;
        let comparable = crate::core::audit::canonical::canonical(&serde_json::json!({
            "tool_call": {
                "kind": call.kind.block_type(),
                "name": call.name,
                "server_name": call.server_name,
                "input": governed.masked_input,
            }
        }));
        let fingerprint = approval::fingerprint(&caller.issuer, &caller.subject, &role.name, &reasons, &comparable);
        let judge = gateway.tool_judge(caller.role);
        let excerpt = match &track.gist.newest_message {
            Some(raw) => {
                let message: serde_json::Value = serde_json::from_str(raw).unwrap_or_default();
                let shown = approval::BodyView::of(&serde_json::json!({"messages": [message]}));
                approval::excerpt(&judge.mask(&shown.newest_turn), EXCERPT_CHARS)
            }
            None => String::new(),
        };
        let gist = &track.gist;
        let hold = HoldRequest {
            version: 1,
            request_id: &self.request_id,
            fingerprint: &fingerprint,
            caller: CallerView::of(caller),
            role: &role.name,
            reasons: &reasons,
            model: &gist.model,
            tools: &gist.tools,
            max_tokens: gist.max_tokens,
            body_bytes: gist.body_bytes,
            mcp_servers: gist.mcp_servers,
            mcp_server_urls: &[],
            messages: gist.messages,
            excerpt: &excerpt,
            system_excerpt: "",
            prefill_excerpt: "",
            hold_seconds: settings.hold_seconds,
            session_id: self.session_id(),
            agent: agent_view(&self.agent),
            tool_call: Some(ToolCallView {
                id: &call.id,
                kind: call.kind.block_type(),
                name: &call.name,
                server_name: call.server_name.as_deref(),
                input: &governed.masked_input,
                rule: governed.judgement.rule.as_deref().unwrap_or(""),
                reason: &governed.judgement.reason,
            }),
        };
        let body = serde_json::to_vec(&hold).map_err(|_| internal("encoding the approval request failed"))?;
        log::info!(
            "{} tool call {} ({}) held for approval sub={:?} role={} rule={} fp={}",
            self.request_id,
            call.id,
            call.name,
            caller.subject,
            role.name,
            reason,
            fingerprint.get(..16).unwrap_or_default()
        );
        Ok((Callout::hold(settings, keys, body), Held { fingerprint, reasons: vec![reason], clamped: false }))
    }

    /// The session the request belongs to (Claude Code's session header or
    /// `metadata.user_id`), when it named one.
    fn session_id(&self) -> Option<&str> {
        self.tools.as_ref()?.gist.session.as_deref()
    }

    /// The callout asking about a tool call that waits for a human, once per call: the glue
    /// sends it and hands the answer to [`Exchange::on_tool_approval_answer`].
    pub fn take_tool_callout(&mut self) -> Option<Callout> {
        self.tools.as_mut()?.callout.take()
    }

    /// Whether a tool call waits for the approval service's answer.
    pub fn awaits_tool_approval(&self) -> bool {
        self.tools.as_ref().is_some_and(|t| t.held.is_some())
    }

    /// Judges the approval service's answer about the held tool call (`None`: the callout
    /// failed before any answer): only a signed `approved` verdict for this caller and this
    /// call's fingerprint releases it; anything else refuses it with a text naming the
    /// reviewer, the timeout or the failure. Returns what to deliver now.
    pub fn on_tool_approval_answer(
        &mut self,
        gateway: &Gateway,
        answer: Option<(u16, &[u8])>,
        now: f64,
    ) -> ToolAnswerStep {
        let Some(held) = self.tools.as_mut().and_then(|t| t.held.take()) else {
            return ToolAnswerStep { bytes: Vec::new(), done: self.tool_calls_done() };
        };
        if self.phase == Phase::Refused {
            // Warden ended the answer meanwhile (a revoked caller): nothing more is delivered.
            return ToolAnswerStep { bytes: Vec::new(), done: true };
        }
        let decided = self.decision(gateway, &held, answer, now);
        let hold_seconds = gateway.policy.approvals.as_ref().map_or(0, |a| a.hold_seconds);
        let mut view = ApprovalView {
            decision: String::new(),
            reasons: held.reasons.clone(),
            review: None,
            reviewer: None,
            verdict: None,
            grant: None,
        };
        let answered = match decided {
            Ok((decision, verdict, grant)) => {
                view.verdict = Some(verdict);
                match decision {
                    Decision::Approved { review, reviewer } => {
                        log::info!("{} tool call approved by {reviewer:?} (review {review})", self.request_id);
                        view.decision = "approved".into();
                        view.review = Some(review);
                        view.reviewer = Some(reviewer);
                        view.grant = grant.map(|g| GrantView {
                            id: g.id,
                            session_id: g.session_id,
                            expires_at: g.expires_at,
                            reasons: g.reasons,
                        });
                        Answered::Approved
                    }
                    Decision::Denied { review, reviewer, comment } => {
                        view.decision = "denied".into();
                        view.review = Some(review.clone());
                        view.reviewer = Some(reviewer.clone());
                        Answered::Denied { reviewer: format!("{reviewer} (review {review})"), comment }
                    }
                    Decision::Pending { review, .. } => {
                        view.decision = "pending".into();
                        view.review = Some(review);
                        Answered::TimedOut { hold_seconds }
                    }
                }
            }
            Err(denial) => {
                let invalid = denial.reason == Reason::ApprovalInvalid;
                view.decision = if invalid { "invalid" } else { "unavailable" }.into();
                let why = if invalid {
                    "the approval service's answer did not verify"
                } else {
                    "the approval service could not be asked or did not answer"
                };
                Answered::Failed { why: why.to_string() }
            }
        };
        let judge = gateway.tool_judge(self.role_index());
        let mut out = Vec::new();
        if let Some(governor) = self.tools.as_mut().and_then(|t| t.governor.as_mut()) {
            governor.note_approval(view);
            out = governor.answer(answered, &judge);
        }
        self.ask_for_tool_approval(gateway, &mut out);
        let done = self.tool_calls_done();
        let ended = self.response != ResponseMode::Stream && self.response != ResponseMode::Buffer;
        if !ended {
            // The upstream still streams: these bytes go out with its next chunk.
            if let Some(track) = self.tools.as_mut() {
                track.backlog.extend(out);
            }
            return ToolAnswerStep { bytes: Vec::new(), done };
        }
        ToolAnswerStep { bytes: self.count_output(out, done), done }
    }
}

/// The agent a hold names, when Claude Code marked the request with either id.
fn agent_view(ids: &AgentIds) -> Option<AgentView<'_>> {
    (ids.agent_id.is_some() || ids.parent_agent_id.is_some())
        .then_some(AgentView { id: ids.agent_id.as_deref(), parent: ids.parent_agent_id.as_deref() })
}

/// The caller a verified token names, for the record of a request refused a role (the role
/// index is meaningless there).
fn verified_caller(token: &TokenStatus) -> Option<Caller> {
    let TokenStatus::Verified(claims) = token else { return None };
    Some(Caller {
        subject: claims.subject.clone().filter(|s| !s.is_empty())?,
        issuer: claims.issuer.clone().unwrap_or_default(),
        groups: claims.groups.clone(),
        job: claims.job.clone(),
        role: usize::MAX,
        token_id: claims.token_id.clone(),
        token_expires_at: claims.expires_at.unwrap_or_default(),
    })
}

/// What to do when a request carries two credentials that differ.
const ONE_CREDENTIAL_HINT: &str = "the request carries both Authorization and x-api-key: send the token in only one \
     (with ANTHROPIC_AUTH_TOKEN, unset ANTHROPIC_API_KEY), or the same token in both (apiKeyHelper)";

/// jwt_authn checks every token-bearing header, so a client key in `x-api-key` beside a valid
/// bearer token fails verification; say so, since the jwt_authn reason alone is cryptic.
fn with_credential_hint(mut denial: Denial, head: &RequestHead) -> Denial {
    if denial.reason == Reason::TokenInvalid
        && head.header("authorization").is_some()
        && head.header("x-api-key").is_some()
        && !denial.detail.contains(ONE_CREDENTIAL_HINT)
    {
        denial.detail.push_str("; ");
        denial.detail.push_str(ONE_CREDENTIAL_HINT);
    }
    denial
}

/// Every credential the request carries: each `Authorization` value (without `Bearer `) and
/// each `x-api-key` value.
fn credentials<'h>(head: &'h RequestHead) -> impl Iterator<Item = &'h str> + 'h {
    let bearer = head.header_values("authorization").map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim());
    bearer.chain(head.header_values("x-api-key").map(str::trim))
}

/// Claude Code's `apiKeyHelper` sends its value as both `x-api-key` and `Authorization: Bearer`;
/// a request with two credentials is refused unless they are the same token (jwt_authn verified
/// each header it found, but which payload it kept is not specified).
fn two_credentials(head: &RequestHead) -> Option<Denial> {
    let mut values = credentials(head);
    let first = values.next()?;
    values
        .any(|other| other != first)
        .then(|| Denial::new(Reason::TokenInvalid, format!("two different credentials; {ONE_CREDENTIAL_HINT}")))
}

/// Whether the request's token came from Claude Code's `apiKeyHelper` (the same value in both
/// headers): a 401 without `x-should-retry` makes it run the helper again and retry, whereas
/// a fixed `ANTHROPIC_AUTH_TOKEN` would be retried, unchanged, for minutes.
fn sent_by_key_helper(head: &RequestHead) -> bool {
    head.header("authorization").is_some() && head.header("x-api-key").is_some() && two_credentials(head).is_none()
}

/// Checks `content-type`, `content-encoding` and a declared `content-length` before the body.
fn check_body_headers(head: &RequestHead, max_body_bytes: u64) -> Result<(), Denial> {
    let content_type = head.header("content-type").unwrap_or("");
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/json") {
        return Err(Denial::new(
            Reason::InvalidContentType,
            format!(
                "content-type must be application/json, got {:?}",
                content_type.chars().take(80).collect::<String>()
            ),
        ));
    }
    for encoding in head.header_values("content-encoding").flat_map(|v| v.split(',')).map(str::trim) {
        if !encoding.is_empty() && !encoding.eq_ignore_ascii_case("identity") {
            return Err(Denial::new(
                Reason::CompressedBody,
                format!("compressed request bodies ({encoding}) cannot be inspected; send plain JSON"),
            ));
        }
    }
    if let Some(length) = head.header("content-length").and_then(|v| v.trim().parse::<u64>().ok()) {
        if length > max_body_bytes {
            return Err(too_large(max_body_bytes));
        }
    }
    Ok(())
}

fn too_large(limit: u64) -> Denial {
    Denial::new(Reason::BodyTooLarge, format!("the request body exceeds the limit of {limit} bytes"))
}

/// The usage an ended exchange is charged (see [`Exchange::settle`]) and whether the
/// reservation stood in for missing figures.
fn charged_usage(
    forwarded: bool,
    status: Option<u16>,
    metered: Metered,
    ask: &Ask,
    reserved_output: u64,
) -> (Usage, bool) {
    if !forwarded {
        return (Usage::default(), false);
    }
    let mut usage = metered.usage;
    let answered_in_full = metered.output_final || status.is_some_and(|s| s >= 400);
    if answered_in_full {
        return (usage, false);
    }
    // Ended without its final figures (abort, reset, cut, a stream error): never cheaper than
    // the reservation.
    if !metered.input_known {
        usage.input_tokens = Some(usage.input_tokens.unwrap_or(0).max(ask.input_tokens));
    }
    usage.output_tokens = Some(usage.output_tokens.unwrap_or(0).max(reserved_output));
    if ask.web_searches > 0 {
        usage.web_search_requests = Some(usage.web_search_requests.unwrap_or(0).max(ask.web_searches));
    }
    (usage, true)
}

/// `body` with its top-level `max_tokens` value replaced by `value` (only those bytes change).
fn with_max_tokens(body: &[u8], value: u64) -> Option<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct MaxTokens<'a> {
        #[serde(borrow)]
        max_tokens: Option<&'a RawValue>,
    }
    let text = std::str::from_utf8(body).ok()?;
    let raw = serde_json::from_str::<MaxTokens>(text).ok()?.max_tokens?;
    apply(body, vec![splice_of(text, raw.get(), value.to_string().into_bytes())]).ok().flatten()
}

/// Seconds since the epoch → whole milliseconds.
pub fn millis(seconds: f64) -> u64 {
    (seconds * 1000.0) as u64
}

/// The byte range `part` (borrowed from `text`) spans in it.
fn span_of(text: &str, part: &str) -> std::ops::Range<usize> {
    let splice = splice_of(text, part, Vec::new());
    splice.start..splice.end
}

/// `req_warden_<Envoy's x-request-id>`, the id Envoy's own local replies use too.
pub fn request_id_for(envoy_request_id: Option<&str>) -> String {
    let id: String = envoy_request_id
        .unwrap_or("unknown")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    format!("req_warden_{id}")
}
