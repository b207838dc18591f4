//! The `tool_result` blocks an agent sends back: what the audit record says about them, the
//! role's size limit on them, and the memo of decided calls that gives them their provenance.
//!
//! Algorithm ([`examine`]): a request re-sends its whole history, so only the newest message's
//! `tool_result` blocks are new; those are listed for the record ([`ResultSeen`]). The size limit
//! (`roles.<r>.tools.max_result_bytes`) is enforced on every message, history included — an
//! agent re-sends the oversized result it keeps in its history at every later turn. A block's
//! size is the length of its `content` as JSON text, as sent (escapes, nested blocks and base64
//! images included): what would reach Anthropic. A message no longer than the limit cannot
//! hold a result over it, so only longer messages are parsed: the cost follows what is large,
//! not the whole body.
//!
//! Over the limit, the result's `content` is replaced by a notice ([`withheld_notice`]) naming
//! its size and the limit, and everything else in the block (`tool_use_id`, `is_error`,
//! `cache_control`) stays: the oversized bytes never reach Anthropic, the conversation stays
//! valid (every `tool_use` keeps its answer) and the agent loop goes on, Claude reading why the
//! output is missing. The notice depends only on the size and the limit, so a re-sent history
//! is rewritten to the same bytes every turn and Anthropic's prompt cache keeps working.
//!
//! Provenance ([`CallMemo`]): each worker remembers, for the last [`MEMO_CAPACITY`] calls its
//! answers proposed, the request that proposed each and what Warden did with it; a result whose
//! `tool_use_id` is in the memo is recorded with it. Limits: a worker does not see the calls
//! other workers (or an earlier process) handled, so a miss proves nothing; `warden audit replay`
//! and the session page join each result to the session's recorded calls instead, which is
//! always complete, and flag results that answer no recorded call or a refused one. At most
//! [`MAX_RECORDED_RESULTS`] results of a message are listed (the limit applies to all).

use crate::core::audit::record::{AnsweredCall, ToolCallRecord, ToolResultRecord};
use crate::core::errors::{Denial, Reason};
use crate::core::request::messages::Message;
use crate::core::request::splice::{splice_of, Splice};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::{HashMap, VecDeque};

/// Most `tool_result` blocks of one message listed in a record.
pub const MAX_RECORDED_RESULTS: usize = 128;

/// Longest `tool_use_id` kept in a record or the memo, in characters (Anthropic's ids are ~30).
pub const MAX_ID_CHARS: usize = 128;

/// Calls a worker remembers for provenance (about 200 bytes each).
pub const MEMO_CAPACITY: usize = 4096;

/// One `tool_result` block of the newest message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultSeen {
    /// The `tool_use_id` (bounded, see [`MAX_ID_CHARS`]).
    pub tool_use_id: String,
    /// The size of its `content` as sent, in bytes.
    pub bytes: u64,
    /// Whether it was over the limit (and its content withheld).
    pub over_limit: bool,
    /// Whether it says `"is_error": true`.
    pub is_error: bool,
}

/// What [`examine`] found in a request's messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Examined {
    /// The newest message's results (when asked for), in order, at most
    /// [`MAX_RECORDED_RESULTS`].
    pub newest: Vec<ResultSeen>,
    /// Replacements of the content of every result over the limit, in any message.
    pub withheld: Vec<Splice>,
}

/// One content block, every field kept raw: a field of an unexpected type is no error here
/// (Anthropic judges the shape), a repeated one is ([`examine`] refuses it).
#[derive(Deserialize)]
struct Block<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tool_use_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    is_error: Option<&'a RawValue>,
}

