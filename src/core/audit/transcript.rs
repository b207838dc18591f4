//! What the agent received, reassembled for the audit record: the answer's content blocks, stop
//! reason, token usage, Anthropic's message id and any error, from the delivered (already masked)
//! bytes of an event stream or a JSON body.
//!
//! Algorithm: an event stream is fed chunk by chunk ([`StreamTranscript::push`]) to the SSE push
//! parser; each event updates the message: `message_start` (id, model, input usage),
//! `content_block_start` (a block at its index), `content_block_delta` (`text_delta`,
//! `thinking_delta`, `input_json_delta` appended; `citations_delta` collected; `signature_delta`
//! ignored — signatures are opaque and large), `message_delta` (stop reason, cumulative usage),
//! `message_stop`, `error`. A delta in Anthropic's exact shape is read without a JSON parse
//! ([`canonical_delta`], which reads exactly what a parse would); any other event is parsed.
//! Tool input arrives as JSON text in pieces and is parsed once at the end. A JSON body is read whole ([`from_body`]). The result depends only on the bytes, never on
//! their chunking (property-tested).
//!
//! Limits: at most [`MAX_TEXT_BYTES`] of text (all blocks together) are kept; beyond it the
//! transcript says `truncated` and keeps counting nothing more. Bytes that are not a valid event
//! stream end the reassembly (`malformed`); what came before is kept.

use crate::core::response::sse::{canonical_delta, DeltaKind, SseEvent, SseParser};
use serde_json::{Map, Value};

/// Most text kept per answer, in bytes.
pub const MAX_TEXT_BYTES: usize = 1 << 20;
/// Largest SSE event the reassembly accepts (the response redactor enforces the same order).
const MAX_EVENT_BYTES: usize = 16 << 20;

pub use crate::core::budget::usage::Usage;

/// The answer as the agent received it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    /// Anthropic's message id (`msg_…`).
    pub message_id: Option<String>,
    /// The model that answered.
    pub model: Option<String>,
    /// Content blocks in index order: `text`, `thinking`, `tool_use` (with parsed `input`), or
    /// any other block as it started.
    pub content: Vec<Value>,
    /// Why generation stopped.
    pub stop_reason: Option<String>,
    /// Token usage.
    pub usage: Usage,
    /// The `error` object of an error event or error body.
    pub error: Option<Value>,
    /// Whether the stream reached `message_stop` (always true for a JSON body).
    pub complete: bool,
    /// Whether text beyond [`MAX_TEXT_BYTES`] was dropped.
    pub truncated: bool,
    /// Whether the delivered bytes stopped being a valid event stream.
    pub malformed: bool,
}

/// A block being assembled.
#[derive(Debug, Clone, PartialEq)]
struct Block {
    /// The block as `content_block_start` gave it.
    start: Map<String, Value>,
    /// Text of `text_delta` / `thinking_delta`.
    text: String,
    /// JSON text of `input_json_delta`.
    input_json: String,
    /// `citations_delta` citations.
    citations: Vec<Value>,
}

impl Block {
    fn into_value(mut self) -> Value {
        let kind = self.start.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
        match kind.as_str() {
            "text" => {
                let mut text = self.start.get("text").and_then(Value::as_str).unwrap_or_default().to_string();
                text.push_str(&self.text);
                self.start.insert("text".into(), Value::String(text));
                if !self.citations.is_empty() {
                    self.start.insert("citations".into(), Value::Array(self.citations));
                }
            }
            "thinking" => {
                let mut thinking = self.start.get("thinking").and_then(Value::as_str).unwrap_or_default().to_string();
                thinking.push_str(&self.text);
                self.start.insert("thinking".into(), Value::String(thinking));
                self.start.remove("signature");
            }
            _ if !self.input_json.is_empty() => {
                let input = serde_json::from_str(&self.input_json).unwrap_or(Value::String(self.input_json));
                self.start.insert("input".into(), input);
            }
            _ => {}
        }
        Value::Object(self.start)
    }
}

/// Reassembles an event stream as it is delivered.
#[derive(Debug)]
pub struct StreamTranscript {
    parser: SseParser,
    transcript: Transcript,
    /// Blocks by their `index`.
    blocks: Vec<Option<Block>>,
    text_bytes: usize,
}

impl Default for StreamTranscript {
    fn default() -> Self {
        Self {
            parser: SseParser::new(MAX_EVENT_BYTES),
            transcript: Transcript::default(),
            blocks: Vec::new(),
            text_bytes: 0,
        }
    }
}

