//! Just-in-time approval: which requests must wait for a human, how a request is recognised
//! when it comes back, and what the filter sends the approval service.
//!
//! A role's triggers are checked against the facts of an accepted request ([`RequestFacts`]):
//! model globs, declared tool names, a regex over the conversation ([`conversation_text`]: every
//! text the client sends Claude in `system` and `messages`), `max_tokens` or the body size above
//! a limit, MCP servers present, or a time outside a weekly UTC window. Every trigger that fires
//! contributes its reason code; any reason means the request needs approval.
//!
//! The `prompt` regex sees the whole conversation, not only the newest turn: the client writes
//! the history too (earlier "user" and "assistant" turns, the assistant prefill, the system
//! prompt), so text moved out of the newest turn must still be seen. It sees every string in
//! `system` and in each message's content — text, thinking, tool inputs (keys and values) and
//! results, `search_result` blocks, document titles, context and text sources, image and
//! document URLs, citations — except structural fields ([`STRUCTURAL_KEYS`]) and binary `data`
//! (base64 sources, redacted thinking).
//!
//! The [`fingerprint`] binds a grant to exactly the request the approver was shown: a SHA-256
//! over the caller's issuer and subject, the role, the reasons that fired and the comparable
//! form of the body as forwarded (after masking and clamping; [`crate::core::request::comparable`]), so a
//! faithful re-send matches and any change to what reaches Claude opens a new review.
//!
//! [`HoldRequest`] is the callout body (`POST /v1/holds`, docs/approvals.md): who asks, why, and
//! what the approval covers ([`BodyView`]), with every text masked by every detector.
//!
//! Limits: the window is in UTC (no time-zone database in the filter); a window may wrap past
//! midnight (`22:00-06:00`), and days name the day the window starts on. Tool definitions
//! (descriptions, schemas) are bound by the fingerprint but not read by `prompt` triggers (the
//! `tools` trigger judges them). Walks are iterative; their depth is bounded by the JSON
//! parser's nesting limit.

pub mod verdict;

use crate::core::hex::hex;
use crate::core::identity::Caller;
use crate::core::policy::approvals::Condition;
pub use crate::core::policy::approvals::{Trigger, Window};
use crate::core::request::messages::Message;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;

/// Longest excerpt (newest turn, system prompt, prefill) sent to the approver, in characters.
pub const EXCERPT_CHARS: usize = 2000;

/// Longest MCP server URL sent to the approver, in characters (the service takes 512).
pub const URL_CHARS: usize = 500;

/// What the approval triggers look at in a request that passed the policy checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFacts {
    /// The model asked for.
    pub model: String,
    /// Names of the declared client tools (and types of Anthropic-defined tools).
    pub tools: Vec<String>,
    /// `max_tokens`, when present.
    pub max_tokens: Option<u64>,
    /// Size of the request body in bytes.
    pub body_bytes: u64,
    /// Whether `mcp_servers` lists any server.
    pub mcp_servers: bool,
    /// Every text of the conversation ([`conversation_text`]); read only when a `prompt` trigger
    /// needs it.
    pub conversation: String,
}

impl Trigger {
    /// Whether the trigger fires for `facts` at `unix_seconds`.
    pub fn fires(&self, facts: &RequestFacts, unix_seconds: i64) -> bool {
        match &self.condition {
            Condition::Models(globs) => globs.matches(&facts.model),
            Condition::Tools(globs) => facts.tools.iter().any(|t| globs.matches(t)),
            Condition::Prompt(regex) => regex.is_match(facts.conversation.as_str()),
            Condition::MaxTokensAbove(limit) => facts.max_tokens.is_some_and(|m| m > *limit),
            Condition::BodyBytesAbove(limit) => facts.body_bytes > *limit,
            Condition::McpServers => facts.mcp_servers,
            Condition::OutsideWindow(window) => !window.contains(unix_seconds),
        }
    }
}

/// The reason codes of every trigger that fires, in trigger order, without repeats. Empty means
/// no approval is needed.
pub fn reasons<'t>(triggers: &'t [Trigger], facts: &RequestFacts, unix_seconds: i64) -> Vec<&'t str> {
    let mut reasons: Vec<&str> = Vec::new();
    for trigger in triggers.iter().filter(|t| t.fires(facts, unix_seconds)) {
        if !reasons.contains(&trigger.reason.as_str()) {
            reasons.push(&trigger.reason);
        }
    }
    reasons
}

