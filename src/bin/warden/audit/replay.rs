//! `warden audit replay`: a session's records as a conversation, turn by turn.
//!
//! For each record of the session, in request order (start time, then storage position: the
//! workers of a gateway deliver independently, so a later request can be stored first): a header
//! (time, who, role, model, outcome), the messages of `request.messages` not shown before, then
//! the decision (refusal reason), the approval, the response content as delivered (text, tool
//! calls), DLP counts and token usage. Clients re-send the whole history each turn, so a message
//! is shown once: messages are skipped when their blob name or comparable content was shown
//! before, and an assistant message is skipped when all its text and tool calls were already
//! shown as a response. Comparable content is the canonical JSON of the message's comparable form
//! (`warden::core::comparable`: `cache_control` markers dropped, a string `content` read as one
//! text block), the same form an approval binds to: Claude Code re-sends the same history
//! in those different forms from one request to the next (it moves its cache breakpoints to the
//! newest messages, and sends a prompt as a block list in one request and as a string in the
//! next). Blobs are resolved from the store; a missing blob is shown as such.
//!
//! With `pace`, the gaps between records' start times are slept, each capped at
//! [`MAX_PACE_GAP_MS`].
//!
//! Limits: images and documents are shown as placeholders; thinking blocks are not shown.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

use serde_json::Value;

use super::chain::{canonical, is_blob_name};
use super::store::{AuditError, AuditStore, RecordFilter};

/// Longest pause `--pace` sleeps between two records.
pub const MAX_PACE_GAP_MS: i64 = 5_000;

/// What has been shown so far.
#[derive(Default)]
struct Shown {
    messages: HashSet<Vec<u8>>,
    pieces: HashSet<String>,
}

fn piece(block: &Value) -> Option<String> {
    match block.get("type").and_then(Value::as_str)? {
        "text" => block.get("text").and_then(Value::as_str).map(|t| format!("text:{t}")),
        "tool_use" => block.get("id").and_then(Value::as_str).map(|id| format!("tool_use:{id}")),
        _ => None,
    }
}

fn blocks(content: &Value) -> Vec<Value> {
    match content {
        Value::String(text) => vec![serde_json::json!({"type": "text", "text": text})],
        Value::Array(items) => items.clone(),
        _ => Vec::new(),
    }
}

/// What two copies of one message have in common however the client re-sent it: its canonical
/// comparable form ([`warden::core::comparable`], the same form approvals bind to).
fn comparable(message: &Value) -> Vec<u8> {
    let mut message = message.clone();
    warden::core::comparable::comparable_message(&mut message);
    canonical(&message)
}

fn indent(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\n    ")
}

fn render_block(speaker: &str, block: &Value, out: &mut String) {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or("?");
    let text = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    match kind {
        "text" => {
            let _ = writeln!(out, "  {speaker}: {}", indent(&text("text")));
        }
        "tool_use" => {
            let input = block.get("input").map(Value::to_string).unwrap_or_default();
            let _ = writeln!(out, "  {speaker} → tool call {} ({}): {input}", text("name"), text("id"));
        }
        "tool_result" => {
            let content: Vec<String> = blocks(block.get("content").unwrap_or(&Value::Null))
                .iter()
                .map(|b| {
                    b.get("text")
                        .and_then(Value::as_str)
                        .map_or_else(|| "[non-text content]".to_string(), str::to_string)
                })
                .collect();
            let error = if block.get("is_error").and_then(Value::as_bool) == Some(true) { " (error)" } else { "" };
            let _ = writeln!(out, "  tool result{error} ({}): {}", text("tool_use_id"), indent(&content.join("\n")));
        }
        "thinking" | "redacted_thinking" => {}
        other => {
            let _ = writeln!(out, "  {speaker}: [{other}]");
        }
    }
}

fn render_message(message: &Value, shown: &mut Shown, out: &mut String) {
    let role = message.get("role").and_then(Value::as_str).unwrap_or("?");
    let content = blocks(message.get("content").unwrap_or(&Value::Null));
    if role == "assistant" {
        let pieces: Vec<String> = content.iter().filter_map(piece).collect();
        if !pieces.is_empty() && pieces.iter().all(|p| shown.pieces.contains(p)) {
            return;
        }
    }
    for block in &content {
        render_block(role, block, out);
        if let Some(p) = piece(block) {
            shown.pieces.insert(p);
        }
    }
}

