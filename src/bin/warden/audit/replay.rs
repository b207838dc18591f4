//! `warden audit replay`: a session's records as a conversation, turn by turn.
//!
//! For each record of the session, in storage order: a header (time, who, role, model,
//! outcome), the messages of `request.messages` not shown before, then the decision (refusal
//! reason), the approval, the response content as delivered (text, tool calls), DLP counts and
//! token usage. Clients re-send the whole history each turn, so a message is shown once:
//! messages are skipped when their blob name or canonical content was shown before, and an
//! assistant message is skipped when all its text and tool calls were already shown as a
//! response. Blobs are resolved from the store; a missing blob is shown as such.
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
                if shown.messages.insert(canonical(&message)) {
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

/// Renders the session's records in storage order, calling `visit(position, time, text)` with
/// each record's turn; returns the number of records.
pub fn turns(
    store: &dyn AuditStore,
    session: &str,
    visit: &mut dyn FnMut(i64, i64, String) -> Result<(), AuditError>,
) -> Result<u64, AuditError> {
    let filter = RecordFilter { since: None, session: Some(session.to_string()) };
    let mut shown = Shown::default();
    let mut count = 0;
    store.for_each_record(&filter, &mut |row| {
        let record: Value = serde_json::from_str(&row.record).map_err(|e| {
            AuditError::Database(format!("position {}: the stored record is not JSON: {e}", row.position))
        })?;
        let mut text = String::new();
        render_record(&record, store, &mut shown, &mut text)?;
        count += 1;
        visit(row.position, row.time, text)
    })?;
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
    use super::super::chain::{blob_name, parse_record};
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
}
