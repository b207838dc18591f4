//! One audit record per exchange (docs/audit.md): the typed record, how the forwarded request is
//! split into content-addressed blobs, and the session and job ids.
//!
//! Blobs: the forwarded body's `system` value and each entry of `messages` are named
//! `sha256:<hex>` of their exact JSON text after masking ([`BlobNames::name`]); a record carries in
//! `blobs` only the texts its worker has not sent before, so a session that re-sends its history
//! on every turn records each message once. The per-worker memo maps a message's keyed digest
//! to the blob's name; the request path already computed that digest for DLP's clean-message
//! memo and the body's [`Outline`] from its single parse, so [`Forwarded::take`] keeps a message
//! already sent by name alone (no copy, no parse, no SHA-256, no masking pass) and copies only
//! the texts still to be named.
//!
//! Every struct here declares its fields in byte order of their names: [`Record::seal`] writes a
//! record as canonical JSON directly (the bytes `warden serve` stores and the access log's hash
//! covers), and a test holds it to that.
//!
//! Parameters ([`record_param`]): every string and key masked with every detector, members
//! named as credentials removed, and a parameter too deep or too large omitted (its size
//! kept), so whatever the filter accepts makes a record the service can parse and store.
//!
//! Limits: the memo is per worker, bounded ([`BLOB_MEMO_CAPACITY`]; when full it starts over,
//! which only re-sends texts) and at most [`BLOB_MEMO_MAX_AGE_MS`] old ([`BlobNames::expire`],
//! so a retention prune never removes a blob a worker still names). A blob counts as sent only once the service acknowledged a record
//! carrying it ([`BlobNames::acknowledge`]); until then every record naming it carries it.

use super::transcript::{Transcript, Usage};
use crate::core::identity::Caller;
use crate::core::request::messages::Outline;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

/// Blob names a worker remembers before starting over.
pub const BLOB_MEMO_CAPACITY: usize = 65_536;

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The answer was delivered completely.
    Completed,
    /// Warden refused the request (or ended its answer with a refusal).
    Refused,
    /// The upstream's stream ended with an error event or malformed.
    StreamError,
    /// The client went away before the answer was complete.
    ClientAbort,
    /// The upstream connection failed or reset.
    UpstreamReset,
    /// The upstream answered with an error status.
    UpstreamError,
    /// Warden ended the streamed answer because it used up its budget's output allowance
    /// (the stream cut); the record's usage counts the output tokens up to the cut.
    BudgetCut,
}

/// Who made the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityView {
    /// Groups from the token.
    pub groups: Vec<String>,
    /// Token issuer.
    pub issuer: String,
    /// Job claims (CI runs).
    pub job: BTreeMap<String, String>,
    /// The role the request ran under.
    pub role: String,
    /// Token subject.
    pub subject: String,
    /// The token's `exp`, in milliseconds since the epoch.
    pub token_expires_at: Option<u64>,
    /// The token's `jti`, when it has one.
    pub token_id: Option<String>,
}

impl IdentityView {
    /// The view of an authenticated caller under `role`.
    pub fn of(caller: &Caller, role: &str) -> Self {
        Self {
            issuer: caller.issuer.clone(),
            subject: caller.subject.clone(),
            groups: caller.groups.clone(),
            role: role.to_string(),
            token_id: caller.token_id.clone(),
            token_expires_at: Some((caller.token_expires_at * 1000.0) as u64),
            job: caller.job.iter().cloned().collect(),
        }
    }
}

/// What Warden decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionView {
    /// Whether the request went upstream.
    pub allowed: bool,
    /// The refusal's message.
    pub message: Option<String>,
    /// The refusal's reason code.
    pub reason: Option<String>,
    /// The status the client received.
    pub status: Option<u16>,
}

/// The approval a held request got. Fields are declared in key (byte) order, as in every struct
/// of the record: [`Record::seal`] hashes the bytes serde writes, which must be canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalView {
    /// `approved`, `denied`, `pending`, `unavailable` or `invalid`.
    pub decision: String,
    /// When the approval came from a session grant (or created one): its scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantView>,
    /// Reason codes of the triggers that fired.
    pub reasons: Vec<String>,
    /// Review id.
    pub review: Option<String>,
    /// Who decided.
    pub reviewer: Option<String>,
    /// The signed verdict, kept as evidence.
    pub verdict: Option<String>,
}

/// A session grant: an approval that covers later requests of one agent session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantView {
    /// Unix seconds when it ends.
    pub expires_at: u64,
    /// The grant's id.
    pub id: String,
    /// The trigger reasons it covers.
    pub reasons: Vec<String>,
    /// The session it covers.
    pub session_id: String,
}

/// The request as forwarded: parameters inline, system prompt and messages by blob name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestView {
    /// Each message's blob, in order.
    pub messages: Vec<String>,
    /// Every top-level field but `system`, `messages` and `tools`.
    pub params: Map<String, Value>,
    /// The system prompt's blob.
    pub system: Option<String>,
    /// Declared tool names (Anthropic tool types for Anthropic-defined tools).
    pub tools: Vec<String>,
}

/// The answer as delivered (serialized as one object: the transcript's fields with `status`
/// and `stream`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseView {
    /// HTTP status delivered to the client.
    pub status: Option<u16>,
    /// Whether it was an event stream.
    pub stream: bool,
    /// Content, stop reason, usage, errors.
    pub transcript: Transcript,
}

impl Serialize for ResponseView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let t = &self.transcript;
        let mut map = serializer.serialize_map(Some(11))?;
        // Keys in canonical (byte) order: see `Record::seal`.
        map.serialize_entry("complete", &t.complete)?;
        map.serialize_entry("content", &t.content)?;
        map.serialize_entry("error", &t.error)?;
        map.serialize_entry("malformed", &t.malformed)?;
        map.serialize_entry("message_id", &t.message_id)?;
        map.serialize_entry("model", &t.model)?;
        map.serialize_entry("status", &self.status)?;
        map.serialize_entry("stop_reason", &t.stop_reason)?;
        map.serialize_entry("stream", &self.stream)?;
        map.serialize_entry("truncated", &t.truncated)?;
        map.serialize_entry("usage", &t.usage)?;
        map.end()
    }
}