impl StreamTranscript {
    /// Feeds delivered bytes.
    pub fn push(&mut self, delivered: &[u8]) {
        if self.transcript.malformed {
            return;
        }
        match self.parser.push(delivered) {
            Ok(events) => events.iter().for_each(|event| self.on_event(event)),
            Err(_) => self.transcript.malformed = true,
        }
    }

    /// The answer as far as it was delivered.
    pub fn finish(mut self) -> Transcript {
        self.transcript.content = self.blocks.into_iter().flatten().map(Block::into_value).collect();
        self.transcript
    }

    fn on_event(&mut self, event: &SseEvent) {
        // Most events are text deltas in Anthropic's exact shape: read without a JSON parse.
        if let Some(delta) = canonical_delta(&event.data) {
            let index = usize::try_from(delta.index).ok().filter(|i| *i < MAX_BLOCKS);
            self.append(index, delta.kind, delta.piece);
            return;
        }
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else { return };
        let kind = data.get("type").and_then(Value::as_str).unwrap_or(event.event.as_str());
        match kind {
            "message_start" => {
                if let Some(message) = data.get("message") {
                    self.transcript.message_id = message.get("id").and_then(Value::as_str).map(str::to_string);
                    self.transcript.model = message.get("model").and_then(Value::as_str).map(str::to_string);
                    if let Some(usage) = message.get("usage") {
                        self.transcript.usage.update(usage);
                    }
                }
            }
            "content_block_start" => {
                if let (Some(index), Some(Value::Object(start))) = (index_of(&data), data.get("content_block")) {
                    if self.blocks.len() <= index {
                        self.blocks.resize(index + 1, None);
                    }
                    if let Some(slot) = self.blocks.get_mut(index) {
                        *slot = Some(Block {
                            start: start.clone(),
                            text: String::new(),
                            input_json: String::new(),
                            citations: Vec::new(),
                        });
                    }
                }
            }
            "content_block_delta" => self.on_delta(&data),
            "message_delta" => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.transcript.stop_reason = Some(reason.to_string());
                }
                if let Some(usage) = data.get("usage") {
                    self.transcript.usage.update(usage);
                }
            }
            "message_stop" => self.transcript.complete = true,
            "error" => self.transcript.error = data.get("error").cloned(),
            _ => {}
        }
    }

    fn on_delta(&mut self, data: &Value) {
        let Some(delta) = data.get("delta") else { return };
        let kind = match delta.get("type").and_then(Value::as_str) {
            Some("text_delta") => DeltaKind::Text,
            Some("thinking_delta") => DeltaKind::Thinking,
            Some("input_json_delta") => DeltaKind::InputJson,
            Some("citations_delta") => {
                let block = index_of(data).and_then(|i| self.blocks.get_mut(i)).and_then(Option::as_mut);
                if let (Some(block), Some(citation)) = (block, delta.get("citation")) {
                    block.citations.push(citation.clone());
                }
                return;
            }
            _ => return,
        };
        let Some(piece) = delta.get(kind.field()).and_then(Value::as_str) else { return };
        self.append(index_of(data), kind, piece);
    }

    /// Appends `piece` of a delta of `kind` to the block at `index` (nothing without one).
    fn append(&mut self, index: Option<usize>, kind: DeltaKind, piece: &str) {
        let Some(block) = index.and_then(|i| self.blocks.get_mut(i)).and_then(Option::as_mut) else { return };
        if self.text_bytes.saturating_add(piece.len()) > MAX_TEXT_BYTES {
            self.transcript.truncated = true;
            return;
        }
        self.text_bytes += piece.len();
        match kind {
            DeltaKind::InputJson => block.input_json.push_str(piece),
            DeltaKind::Text | DeltaKind::Thinking => block.text.push_str(piece),
        }
    }
}

/// Highest content block index the reassembly keeps, plus one.
const MAX_BLOCKS: usize = 4096;

fn index_of(data: &Value) -> Option<usize> {
    data.get("index").and_then(Value::as_u64).and_then(|i| usize::try_from(i).ok()).filter(|i| *i < MAX_BLOCKS)
}