/// Lower-case hex SHA-256 binding an approval to one caller, role, set of reasons and request
/// (see the module header). `comparable` is [`crate::core::request::comparable::comparable_bytes`] of the
/// body as forwarded; `reasons` are compared as a set.
pub fn fingerprint(issuer: &str, subject: &str, role: &str, reasons: &[&str], comparable: &[u8]) -> String {
    let mut reasons: Vec<&str> = reasons.to_vec();
    reasons.sort_unstable();
    reasons.dedup();
    let mut hash = hmac_sha256::Hash::new();
    // Length-prefixed fields: no two different inputs share an encoding.
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field(b"warden approval fingerprint v2");
    field(issuer.as_bytes());
    field(subject.as_bytes());
    field(role.as_bytes());
    field(&(reasons.len() as u64).to_le_bytes());
    for reason in reasons {
        field(reason.as_bytes());
    }
    field(comparable);
    hex(&hash.finalize())
}

/// Fields of content blocks that are structure, not content: never read by `prompt` triggers.
pub const STRUCTURAL_KEYS: [&str; 8] =
    ["type", "id", "tool_use_id", "media_type", "signature", "cache_control", "file_id", "role"];

/// Every string in `content` (a message's content, or `system`) that Claude reads as content, in
/// document order: see the module header for what counts. Iterative.
pub fn content_strings<'v>(content: &'v Value, out: &mut Vec<&'v str>) {
    enum Item<'v> {
        /// A value, and whether it lies inside free-form JSON (a tool's input), where keys are
        /// content too and no field is structural.
        Value(&'v Value, bool),
        Key(&'v str),
    }
    let mut stack: Vec<Item<'v>> = vec![Item::Value(content, false)];
    while let Some(item) = stack.pop() {
        let (value, free) = match item {
            Item::Key(key) => {
                out.push(key);
                continue;
            }
            Item::Value(value, free) => (value, free),
        };
        match value {
            Value::String(text) => out.push(text),
            Value::Array(items) => stack.extend(items.iter().rev().map(|item| Item::Value(item, free))),
            Value::Object(map) if free => {
                for (key, item) in map.iter().rev() {
                    stack.push(Item::Value(item, true));
                    stack.push(Item::Key(key));
                }
            }
            Value::Object(map) => {
                let text_source = map.get("type").and_then(Value::as_str) == Some("text");
                for (key, item) in map.iter().rev() {
                    let binary = key == "data" && !text_source;
                    if !binary && !STRUCTURAL_KEYS.contains(&key.as_str()) {
                        stack.push(Item::Value(item, key == "input"));
                    }
                }
            }
            _ => {}
        }
    }
}

/// The strings of `content`, joined by newlines.
pub fn content_text(content: &Value) -> String {
    let mut parts = Vec::new();
    content_strings(content, &mut parts);
    parts.join("\n")
}

/// What a `prompt` trigger reads: every text of `system` and of each message's content
/// ([`content_strings`]), joined by newlines.
pub fn conversation_text(body: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(system) = body.get("system") {
        content_strings(system, &mut parts);
    }
    for message in body.get("messages").and_then(Value::as_array).into_iter().flatten() {
        if let Some(content) = message.get("content") {
            content_strings(content, &mut parts);
        }
    }
    parts.join("\n")
}

/// What the approver is shown of a request body (unmasked here; the exchange masks each text
/// with every detector before it leaves).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyView {
    /// The system prompt's text.
    pub system: String,
    /// The newest user turn's text (the last `user` message).
    pub newest_turn: String,
    /// The assistant prefill's text (when the last message is the assistant's).
    pub prefill: String,
    /// How many messages the conversation has (the grant covers all of them).
    pub messages: u64,
    /// The URL of each entry of `mcp_servers`.
    pub mcp_server_urls: Vec<String>,
}

