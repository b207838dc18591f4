//! Masking what Claude returns: Messages API event streams and JSON bodies.
//!
//! **Streams.** [`StreamRedactor`] takes the upstream bytes chunk by chunk, parses the SSE events
//! ([`crate::core::response::sse`]), and returns the bytes to deliver now:
//! - `content_block_delta` events are rewritten per content block: `text_delta` and
//!   `thinking_delta` text goes through a [`TextStream`], `input_json_delta` fragments (tool-call
//!   arguments) through a [`JsonStream`], so only an undecided tail is held back and everything
//!   else is delivered at once; `citations_delta` and any other delta are redacted whole;
//! - `content_block_stop` first delivers what the block's stream still held, as one more delta
//!   of the block's kind; `message_stop` and the end of the upstream stream do the same for every
//!   block still open;
//! - every other event (`message_start`, `content_block_start`, `message_delta`, `ping`,
//!   `error`, unknown ones) has its JSON string values redacted, structural fields excepted
//!   ([`structural`]: ids, signatures, enum values, base64 and encrypted blobs — a fetched
//!   document's text `data`, a `web_fetch` result's, is content and is masked).
//!
//! Events are re-serialized with LF line ends. Concatenating the deltas a client receives gives
//! the same text and tool input as masking the complete message, however the upstream chunked
//! its bytes (property-tested below).
//!
//! **Fast path.** A delta in the exact shape Anthropic sends (`type`, `index`, `delta` in that
//! order, no whitespace, a string without escapes: [`canonical_delta`]) is read without the JSON
//! parse; its string then takes the same block stream as a parsed one, so the detectors see the
//! same text and every decision (held, masked, blocked) is theirs. Anything else is parsed. The
//! output is byte-identical to the parsed path's for any stream and any chunking
//! ([`StreamRedactor::without_fast_path`] is that reference; property-tested below and fuzzed).
//!
//! **Thinking.** Thinking text is masked like any text. Its `signature_delta` is passed
//! unchanged, so a thinking block that had something masked no longer matches its signature: if
//! the client sends that block back in a later turn, Anthropic rejects the request. Warden
//! accepts that failure rather than deliver a secret; it is rare in practice because request
//! masking keeps secrets out of Claude's context in the first place.
//!
//! **Block.** When a `block` detector matches, the stream ends with an `event: error`
//! (`permission_error`, reason `sensitive_data_blocked`) right after the text that preceded the
//! match (and its visible trigger literal, for detectors that keep one); nothing of the value
//! is delivered and later upstream bytes are dropped. A stream that
//! cannot be parsed (invalid UTF-8, an oversized event) ends the same way with
//! `response_uninspectable`.
//!
//! **JSON bodies.** [`redact_body`] masks a complete non-streaming response (Claude Code falls
//! back to these) or error body; a block turns it into a 403 error reply.

use super::json::{escape_into, redact_json, structural, JsonStream};
use super::mask::Tally;
use super::text::{redact, Blocked, Redaction, TextStream};
use crate::core::errors::{Denial, Reason};
use crate::core::response::sse::{canonical_delta, DeltaKind, SseEvent, SseParser};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Largest SSE event accepted from the upstream.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// The fields of an event that steer the rewrite.
#[derive(Deserialize)]
struct EventHead<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    delta: Option<DeltaHead<'a>>,
    #[serde(borrow, default)]
    content_block: Option<BlockHead<'a>>,
}

#[derive(Deserialize)]
struct DeltaHead<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BlockHead<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
}

/// The kind of a content block, and its stream of redacted deltas.
#[derive(Debug)]
enum Block {
    Text(TextStream),
    Thinking(TextStream),
    ToolInput(JsonStream),
}