/// When things happened, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// The exchange ended.
    pub end: u64,
    /// The first response byte went out.
    pub first_byte: Option<u64>,
    /// Request headers arrived.
    pub start: u64,
}

/// DLP counts by action and detector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DlpView {
    /// Findings only counted.
    pub audited: BTreeMap<String, u32>,
    /// Findings that blocked.
    pub blocked: BTreeMap<String, u32>,
    /// Findings masked.
    pub masked: BTreeMap<String, u32>,
}

/// One exchange's record, without its place in the trail (source and sequence number, given
/// when it is queued; [`Record::seal`] writes it).
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The id the client saw in `request-id`.
    pub request_id: String,
    /// Anthropic's `request-id`, when it answered.
    pub upstream_request_id: Option<String>,
    /// The agent session (Claude Code's session id).
    pub session_id: Option<String>,
    /// The CI job (from job claims).
    pub job_id: Option<String>,
    /// Who asked; `None` when the request was refused before identity was known.
    pub identity: Option<IdentityView>,
    /// The endpoint's policy name (`messages`, …) or `unknown`.
    pub endpoint: String,
    /// `:method`.
    pub method: String,
    /// `:path`.
    pub path: String,
    /// What Warden decided.
    pub decision: DecisionView,
    /// The approval, for a held request.
    pub approval: Option<ApprovalView>,
    /// The model asked for.
    pub model: Option<String>,
    /// The request as forwarded.
    pub request: Option<RequestView>,
    /// The answer as delivered.
    pub response: Option<ResponseView>,
    /// What DLP found.
    pub dlp: DlpView,
    /// Token usage: what the answer reported, or for an exchange that ended without its final
    /// figures, the conservative figures it was charged ([`crate::core::budget`]).
    pub usage: Usage,
    /// What the exchange cost in nanos of the price table's currency, priced from `usage`
    /// (`None` when the policy has no `pricing`; `0` when nothing was charged).
    pub cost_nanos: Option<u64>,
    /// When.
    pub timings: Timings,
    /// How it ended.
    pub outcome: Outcome,
    /// Blob texts this record introduces, by name.
    pub blobs: BTreeMap<String, String>,
    /// The agent that sent the request, when Claude Code marked it (subagents).
    pub agent: Option<AgentRecord>,
    /// The tool calls Claude proposed in the answer and what Warden did with each.
    pub tool_calls: Vec<ToolCallRecord>,
    /// The `tool_result` blocks the request sent back, with their provenance.
    pub tool_results: Vec<ToolResultRecord>,
}

/// The agent that sent a request: Claude Code's `x-claude-code-agent-id` and
/// `x-claude-code-parent-agent-id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentRecord {
    /// The (sub)agent's id.
    pub id: Option<String>,
    /// The id of the agent that started it.
    pub parent: Option<String>,
}

/// One proposed tool call and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolCallRecord {
    /// For a call that waited for a human: the approval (review, reviewer, verdict, grant).
    pub approval: Option<ApprovalView>,
    /// The block's id (`toolu_…`).
    pub id: String,
    /// The input as delivered or refused, masked, as JSON text.
    pub input: String,
    /// `tool_use`, `server_tool_use` or `mcp_tool_use`.
    pub kind: String,
    /// The tool's name.
    pub name: String,
    /// `allowed`, `denied`, `approved`, `refused_by_reviewer`, `timed_out` or `incomplete`.
    pub outcome: String,
    /// The rule's reason, in words.
    pub reason: Option<String>,
    /// The rule that decided (its id); `None` when no rule matched.
    pub rule: Option<String>,
}

/// One `tool_result` block the agent sent back in the request's newest message (older messages
/// are history, recorded by the requests that first sent them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolResultRecord {
    /// The call it answers, as this gateway worker remembered it (the record that proposed the
    /// call and what Warden did with it); `None` when the worker did not see the call — another
    /// worker or an earlier process served it, or Claude never proposed it. `warden audit
    /// replay` and the session page complete it from the session's records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answers: Option<AnsweredCall>,
    /// The size of its `content` in bytes, as the JSON the agent sent (escapes and base64 images
    /// included).
    pub bytes: u64,
    /// Whether the agent marked it `is_error`.
    pub is_error: bool,
    /// Whether it was over the role's `tools.max_result_bytes`: its content was withheld
    /// (replaced by a notice) and never reached Anthropic.
    pub over_limit: bool,
    /// The `tool_use_id` it answers (at most [`crate::core::tools::results::MAX_ID_CHARS`]
    /// characters: a longer one is cut and ends with `…`).
    pub tool_use_id: String,
}

/// The proposed call a `tool_result` answers, as the filter remembered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnsweredCall {
    /// What Warden did with the call ([`ToolCallRecord::outcome`]: `allowed`, `approved`,
    /// `denied`, …).
    pub outcome: String,
    /// The `request_id` of the exchange whose answer proposed the call.
    pub request_id: String,
}

/// A record with its place in the trail, without its blobs: what `warden serve` stores.
struct Placed<'a> {
    source: &'a str,
    seq: u64,
    id: &'a str,
    record: &'a Record,
}

impl Serialize for Placed<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.record;
        let mut map = serializer.serialize_map(Some(22))?;
        // Keys in canonical (byte) order: see `Record::seal`.
        if r.agent.is_some() {
            map.serialize_entry("agent", &r.agent)?;
        }
        map.serialize_entry("approval", &r.approval)?;
        map.serialize_entry("cost_nanos", &r.cost_nanos)?;
        map.serialize_entry("decision", &r.decision)?;
        map.serialize_entry("dlp", &r.dlp)?;
        map.serialize_entry("endpoint", &r.endpoint)?;
        map.serialize_entry("id", self.id)?;
        map.serialize_entry("identity", &r.identity)?;
        map.serialize_entry("job_id", &r.job_id)?;
        map.serialize_entry("method", &r.method)?;
        map.serialize_entry("model", &r.model)?;
        map.serialize_entry("outcome", &r.outcome)?;
        map.serialize_entry("path", &r.path)?;
        map.serialize_entry("request", &r.request)?;
        map.serialize_entry("request_id", &r.request_id)?;
        map.serialize_entry("response", &r.response)?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("session_id", &r.session_id)?;
        map.serialize_entry("source", self.source)?;
        map.serialize_entry("timings", &r.timings)?;
        if !r.tool_calls.is_empty() {
            map.serialize_entry("tool_calls", &r.tool_calls)?;
        }
        if !r.tool_results.is_empty() {
            map.serialize_entry("tool_results", &r.tool_results)?;
        }
        map.serialize_entry("upstream_request_id", &r.upstream_request_id)?;
        map.serialize_entry("usage", &r.usage)?;
        map.serialize_entry("version", &RECORD_VERSION)?;
        map.end()
    }
}

