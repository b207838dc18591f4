//! Just-in-time approval: which requests must wait for a human, how a request is recognised
//! when it comes back, and what the filter sends the approval service.
//!
//! A role's triggers are checked against the facts of an accepted request ([`RequestFacts`]):
//! model globs, declared tool names, a regex over the newest user turn (its text and tool
//! results), `max_tokens` or the body size above a limit, MCP servers present, or a time outside
//! a weekly UTC window. Every trigger that fires contributes its reason code; any reason means
//! the request needs approval.
//!
//! The [`fingerprint`] identifies "the same request" across retries: a SHA-256 over the subject,
//! role, model, the sorted tool names and the newest user turn — not over the whole body, whose
//! history and metadata legitimately differ between a first attempt and its retry. An approval
//! is bound to a fingerprint, so it cannot be reused for another prompt, user or role.
//!
//! [`HoldRequest`] is the callout body (`POST /v1/holds`, docs/approvals.md): who asks, why, and
//! a masked excerpt of the newest turn for the approver to read.
//!
//! Limits: the window is in UTC (no time-zone database in the filter); a window may wrap past
//! midnight (`22:00-06:00`), and days name the day the window starts on. The newest turn is the
//! last `user` message's text blocks and tool results (strings and their text blocks); images and
//! documents are not part of it.

use crate::core::hex::hex;
use crate::core::identity::Caller;
use crate::core::messages::Message;
use crate::core::policy::glob::GlobSet;
use regex_automata::meta::Regex;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;

/// Longest excerpt of the newest turn sent to the approver, in characters.
pub const EXCERPT_CHARS: usize = 2000;

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
    /// The newest user turn as text: its text blocks and tool results, joined by newlines.
    pub newest_turn: String,
}

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
    /// The newest user turn matches this regex.
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

/// A condition and the reason code shown to the approver when it fires.
#[derive(Debug)]
pub struct Trigger {
    /// Stable reason code (`opus_model`, `bash_tool`…), chosen by the policy author.
    pub reason: String,
    /// When it fires.
    pub condition: Condition,
}

impl Trigger {
    /// Whether the trigger fires for `facts` at `unix_seconds`.
    pub fn fires(&self, facts: &RequestFacts, unix_seconds: i64) -> bool {
        match &self.condition {
            Condition::Models(globs) => globs.matches(&facts.model),
            Condition::Tools(globs) => facts.tools.iter().any(|t| globs.matches(t)),
            Condition::Prompt(regex) => regex.is_match(facts.newest_turn.as_str()),
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

/// Lower-case hex SHA-256 identifying a request across retries (see the module header).
pub fn fingerprint(subject: &str, role: &str, facts: &RequestFacts) -> String {
    let mut tools: Vec<&str> = facts.tools.iter().map(String::as_str).collect();
    tools.sort_unstable();
    tools.dedup();
    let mut hash = hmac_sha256::Hash::new();
    // Length-prefixed fields: no two different inputs share an encoding.
    let mut field = |bytes: &[u8]| {
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(bytes);
    };
    field(b"warden approval fingerprint v1");
    field(subject.as_bytes());
    field(role.as_bytes());
    field(facts.model.as_bytes());
    field(&(tools.len() as u64).to_le_bytes());
    for tool in tools {
        field(tool.as_bytes());
    }
    field(facts.newest_turn.as_bytes());
    hex(&hash.finalize())
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
    use crate::core::nesting::{depth, MAX_BODY_DEPTH};
    if depth(content_json.as_bytes(), MAX_BODY_DEPTH) > MAX_BODY_DEPTH {
        return String::new();
    }
    let Ok(content) = serde_json::from_str::<Value>(content_json) else { return String::new() };
    let mut parts: Vec<&str> = Vec::new();
    collect_text(&content, &mut parts, true);
    parts.join("\n")
}

/// Whether any trigger reads the newest turn (the others need it only once they fired).
pub fn reads_turn(triggers: &[Trigger]) -> bool {
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
    /// The newest user turn, masked and cut to [`EXCERPT_CHARS`].
    pub excerpt: &'a str,
    /// How long the filter waits, in seconds.
    pub hold_seconds: u64,
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
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::core::policy::glob::Glob;

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
            newest_turn: "please drop the production database".into(),
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
    fn the_fingerprint_binds_caller_prompt_and_tools_but_not_their_order() {
        let base = fingerprint("alice", "developer", &facts());
        assert_eq!(base.len(), 64);
        assert_eq!(base, fingerprint("alice", "developer", &facts()));
        let mut reordered = facts();
        reordered.tools.reverse();
        assert_eq!(base, fingerprint("alice", "developer", &reordered), "tool order does not matter");
        let mut other_prompt = facts();
        other_prompt.newest_turn.push('!');
        for other in [
            fingerprint("bob", "developer", &facts()),
            fingerprint("alice", "analyst", &facts()),
            fingerprint("alice", "developer", &other_prompt),
            fingerprint("alice", "developer", &RequestFacts { model: "claude-opus-4-1".into(), ..facts() }),
            fingerprint("alice", "developer", &RequestFacts { tools: vec!["Read".into()], ..facts() }),
        ] {
            assert_ne!(base, other);
        }
        // Field boundaries are part of the encoding.
        assert_ne!(fingerprint("ab", "c", &facts()), fingerprint("a", "bc", &facts()));
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
        use crate::core::nesting::{on_small_stack, SMALL_STACK};
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