/// Rewrites an SSE response stream.
#[derive(Debug)]
pub struct StreamRedactor {
    parser: SseParser,
    blocks: BTreeMap<u64, Block>,
    tally: Tally,
    /// Set once the stream was ended with an error event; later bytes are dropped.
    ended: Option<Reason>,
    /// Whether delta events of the canonical shape are read without a JSON parse
    /// ([`canonical_delta`], the fast path); off only to check the fast path against the reference path.
    fast_path: bool,
}

impl Default for StreamRedactor {
    fn default() -> Self {
        Self {
            parser: SseParser::new(MAX_EVENT_BYTES),
            blocks: BTreeMap::new(),
            tally: Tally::default(),
            ended: None,
            fast_path: true,
        }
    }
}

impl StreamRedactor {
    /// A redactor that reads every event with the JSON parser (the reference path): for tests
    /// and fuzzing, which check that the default redactor's output is byte-identical to it.
    pub fn without_fast_path() -> Self {
        Self { fast_path: false, ..Self::default() }
    }

    /// Feeds upstream bytes; returns the bytes to deliver now.
    pub fn push(&mut self, redaction: &Redaction, chunk: &[u8]) -> Vec<u8> {
        if self.ended.is_some() {
            return Vec::new();
        }
        let mut out = String::new();
        match self.parser.push(chunk) {
            Ok(events) => {
                for event in events {
                    if let Err(end) = self.on_event(redaction, event, &mut out) {
                        self.end(end, &mut out);
                        break;
                    }
                }
            }
            Err(error) => self.end(Denial::new(Reason::ResponseUninspectable, error.to_string()), &mut out),
        }
        out.into_bytes()
    }

    /// The upstream stream ended: delivers what open blocks still held.
    pub fn finish(&mut self, redaction: &Redaction) -> Vec<u8> {
        if self.ended.is_some() {
            return Vec::new();
        }
        let mut out = String::new();
        let flushed = match self.parser.finish() {
            Ok(()) => self.flush_all(redaction, &mut out),
            Err(error) => Err(Denial::new(Reason::ResponseUninspectable, error.to_string())),
        };
        if let Err(end) = flushed {
            self.end(end, &mut out);
        }
        out.into_bytes()
    }

    /// What was found so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Why the stream was ended early, if it was.
    pub fn ended(&self) -> Option<Reason> {
        self.ended
    }

    fn end(&mut self, denial: Denial, out: &mut String) {
        out.push_str(&denial.to_error_event());
        self.ended = Some(denial.reason);
        self.blocks.clear();
    }

    fn on_event(&mut self, redaction: &Redaction, event: SseEvent, out: &mut String) -> Result<(), Denial> {
        if self.fast_path {
            if let Some(delta) = canonical_delta(&event.data) {
                return self.on_delta(redaction, &event, delta.index, delta.kind, delta.piece, out);
            }
        }
        // Only the fields that steer the rewrite are read, borrowed; the rest is skipped.
        let head: Option<EventHead> = serde_json::from_str(&event.data).ok();
        let kind = head.as_ref().map(|h| h.kind.as_ref()).unwrap_or("");
        let index = head.as_ref().and_then(|h| h.index);
        match (kind, index) {
            ("content_block_start", Some(index)) => {
                let block_type = head.as_ref().and_then(|h| h.content_block.as_ref()).map(|b| b.kind.as_ref());
                let block = match block_type.unwrap_or("") {
                    "text" => Some(Block::Text(TextStream::default())),
                    "thinking" => Some(Block::Thinking(TextStream::default())),
                    "tool_use" | "server_tool_use" | "mcp_tool_use" => Some(Block::ToolInput(JsonStream::default())),
                    _ => None,
                };
                if let Some(block) = block {
                    self.blocks.insert(index, block);
                }
                self.pass_redacted(redaction, event, out)
            }
            ("content_block_delta", Some(index)) => {
                let Some(delta) = head.as_ref().and_then(|h| h.delta.as_ref()) else {
                    return self.pass_redacted(redaction, event, out);
                };
                let (kind, piece) = match delta.kind.as_ref() {
                    "text_delta" => (DeltaKind::Text, &delta.text),
                    "thinking_delta" => (DeltaKind::Thinking, &delta.thinking),
                    "input_json_delta" => (DeltaKind::InputJson, &delta.partial_json),
                    "signature_delta" => return self.pass(&event, out),
                    _ => return self.pass_redacted(redaction, event, out),
                };
                let piece = piece.as_deref().unwrap_or("");
                self.on_delta(redaction, &event, index, kind, piece, out)
            }
            ("content_block_stop", Some(index)) => {
                self.flush_block(redaction, index, out)?;
                self.pass(&event, out)
            }
            ("message_stop", _) => {
                self.flush_all(redaction, out)?;
                self.pass(&event, out)
            }
            _ => self.pass_redacted(redaction, event, out),
        }
    }