/// The record format's version.
pub const RECORD_VERSION: u32 = 1;

/// A record placed in the trail: its id, its hash, and the line that carries it to the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// `<source>-<seq>`.
    pub id: String,
    /// Hex SHA-256 of the record's canonical JSON without `blobs`: the bytes `warden serve`
    /// stores and chains, so the hash Envoy's access log shows can be checked against the store.
    pub hash: String,
    /// The record's JSON with its blobs (NDJSON line, without the newline).
    pub line: Vec<u8>,
}

impl Record {
    /// The record with its place in the trail: `version`, `source`, `seq` and
    /// `id` = `<source>-<seq>`.
    ///
    /// The record is written in canonical JSON directly (no intermediate tree): every struct in
    /// it declares its fields, and the hand-written maps write their keys, in byte order, and
    /// every map in it is sorted (`BTreeMap`, `serde_json::Map`). A test holds this equal to
    /// [`canonical`](super::canonical::canonical) of the same record.
    pub fn seal(&self, source: &str, seq: u64) -> Result<Sealed, serde_json::Error> {
        let id = format!("{source}-{seq}");
        let mut line = serde_json::to_vec(&Placed { source, seq, id: &id, record: self })?;
        if json_depth(&line, MAX_SEALED_DEPTH) > MAX_SEALED_DEPTH {
            // Only an answer can nest this deep (parameters are bounded when taken): bound it.
            let mut bounded = self.clone();
            bounded.bound_answer();
            line = serde_json::to_vec(&Placed { source, seq, id: &id, record: &bounded })?;
        }
        let hash = super::canonical::sha256_hex(&[&line]);
        if !self.blobs.is_empty() {
            // `{…}` becomes `{…,"blobs":{…}}` (the service takes any key order).
            line.pop();
            line.extend_from_slice(b",\"blobs\":");
            serde_json::to_writer(&mut line, &self.blobs)?;
            line.push(b'}');
        }
        Ok(Sealed { id, hash, line })
    }
}

/// Deepest record [`Record::seal`] writes; a deeper answer is bounded ([`MAX_ANSWER_DEPTH`]).
pub const MAX_SEALED_DEPTH: usize = 48;
/// Deepest value kept inside one block of the recorded answer (a tool call's `input`, …) or
/// its error; deeper values are replaced by `{"$warden": "omitted", "reason": …}`.
pub const MAX_ANSWER_DEPTH: usize = 24;

impl Record {
    /// Masks, with `mask` (every detector), the strings the client chose that the record keeps
    /// outside the request and the answer: `path` (a query string may carry a key), `model`,
    /// `session_id`, `job_id`, the refusal's message (it may quote the client) and the upstream's
    /// request id.
    pub fn mask_labels(&mut self, mask: &mut dyn FnMut(&str) -> String) {
        self.path = mask(&self.path);
        for text in [
            &mut self.model,
            &mut self.session_id,
            &mut self.job_id,
            &mut self.decision.message,
            &mut self.upstream_request_id,
        ]
        .into_iter()
        .flatten()
        {
            *text = mask(text);
        }
    }

    /// Replaces what nests deeper than [`MAX_ANSWER_DEPTH`] in the answer's blocks and error.
    fn bound_answer(&mut self) {
        if let Some(response) = self.response.as_mut() {
            let transcript = &mut response.transcript;
            transcript.content.iter_mut().chain(transcript.error.iter_mut()).for_each(bound_depth);
        }
    }
}

/// Replaces every array or object of `value` at depth [`MAX_ANSWER_DEPTH`] with an omission
/// marker (explicit stack, no recursion).
fn bound_depth(value: &mut Value) {
    let mut stack: Vec<(&mut Value, usize)> = vec![(value, 1)];
    while let Some((value, depth)) = stack.pop() {
        let nested = matches!(value, Value::Array(_) | Value::Object(_));
        if nested && depth >= MAX_ANSWER_DEPTH {
            let mut map = Map::new();
            map.insert("$warden".into(), Value::String("omitted".into()));
            map.insert("reason".into(), Value::String("nested deeper than the recorded limit".into()));
            *value = Value::Object(map);
            continue;
        }
        match value {
            Value::Array(items) => stack.extend(items.iter_mut().map(|item| (item, depth + 1))),
            Value::Object(fields) => stack.extend(fields.values_mut().map(|item| (item, depth + 1))),
            _ => {}
        }
    }
}

/// The worker's memo of blobs: forwarded text (its message digest) → blob name, for blobs the
/// service acknowledged (`sent`) and for blobs carried by records still waiting (`pending`).
///
/// Only an acknowledged blob lets a later record name a text without carrying it: a record
/// made while the blob's first carrier waits carries it again, so a carrier that is refused or
/// lost never leaves later records naming a blob the store lacks.
#[derive(Debug, Default)]
pub struct BlobNames {
    sent: HashMap<u128, String>,
    /// Blobs carried by records not acknowledged yet: digest → (name, masked text), so a record
    /// made meanwhile carries a copy without masking the text again.
    pending: HashMap<u128, (String, String)>,
    /// The digest of each pending name.
    pending_names: HashMap<String, u128>,
    /// Bytes of masked text in `pending`.
    pending_bytes: usize,
    /// When `sent` was last seen empty (milliseconds): no entry is older, and it is emptied
    /// once [`BLOB_MEMO_MAX_AGE_MS`] later.
    sent_since_ms: u64,
}

impl BlobNames {
    /// An empty memo.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets every acknowledged blob once the memo is [`BLOB_MEMO_MAX_AGE_MS`] old, so no
    /// name the worker uses is older than that: a retention prune (which only cuts records at
    /// least a day old) cannot remove a blob a worker still names without carrying it. Texts
    /// are then carried again once (the store keeps one copy of each blob).
    pub fn expire(&mut self, now_ms: u64) {
        if self.sent.is_empty() || now_ms.saturating_sub(self.sent_since_ms) >= BLOB_MEMO_MAX_AGE_MS {
            self.sent.clear();
            self.sent_since_ms = now_ms;
        }
    }