impl BodyView {
    /// The view of `body` (a Messages request body).
    pub fn of(body: &Value) -> Self {
        let messages = body.get("messages").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let role = |m: &Value| m.get("role").and_then(Value::as_str).map(str::to_string);
        let text_of = |m: Option<&Value>| m.and_then(|m| m.get("content")).map(content_text).unwrap_or_default();
        let newest_user = messages.iter().rev().find(|m| role(m).as_deref() == Some("user"));
        let prefill = messages.last().filter(|m| role(m).as_deref() == Some("assistant"));
        let mcp_server_urls = body
            .get("mcp_servers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|s| s.get("url").and_then(Value::as_str).unwrap_or_default().to_string())
            .collect();
        Self {
            system: body.get("system").map(content_text).unwrap_or_default(),
            newest_turn: text_of(newest_user),
            prefill: text_of(prefill),
            messages: messages.len() as u64,
            mcp_server_urls,
        }
    }
}
/// The content (raw JSON) of the last `user` message in `messages`.
pub fn newest_user_content<'a>(messages: &[&'a RawValue]) -> Option<&'a RawValue> {
    messages
        .iter()
        .rev()
        .filter_map(|raw| Message::parse(raw).ok())
        .find(|m| m.role.as_deref() == Some("user"))
        .and_then(|m| m.content)
}

/// A user message's content (raw JSON: a string or blocks) as text: its text blocks and tool
/// results, joined by newlines. Content that is not valid JSON counts as empty (the body was
/// already validated).
pub fn turn_text(content_json: &str) -> String {
    // Parsing into a `Value` recurses per level: over-deep content (refused by the body check
    // before it gets here) reads as empty.
    use crate::core::request::nesting::{depth, MAX_BODY_DEPTH};
    if depth(content_json.as_bytes(), MAX_BODY_DEPTH) > MAX_BODY_DEPTH {
        return String::new();
    }
    let Ok(content) = serde_json::from_str::<Value>(content_json) else { return String::new() };
    let mut parts: Vec<&str> = Vec::new();
    collect_text(&content, &mut parts, true);
    parts.join("\n")
}

/// Whether any trigger reads the conversation text.
pub fn reads_conversation(triggers: &[Trigger]) -> bool {
    triggers.iter().any(|t| matches!(t.condition, Condition::Prompt(_)))
}

/// Pushes the text of `content` (a string, or blocks: `text`, and `tool_result` one level deep).
fn collect_text<'v>(content: &'v Value, parts: &mut Vec<&'v str>, tool_results: bool) {
    match content {
        Value::String(text) => parts.push(text),
        Value::Array(blocks) => {
            for block in blocks {
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(text) = block.get("text").and_then(Value::as_str) {
                            parts.push(text);
                        }
                    }
                    Some("tool_result") if tool_results => {
                        if let Some(inner) = block.get("content") {
                            collect_text(inner, parts, false);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// `text` cut to at most `max_chars` characters, with `…` when cut.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or_default()),
        None => text.to_string(),
    }
}

/// The callout body: what the approval service (and so the approver) learns about a request.
#[derive(Debug, Serialize)]
pub struct HoldRequest<'a> {
    /// Protocol version, `1`.
    pub version: u32,
    /// The gateway's request id.
    pub request_id: &'a str,
    /// [`fingerprint`] of the request.
    pub fingerprint: &'a str,
    /// Who asks.
    pub caller: CallerView<'a>,
    /// The caller's role.
    pub role: &'a str,
    /// Reason codes of the triggers that fired.
    pub reasons: &'a [&'a str],
    /// The model asked for.
    pub model: &'a str,
    /// Declared tools.
    pub tools: &'a [String],
    /// `max_tokens`, when present.
    pub max_tokens: Option<u64>,
    /// Size of the request body in bytes.
    pub body_bytes: u64,
    /// Whether the request lists MCP servers.
    pub mcp_servers: bool,
    /// The URL of each MCP server, masked, each cut to [`URL_CHARS`].
    pub mcp_server_urls: &'a [String],
    /// How many messages the conversation has.
    pub messages: u64,
    /// The newest user turn, masked and cut to [`EXCERPT_CHARS`].
    pub excerpt: &'a str,
    /// The system prompt, masked and cut to [`EXCERPT_CHARS`].
    pub system_excerpt: &'a str,
    /// The assistant prefill (empty without one), masked and cut to [`EXCERPT_CHARS`].
    pub prefill_excerpt: &'a str,
    /// How long the filter waits, in seconds.
    pub hold_seconds: u64,
    /// The agent session the request belongs to (Claude Code's session id), which a session
    /// grant covers; absent when the client named none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<&'a str>,
    /// The agent that sent the request, when Claude Code marked it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentView<'a>>,
    /// For a tool call Claude proposed (held in the answer): the call itself. Absent for a
    /// request held before it went upstream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call: Option<ToolCallView<'a>>,
}