/// Finds the `tool_result` blocks of `messages` (raw entries borrowed from `text`, the body):
/// lists the newest message's when `list_newest`, and withholds every result over `limit`.
/// A message whose blocks cannot be read (a block that is not an object, a field repeated) is
/// refused with `invalid_request` when it had to be read.
pub fn examine(text: &str, messages: &[&RawValue], limit: Option<u64>, list_newest: bool) -> Result<Examined, Denial> {
    let mut examined = Examined::default();
    let newest = messages.len().checked_sub(1);
    for (i, raw) in messages.iter().enumerate() {
        let is_newest = Some(i) == newest;
        let may_exceed = limit.is_some_and(|limit| raw.get().len() as u64 > limit);
        if !(may_exceed || is_newest && list_newest) {
            continue;
        }
        let Some(content) = Message::parse(raw)?.content.filter(|c| c.get().starts_with('[')) else { continue };
        let blocks: Vec<Block> = serde_json::from_str(content.get()).map_err(|e| {
            Denial::new(Reason::InvalidRequest, format!("`messages[{i}].content` has an unexpected shape: {e}"))
        })?;
        for block in blocks.iter().filter(|b| b.kind.is_some_and(|k| decoded(k).as_deref() == Some("tool_result"))) {
            let bytes = block.content.map_or(0, |c| c.get().len()) as u64;
            let over_limit = limit.is_some_and(|limit| bytes > limit);
            if let (true, Some(content), Some(limit)) = (over_limit, block.content, limit) {
                let notice = serde_json::to_string(&withheld_notice(bytes, limit)).unwrap_or_default();
                examined.withheld.push(splice_of(text, content.get(), notice.into_bytes()));
            }
            if is_newest && list_newest && examined.newest.len() < MAX_RECORDED_RESULTS {
                examined.newest.push(ResultSeen {
                    tool_use_id: bounded_id(block.tool_use_id.and_then(decoded).as_deref().unwrap_or_default()),
                    bytes,
                    over_limit,
                    is_error: block.is_error.is_some_and(|v| v.get() == "true"),
                });
            }
        }
    }
    Ok(examined)
}

/// What a withheld result's content becomes (a JSON string).
pub fn withheld_notice(bytes: u64, limit: u64) -> String {
    format!(
        "[Warden withheld this tool result: its content is {bytes} bytes, over this role's limit of {limit} bytes \
         (tools.max_result_bytes). Run the tool again so that it produces less output.]"
    )
}

/// The masking splices that still apply once `withheld` contents are replaced (those inside a
/// withheld content go: the whole content is replaced), followed by `withheld`.
pub fn with_withheld(masks: Vec<Splice>, withheld: Vec<Splice>) -> Vec<Splice> {
    let mut splices: Vec<Splice> =
        masks.into_iter().filter(|m| !withheld.iter().any(|w| w.start <= m.start && m.end <= w.end)).collect();
    splices.extend(withheld);
    splices
}

/// A JSON string's value (`None` for anything else); escapes are decoded, so
/// `"tool\u005fresult"` is `tool_result` as Anthropic reads it.
fn decoded(raw: &RawValue) -> Option<String> {
    serde_json::from_str(raw.get()).ok()
}

/// `id` cut to [`MAX_ID_CHARS`] characters, ending with `…` when cut.
pub fn bounded_id(id: &str) -> String {
    match id.char_indices().nth(MAX_ID_CHARS) {
        Some((cut, _)) => format!("{}…", id.get(..cut).unwrap_or_default()),
        None => id.to_string(),
    }
}

/// The calls a worker's answers proposed, newest [`MEMO_CAPACITY`] kept: call id → the request
/// that proposed it and what Warden did with it.
#[derive(Debug)]
pub struct CallMemo {
    calls: HashMap<String, AnsweredCall>,
    /// Ids in the order remembered, oldest first (each id once).
    order: VecDeque<String>,
    capacity: usize,
}

impl Default for CallMemo {
    fn default() -> Self {
        Self::with_capacity(MEMO_CAPACITY)
    }
}