fn counts(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_object)
        .map(|map| map.iter().map(|(k, v)| format!("{k}×{v}")).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn render_record(
    record: &Value,
    store: &dyn AuditStore,
    shown: &mut Shown,
    out: &mut String,
) -> Result<(), AuditError> {
    let field = |path: &[&str]| {
        let mut value = record;
        for key in path {
            value = value.get(key)?;
        }
        Some(value)
    };
    let text = |path: &[&str]| field(path).and_then(Value::as_str).unwrap_or("-").to_string();
    let start = field(&["timings", "start"]).and_then(Value::as_i64).unwrap_or(0);
    let _ = writeln!(
        out,
        "── {} · {} · {} ({}) · {} · {}",
        text(&["id"]),
        crate::serve::util::format_utc(start.div_euclid(1000)),
        text(&["identity", "subject"]),
        text(&["identity", "role"]),
        text(&["model"]),
        text(&["outcome"])
    );
    let names = field(&["request", "messages"]).and_then(Value::as_array).cloned().unwrap_or_default();
    for name in names.iter().filter_map(Value::as_str).filter(|n| is_blob_name(n)) {
        if !shown.messages.insert(name.as_bytes().to_vec()) {
            continue;
        }
        let Some(content) = store.blob(name)? else {
            let _ = writeln!(out, "  [message {name} is missing from the store]");
            continue;
        };
        match serde_json::from_str::<Value>(&content) {
            Ok(message) => {
                if shown.messages.insert(comparable(&message)) {
                    render_message(&message, shown, out);
                }
            }
            Err(_) => {
                let _ = writeln!(out, "  [message {name} is not JSON]");
            }
        }
    }
    if field(&["decision", "allowed"]).and_then(Value::as_bool) == Some(false) {
        let _ = writeln!(
            out,
            "  ✗ refused: {} ({}) {}",
            text(&["decision", "reason"]),
            field(&["decision", "status"]).map(Value::to_string).unwrap_or_default(),
            text(&["decision", "message"])
        );
    }
    if let Some(approval) = field(&["approval"]).filter(|a| a.is_object()) {
        let get = |k: &str| approval.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
        let _ = writeln!(out, "  approval: {} by {} (review {})", get("decision"), get("reviewer"), get("review"));
    }
    if let Some(content) = field(&["response", "content"]).and_then(Value::as_array) {
        for block in content {
            render_block("assistant", block, out);
            if let Some(p) = piece(block) {
                shown.pieces.insert(p);
            }
        }
    }
    if let Some(error) = field(&["response", "error"]).filter(|e| !e.is_null()) {
        let _ = writeln!(out, "  response error: {error}");
    }
    let dlp: Vec<String> = ["masked", "blocked", "audited"]
        .iter()
        .filter_map(|k| {
            let listed = counts(field(&["dlp", k]));
            (!listed.is_empty()).then(|| format!("{k} {listed}"))
        })
        .collect();
    if !dlp.is_empty() {
        let _ = writeln!(out, "  dlp: {}", dlp.join("; "));
    }
    if let Some(usage) = field(&["usage"]).filter(|u| u.is_object()) {
        let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
        let _ = writeln!(
            out,
            "  tokens: in {}, out {}, cache read {}, cache write {}",
            n("input_tokens"),
            n("output_tokens"),
            n("cache_read_input_tokens"),
            n("cache_creation_input_tokens")
        );
    }
    Ok(())
}

/// Renders the session's records in request order (their time — the start of the request —
/// then their position), calling `visit(position, time, text)` with each record's turn; returns
/// the number of records.
pub fn turns(
    store: &dyn AuditStore,
    session: &str,
    visit: &mut dyn FnMut(i64, i64, String) -> Result<(), AuditError>,
) -> Result<u64, AuditError> {
    let filter = RecordFilter { since: None, session: Some(session.to_string()) };
    let mut rows = Vec::new();
    store.for_each_record(&filter, &mut |row| {
        rows.push(row);
        Ok(())
    })?;
    rows.sort_by_key(|row| (row.time, row.position));
    let mut shown = Shown::default();
    let mut count = 0;
    for row in rows {
        let record: Value = serde_json::from_str(&row.record).map_err(|e| {
            AuditError::Database(format!("position {}: the stored record is not JSON: {e}", row.position))
        })?;
        let mut text = String::new();
        render_record(&record, store, &mut shown, &mut text)?;
        count += 1;
        visit(row.position, row.time, text)?;
    }
    Ok(count)
}

/// Prints the session's conversation to `out`; returns the number of records shown.
pub fn replay(store: &dyn AuditStore, session: &str, pace: bool, out: &mut dyn Write) -> Result<u64, AuditError> {
    let io = |e: std::io::Error| AuditError::Database(format!("cannot write: {e}"));
    let mut previous_start: Option<i64> = None;
    turns(store, session, &mut |_, time, text| {
        if pace {
            if let Some(previous) = previous_start {
                let gap = (time - previous).clamp(0, MAX_PACE_GAP_MS);
                std::thread::sleep(Duration::from_millis(u64::try_from(gap).unwrap_or(0)));
            }
            previous_start = Some(time);
        }
        out.write_all(text.as_bytes()).map_err(io)?;
        out.flush().map_err(io)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::chain::{blob_name, parse_record, IncomingRecord};
    use super::super::store::tests::memory_store;
    use super::*;
    use serde_json::json;

    #[test]
    fn refusals_and_missing_messages_are_shown_rather_than_skipped() {
        let mut store = memory_store();
        let line = json!({"version": 1, "source": "gw", "seq": 1, "id": "gw-1", "session_id": "s",
                          "decision": {"allowed": false, "reason": "model_not_allowed", "status": 403, "message": "no opus"},
                          "request": {"messages": [blob_name("never sent")]}, "outcome": "refused"});
        store.append(&[parse_record(line.to_string().as_bytes(), 0).unwrap()]).unwrap();
        let mut out = Vec::new();
        assert_eq!(replay(&store, "s", false, &mut out).unwrap(), 1);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("✗ refused: model_not_allowed (403) no opus"), "{text}");
        assert!(text.contains("is missing from the store"), "{text}");
        assert_eq!(replay(&store, "other", false, &mut Vec::new()).unwrap(), 0);
    }

    /// A record of session "s" with these messages (blobs included) and this response.
    fn exchange(seq: i64, start: i64, messages: &[Value], response: Value) -> IncomingRecord {
        let texts: Vec<String> = messages.iter().map(Value::to_string).collect();
        let blobs: serde_json::Map<String, Value> =
            texts.iter().map(|t| (blob_name(t), Value::String(t.clone()))).collect();
        let line = json!({"version": 1, "source": "gw", "seq": seq, "id": format!("gw-{seq}"), "session_id": "s",
                          "timings": {"start": start}, "outcome": "completed",
                          "request": {"messages": texts.iter().map(|t| blob_name(t)).collect::<Vec<_>>()},
                          "response": {"content": [response]}, "blobs": blobs});
        parse_record(line.to_string().as_bytes(), 0).unwrap()
    }

    /// What Claude Code 2.0.76 sends over three requests (a tool call, its result, a second
    /// prompt): the history comes back with the cache breakpoint moved to the newest messages, and
    /// the first prompt as blocks, then as a string, then as blocks again. The second worker
    /// stored its record first.
    #[test]
    fn a_claude_code_history_re_sent_in_other_forms_is_shown_once_in_request_order() {
        let ephemeral = json!({"type": "ephemeral"});
        let prompt = "Use the Glob tool to list files";
        let call = json!({"type": "tool_use", "id": "toolu_1", "name": "Glob", "input": {"pattern": "*"}});
        let answer = json!({"type": "text", "text": "One file: notes.txt"});
        let with_cc = |block: &Value| {
            let mut block = block.clone();
            block["cache_control"] = ephemeral.clone();
            block
        };
        let result = json!({"type": "tool_result", "tool_use_id": "toolu_1", "content": "notes.txt"});
        let first = exchange(
            1,
            100,
            &[json!({"role": "user", "content": [{"type": "text", "text": prompt, "cache_control": ephemeral}]})],
            call.clone(),
        );
        let second = exchange(
            2,
            200,
            &[
                json!({"role": "user", "content": prompt}),
                json!({"role": "assistant", "content": [with_cc(&call)]}),
                json!({"role": "user", "content": [with_cc(&result)]}),
            ],
            answer.clone(),
        );
        let third = exchange(
            3,
            300,
            &[
                json!({"role": "user", "content": [{"type": "text", "text": prompt}]}),
                json!({"role": "assistant", "content": [call]}),
                json!({"role": "user", "content": [result]}),
                json!({"role": "assistant", "content": [with_cc(&answer)]}),
                json!({"role": "user", "content": [{"type": "text", "text": "Thanks.", "cache_control": ephemeral}]}),
            ],
            json!({"type": "text", "text": "You are welcome."}),
        );
        let mut store = memory_store();
        store.append(&[second]).unwrap();
        store.append(&[first, third]).unwrap();
        let mut out = Vec::new();
        assert_eq!(replay(&store, "s", false, &mut out).unwrap(), 3);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with("──")).collect();
        assert_eq!(
            lines,
            [
                "  user: Use the Glob tool to list files",
                "  assistant → tool call Glob (toolu_1): {\"pattern\":\"*\"}",
                "  tool result (toolu_1): notes.txt",
                "  assistant: One file: notes.txt",
                "  user: Thanks.",
                "  assistant: You are welcome.",
            ],
            "{text}"
        );
        let ids: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("── ")?.split(' ').next()).collect();
        assert_eq!(ids, ["gw-1", "gw-2", "gw-3"], "{text}");
    }
}