/// The agent that sent a request (Claude Code's subagent headers).
#[derive(Debug, Serialize)]
pub struct AgentView<'a> {
    /// `x-claude-code-agent-id`.
    pub id: Option<&'a str>,
    /// `x-claude-code-parent-agent-id`.
    pub parent: Option<&'a str>,
}

/// A proposed tool call as the approver sees it.
#[derive(Debug, Serialize)]
pub struct ToolCallView<'a> {
    /// The block's id (`toolu_…`).
    pub id: &'a str,
    /// `tool_use`, `server_tool_use` or `mcp_tool_use`.
    pub kind: &'a str,
    /// The tool's name.
    pub name: &'a str,
    /// The MCP server of an `mcp_tool_use` block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<&'a str>,
    /// The full input as JSON text, masked by every detector.
    pub input: &'a str,
    /// The rule that asked for approval (its id).
    pub rule: &'a str,
    /// The rule's reason, in words.
    pub reason: &'a str,
}

/// The caller as the approver sees it.
#[derive(Debug, Serialize)]
pub struct CallerView<'a> {
    /// Token subject.
    pub subject: &'a str,
    /// Token issuer.
    pub issuer: &'a str,
    /// Groups from the token.
    pub groups: &'a [String],
    /// Job claims (CI runs).
    pub job: BTreeMap<&'a str, &'a str>,
}

