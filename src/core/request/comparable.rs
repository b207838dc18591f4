//! The comparable form of a Messages request: what two sends of "the same request" have in
//! common, however the client re-sent it. One definition, used where a request must be
//! recognised again: the approval fingerprint ([`crate::core::approval::fingerprint`]: a grant
//! covers exactly the request the approver saw) and `warden audit replay` (a history re-sent
//! each turn is shown once).
//!
//! Algorithm: the body is parsed as JSON and changed in place, then written as canonical JSON
//! ([`crate::core::audit::canonical`]: keys sorted, no whitespace), so key order and spacing never
//! matter. What is normalised away, and why it is safe:
//! - `cache_control` in every object, at any depth: a prompt-caching breakpoint changes what
//!   Anthropic caches, not what Claude reads; Claude Code moves its breakpoints to the newest
//!   messages from one request to the next;
//! - a string `content` (of a message, of a `tool_result`) or a string `system` is the same as
//!   one text block with that text: Claude Code sends a prompt as a block list in one request and
//!   as a string in the next;
//! - the top-level [`TRANSPORT_FIELDS`]: `stream` (how the answer travels; Claude Code re-sends
//!   a request with `stream: false` after a stream broke) and `metadata` (`user_id`, a tracking
//!   id Claude never reads).
//!
//! Everything else — model, `max_tokens`, every message and block, the system prompt, tools and
//! their schemas, `tool_choice`, `thinking`, `mcp_servers`, documents — stays, byte for byte
//! after canonicalisation.
//!
//! Limits: the walk is iterative (an explicit stack), and the depth of what it walks is bounded
//! by the JSON parser's nesting limit (128). Numbers are compared as canonical JSON writes them.

use crate::core::audit::canonical::canonical;
use serde_json::Value;

/// Top-level request fields that change between sends of one request without changing what
/// Claude is asked (see the module comment).
pub const TRANSPORT_FIELDS: [&str; 2] = ["metadata", "stream"];

/// A string becomes one text block; anything else is left as it is.
pub fn as_blocks(content: &mut Value) {
    if let Value::String(text) = content {
        let text = std::mem::take(text);
        *content = serde_json::json!([{"type": "text", "text": text}]);
    }
}

/// Drops `cache_control` from every object, at any depth.
pub fn drop_cache_control(value: &mut Value) {
    let mut stack: Vec<&mut Value> = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                map.remove("cache_control");
                stack.extend(map.values_mut());
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
}

/// One message in comparable form: its `content` (and each `tool_result`'s) as blocks,
/// `cache_control` dropped.
pub fn comparable_message(message: &mut Value) {
    if let Some(content) = message.get_mut("content") {
        as_blocks(content);
        if let Value::Array(blocks) = content {
            for block in blocks.iter_mut() {
                if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                    if let Some(inner) = block.get_mut("content") {
                        as_blocks(inner);
                    }
                }
            }
        }
    }
    drop_cache_control(message);
}

/// A request body in comparable form (see the module comment).
pub fn comparable_request(body: &mut Value) {
    if let Value::Object(map) = body {
        for field in TRANSPORT_FIELDS {
            map.remove(field);
        }
        if let Some(system) = map.get_mut("system") {
            as_blocks(system);
        }
        if let Some(Value::Array(messages)) = map.get_mut("messages") {
            messages.iter_mut().for_each(comparable_message);
        }
    }
    drop_cache_control(body);
}

/// The canonical JSON bytes of `body` in comparable form.
pub fn comparable_bytes(body: &Value) -> Vec<u8> {
    let mut body = body.clone();
    comparable_request(&mut body);
    canonical(&body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(body: Value) -> String {
        String::from_utf8(comparable_bytes(&body)).unwrap()
    }

    #[test]
    fn the_canonical_form_is_exactly_this() {
        let body = json!({
            "stream": true, "model": "m", "max_tokens": 10, "metadata": {"user_id": "u"},
            "system": "be brief",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "text", "text": "yes", "cache_control": {"type": "ephemeral"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}
            ]
        });
        assert_eq!(
            form(body),
            r#"{"max_tokens":10,"messages":[{"content":[{"text":"hi","type":"text"}],"role":"user"},"#.to_string()
                + r#"{"content":[{"text":"yes","type":"text"}],"role":"assistant"},"#
                + r#"{"content":[{"content":[{"text":"ok","type":"text"}],"tool_use_id":"t","type":"tool_result"}],"role":"user"}],"#
                + r#""model":"m","system":[{"text":"be brief","type":"text"}]}"#
        );
    }

    #[test]
    fn a_faithful_resend_in_another_form_compares_equal() {
        let first = json!({
            "model": "m", "max_tokens": 10, "stream": true, "metadata": {"user_id": "a"},
            "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
            "tools": [{"name": "Bash", "input_schema": {}, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "go", "cache_control": {"type": "ephemeral"}}]}]
        });
        let again = json!({
            "messages": [{"content": "go", "role": "user"}], "system": "sys", "stream": false,
            "tools": [{"input_schema": {}, "name": "Bash"}], "max_tokens": 10, "model": "m"
        });
        assert_eq!(form(first), form(again));
    }

    #[test]
    fn anything_claude_reads_changes_the_form() {
        let base = json!({
            "model": "m", "max_tokens": 10, "system": "sys", "tools": [{"name": "Bash", "input_schema": {}}],
            "mcp_servers": [{"type": "url", "url": "https://a.example/mcp", "name": "a"}],
            "messages": [{"role": "user", "content": "old"}, {"role": "assistant", "content": "ok"},
                         {"role": "user", "content": "go"}]
        });
        let changes: [(&str, Value); 7] = [
            ("/max_tokens", json!(11)),
            ("/system", json!("other")),
            ("/tools/0/input_schema", json!({"type": "object"})),
            ("/mcp_servers/0/url", json!("https://b.example/mcp")),
            ("/messages/0/content", json!("older")),
            ("/messages/1/content", json!("ok then")),
            ("/model", json!("n")),
        ];
        for (pointer, value) in changes {
            let mut changed = base.clone();
            *changed.pointer_mut(pointer).unwrap() = value;
            assert_ne!(form(base.clone()), form(changed), "{pointer}");
        }
    }

    #[test]
    fn deep_values_are_walked_without_recursion() {
        let mut value = json!("leaf");
        for _ in 0..10_000 {
            let mut map = serde_json::Map::new();
            map.insert("cache_control".into(), json!(1));
            map.insert("x".into(), value);
            value = Value::Array(vec![Value::Object(map)]);
        }
        drop_cache_control(&mut value);
        assert!(value.pointer("/0/cache_control").is_none());
        // Dropping a deep Value recurses inside serde_json; take it apart iteratively.
        let mut stack = vec![value];
        while let Some(mut v) = stack.pop() {
            match &mut v {
                Value::Array(items) => stack.append(items),
                Value::Object(map) => stack.extend(std::mem::take(map).into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
    }
}
