//! One audit record per exchange (docs/audit.md): the typed record, how the forwarded request is
//! split into content-addressed blobs, and the session and job ids.
//!
//! Blobs: the forwarded body's `system` value and each entry of `messages` are named
//! `sha256:<hex>` of their exact JSON text after masking ([`BlobNames::name`]); a record carries in
//! `blobs` only the texts its worker has not sent before, so a session that re-sends its history
//! on every turn records each message once. The per-worker memo maps a keyed SipHash of the
//! forwarded text to the blob's name, so a message already sent costs one fast hash, not a
//! SHA-256 and a masking pass.
//!
//! Limits: the memo is per worker and bounded ([`BLOB_MEMO_CAPACITY`]; when full it starts over,
//! which only re-sends texts). If a record is dropped (audit `fail_open`), blobs it introduced
//! are missing from the store; later records still name them.

use super::transcript::{Transcript, Usage};
use crate::core::dlp::memo::sip_keys;
use crate::core::hex::hex;
use crate::core::identity::Caller;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use siphasher::sip128::{Hasher128, SipHasher13};
use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;

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
}

/// Who made the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityView {
    /// Token issuer.
    pub issuer: String,
    /// Token subject.
    pub subject: String,
    /// Groups from the token.
    pub groups: Vec<String>,
    /// The role the request ran under.
    pub role: String,
    /// The token's `jti`, when it has one.
    pub token_id: Option<String>,
    /// The token's `exp`, in milliseconds since the epoch.
    pub token_expires_at: Option<u64>,
    /// Job claims (CI runs).
    pub job: BTreeMap<String, String>,
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
    /// The refusal's reason code.
    pub reason: Option<String>,
    /// The status the client received.
    pub status: Option<u16>,
    /// The refusal's message.
    pub message: Option<String>,
}

/// The approval a held request got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovalView {
    /// Review id.
    pub review: Option<String>,
    /// Who decided.
    pub reviewer: Option<String>,
    /// Reason codes of the triggers that fired.
    pub reasons: Vec<String>,
    /// `approved`, `denied`, `pending`, `unavailable` or `invalid`.
    pub decision: String,
    /// The signed verdict, kept as evidence.
    pub verdict: Option<String>,
}

/// The request as forwarded: parameters inline, system prompt and messages by blob name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestView {
    /// Every top-level field but `system`, `messages` and `tools`.
    pub params: Map<String, Value>,
    /// Declared tool names (Anthropic tool types for Anthropic-defined tools).
    pub tools: Vec<String>,
    /// The system prompt's blob.
    pub system: Option<String>,
    /// Each message's blob, in order.
    pub messages: Vec<String>,
}

/// The answer as delivered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResponseView {
    /// HTTP status delivered to the client.
    pub status: Option<u16>,
    /// Whether it was an event stream.
    pub stream: bool,
    /// Content, stop reason, errors (usage goes to the record's `usage`).
    #[serde(flatten)]
    pub transcript: Transcript,
}

/// When things happened, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Timings {
    /// Request headers arrived.
    pub start: u64,
    /// The first response byte went out.
    pub first_byte: Option<u64>,
    /// The exchange ended.
    pub end: u64,
}

/// DLP counts by action and detector.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DlpView {
    /// Findings masked.
    pub masked: BTreeMap<String, u32>,
    /// Findings that blocked.
    pub blocked: BTreeMap<String, u32>,
    /// Findings only counted.
    pub audited: BTreeMap<String, u32>,
}

/// One exchange's record, without its place in the trail (source and sequence number, given
/// when it is queued).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// Token usage.
    pub usage: Usage,
    /// When.
    pub timings: Timings,
    /// How it ended.
    pub outcome: Outcome,
    /// Blob texts this record introduces, by name.
    pub blobs: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Placed<'a> {
    version: u32,
    source: &'a str,
    seq: u64,
    id: String,
    #[serde(flatten)]
    record: &'a Record,
}

impl Record {
    /// The record's JSON with its place in the trail: `version`, `source`, `seq` and
    /// `id` = `<source>-<seq>`.
    pub fn to_json(&self, source: &str, seq: u64) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&Placed { version: 1, source, seq, id: format!("{source}-{seq}"), record: self })
    }
}

/// The worker's memo of blobs already sent: forwarded text (keyed SipHash) → blob name.
#[derive(Debug)]
pub struct BlobNames {
    keys: (u64, u64),
    sent: HashMap<u128, String>,
}

impl BlobNames {
    /// An empty memo keyed by `secret` (only a keyed hash of it is used).
    pub fn new(secret: &[u8]) -> Self {
        Self { keys: sip_keys(b"warden audit blob memo v1", secret), sent: HashMap::new() }
    }

    /// The name of `forwarded` (a JSON text) once `mask` rewrote it; adds the masked text to
    /// `blobs` the first time this worker names it.
    pub fn name(
        &mut self,
        forwarded: &str,
        mask: impl FnOnce(&str) -> String,
        blobs: &mut BTreeMap<String, String>,
    ) -> String {
        let mut hasher = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        hasher.write(forwarded.as_bytes());
        let key = hasher.finish128().as_u128();
        if let Some(name) = self.sent.get(&key) {
            return name.clone();
        }
        let masked = mask(forwarded);
        let name = blob_name(&masked);
        if self.sent.len() >= BLOB_MEMO_CAPACITY {
            self.sent.clear();
        }
        self.sent.insert(key, name.clone());
        blobs.insert(name.clone(), masked);
        name
    }
}