    /// A `content_block_delta` carrying `piece` of a block's text, thinking or tool input: the
    /// piece goes through its block's stream; the event passes as it came when nothing was held
    /// back or masked, else its settled part is delivered as a new delta (none if all is held).
    fn on_delta(
        &mut self,
        redaction: &Redaction,
        event: &SseEvent,
        index: u64,
        kind: DeltaKind,
        piece: &str,
        out: &mut String,
    ) -> Result<(), Denial> {
        let Some(block) = self.blocks.get_mut(&index) else {
            return self.pass_redacted(redaction, event.clone(), out);
        };
        let redacted = match block {
            Block::Text(stream) | Block::Thinking(stream) => stream.push(redaction, piece, &mut self.tally),
            Block::ToolInput(stream) => stream.push(redaction, piece, &mut self.tally),
        }
        .map_err(blocked)?;
        if redacted == piece {
            // Nothing held back or masked: the upstream's own bytes go on.
            return self.pass(event, out);
        }
        // A delta whose text is all held back is dropped; it is delivered later.
        if !redacted.is_empty() {
            let (delta_type, field) = (kind.type_name(), kind.field());
            write_delta(out, index, delta_type, field, &redacted);
        }
        Ok(())
    }

    fn flush_block(&mut self, redaction: &Redaction, index: u64, out: &mut String) -> Result<(), Denial> {
        let Some(block) = self.blocks.remove(&index) else { return Ok(()) };
        let (rest, delta_type, field) = match block {
            Block::Text(mut s) => (s.finish(redaction, &mut self.tally), "text_delta", "text"),
            Block::Thinking(mut s) => (s.finish(redaction, &mut self.tally), "thinking_delta", "thinking"),
            Block::ToolInput(mut s) => (s.finish(redaction, &mut self.tally), "input_json_delta", "partial_json"),
        };
        let rest = rest.map_err(blocked)?;
        if !rest.is_empty() {
            write_delta(out, index, delta_type, field, &rest);
        }
        Ok(())
    }

    fn flush_all(&mut self, redaction: &Redaction, out: &mut String) -> Result<(), Denial> {
        let open: Vec<u64> = self.blocks.keys().copied().collect();
        for index in open {
            self.flush_block(redaction, index, out)?;
        }
        Ok(())
    }

    fn pass(&mut self, event: &SseEvent, out: &mut String) -> Result<(), Denial> {
        event.write_wire(out);
        Ok(())
    }

    /// Passes an event with its string values redacted (the whole data as text if not JSON).
    fn pass_redacted(&mut self, redaction: &Redaction, mut event: SseEvent, out: &mut String) -> Result<(), Denial> {
        let redacted = if serde_json::from_str::<serde::de::IgnoredAny>(&event.data).is_ok() {
            redact_json(redaction, &event.data, &structural, &mut self.tally)
        } else {
            redact(redaction, &event.data, &mut self.tally)
        }
        .map_err(blocked)?;
        if let Cow::Owned(data) = redacted {
            event.data = data;
        }
        self.pass(&event, out)
    }
}