    /// The name of the text whose digest is `digest`, if the service acknowledged a record
    /// carrying it.
    pub fn known(&self, digest: u128) -> Option<&str> {
        self.sent.get(&digest).map(String::as_str)
    }

    /// The name of `forwarded` (a JSON text whose digest is `digest`) once `mask` rewrote it;
    /// adds the masked text to `blobs` unless the service already acknowledged it.
    pub fn name(
        &mut self,
        digest: u128,
        forwarded: &[u8],
        mask: impl FnOnce(&str) -> String,
        blobs: &mut BTreeMap<String, String>,
    ) -> String {
        if let Some(name) = self.sent.get(&digest) {
            return name.clone();
        }
        if let Some((name, masked)) = self.pending.get(&digest) {
            blobs.insert(name.clone(), masked.clone());
            return name.clone();
        }
        let masked = mask(&String::from_utf8_lossy(forwarded));
        let name = blob_name(&masked);
        if self.pending.len() >= PENDING_BLOBS_CAPACITY
            || self.pending_bytes.saturating_add(masked.len()) > PENDING_BLOBS_BYTES
        {
            self.pending.clear();
            self.pending_names.clear();
            self.pending_bytes = 0;
        }
        self.pending_bytes += masked.len();
        self.pending.insert(digest, (name.clone(), masked.clone()));
        self.pending_names.insert(name.clone(), digest);
        blobs.insert(name.clone(), masked);
        name
    }

    /// The service stored records carrying the blobs `names`: later records may name them
    /// without carrying them.
    pub fn acknowledge<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        for name in names {
            if let Some(digest) = self.pending_names.remove(name) {
                if let Some((_, masked)) = self.pending.remove(&digest) {
                    self.pending_bytes = self.pending_bytes.saturating_sub(masked.len());
                }
                if self.sent.len() >= BLOB_MEMO_CAPACITY {
                    self.sent.clear();
                }
                self.sent.insert(digest, name.to_string());
            }
        }
    }
}

/// The longest a worker names an acknowledged blob without carrying it again (1 hour).
pub const BLOB_MEMO_MAX_AGE_MS: u64 = 3_600_000;

/// Blobs awaiting acknowledgement a worker remembers (with their masked text) before starting
/// over (which only masks texts again).
pub const PENDING_BLOBS_CAPACITY: usize = 4_096;
/// Bytes of masked text of blobs awaiting acknowledgement a worker keeps before starting over.
pub const PENDING_BLOBS_BYTES: usize = 32 << 20;

/// Prefix of every blob name.
pub const BLOB_PREFIX: &str = "sha256:";

/// `sha256:<hex>` of a blob's text: the rule the filter names blobs by and `warden serve`
/// checks them with.
pub fn blob_name(text: &str) -> String {
    format!("{BLOB_PREFIX}{}", super::canonical::sha256_hex(&[text.as_bytes()]))
}

/// What the worker lends a trail to become a record: its memo of blobs sent and the mask every
/// recorded text goes through.
pub struct Recorder<'a> {
    /// The worker's memo of blobs already sent.
    pub names: &'a mut BlobNames,
    /// Masks a text with every detector.
    pub mask: &'a mut dyn FnMut(&str) -> String,
}

/// The system prompt or a message of the forwarded body, as the record will name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// This worker already sent it: its blob name.
    Named(String),
    /// Not sent yet (or rewritten by masking): its forwarded text and that text's digest.
    Text {
        /// The forwarded JSON text.
        text: Vec<u8>,
        /// Its [`crate::core::dlp::memo::CleanMemo::digest`].
        digest: u128,
    },
}

/// What the record keeps of the forwarded body, taken on the request path ([`Forwarded::take`]):
/// parameters as raw JSON, the declared tools, and the system prompt and messages as [`Part`]s
/// — so a history the worker already recorded is not copied again, only named.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// Every top-level field but `system`, `messages` and `tools`: name and raw JSON.
    pub params: Vec<(String, Vec<u8>)>,
    /// Declared tool names (Anthropic tool types for Anthropic-defined tools).
    pub tools: Vec<String>,
    /// The system prompt.
    pub system: Option<Part>,
    /// Each message, in order.
    pub messages: Vec<Part>,
}

impl Forwarded {
    /// Takes what the record needs from `body` (as forwarded), laid out by `outline`. A
    /// message's digest comes from `digests` (the request path computed them for DLP's memo)
    /// unless masking rewrote it; `digest` computes the others. A part `names` already knows is
    /// kept by name only.
    pub fn take(
        body: &[u8],
        outline: Outline,
        digests: &[u128],
        names: &BlobNames,
        digest: &dyn Fn(&[u8]) -> u128,
        tools: Vec<String>,
    ) -> Self {
        let slice = |range: &Range<usize>| body.get(range.clone()).unwrap_or_default();
        let part = |text: &[u8], known: Option<u128>| {
            let digest = known.unwrap_or_else(|| digest(text));
            match names.known(digest) {
                Some(name) => Part::Named(name.to_string()),
                None => Part::Text { text: text.to_vec(), digest },
            }
        };
        Self {
            params: outline.params.iter().map(|(key, range)| (key.clone(), slice(range).to_vec())).collect(),
            tools,
            system: outline.system.as_ref().map(|range| part(slice(range), None)),
            messages: outline
                .messages
                .iter()
                .enumerate()
                .map(|(i, (range, rewritten))| part(slice(range), digests.get(i).copied().filter(|_| !rewritten)))
                .collect(),
        }
    }
}