/// Prefix of every blob name.
pub const BLOB_PREFIX: &str = "sha256:";

/// `sha256:<hex>` of a blob's text: the rule the filter names blobs by and `warden serve`
/// checks them with.
pub fn blob_name(text: &str) -> String {
    format!("{BLOB_PREFIX}{}", hex(&hmac_sha256::Hash::hash(text.as_bytes())))
}

#[derive(serde::Deserialize)]
struct ToolName<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
}

/// The forwarded body as the record shows it; blob texts it introduces go to `blobs`. `None`
/// when the body is not a JSON object (it was refused before being forwarded, then).
pub fn request_view(
    forwarded: &[u8],
    names: &mut BlobNames,
    mut mask: impl FnMut(&str) -> String,
    blobs: &mut BTreeMap<String, String>,
) -> Option<RequestView> {
    let fields: BTreeMap<std::borrow::Cow<str>, &RawValue> = serde_json::from_slice(forwarded).ok()?;
    let mut view = RequestView::default();
    for (key, raw) in fields {
        match key.as_ref() {
            "system" => view.system = Some(names.name(raw.get(), &mut mask, blobs)),
            "messages" => {
                let messages: Vec<&RawValue> = serde_json::from_str(raw.get()).unwrap_or_default();
                view.messages = messages.iter().map(|m| names.name(m.get(), &mut mask, blobs)).collect();
            }
            "tools" => {
                let tools: Vec<ToolName> = serde_json::from_str(raw.get()).unwrap_or_default();
                view.tools = tools
                    .into_iter()
                    .filter_map(|t| match t.kind.as_deref() {
                        None | Some("custom") => t.name.map(|n| n.into_owned()),
                        Some(kind) => Some(kind.to_string()),
                    })
                    .collect();
            }
            other => {
                if let Ok(value) = serde_json::from_str(raw.get()) {
                    view.params.insert(other.to_string(), value);
                }
            }
        }
    }
    Some(view)
}

/// The agent session: `X-Claude-Code-Session-Id`, else the `session_id` inside
/// `metadata.user_id` (Claude Code sends a JSON text there).
pub fn session_id(header: Option<&str>, params: Option<&Map<String, Value>>) -> Option<String> {
    let clean = |s: &str| {
        let s: String = s.trim().chars().filter(|c| c.is_ascii_graphic()).take(128).collect();
        (!s.is_empty()).then_some(s)
    };
    if let Some(id) = header.and_then(clean) {
        return Some(id);
    }
    let user_id = params?.get("metadata")?.get("user_id")?.as_str()?;
    let inner: Value = serde_json::from_str(user_id).ok()?;
    inner.get("session_id")?.as_str().and_then(clean)
}

/// The CI job: `repository#run_id` when both job claims are there, else the job claims joined.
pub fn job_id(job: &[(String, String)]) -> Option<String> {
    let claim = |name: &str| job.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match (claim("repository"), claim("run_id")) {
        (Some(repository), Some(run)) => Some(format!("{repository}#{run}")),
        _ if job.is_empty() => None,
        _ => Some(job.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
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
        let mut blobs = BTreeMap::new();
        let view = request_view(body, names, |text| text.replace("question", "q"), &mut blobs).unwrap();
        (view, blobs)
    }

    #[test]
    fn the_request_keeps_parameters_and_names_its_contents() {
        let mut names = BlobNames::new(b"seed");
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
    fn a_growing_history_sends_each_message_once() {
        let mut names = BlobNames::new(b"seed");
        let (first, first_blobs) = view(&mut names, &body(1));
        let (second, second_blobs) = view(&mut names, &body(2));
        assert_eq!(second.messages[..2], first.messages[..2], "the shared history has the same names");
        // New: "question 1" and "answer 1"; "the newest question" was sent with the first body.
        assert_eq!(second_blobs.len(), 2, "only the messages not sent before: {second_blobs:?}");
        assert!(second_blobs.keys().all(|name| !first_blobs.contains_key(name)));
    }

    #[test]
    fn the_session_comes_from_the_header_or_claude_codes_metadata() {
        let (view, _) = view(&mut BlobNames::new(b"s"), &body(0));
        assert_eq!(session_id(Some("hdr-1"), Some(&view.params)).as_deref(), Some("hdr-1"));
        assert_eq!(session_id(None, Some(&view.params)).as_deref(), Some("5f0c-1"));
        assert_eq!(session_id(Some("  "), None), None);
    }

    #[test]
    fn a_job_is_its_repository_and_run() {
        let job = vec![("repository".to_string(), "org/app".to_string()), ("run_id".to_string(), "42".to_string())];
        assert_eq!(job_id(&job).as_deref(), Some("org/app#42"));
        assert_eq!(job_id(&job[..1]).as_deref(), Some("repository=org/app"));
        assert_eq!(job_id(&[]), None);
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
            timings: Timings { start: 1, first_byte: None, end: 2 },
            outcome: Outcome::Refused,
            blobs: BTreeMap::new(),
        };
        let json: Value = serde_json::from_slice(&record.to_json("gw-1", 7).unwrap()).unwrap();
        assert_eq!(
            (json["version"].clone(), json["source"].clone(), json["seq"].clone()),
            (json!(1), json!("gw-1"), json!(7))
        );
        assert_eq!(json["id"], "gw-1-7");
        assert_eq!(json["outcome"], "refused");
        assert_eq!(json["decision"]["reason"], "token_missing");
    }
}