impl<'a> CallerView<'a> {
    /// The view of `caller`.
    pub fn of(caller: &'a Caller) -> Self {
        Self {
            subject: &caller.subject,
            issuer: &caller.issuer,
            groups: &caller.groups,
            job: caller.job.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::policy::glob::{Glob, GlobSet};
    use regex_automata::meta::Regex;

    fn globs(patterns: &[&str]) -> GlobSet {
        GlobSet::new(patterns.iter().map(|p| Glob::parse(p).unwrap()).collect())
    }

    fn facts() -> RequestFacts {
        RequestFacts {
            model: "claude-sonnet-4-5".into(),
            tools: vec!["Read".into(), "Bash".into()],
            max_tokens: Some(8_000),
            body_bytes: 60_000,
            mcp_servers: false,
            conversation: "please drop the production database".into(),
        }
    }

    /// Monday to Friday, 08:00–19:00 UTC.
    fn office_hours() -> Window {
        Window { days: [true, true, true, true, true, false, false], start_minute: 8 * 60, end_minute: 19 * 60 }
    }

    /// 2026-11-30 is a Monday.
    const MONDAY_NOON: i64 = 1_795_996_800 + 12 * 3600;

    #[test]
    fn each_condition_fires_on_its_own_fact() {
        let f = facts();
        let fires = |condition| Trigger { reason: "r".into(), condition }.fires(&f, MONDAY_NOON);
        assert!(fires(Condition::Models(globs(&["claude-sonnet-*"]))));
        assert!(!fires(Condition::Models(globs(&["claude-opus-*"]))));
        assert!(fires(Condition::Tools(globs(&["Bash"]))));
        assert!(!fires(Condition::Tools(globs(&["Write"]))));
        assert!(fires(Condition::Prompt(Regex::new(r"(?i)production\s+database").unwrap())));
        assert!(!fires(Condition::Prompt(Regex::new(r"staging").unwrap())));
        assert!(fires(Condition::MaxTokensAbove(4_000)) && !fires(Condition::MaxTokensAbove(8_000)));
        assert!(fires(Condition::BodyBytesAbove(50_000)) && !fires(Condition::BodyBytesAbove(60_000)));
        assert!(!fires(Condition::McpServers));
        assert!(!fires(Condition::OutsideWindow(office_hours())));
    }

    #[test]
    fn reasons_come_in_trigger_order_once_each() {
        let triggers = vec![
            Trigger { reason: "bash_tool".into(), condition: Condition::Tools(globs(&["Bash"])) },
            Trigger { reason: "big".into(), condition: Condition::MaxTokensAbove(100) },
            Trigger { reason: "bash_tool".into(), condition: Condition::Tools(globs(&["B*"])) },
            Trigger { reason: "mcp".into(), condition: Condition::McpServers },
        ];
        assert_eq!(reasons(&triggers, &facts(), MONDAY_NOON), vec!["bash_tool", "big"]);
        assert!(reasons(&[], &facts(), MONDAY_NOON).is_empty());
    }

    #[test]
    fn windows_follow_weekdays_and_wrap_past_midnight() {
        let hours = office_hours();
        assert!(hours.contains(MONDAY_NOON));
        assert!(!hours.contains(MONDAY_NOON + 8 * 3600), "20:00 Monday");
        assert!(!hours.contains(MONDAY_NOON - 5 * 3600), "07:00 Monday");
        assert!(!hours.contains(MONDAY_NOON + 5 * 86_400), "Saturday noon");
        let night = Window {
            days: [false, false, false, false, true, false, false],
            start_minute: 22 * 60,
            end_minute: 6 * 60,
        };
        let friday_23h = MONDAY_NOON + 4 * 86_400 + 11 * 3600;
        assert!(night.contains(friday_23h));
        assert!(night.contains(friday_23h + 6 * 3600), "05:00 Saturday, opened Friday");
        assert!(!night.contains(friday_23h + 8 * 3600), "07:00 Saturday");
        assert!(!night.contains(friday_23h - 86_400), "23:00 Thursday");
    }

    #[test]
    fn the_fingerprint_binds_issuer_subject_role_reasons_and_body() {
        let fp = |iss: &str, sub: &str, role: &str, reasons: &[&str], body: &[u8]| {
            fingerprint(iss, sub, role, reasons, body)
        };
        let base = fp("idp", "alice", "developer", &["opus", "bash"], b"{}");
        assert_eq!(base.len(), 64);
        assert_eq!(base, fp("idp", "alice", "developer", &["bash", "opus", "bash"], b"{}"), "reasons are a set");
        for other in [
            fp("other-idp", "alice", "developer", &["opus", "bash"], b"{}"),
            fp("idp", "bob", "developer", &["opus", "bash"], b"{}"),
            fp("idp", "alice", "analyst", &["opus", "bash"], b"{}"),
            fp("idp", "alice", "developer", &["opus"], b"{}"),
            fp("idp", "alice", "developer", &["opus", "bash"], b"{ }"),
        ] {
            assert_ne!(base, other);
        }
        // Field boundaries are part of the encoding.
        assert_ne!(fp("ab", "c", "r", &[], b""), fp("a", "bc", "r", &[], b""));
    }

    #[test]
    fn the_conversation_holds_every_client_text_but_structure_and_binary_data() {
        let body: Value = serde_json::from_str(
            r#"{"system": [{"type": "text", "text": "SYSTEM"}],
                "messages": [
                  {"role": "user", "content": [
                    {"type": "search_result", "source": "https://SEARCH-URL", "title": "SEARCH-TITLE",
                     "content": [{"type": "text", "text": "SEARCH-TEXT"}]},
                    {"type": "document", "title": "DOC-TITLE", "context": "DOC-CONTEXT",
                     "source": {"type": "text", "media_type": "text/plain", "data": "DOC-TEXT"}},
                    {"type": "document", "source": {"type": "url", "url": "https://DOC-URL"}},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "QkFTRTY0"}},
                    {"type": "image", "source": {"type": "url", "url": "https://IMAGE-URL"}},
                    {"type": "tool_result", "tool_use_id": "toolu_ID", "content": [{"type": "text", "text": "RESULT"}]}
                  ]},
                  {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "THOUGHT", "signature": "SIG"},
                    {"type": "redacted_thinking", "data": "ENCRYPTED"},
                    {"type": "tool_use", "id": "toolu_ID", "name": "Bash", "input": {"INPUT-KEY": ["INPUT-VALUE"], "type": "FREE"}}
                  ]},
                  {"role": "user", "content": "NEWEST"},
                  {"role": "assistant", "content": "PREFILL"}
                ]}"#,
        )
        .unwrap();
        let text = conversation_text(&body);
        for seen in [
            "SYSTEM",
            "SEARCH-URL",
            "SEARCH-TITLE",
            "SEARCH-TEXT",
            "DOC-TITLE",
            "DOC-CONTEXT",
            "DOC-TEXT",
            "DOC-URL",
            "IMAGE-URL",
            "RESULT",
            "THOUGHT",
            "INPUT-KEY",
            "INPUT-VALUE",
            "FREE",
            "NEWEST",
            "PREFILL",
        ] {
            assert!(text.contains(seen), "{seen} missing from {text:?}");
        }
        for unseen in ["QkFTRTY0", "ENCRYPTED", "SIG", "toolu_ID", "search_result", "application/pdf"] {
            assert!(!text.contains(unseen), "{unseen} in {text:?}");
        }
        let view = BodyView::of(&body);
        assert_eq!(
            (view.system.as_str(), view.newest_turn.as_str(), view.prefill.as_str()),
            ("SYSTEM", "NEWEST", "PREFILL")
        );
        assert_eq!(view.messages, 4);
    }

    #[test]
    fn the_view_lists_mcp_urls_and_has_no_prefill_when_the_user_speaks_last() {
        let body: Value = serde_json::from_str(
            r#"{"mcp_servers": [{"type": "url", "url": "https://mcp.example/a", "name": "a"}, {"name": "b"}],
                "messages": [{"role": "user", "content": "q"}]}"#,
        )
        .unwrap();
        let view = BodyView::of(&body);
        assert_eq!(view.mcp_server_urls, vec!["https://mcp.example/a".to_string(), String::new()]);
        assert_eq!((view.prefill.as_str(), view.system.as_str(), view.newest_turn.as_str()), ("", "", "q"));
    }

    #[test]
    fn a_deeply_nested_tool_input_is_read_without_recursion() {
        let mut input = Value::String("DEEP".into());
        for _ in 0..10_000 {
            input = Value::Array(vec![input]);
        }
        let mut block = serde_json::Map::new();
        block.insert("type".into(), "tool_use".into());
        block.insert("name".into(), "x".into());
        block.insert("input".into(), input);
        let content = Value::Array(vec![Value::Object(block)]);
        let mut parts = Vec::new();
        content_strings(&content, &mut parts);
        assert_eq!(parts, vec!["DEEP", "x"], "keys in sorted order: input, name");
        // Take the value apart iteratively (serde_json's drop recurses).
        let mut stack = vec![content];
        while let Some(mut v) = stack.pop() {
            match &mut v {
                Value::Array(items) => stack.append(items),
                Value::Object(map) => stack.extend(std::mem::take(map).into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
    }

    fn messages(json: &str) -> Vec<serde_json::Value> {
        serde_json::from_str(json).unwrap()
    }

    fn newest(json: &str) -> String {
        let raw: Vec<Box<serde_json::value::RawValue>> =
            messages(json).iter().map(|m| serde_json::value::to_raw_value(m).unwrap()).collect();
        let borrowed: Vec<&serde_json::value::RawValue> = raw.iter().map(|r| r.as_ref()).collect();
        newest_user_content(&borrowed).map(|c| turn_text(c.get())).unwrap_or_default()
    }

    #[test]
    fn the_newest_turn_is_the_last_user_message_with_its_tool_results() {
        let json = r#"[
            {"role": "user", "content": "old question"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "ls output"}]},
                {"type": "tool_result", "tool_use_id": "t2", "content": "plain result"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "text", "text": "now deploy"}
            ]}
        ]"#;
        assert_eq!(newest(json), "ls output\nplain result\nnow deploy");
        assert_eq!(newest(r#"[{"role": "user", "content": "just text"}]"#), "just text");
        assert_eq!(newest(r#"[{"role": "assistant", "content": "no user"}]"#), "");
    }

    #[test]
    fn deeply_nested_turns_are_read_without_overflowing_the_stack() {
        use crate::core::request::nesting::{on_small_stack, SMALL_STACK};
        for levels in [4_000, 100_000] {
            let text = on_small_stack(SMALL_STACK, move || {
                let open = r#"[{"type":"tool_result","tool_use_id":"t","content":"#;
                let content = format!("{}\"deep\"{}", open.repeat(levels), "}]".repeat(levels));
                turn_text(&content)
            });
            assert_eq!(text, "", "over the body depth limit nothing is read");
        }
        // At the limit (32 nested results: 64 levels) the parse fits the stack.
        let text = on_small_stack(SMALL_STACK, || {
            let open = r#"[{"type":"tool_result","tool_use_id":"t","content":"#;
            turn_text(&format!("{}\"deep\"{}", open.repeat(32), "}]".repeat(32)))
        });
        assert_eq!(text, "");
    }

    #[test]
    fn excerpts_are_cut_on_character_boundaries() {
        assert_eq!(excerpt("héllo", 2), "hé…");
        assert_eq!(excerpt("héllo", 5), "héllo");
        assert_eq!(excerpt("", 3), "");
    }
}