impl CallMemo {
    /// A memo keeping the newest `capacity` calls.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { calls: HashMap::new(), order: VecDeque::new(), capacity }
    }

    /// Remembers the calls of the record of request `request_id`, evicting the oldest beyond
    /// capacity. Ids longer than [`MAX_ID_CHARS`] are not kept (no real id is that long).
    pub fn remember(&mut self, request_id: &str, calls: &[ToolCallRecord]) {
        for call in calls.iter().filter(|c| c.id.chars().count() <= MAX_ID_CHARS) {
            let answered = AnsweredCall { request_id: request_id.to_string(), outcome: call.outcome.clone() };
            if self.calls.insert(call.id.clone(), answered).is_none() {
                self.order.push_back(call.id.clone());
            }
        }
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.calls.remove(&oldest);
            }
        }
    }

    /// What is remembered of call `id`.
    pub fn get(&self, id: &str) -> Option<&AnsweredCall> {
        self.calls.get(id)
    }

    /// How many calls are remembered.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The record entry of `seen`, with what the memo knows of the call it answers.
    pub fn record_of(&self, seen: ResultSeen) -> ToolResultRecord {
        ToolResultRecord {
            answers: self.get(&seen.tool_use_id).cloned(),
            tool_use_id: seen.tool_use_id,
            bytes: seen.bytes,
            over_limit: seen.over_limit,
            is_error: seen.is_error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::request::splice::apply;
    use serde_json::{json, Value};

    /// The raw `messages` entries of a body.
    fn messages(body: &str) -> Vec<&RawValue> {
        #[derive(Deserialize)]
        struct Body<'a> {
            #[serde(borrow)]
            messages: Vec<&'a RawValue>,
        }
        serde_json::from_str::<Body>(body).unwrap().messages
    }

    fn run(body: &Value, limit: Option<u64>) -> (Examined, Value) {
        let text = body.to_string();
        let examined = examine(&text, &messages(&text), limit, true).unwrap();
        let rewritten = apply(text.as_bytes(), examined.withheld.clone()).unwrap().unwrap_or(text.clone().into_bytes());
        (examined, serde_json::from_slice(&rewritten).unwrap())
    }

    fn result(id: &str, content: Value) -> Value {
        json!({"type": "tool_result", "tool_use_id": id, "content": content})
    }

    #[test]
    fn the_newest_messages_results_are_listed_with_their_content_size_as_sent() {
        let nested = json!([{"type": "text", "text": "ab"}, {"type": "text", "text": "line\n\"q\""}]);
        let body = json!({"messages": [
            {"role": "user", "content": [result("toolu_old", json!("history"))]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}]},
            {"role": "user", "content": [result("toolu_1", json!("hello")), result("toolu_2", nested.clone()),
                                         {"type": "tool_result", "tool_use_id": "toolu_3", "is_error": true},
                                         {"type": "text", "text": "go on"}]},
        ]});
        let (examined, _) = run(&body, None);
        let listed: Vec<(&str, u64, bool)> =
            examined.newest.iter().map(|r| (r.tool_use_id.as_str(), r.bytes, r.is_error)).collect();
        assert_eq!(
            listed,
            [("toolu_1", 7, false), ("toolu_2", nested.to_string().len() as u64, false), ("toolu_3", 0, true)]
        );
        assert!(examined.withheld.is_empty());
    }

    #[test]
    fn a_base64_image_counts_with_its_encoded_bytes() {
        let data = "iVBORw0KGgo".repeat(100);
        let image = json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}]);
        let body = json!({"messages": [{"role": "user", "content": [result("toolu_img", image.clone())]}]});
        let (examined, after) = run(&body, Some(1000));
        assert_eq!(examined.newest[0].bytes, image.to_string().len() as u64);
        assert!(examined.newest[0].over_limit);
        let content = &after["messages"][0]["content"][0]["content"];
        assert!(content.as_str().unwrap().contains("withheld"), "{content}");
        assert!(!after.to_string().contains("iVBORw0KGgo"), "the image reached the rewritten body");
    }

    #[test]
    fn only_the_oversized_content_is_replaced_and_the_block_keeps_its_other_fields() {
        let big = "x".repeat(500);
        let body = json!({"messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_big", "is_error": false, "content": big,
             "cache_control": {"type": "ephemeral"}},
            result("toolu_small", json!("fine")),
        ]}]});
        let (examined, after) = run(&body, Some(100));
        assert_eq!(examined.withheld.len(), 1);
        let blocks = &after["messages"][0]["content"];
        assert_eq!(blocks[0]["tool_use_id"], "toolu_big");
        assert_eq!(blocks[0]["cache_control"], json!({"type": "ephemeral"}));
        assert_eq!(blocks[0]["content"], withheld_notice(502, 100));
        assert_eq!(blocks[1], result("toolu_small", json!("fine")));
        assert_eq!(examined.newest.iter().map(|r| r.over_limit).collect::<Vec<_>>(), [true, false]);
    }

    #[test]
    fn a_result_exactly_at_the_limit_passes() {
        let body = json!({"messages": [{"role": "user", "content": [result("t", json!("x".repeat(98)))]}]});
        let (examined, _) = run(&body, Some(100));
        assert_eq!(examined.newest[0].bytes, 100);
        assert!(!examined.newest[0].over_limit && examined.withheld.is_empty());
    }

    #[test]
    fn an_oversized_result_in_history_is_withheld_again_with_the_same_bytes() {
        let big = result("toolu_big", json!("y".repeat(400)));
        let turn = |extra: &str| {
            json!({"messages": [
                {"role": "user", "content": [big.clone()]},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": extra},
            ]})
        };
        let (first, once) = run(&turn("next"), Some(100));
        let (second, again) = run(&turn("and next"), Some(100));
        assert_eq!(first.withheld.len(), 1);
        assert!(first.newest.is_empty(), "a string message has no results");
        assert_eq!(once["messages"][0], again["messages"][0]);
        assert_eq!(second.withheld[0].bytes, first.withheld[0].bytes);
    }

    #[test]
    fn escaped_type_names_are_read_as_anthropic_reads_them() {
        let text = r#"{"messages":[{"role":"user","content":[{"type":"tool\u005fresult","tool_use_id":"t\u0031","content":"zzzzzzzzzzzz"}]}]}"#;
        let examined = examine(text, &messages(text), Some(5), true).unwrap();
        assert_eq!(examined.newest[0].tool_use_id, "t1");
        assert_eq!(examined.withheld.len(), 1);
    }

    #[test]
    fn a_repeated_content_field_is_refused_rather_than_measured_once() {
        let text = r#"{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"a","content":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}]}]}"#;
        let denial = examine(text, &messages(text), Some(10), true).unwrap_err();
        assert_eq!(denial.reason, Reason::InvalidRequest);
    }

    #[test]
    fn blocks_that_are_not_objects_are_refused_when_read() {
        let text = r#"{"messages":[{"role":"user","content":[1,2,3]}]}"#;
        assert!(examine(text, &messages(text), None, true).is_err());
        assert!(examine(text, &messages(text), None, false).unwrap().newest.is_empty(), "not read, not refused");
    }

    #[test]
    fn hostile_ids_and_floods_of_results_are_bounded_in_the_record() {
        let long_id = "é".repeat(MAX_ID_CHARS + 50);
        let mut blocks: Vec<Value> =
            (0..MAX_RECORDED_RESULTS + 10).map(|i| result(&format!("t{i}"), json!(""))).collect();
        blocks.insert(0, result(&long_id, json!("")));
        let body = json!({"messages": [{"role": "user", "content": blocks}]});
        let (examined, _) = run(&body, None);
        assert_eq!(examined.newest.len(), MAX_RECORDED_RESULTS);
        assert_eq!(examined.newest[0].tool_use_id.chars().count(), MAX_ID_CHARS + 1);
        assert!(examined.newest[0].tool_use_id.ends_with('…'));
    }

    #[test]
    fn masks_inside_a_withheld_content_give_way_to_it() {
        let withheld = vec![Splice { start: 10, end: 50, bytes: b"\"notice\"".to_vec() }];
        let masks = vec![
            Splice { start: 2, end: 5, bytes: Vec::new() },
            Splice { start: 20, end: 30, bytes: Vec::new() },
            Splice { start: 60, end: 70, bytes: Vec::new() },
        ];
        let starts: Vec<usize> = with_withheld(masks, withheld).iter().map(|s| s.start).collect();
        assert_eq!(starts, [2, 60, 10]);
    }

    fn call(id: &str, outcome: &str) -> ToolCallRecord {
        ToolCallRecord {
            id: id.to_string(),
            kind: "tool_use".to_string(),
            name: "Bash".to_string(),
            input: "{}".to_string(),
            outcome: outcome.to_string(),
            rule: None,
            reason: None,
            approval: None,
        }
    }

    #[test]
    fn the_memo_gives_a_result_the_call_it_answers_and_forgets_the_oldest_beyond_capacity() {
        let mut memo = CallMemo::with_capacity(2);
        memo.remember("req-1", &[call("toolu_a", "allowed"), call("toolu_b", "denied")]);
        let seen = ResultSeen { tool_use_id: "toolu_b".to_string(), bytes: 3, over_limit: false, is_error: false };
        let answers = memo.record_of(seen).answers.unwrap();
        assert_eq!((answers.request_id.as_str(), answers.outcome.as_str()), ("req-1", "denied"));
        memo.remember("req-2", &[call("toolu_c", "approved"), call(&"x".repeat(MAX_ID_CHARS + 1), "allowed")]);
        assert_eq!(memo.len(), 2);
        assert!(memo.get("toolu_a").is_none(), "the oldest was evicted");
        assert_eq!(memo.get("toolu_c").unwrap().outcome, "approved");
    }
}