/// The forwarded body as the record shows it; blob texts it introduces go to `blobs`.
/// Parameters are bounded and masked ([`record_param`]); tool names are masked.
pub fn request_view(
    forwarded: Forwarded,
    recorder: &mut Recorder,
    blobs: &mut BTreeMap<String, String>,
) -> RequestView {
    let Forwarded { params, tools, system, messages } = forwarded;
    let mut view =
        RequestView { tools: tools.iter().map(|tool| (recorder.mask)(tool)).collect(), ..RequestView::default() };
    let mut budget = MAX_PARAMS_BYTES;
    for (key, raw) in params {
        let value = record_param(&key, &raw, &mut budget, &mut *recorder.mask);
        view.params.insert((recorder.mask)(&key), value);
    }
    let mut name = |part: Part| match part {
        Part::Named(name) => name,
        Part::Text { text, digest } => recorder.names.name(digest, &text, &mut *recorder.mask, blobs),
    };
    view.system = system.map(&mut name);
    view.messages = messages.into_iter().map(&mut name).collect();
    view
}

/// Deepest nesting of a recorded parameter's value (a top-level value is at depth 1). The
/// record puts parameters three levels down (`request.params.<name>`), and the service's JSON
/// parser stops at 128 levels: anything the filter records must stay far below that.
pub const MAX_PARAM_DEPTH: usize = 32;
/// Largest recorded parameter (its JSON text as forwarded, in bytes).
pub const MAX_PARAM_BYTES: usize = 64 << 10;
/// Most bytes of parameters one record keeps (all of them together, as forwarded).
pub const MAX_PARAMS_BYTES: usize = 256 << 10;
/// What replaces a value that is a credential by definition (see [`is_credential_key`]).
pub const CREDENTIAL_REMOVED: &str = "[credential removed]";

/// Whether an object key names a credential by definition, whatever its value looks like
/// (`authorization_token` of an MCP server, `api_key`, `password`, …): compared in lower case
/// with `-` read as `_`.
pub fn is_credential_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace('-', "_");
    const EXACT: [&str; 9] =
        ["authorization", "token", "password", "passwd", "secret", "cookie", "credential", "credentials", "apikey"];
    const SUFFIXES: [&str; 7] =
        ["_token", "_secret", "_password", "api_key", "private_key", "_credential", "_credentials"];
    EXACT.contains(&key.as_str()) || SUFFIXES.iter().any(|suffix| key.ends_with(suffix))
}

/// How deep `json` nests (arrays and objects; a scalar is 0), read without parsing and without
/// recursion; stops counting once past `limit`.
pub fn json_depth(json: &[u8], limit: usize) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return deepest;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A request parameter as the record keeps it. The rule (docs/audit.md, "What is recorded"):
/// - a parameter named as a credential ([`is_credential_key`]) is [`CREDENTIAL_REMOVED`];
/// - a parameter nested deeper than [`MAX_PARAM_DEPTH`], longer than [`MAX_PARAM_BYTES`], past
///   the record's [`MAX_PARAMS_BYTES`] (`budget`), or not valid JSON is replaced by
///   `{"$warden": "omitted", "reason": …, "bytes": <its size>}` — none of its text is kept;
/// - otherwise its value, with every object key and string masked by `mask` (every detector)
///   and every member named as a credential replaced by [`CREDENTIAL_REMOVED`], at any depth.
pub fn record_param(key: &str, raw: &[u8], budget: &mut usize, mask: &mut dyn FnMut(&str) -> String) -> Value {
    if is_credential_key(key) {
        return Value::String(CREDENTIAL_REMOVED.into());
    }
    let omitted = |reason: &str| {
        let mut map = Map::new();
        map.insert("$warden".into(), Value::String("omitted".into()));
        map.insert("bytes".into(), Value::from(raw.len()));
        map.insert("reason".into(), Value::String(reason.into()));
        Value::Object(map)
    };
    if raw.len() > MAX_PARAM_BYTES {
        return omitted("larger than the recorded limit");
    }
    if raw.len() > *budget {
        return omitted("past the record's limit for parameters");
    }
    if json_depth(raw, MAX_PARAM_DEPTH) > MAX_PARAM_DEPTH {
        return omitted("nested deeper than the recorded limit");
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(raw) else { return omitted("not valid JSON") };
    *budget -= raw.len();
    scrub(&mut value, mask);
    value
}

/// Masks every string and object key in `value` and replaces members named as credentials,
/// walking with an explicit stack (no recursion).
fn scrub(value: &mut Value, mask: &mut dyn FnMut(&str) -> String) {
    let mut stack: Vec<&mut Value> = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(text) => *text = mask(text),
            Value::Array(items) => stack.extend(items.iter_mut()),
            Value::Object(fields) => {
                let taken = std::mem::take(fields);
                for (key, mut item) in taken {
                    if is_credential_key(&key) {
                        item = Value::String(CREDENTIAL_REMOVED.into());
                    }
                    fields.insert(mask(&key), item);
                }
                stack.extend(fields.values_mut());
            }
            _ => {}
        }
    }
}

/// The header naming the agent session (Claude Code sends it from version 2.1 on).
pub const SESSION_HEADER: &str = "x-claude-code-session-id";
/// The header a client may name its CI job with, when its token carries no job claims (like
/// every `x-warden-*` header, never forwarded upstream).
pub const JOB_HEADER: &str = "x-warden-job-id";

/// A client-supplied label as recorded: printable ASCII, at most 128 characters, or nothing.
fn label(text: &str) -> Option<String> {
    let text: String = text.trim().chars().filter(|c| c.is_ascii_graphic()).take(128).collect();
    (!text.is_empty()).then_some(text)
}

/// The agent session: [`SESSION_HEADER`], else the session inside `metadata.user_id`: Claude
/// Code 2.0 sends `user_<device>_account_<account>_session_<uuid>` there, later versions a JSON
/// text with a `session_id`.
pub fn session_id(header: Option<&str>, params: Option<&Map<String, Value>>) -> Option<String> {
    if let Some(id) = header.and_then(label) {
        return Some(id);
    }
    let user_id = params?.get("metadata")?.get("user_id")?.as_str()?;
    if let Ok(inner) = serde_json::from_str::<Value>(user_id) {
        return inner.get("session_id")?.as_str().and_then(label);
    }
    user_id.strip_prefix("user_")?.rsplit_once("_session_").and_then(|(_, id)| label(id))
}