/// The answer in a delivered JSON body (a message or an error).
pub fn from_body(body: &[u8]) -> Transcript {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Transcript { malformed: true, ..Transcript::default() };
    };
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    let mut transcript = Transcript {
        message_id: text("id"),
        model: text("model"),
        stop_reason: text("stop_reason"),
        error: value.get("error").cloned(),
        complete: true,
        ..Transcript::default()
    };
    if let Some(usage) = value.get("usage") {
        transcript.usage.update(usage);
    }
    if let Some(Value::Array(content)) = value.get("content") {
        let mut kept = 0usize;
        for block in content {
            let size = block.to_string().len();
            if kept + size > MAX_TEXT_BYTES {
                transcript.truncated = true;
                break;
            }
            kept += size;
            let mut block = block.clone();
            if let Some(object) = block.as_object_mut() {
                object.remove("signature");
            }
            transcript.content.push(block);
        }
    }
    transcript
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn event(name: &str, data: Value) -> String {
        format!("event: {name}\ndata: {data}\n\n")
    }

    /// A stream with thinking, text (with a citation), a tool call and usage.
    fn stream() -> String {
        [
            event("message_start", json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-sonnet-4-6", "usage": {"input_tokens": 12, "cache_read_input_tokens": 5000, "output_tokens": 1}}})),
            event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "check."}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCkYIBxgC"}})),
            event("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
            "event: ping\ndata: {\"type\": \"ping\"}\n\n".to_string(),
            event("content_block_start", json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Use ghp_[REDACTED:github-pat:1a2b3c] "}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": {"type": "char_location", "cited_text": "x"}}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "to log in."}})),
            event("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
            event("content_block_start", json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"command\": \"ls"}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": " -la\"}"}})),
            event("content_block_stop", json!({"type": "content_block_stop", "index": 2})),
            event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 42}})),
            event("message_stop", json!({"type": "message_stop"})),
        ]
        .concat()
    }

    fn reassemble(chunks: &[&[u8]]) -> Transcript {
        let mut transcript = StreamTranscript::default();
        for chunk in chunks {
            transcript.push(chunk);
        }
        transcript.finish()
    }

    #[test]
    fn a_stream_becomes_the_message_the_agent_received() {
        let t = reassemble(&[stream().as_bytes()]);
        assert_eq!(t.message_id.as_deref(), Some("msg_1"));
        assert_eq!(t.model.as_deref(), Some("claude-sonnet-4-6"));
        assert_eq!(
            t.content,
            vec![
                json!({"type": "thinking", "thinking": "Let me check."}),
                json!({"type": "text", "text": "Use ghp_[REDACTED:github-pat:1a2b3c] to log in.", "citations": [{"type": "char_location", "cited_text": "x"}]}),
                json!({"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls -la"}}),
            ]
        );
        assert_eq!(t.stop_reason.as_deref(), Some("tool_use"));
        assert_eq!(
            t.usage,
            Usage {
                input_tokens: Some(12),
                output_tokens: Some(42),
                cache_read_input_tokens: Some(5000),
                cache_creation_input_tokens: None,
                ..Usage::default()
            }
        );
        assert!(t.complete && !t.truncated && !t.malformed && t.error.is_none());
    }

    /// A stream whose deltas are written as Anthropic sends them (`spaced` false: read without a
    /// parse) or with a space after each colon (`spaced` true: parsed).
    fn stream_written(spaced: bool) -> String {
        let delta = |index: u32, kind: &str, field: &str, piece: &str| {
            let data = format!(
                "{{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"{kind}\",\"{field}\":\"{piece}\"}}}}"
            );
            let data = if spaced { data.replace("\":", "\": ") } else { data };
            format!("event: content_block_delta\ndata: {data}\n\n")
        };
        [
            event("message_start", json!({"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}})),
            event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}})),
            delta(0, "thinking_delta", "thinking", "Let me check."),
            event("content_block_start", json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})),
            delta(1, "text_delta", "text", "Use ghp_[REDACTED:github-pat:1a2b3c] "),
            delta(1, "text_delta", "text", "to log in: caf\u{e9}."),
            // No block at index 7: dropped on both paths.
            delta(7, "text_delta", "text", "lost"),
            event("content_block_start", json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}})),
            delta(2, "input_json_delta", "partial_json", "{"),
            delta(2, "input_json_delta", "partial_json", "}"),
            event("message_stop", json!({"type": "message_stop"})),
        ]
        .concat()
    }

    #[test]
    fn deltas_in_anthropics_exact_shape_give_the_transcript_a_parse_gives() {
        let canonical = stream_written(false);
        assert!(canonical.contains("{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\""));
        let read = reassemble(&[canonical.as_bytes()]);
        assert_eq!(read, reassemble(&[stream_written(true).as_bytes()]));
        assert_eq!(
            read.content,
            vec![
                json!({"type": "thinking", "thinking": "Let me check."}),
                json!({"type": "text", "text": "Use ghp_[REDACTED:github-pat:1a2b3c] to log in: caf\u{e9}."}),
                json!({"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}),
            ]
        );
    }

    #[test]
    fn text_beyond_the_limit_is_dropped_on_the_fast_path_too() {
        let big = "a".repeat(MAX_TEXT_BYTES / 2 + 1);
        let delta = format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{big}\"}}}}\n\n");
        let start = event("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}));
        let t = reassemble(&[start.as_bytes(), delta.as_bytes(), delta.as_bytes()]);
        assert!(t.truncated);
        assert_eq!(t.content, vec![json!({"type": "text", "text": big})]);
    }

    #[test]
    fn a_stream_cut_short_is_incomplete_and_keeps_its_error() {
        let text = stream();
        let cut = text.find("event: content_block_start\ndata: {\"content_block\":{\"text\"").unwrap_or(text.len() / 2);
        let mut partial = text[..cut].to_string();
        partial.push_str(&event("error", json!({"type": "error", "error": {"type": "permission_error", "message": "warden: sensitive_data_blocked"}})));
        let t = reassemble(&[partial.as_bytes()]);
        assert!(!t.complete);
        assert_eq!(t.error.unwrap()["type"], "permission_error");
    }

    #[test]
    fn text_beyond_the_limit_is_dropped_and_said() {
        let big = "x".repeat(MAX_TEXT_BYTES / 2 + 1);
        let mut text = event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        );
        for _ in 0..3 {
            text.push_str(&event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": big}}),
            ));
        }
        let t = reassemble(&[text.as_bytes()]);
        assert!(t.truncated);
        assert_eq!(t.content[0]["text"].as_str().unwrap().len(), big.len());
    }

    #[test]
    fn bytes_that_are_no_event_stream_end_the_reassembly() {
        let t = reassemble(&[b"event: message_start\ndata: {}\n\n", &[0xff, 0xfe, b'\n']]);
        assert!(t.malformed);
    }

    #[test]
    fn a_json_body_gives_the_same_fields() {
        let body = json!({"id": "msg_2", "type": "message", "model": "claude-haiku-4-5", "content": [
            {"type": "text", "text": "Hello"}, {"type": "thinking", "thinking": "hm", "signature": "abc"}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 2}});
        let t = from_body(body.to_string().as_bytes());
        assert_eq!(t.message_id.as_deref(), Some("msg_2"));
        assert_eq!(
            t.content,
            vec![json!({"type": "text", "text": "Hello"}), json!({"type": "thinking", "thinking": "hm"})]
        );
        assert_eq!((t.usage.input_tokens, t.usage.output_tokens), (Some(3), Some(2)));
        assert!(t.complete);
        let error = from_body(br#"{"type":"error","error":{"type":"permission_error","message":"no"}}"#);
        assert_eq!(error.error.unwrap()["message"], "no");
        assert!(from_body(b"not json").malformed);
    }

    #[test]
    fn deeply_nested_answers_are_reassembled_without_overflowing_the_stack() {
        use crate::core::request::nesting::{on_small_stack, SMALL_STACK};
        for levels in [4_000, 100_000] {
            let done = on_small_stack(SMALL_STACK, move || {
                let deep = format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
                let body =
                    format!(r#"{{"id":"msg_1","content":[{{"type":"tool_use","id":"t","name":"x","input":{deep}}}]}}"#);
                let from_json = from_body(body.as_bytes());
                let mut stream = StreamTranscript::default();
                let start = format!(
                    r#"{{"type":"content_block_start","index":0,"content_block":{{"type":"text","text":"","x":{deep}}}}}"#
                );
                let delta = serde_json::json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":deep}});
                stream.push(
                    format!(
                        "event: content_block_start\ndata: {start}\n\nevent: content_block_delta\ndata: {delta}\n\n"
                    )
                    .as_bytes(),
                );
                (from_json.malformed, stream.finish().content.len())
            });
            // Over serde_json's depth limit the JSON body is unreadable; the stream keeps what it can.
            assert!(done.0);
            assert!(done.1 <= 1);
        }
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_transcript(cuts in proptest::collection::vec(0usize..4000, 0..40)) {
            let text = stream();
            let bytes = text.as_bytes();
            let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut last = 0;
            for point in points {
                chunks.push(&bytes[last..point]);
                last = point;
            }
            chunks.push(&bytes[last..]);
            prop_assert_eq!(reassemble(&chunks), reassemble(&[bytes]));
        }
    }
}