/// The denial for a `block` finding (names the detector, never the value).
pub fn blocked(blocked: Blocked) -> Denial {
    Denial::new(
        Reason::SensitiveDataBlocked,
        format!("the content holds data the role's DLP profile blocks ({})", blocked.detector),
    )
}

fn write_delta(out: &mut String, index: u64, delta_type: &str, field: &str, value: &str) {
    out.push_str("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":");
    out.push_str(&index.to_string());
    out.push_str(",\"delta\":{\"type\":\"");
    out.push_str(delta_type);
    out.push_str("\",\"");
    out.push_str(field);
    out.push_str("\":\"");
    escape_into(value, out);
    out.push_str("\"}}\n\n");
}

/// Masks a complete response body: JSON string values (structural fields excepted), or the
/// whole text if the body is not JSON. `None` means unchanged.
pub fn redact_body(redaction: &Redaction, body: &[u8], tally: &mut Tally) -> Result<Option<Vec<u8>>, Denial> {
    if !redaction.is_active() || body.is_empty() {
        return Ok(None);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| Denial::new(Reason::ResponseUninspectable, "the upstream response body is not UTF-8 text"))?;
    let redacted = if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        redact_json(redaction, text, &structural, tally)
    } else {
        redact(redaction, text, tally)
    }
    .map_err(blocked)?;
    Ok(match redacted {
        Cow::Borrowed(_) => None,
        Cow::Owned(text) => Some(text.into_bytes()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::dlp::engine::tests::{small_engine, TOKEN};
    use crate::core::dlp::engine::Action;
    use crate::core::dlp::mask::MaskKey;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn event(data: Value) -> String {
        format!("event: {}\ndata: {}\n\n", data["type"].as_str().unwrap(), data)
    }

    /// A Messages stream carrying `text` in a text block and `input` in a tool_use block, each cut
    /// into deltas of `piece` characters.
    fn upstream(text: &str, input: &str, piece: usize) -> String {
        let mut s = event(
            json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","usage":{"input_tokens":5,"output_tokens":1}}}),
        );
        s += &event(json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}));
        s += "event: ping\ndata: {\"type\": \"ping\"}\n\n";
        let chars: Vec<char> = text.chars().collect();
        for chunk in chars.chunks(piece.max(1)) {
            let t: String = chunk.iter().collect();
            s += &event(json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":t}}));
        }
        s += &event(json!({"type":"content_block_stop","index":0}));
        s += &event(
            json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"Bash","input":{}}}),
        );
        s += &event(
            json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}),
        );
        let chars: Vec<char> = input.chars().collect();
        for chunk in chars.chunks(piece.max(1)) {
            let t: String = chunk.iter().collect();
            s += &event(
                json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":t}}),
            );
        }
        s += &event(json!({"type":"content_block_stop","index":1}));
        s += &event(json!({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}));
        s += &event(json!({"type":"message_stop"}));
        s
    }

    /// What a client assembles: the text and the tool input, plus whether an error event came.
    fn assemble(stream: &[u8]) -> (String, String, Option<String>) {
        let mut parser = SseParser::new(1 << 20);
        let mut text = String::new();
        let mut input = String::new();
        let mut error = None;
        for e in parser.push(stream).unwrap() {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            if e.event == "error" {
                error = Some(v["error"]["message"].as_str().unwrap().to_string());
            }
            if v["type"] == "content_block_delta" {
                if let Some(t) = v["delta"]["text"].as_str() {
                    text.push_str(t);
                }
                if let Some(p) = v["delta"]["partial_json"].as_str() {
                    input.push_str(p);
                }
            }
        }
        (text, input, error)
    }

    fn run(r: &Redaction, bytes: &[u8], cuts: &[usize]) -> Vec<u8> {
        run_on(StreamRedactor::default(), r, bytes, cuts)
    }

    fn run_on(mut redactor: StreamRedactor, r: &Redaction, bytes: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut last = 0;
        for &cut in cuts {
            let cut = cut.clamp(last, bytes.len());
            out.extend(redactor.push(r, &bytes[last..cut]));
            last = cut;
        }
        out.extend(redactor.push(r, &bytes[last..]));
        out.extend(redactor.finish(r));
        out
    }

    fn with<T>(actions: [Action; 4], f: impl FnOnce(&Redaction, &MaskKey) -> T) -> T {
        let engine = small_engine();
        let key = MaskKey::new(b"k".to_vec());
        f(&Redaction { engine: &engine, actions: &actions, key: &key }, &key)
    }

    #[test]
    fn secrets_split_over_deltas_are_masked_in_text_and_tool_input() {
        with([Action::Mask; 4], |r, key| {
            let text = format!("Here is the token: {TOKEN}. Mail ann.lee@corp.io for more.");
            let input = json!({"command": format!("gh auth login --with-token {TOKEN}")}).to_string();
            let out = run(r, upstream(&text, &input, 3).as_bytes(), &[]);
            let (got_text, got_input, error) = assemble(&out);
            assert_eq!(error, None);
            let mask = key.mask("github-pat", TOKEN);
            assert_eq!(
                got_text,
                format!("Here is the token: {mask}. Mail {} for more.", key.mask("email", "ann.lee@corp.io"))
            );
            let input: Value = serde_json::from_str(&got_input).unwrap();
            assert_eq!(input["command"], format!("gh auth login --with-token {mask}"));
            let out = String::from_utf8(out).unwrap();
            assert!(!out.contains(&TOKEN[4..20]));
            assert!(out.contains("\"stop_reason\":\"tool_use\""), "other events pass");
        });
    }

    #[test]
    fn crlf_upstreams_give_the_same_result() {
        with([Action::Mask; 4], |r, _| {
            let text = format!("x {TOKEN} y");
            let lf = upstream(&text, "{}", 2);
            let crlf = lf.replace('\n', "\r\n");
            assert_eq!(assemble(&run(r, lf.as_bytes(), &[])), assemble(&run(r, crlf.as_bytes(), &[7, 100, 101])));
        });
    }

    #[test]
    fn a_blocked_secret_ends_the_stream_with_an_error_before_any_of_it() {
        with([Action::Block, Action::Mask, Action::Mask, Action::Mask], |r, _| {
            let text = format!("Sure. {TOKEN} is it.");
            let bytes = upstream(&text, "{}", 4);
            let out = run(r, bytes.as_bytes(), &[50, 300, 301]);
            let (got_text, input, error) = assemble(&out);
            assert_eq!(got_text, "Sure. ");
            assert_eq!(input, "");
            assert!(error.unwrap().contains("sensitive_data_blocked"));
            let out = String::from_utf8(out).unwrap();
            assert!(!out.contains("ghp_"), "no part of the secret");
            assert!(!out.contains("message_stop"), "nothing after the error");
        });
    }

    #[test]
    fn malformed_streams_end_with_an_uninspectable_error() {
        with([Action::Mask; 4], |r, _| {
            let out = run(r, b"event: x\ndata: \xff\xfe\n\n", &[]);
            let (_, _, error) = assemble(&out);
            assert!(error.unwrap().contains("response_uninspectable"));
        });
    }

    #[test]
    fn json_bodies_are_masked_except_structural_fields() {
        with([Action::Mask; 4], |r, key| {
            let body = json!({"id":"msg_1","content":[{"type":"text","text":format!("t {TOKEN}")},{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"c":TOKEN}},{"type":"thinking","thinking":"x","signature":TOKEN}]}).to_string();
            let mut tally = Tally::default();
            let out: Value =
                serde_json::from_slice(&redact_body(r, body.as_bytes(), &mut tally).unwrap().unwrap()).unwrap();
            let mask = key.mask("github-pat", TOKEN);
            assert_eq!(out["content"][0]["text"], format!("t {mask}"));
            assert_eq!(out["content"][1]["input"]["c"], mask);
            assert_eq!(out["content"][2]["signature"], TOKEN);
            assert_eq!(tally.to_string(), "masked github-pat=2");
            assert_eq!(redact_body(r, b"{\"a\":\"plain\"}", &mut tally).unwrap(), None);
        });
        with([Action::Block, Action::Mask, Action::Mask, Action::Mask], |r, _| {
            let err = redact_body(r, format!("{{\"t\":\"{TOKEN}\"}}").as_bytes(), &mut Tally::default()).unwrap_err();
            assert_eq!(err.reason, Reason::SensitiveDataBlocked);
            assert!(!err.detail.contains(TOKEN));
        });
    }

    /// A `web_fetch` result as Anthropic returns it: the fetched page's text in `source.data`.
    fn web_fetch_result(data_first: bool) -> Value {
        let source = if data_first {
            json!({"data": format!("page {TOKEN}"), "media_type": "text/plain", "type": "text"})
        } else {
            json!({"type": "text", "media_type": "text/plain", "data": format!("page {TOKEN}")})
        };
        json!({"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_1", "content": {
            "type": "web_fetch_result", "url": "https://example.com/config",
            "content": {"type": "document", "title": format!("t {TOKEN}"), "source": source}
        }})
    }

    #[test]
    fn fetched_documents_are_masked_in_json_bodies_and_streams_but_binary_data_is_not() {
        with([Action::Mask; 4], |r, key| {
            let mask = key.mask("github-pat", TOKEN);
            let pdf = json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": TOKEN}});
            let redacted_thinking = json!({"type": "redacted_thinking", "data": TOKEN});
            for data_first in [false, true] {
                let body = json!({"id": "msg_1", "type": "message", "content": [web_fetch_result(data_first), pdf, redacted_thinking]});
                let out = redact_body(r, body.to_string().as_bytes(), &mut Tally::default()).unwrap().unwrap();
                let out: Value = serde_json::from_slice(&out).unwrap();
                let doc = &out["content"][0]["content"]["content"];
                assert_eq!(doc["source"]["data"], format!("page {mask}"));
                assert_eq!(doc["title"], format!("t {mask}"));
                assert_eq!(out["content"][1]["source"]["data"], TOKEN, "base64 is binary");
                assert_eq!(out["content"][2]["data"], TOKEN, "encrypted thinking is opaque");
                // The same block streamed: it arrives whole in content_block_start.
                let stream = event(
                    json!({"type": "content_block_start", "index": 0, "content_block": web_fetch_result(data_first)}),
                );
                let out = String::from_utf8(run(r, stream.as_bytes(), &[])).unwrap();
                assert!(!out.contains(TOKEN) && out.contains(&format!("page {mask}")), "{out}");
            }
        });
    }

    #[test]
    fn deeply_nested_response_json_is_redacted_without_recursion() {
        use crate::core::request::nesting::{on_small_stack, SMALL_STACK};
        for levels in [4_000, 100_000] {
            let masked = on_small_stack(SMALL_STACK, move || {
                let body = format!("{}\"x {TOKEN}\"{}", "{\"a\":[".repeat(levels), "]}".repeat(levels));
                with([Action::Mask; 4], |r, _| {
                    let out = redact_body(r, body.as_bytes(), &mut Tally::default()).unwrap().unwrap();
                    let stream = event(
                        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                    ) + &format!("event: message_delta\ndata: {body}\n\n");
                    let streamed = run(r, stream.as_bytes(), &[]);
                    !String::from_utf8(out).unwrap().contains(TOKEN)
                        && !String::from_utf8(streamed).unwrap().contains(TOKEN)
                })
            });
            assert!(masked);
        }
    }

    /// A delta event's data for `piece` in one of the shapes an upstream may send: 0 canonical
    /// (the fast path reads it unless the piece needs escapes), 1 with spaces, 2 every character
    /// `\u`-escaped (a trigger hidden in escapes), 3 an extra field, 4 the index with a leading
    /// zero (not JSON), 5 the index of a block that is not open.
    fn delta_data(index: u64, kind: DeltaKind, piece: &str, shape: u8) -> String {
        let (delta_type, field) = (kind.type_name(), kind.field());
        let quoted = serde_json::to_string(piece).unwrap();
        match shape {
            1 => format!(
                "{{\"type\": \"content_block_delta\", \"index\": {index}, \"delta\": {{\"type\": \"{delta_type}\", \"{field}\": {quoted}}}}}"
            ),
            2 => {
                let escaped: String = piece.encode_utf16().map(|u| format!("\\u{u:04x}")).collect();
                format!("{{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"{delta_type}\",\"{field}\":\"{escaped}\"}}}}")
            }
            3 => format!(
                "{{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"{delta_type}\",\"{field}\":{quoted},\"x\":1}}}}"
            ),
            4 => format!(
                "{{\"type\":\"content_block_delta\",\"index\":0{index},\"delta\":{{\"type\":\"{delta_type}\",\"{field}\":{quoted}}}}}"
            ),
            5 => delta_data(index + 7, kind, piece, 0),
            _ => format!(
                "{{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{{\"type\":\"{delta_type}\",\"{field}\":{quoted}}}}}"
            ),
        }
    }

    /// A text, a thinking and a tool_use block, each carrying `text` (the tool input as
    /// `{"arg":text}`) cut into deltas of `piece` characters, the n-th delta in
    /// `shapes[n % len]`.
    fn hostile_upstream(text: &str, piece: usize, shapes: &[u8]) -> String {
        let mut s =
            event(json!({"type":"message_start","message":{"id":"msg_1","content":[],"usage":{"output_tokens":1}}}));
        let input = json!({ "arg": text }).to_string();
        let mut n = 0;
        let blocks = [
            (DeltaKind::Text, json!({"type":"text","text":""})),
            (DeltaKind::Thinking, json!({"type":"thinking","thinking":""})),
            (DeltaKind::InputJson, json!({"type":"tool_use","id":"toolu_1","name":"Bash","input":{}})),
        ];
        for (index, (kind, block)) in (0u64..).zip(blocks) {
            s += &event(json!({"type":"content_block_start","index":index,"content_block":block}));
            let chars: Vec<char> =
                if kind == DeltaKind::InputJson { input.chars().collect() } else { text.chars().collect() };
            for chunk in chars.chunks(piece.max(1)) {
                let t: String = chunk.iter().collect();
                let shape = shapes.get(n % shapes.len().max(1)).copied().unwrap_or(0);
                n += 1;
                s += &format!("event: content_block_delta\ndata: {}\n\n", delta_data(index, kind, &t, shape));
            }
            s += &event(json!({"type":"content_block_stop","index":index}));
        }
        s += &event(json!({"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}));
        s += &event(json!({"type":"message_stop"}));
        s
    }

    /// The output of the default redactor and of the reference path (every event parsed).
    fn both_paths(r: &Redaction, bytes: &[u8], cuts: &[usize]) -> (Vec<u8>, Vec<u8>) {
        (run(r, bytes, cuts), run_on(StreamRedactor::without_fast_path(), r, bytes, cuts))
    }

    #[test]
    fn a_trigger_hidden_in_escapes_takes_the_parse_and_is_masked() {
        with([Action::Mask; 4], |r, key| {
            let text = format!("token {TOKEN} end");
            for shape in [1, 2, 3] {
                let bytes = hostile_upstream(&text, 5, &[0, shape]);
                let (fast, reference) = both_paths(r, bytes.as_bytes(), &[]);
                assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&reference));
                let (got, _, error) = assemble(&fast);
                assert_eq!(error, None);
                assert_eq!(got, format!("token {} end", key.mask("github-pat", TOKEN)), "shape {shape}");
                assert!(!String::from_utf8_lossy(&fast).contains(&TOKEN[4..]));
            }
        });
    }

    #[test]
    fn a_megabyte_event_and_invalid_utf8_end_the_same_on_both_paths() {
        with([Action::Mask; 4], |r, _| {
            let big = format!("{} {TOKEN}", "word ".repeat(210_000));
            let bytes = hostile_upstream(&big, 1 << 20, &[0]);
            let (fast, reference) = both_paths(r, bytes.as_bytes(), &[4096, 1 << 19]);
            assert!(fast == reference, "the same bytes");
            assert!(!String::from_utf8_lossy(&fast).contains(TOKEN), "masked");
            let mut broken = hostile_upstream("plain text", 20, &[0]).into_bytes();
            let at = broken.windows(5).position(|w| w == b"plain").unwrap();
            broken[at + 2] = 0xff;
            let (fast, reference) = both_paths(r, &broken, &[at + 2]);
            assert_eq!(fast, reference);
            assert!(assemble(&fast).2.unwrap().contains("response_uninspectable"));
        });
    }

    proptest! {
        #[test]
        fn the_fast_path_delivers_exactly_what_the_reference_path_does(
            parts in proptest::collection::vec(prop_oneof![
                Just(TOKEN.to_string()), Just("ghp_".to_string()), Just("ann.lee@corp.io".to_string()),
                Just("4111 1111 1111 1111".to_string()), Just("é😀\n\"\\".to_string()), "[a-z @.0-9_]{0,10}",
                (1usize..40).prop_map(|n| "1 ".repeat(n)),
            ], 0..6),
            piece in 1usize..9,
            shapes in proptest::collection::vec(prop_oneof![6 => Just(0u8), 1 => 1u8..6], 1..8),
            cuts in proptest::collection::vec(0usize..4000, 0..10),
            crlf: bool,
            block: bool,
        ) {
            let actions = if block { [Action::Block, Action::Mask, Action::Mask, Action::Mask] } else { [Action::Mask; 4] };
            with(actions, |r, _| {
                let mut bytes = hostile_upstream(&parts.concat(), piece, &shapes);
                if crlf {
                    bytes = bytes.replace('\n', "\r\n");
                }
                let mut cuts = cuts.clone();
                cuts.sort_unstable();
                let (fast, reference) = both_paths(r, bytes.as_bytes(), &cuts);
                prop_assert_eq!(String::from_utf8_lossy(&fast), String::from_utf8_lossy(&reference));
                Ok(())
            })?;
        }
    }

    proptest! {
        #[test]
        fn clients_assemble_the_same_message_for_any_chunking(
            parts in proptest::collection::vec(prop_oneof![
                Just(TOKEN.to_string()), Just("ann.lee@corp.io".to_string()), Just("4111 1111 1111 1111".to_string()),
                Just("é😀\n".to_string()), "[a-z @.0-9]{0,10}",
                // Runs a stream holds back (re-scanned only once half their length more came).
                (1usize..80).prop_map(|n| "1 ".repeat(n)), (1usize..60).prop_map(|n| "AB12 ".repeat(n))
            ], 0..6),
            piece in 1usize..9,
            cuts in proptest::collection::vec(0usize..3000, 0..10),
        ) {
            with([Action::Mask; 4], |r, _| {
                let text = parts.concat();
                let input = json!({"arg": parts}).to_string();
                let bytes = upstream(&text, &input, piece);
                let mut cuts = cuts.clone();
                cuts.sort_unstable();
                let one_shot = assemble(&run(r, bytes.as_bytes(), &[]));
                let chunked = assemble(&run(r, bytes.as_bytes(), &cuts));
                prop_assert_eq!(&chunked, &one_shot);
                // Whole-message masking gives the same text.
                let mut tally = Tally::default();
                prop_assert_eq!(&one_shot.0, &redact(r, &text, &mut tally).unwrap().into_owned());
                Ok(())
            })?;
        }
    }
}