/// The CI job: from the token's job claims (`repository#run_id` when both are there, else the
/// claims joined), else as the client declares it in [`JOB_HEADER`] (the record's
/// `identity.job` is then empty, which tells the two apart).
pub fn job_id(job: &[(String, String)], header: Option<&str>) -> Option<String> {
    let claim = |name: &str| job.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match (claim("repository"), claim("run_id")) {
        (Some(repository), Some(run)) => Some(format!("{repository}#{run}")),
        _ if job.is_empty() => header.and_then(label),
        _ => Some(job.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")),
    }
}

#[cfg(test)]
/// The body as the request path hands it over, its outline from a plain parse here and its
/// digests computed by `take`. Tests only.
pub(crate) fn forwarded_of(body: &[u8], names: &BlobNames) -> Forwarded {
    let text = std::str::from_utf8(body).unwrap();
    let fields: BTreeMap<String, &serde_json::value::RawValue> = serde_json::from_str(text).unwrap();
    let span = |raw: &serde_json::value::RawValue| {
        let start = raw.get().as_ptr() as usize - text.as_ptr() as usize;
        start..start + raw.get().len()
    };
    let mut outline = Outline::default();
    for (key, raw) in fields {
        match key.as_str() {
            "system" => outline.system = Some(span(raw)),
            "messages" => {
                let messages: Vec<&serde_json::value::RawValue> = serde_json::from_str(raw.get()).unwrap();
                outline.messages = messages.iter().map(|m| (span(m), false)).collect();
            }
            "tools" => {}
            _ => outline.params.push((key, span(raw))),
        }
    }
    let memo = crate::core::dlp::memo::CleanMemo::new(b"k");
    let tools = vec!["Bash".into(), "web_search_20250305".into()];
    Forwarded::take(body, outline, &[], names, &|text| memo.digest(text), tools)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(turns: usize) -> Vec<u8> {
        let mut messages = Vec::new();
        for i in 0..turns {
            messages.push(json!({"role": "user", "content": format!("question {i}")}));
            messages.push(json!({"role": "assistant", "content": format!("answer {i}")}));
        }
        messages.push(json!({"role": "user", "content": "the newest question"}));
        serde_json::to_vec(&json!({
            "model": "claude-sonnet-4-6", "max_tokens": 1000, "stream": true,
            "system": [{"type": "text", "text": "You are Claude Code."}],
            "tools": [{"name": "Bash", "input_schema": {}}, {"type": "web_search_20250305", "name": "web_search"}],
            "metadata": {"user_id": "{\"device_id\": \"d\", \"session_id\": \"5f0c-1\"}"},
            "messages": messages,
        }))
        .unwrap()
    }

    fn view(names: &mut BlobNames, body: &[u8]) -> (RequestView, BTreeMap<String, String>) {
        let forwarded = forwarded_of(body, names);
        let mut mask = |text: &str| text.replace("question", "q");
        let mut recorder = Recorder { names, mask: &mut mask };
        let mut blobs = BTreeMap::new();
        let view = request_view(forwarded, &mut recorder, &mut blobs);
        (view, blobs)
    }

    #[test]
    fn the_request_keeps_parameters_and_names_its_contents() {
        let mut names = BlobNames::new();
        let (view, blobs) = view(&mut names, &body(1));
        assert_eq!(view.params.get("model"), Some(&json!("claude-sonnet-4-6")));
        assert_eq!(view.params.get("max_tokens"), Some(&json!(1000)));
        assert!(!view.params.contains_key("messages") && !view.params.contains_key("tools"));
        assert_eq!(view.tools, vec!["Bash", "web_search_20250305"]);
        assert_eq!(view.messages.len(), 3);
        assert_eq!(blobs.len(), 4, "system and three messages");
        for name in view.messages.iter().chain(view.system.iter()) {
            assert_eq!(&blob_name(&blobs[name]), name, "a blob's name is the hash of its (masked) text");
        }
        assert!(blobs.values().any(|t| t.contains("q 0")) && !blobs.values().any(|t| t.contains("question")));
    }

    #[test]
    fn an_hour_after_the_memo_started_every_text_is_carried_again() {
        let mut names = BlobNames::new();
        names.expire(1_000);
        let (_, first_blobs) = view(&mut names, &body(1));
        names.acknowledge(first_blobs.keys().map(String::as_str));
        names.expire(1_000 + BLOB_MEMO_MAX_AGE_MS - 1);
        assert!(view(&mut names, &body(1)).1.is_empty(), "within the hour: named only");
        names.expire(1_000 + BLOB_MEMO_MAX_AGE_MS);
        assert_eq!(view(&mut names, &body(1)).1, first_blobs, "an hour on: carried again");
    }

    #[test]
    fn a_growing_history_sends_each_message_once() {
        let mut names = BlobNames::new();
        let (first, first_blobs) = view(&mut names, &body(1));
        names.acknowledge(first_blobs.keys().map(String::as_str));
        let (second, second_blobs) = view(&mut names, &body(2));
        assert_eq!(second.messages[..2], first.messages[..2], "the shared history has the same names");
        // New: "question 1" and "answer 1"; "the newest question" was sent with the first body.
        assert_eq!(second_blobs.len(), 2, "only the messages not sent before: {second_blobs:?}");
        assert!(second_blobs.keys().all(|name| !first_blobs.contains_key(name)));
    }

    #[test]
    fn the_request_path_keeps_only_the_texts_still_to_be_named() {
        let mut names = BlobNames::new();
        let (_, blobs) = view(&mut names, &body(1));
        names.acknowledge(blobs.keys().map(String::as_str));
        let forwarded = forwarded_of(&body(2), &names);
        let named = forwarded.messages.iter().filter(|part| matches!(part, Part::Named(_))).count();
        assert_eq!((named, forwarded.messages.len()), (3, 5), "the three messages sent before are named, not copied");
        assert!(matches!(forwarded.system, Some(Part::Named(_))));
    }

    fn secret_mask(text: &str) -> String {
        text.replace("sk-live-SECRET", "[REDACTED]")
    }

    #[test]
    fn recorded_parameters_carry_no_credential_and_no_unmasked_finding() {
        let body = serde_json::to_vec(&json!({
            "model": "claude-sonnet-4-6", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}],
            "mcp_servers": [{"type": "url", "url": "https://mcp.example/sse", "name": "corp",
                             "authorization_token": "opaque-value-no-detector-knows"}],
            "metadata": {"user_id": "u", "note": "sk-live-SECRET", "sk-live-SECRET": 1,
                         "nested": [{"X-Api-Key": "k"}]},
            "api_key": "anything",
        }))
        .unwrap();
        let mut names = BlobNames::new();
        let forwarded = forwarded_of(&body, &names);
        let mut mask = secret_mask;
        let mut recorder = Recorder { names: &mut names, mask: &mut mask };
        let view = request_view(forwarded, &mut recorder, &mut BTreeMap::new());
        let text = serde_json::to_string(&view.params).unwrap();
        assert!(
            !text.contains("opaque-value") && !text.contains("sk-live-SECRET") && !text.contains("anything"),
            "{text}"
        );
        assert_eq!(view.params["mcp_servers"][0]["authorization_token"], CREDENTIAL_REMOVED);
        assert_eq!(view.params["mcp_servers"][0]["url"], "https://mcp.example/sse");
        assert_eq!(view.params["metadata"]["note"], "[REDACTED]");
        assert_eq!(view.params["metadata"]["nested"][0]["X-Api-Key"], CREDENTIAL_REMOVED);
        assert_eq!(view.params["api_key"], CREDENTIAL_REMOVED);
        assert_eq!(view.params["max_tokens"], 10);
    }

    #[test]
    fn credential_names_are_recognised_and_token_counts_are_not() {
        for key in [
            "authorization_token",
            "Authorization",
            "api_key",
            "X-Api-Key",
            "client_secret",
            "password",
            "refresh_token",
        ] {
            assert!(is_credential_key(key), "{key}");
        }
        for key in ["max_tokens", "budget_tokens", "input_tokens", "token_id", "stop_sequences", "user_id", "keywords"]
        {
            assert!(!is_credential_key(key), "{key}");
        }
    }

    #[test]
    fn the_labels_a_client_chose_are_masked_too() {
        let mut record = full_record();
        record.path = "/v1/messages?key=sk-live-SECRET".into();
        record.session_id = Some("sk-live-SECRET".into());
        record.decision.message = Some("model sk-live-SECRET is not allowed".into());
        record.mask_labels(&mut secret_mask);
        let line = String::from_utf8(record.seal("gw", 1).unwrap().line).unwrap();
        assert!(!line.contains("sk-live-SECRET"), "{line}");
    }

    #[test]
    fn a_parameter_too_deep_or_too_large_is_omitted_with_its_size() {
        let deep = format!("{}1{}", "[".repeat(125), "]".repeat(125));
        let huge = format!("\"{}\"", "x".repeat(MAX_PARAM_BYTES));
        let body =
            format!(r#"{{"model":"m","max_tokens":1,"messages":[],"deep":{deep},"huge":{huge},"ok":{{"a":[[1]]}}}}"#);
        let names = BlobNames::new();
        let forwarded = forwarded_of(body.as_bytes(), &names);
        let mut names = names;
        let mut mask = str::to_string;
        let mut recorder = Recorder { names: &mut names, mask: &mut mask };
        let view = request_view(forwarded, &mut recorder, &mut BTreeMap::new());
        assert_eq!(view.params["deep"]["$warden"], "omitted");
        assert_eq!(view.params["deep"]["bytes"], deep.len());
        assert_eq!(view.params["huge"]["$warden"], "omitted");
        assert_eq!(view.params["ok"], json!({"a": [[1]]}));
        assert_eq!(json_depth(br#"{"a":"[[[[","b":[{}]}"#, 10), 3, "brackets inside strings do not count");
    }

    #[test]
    fn a_blob_counts_as_sent_only_once_acknowledged() {
        let mut names = BlobNames::new();
        let (_, first) = view(&mut names, &body(0));
        let (_, again) = view(&mut names, &body(0));
        assert_eq!(again, first, "not acknowledged yet: the next record carries the same blobs");
        names.acknowledge(first.keys().map(String::as_str));
        let (_, after) = view(&mut names, &body(0));
        assert!(after.is_empty(), "acknowledged: named only");
    }

    #[test]
    fn the_session_comes_from_the_header_or_claude_codes_metadata() {
        let (view, _) = view(&mut BlobNames::new(), &body(0));
        assert_eq!(session_id(Some("hdr-1"), Some(&view.params)).as_deref(), Some("hdr-1"));
        assert_eq!(session_id(None, Some(&view.params)).as_deref(), Some("5f0c-1"));
        assert_eq!(session_id(Some("  "), None), None);
        let claude_code_2 = json!({"metadata": {"user_id": "user_9f2c41_account__session_0b7e-42"}});
        let params = claude_code_2.as_object();
        assert_eq!(session_id(None, params).as_deref(), Some("0b7e-42"));
        let no_session = json!({"metadata": {"user_id": "user_9f2c41"}});
        assert_eq!(session_id(None, no_session.as_object()), None);
    }

    #[test]
    fn a_job_is_its_repository_and_run() {
        let job = vec![("repository".to_string(), "org/app".to_string()), ("run_id".to_string(), "42".to_string())];
        assert_eq!(job_id(&job, Some("nightly-7")).as_deref(), Some("org/app#42"), "the token's claims win");
        assert_eq!(job_id(&job[..1], None).as_deref(), Some("repository=org/app"));
        assert_eq!(job_id(&[], Some(" nightly-7\n")).as_deref(), Some("nightly-7"), "declared by the client");
        assert_eq!(job_id(&[], None), None);
    }

    #[test]
    fn a_placed_record_has_its_source_sequence_and_id() {
        let record = Record {
            request_id: "req_warden_1".into(),
            upstream_request_id: None,
            session_id: None,
            job_id: None,
            identity: None,
            endpoint: "messages".into(),
            method: "POST".into(),
            path: "/v1/messages".into(),
            decision: DecisionView {
                allowed: false,
                reason: Some("token_missing".into()),
                status: Some(401),
                message: None,
            },
            approval: None,
            model: None,
            request: None,
            response: None,
            dlp: DlpView::default(),
            usage: Usage::default(),
            cost_nanos: None,
            timings: Timings { start: 1, first_byte: None, end: 2 },
            outcome: Outcome::Refused,
            blobs: BTreeMap::new(),
            agent: None,
            tool_calls: Vec::new(),
            tool_results: Vec::new(),
        };
        let sealed = record.seal("gw-1", 7).unwrap();
        let json: Value = serde_json::from_slice(&sealed.line).unwrap();
        assert_eq!(sealed.id, "gw-1-7");
        assert_eq!(
            (json["version"].clone(), json["source"].clone(), json["seq"].clone()),
            (json!(1), json!("gw-1"), json!(7))
        );
        assert_eq!(json["id"], "gw-1-7");
        assert_eq!(json["outcome"], "refused");
        assert_eq!(json["decision"]["reason"], "token_missing");
    }

    /// A record with every part filled in, nested objects in unsorted order included.
    fn full_record() -> Record {
        let mut transcript = crate::core::audit::transcript::from_body(
            json!({"id": "msg_1", "model": "claude-sonnet-4-6", "stop_reason": "tool_use",
                   "content": [{"type": "text", "text": "Let me look \"here\"\n"},
                               {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"z": 1, "a": [true, null]}}],
                   "usage": {"output_tokens": 3, "input_tokens": 9, "cache_read_input_tokens": 7}})
            .to_string()
            .as_bytes(),
        );
        transcript.error = Some(json!({"type": "overloaded_error", "message": "é"}));
        let mut params = Map::new();
        for (key, value) in [
            ("thinking", json!({"type": "enabled", "budget_tokens": 1024})),
            ("model", json!("m")),
            ("max_tokens", json!(1.5)),
        ] {
            params.insert(key.to_string(), value);
        }
        let caller = Caller {
            subject: "alice".into(),
            issuer: "warden-demo".into(),
            groups: vec!["eng".into(), "admins".into()],
            job: vec![("run_id".into(), "7".into()), ("repository".into(), "org/app".into())],
            role: 0,
            token_id: Some("jti-1".into()),
            token_expires_at: 1_800_000_900.0,
        };
        Record {
            request_id: "req_warden_1".into(),
            upstream_request_id: Some("req_011".into()),
            session_id: Some("sess".into()),
            job_id: job_id(&caller.job, None),
            identity: Some(IdentityView::of(&caller, "developer")),
            endpoint: "messages".into(),
            method: "POST".into(),
            path: "/v1/messages?beta=true".into(),
            decision: DecisionView { allowed: true, reason: None, status: Some(200), message: Some("ok".into()) },
            approval: Some(ApprovalView {
                review: Some("rev_1".into()),
                reviewer: Some("bob".into()),
                reasons: vec!["opus_model".into()],
                decision: "approved".into(),
                verdict: Some("h.p.s".into()),
                grant: None,
            }),
            model: Some("claude-sonnet-4-6".into()),
            request: Some(RequestView {
                params,
                tools: vec!["Bash".into()],
                system: Some("sha256:00".into()),
                messages: vec!["sha256:01".into(), "sha256:02".into()],
            }),
            response: Some(ResponseView { status: Some(200), stream: true, transcript }),
            dlp: DlpView {
                masked: [("github-pat".to_string(), 1)].into(),
                blocked: BTreeMap::new(),
                audited: [("email".to_string(), 2)].into(),
            },
            usage: Usage {
                input_tokens: Some(9),
                output_tokens: Some(3),
                cache_read_input_tokens: Some(7),
                cache_creation_input_tokens: None,
                ..Usage::default()
            },
            cost_nanos: Some(123_000),
            timings: Timings { start: 1, first_byte: Some(2), end: 3 },
            outcome: Outcome::StreamError,
            blobs: [("sha256:01".to_string(), "{\"role\":\"user\"}".to_string())].into(),
            agent: None,
            tool_calls: Vec::new(),
            tool_results: Vec::new(),
        }
    }

    #[test]
    fn a_sealed_record_is_written_in_canonical_json_and_hashed_as_stored() {
        let sealed = full_record().seal("gw-1", 7).unwrap();
        let mut json: Value = serde_json::from_slice(&sealed.line).unwrap();
        let blobs = json.as_object_mut().unwrap().remove("blobs").unwrap();
        assert_eq!(blobs, json!({"sha256:01": "{\"role\":\"user\"}"}), "the line carries the blobs");
        let stored = crate::core::audit::canonical::canonical(&json);
        let written = &sealed.line[..stored.len() - 1];
        assert_eq!(String::from_utf8_lossy(written), String::from_utf8_lossy(&stored[..stored.len() - 1]));
        assert_eq!(sealed.hash, crate::core::hex::hex(&hmac_sha256::Hash::hash(&stored)), "the hash covers the stored bytes");
        assert_eq!(json["response"]["content"][1]["input"], json!({"a": [true, null], "z": 1}));
        assert_eq!(json["identity"]["job"]["repository"], "org/app");
    }

    #[test]
    fn a_record_with_agents_tool_calls_grants_and_tool_results_is_sealed_in_canonical_json() {
        let mut record = full_record();
        let grant =
            GrantView { expires_at: 9, id: "grant_1".into(), reasons: vec!["r".into()], session_id: "s".into() };
        let approval = record.approval.clone().map(|a| ApprovalView { grant: Some(grant), ..a });
        record.approval = approval.clone();
        record.agent = Some(AgentRecord { id: Some("a7".into()), parent: Some("a0".into()) });
        record.tool_calls = vec![ToolCallRecord {
            approval,
            id: "toolu_1".into(),
            input: "{}".into(),
            kind: "tool_use".into(),
            name: "Bash".into(),
            outcome: "approved".into(),
            reason: Some("why".into()),
            rule: Some("r1".into()),
        }];
        record.tool_results = vec![ToolResultRecord {
            answers: Some(AnsweredCall { outcome: "approved".into(), request_id: "req_1".into() }),
            bytes: 3,
            is_error: true,
            over_limit: false,
            tool_use_id: "toolu_1".into(),
        }];
        record.blobs = BTreeMap::new();
        let sealed = record.seal("gw-1", 8).unwrap();
        let json: Value = serde_json::from_slice(&sealed.line).unwrap();
        let stored = crate::core::audit::canonical::canonical(&json);
        assert_eq!(String::from_utf8_lossy(&sealed.line), String::from_utf8_lossy(&stored));
        assert_eq!(json["tool_results"][0]["answers"]["request_id"], "req_1");
        assert_eq!(json["tool_calls"][0]["approval"]["grant"]["id"], "grant_1");
    }
}
