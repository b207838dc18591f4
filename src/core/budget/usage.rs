//! Usage accounting: the tokens (and web searches) Anthropic says an answer used, read from the
//! answer as it passes.
//!
//! Sources: an event stream's `message_start.message.usage` (input, cache writes with their
//! `cache_creation.ephemeral_5m_input_tokens` / `ephemeral_1h_input_tokens` split, cache reads)
//! and each `message_delta.usage` (cumulative `output_tokens`, `server_tool_use.
//! web_search_requests`); a JSON answer's top-level `usage`. [`UsageMeter`] is fed the delivered
//! bytes chunk by chunk and parses only the events that carry usage (`message_start`,
//! `message_delta`), so the rest of a stream costs one pass of the SSE parser.
//!
//! Hostile numbers: a count that is not a non-negative integer that fits `u64` (negative, a
//! float, a string, too large) is ignored, as if absent. Counts are cumulative, so a later figure
//! replaces an earlier one — never added — except that a count never goes down: a smaller figure
//! than one already seen is ignored (a decreasing upstream cannot make an answer cheaper).
//!
//! Limits: a JSON answer is kept up to [`MAX_JSON_BYTES`] to be parsed at its end; beyond that
//! its usage is unknown (and charged conservatively by the caller). An SSE event larger than the
//! parser's limit ends the metering the same way.

use crate::core::response::sse::SseParser;
use serde::Serialize;
use serde_json::Value;

/// Largest JSON answer read for its usage.
pub const MAX_JSON_BYTES: usize = 8 << 20;
/// Largest SSE event the meter accepts.
const MAX_EVENT_BYTES: usize = 16 << 20;

/// Token usage as Anthropic reports it. Serialized in the audit record with its keys in byte
/// order (canonical JSON: declare new fields in order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Input tokens written to the prompt cache (both lifetimes).
    pub cache_creation_input_tokens: Option<u64>,
    /// Input tokens read from the prompt cache.
    pub cache_read_input_tokens: Option<u64>,
    /// Of the cache writes, those for one hour (`cache_creation.ephemeral_1h_input_tokens`).
    pub ephemeral_1h_input_tokens: Option<u64>,
    /// Of the cache writes, those for five minutes (`cache_creation.ephemeral_5m_input_tokens`).
    pub ephemeral_5m_input_tokens: Option<u64>,
    /// Input tokens billed at the normal rate.
    pub input_tokens: Option<u64>,
    /// Output tokens.
    pub output_tokens: Option<u64>,
    /// Web searches the server ran (`server_tool_use.web_search_requests`).
    pub web_search_requests: Option<u64>,
}

impl Usage {
    /// Takes every count an Anthropic `usage` object carries (see the module header for the
    /// rules on hostile and decreasing numbers).
    pub fn update(&mut self, usage: &Value) {
        let take = |slot: &mut Option<u64>, value: Option<&Value>| {
            if let Some(n) = value.and_then(Value::as_u64) {
                *slot = Some(slot.map_or(n, |old| old.max(n)));
            }
        };
        take(&mut self.input_tokens, usage.get("input_tokens"));
        take(&mut self.output_tokens, usage.get("output_tokens"));
        take(&mut self.cache_read_input_tokens, usage.get("cache_read_input_tokens"));
        take(&mut self.cache_creation_input_tokens, usage.get("cache_creation_input_tokens"));
        let split = usage.get("cache_creation");
        take(&mut self.ephemeral_5m_input_tokens, split.and_then(|s| s.get("ephemeral_5m_input_tokens")));
        take(&mut self.ephemeral_1h_input_tokens, split.and_then(|s| s.get("ephemeral_1h_input_tokens")));
        let server = usage.get("server_tool_use");
        take(&mut self.web_search_requests, server.and_then(|s| s.get("web_search_requests")));
    }

    /// Every token counted: input, cache writes, cache reads and output, saturating.
    pub fn total_tokens(&self) -> u64 {
        [self.input_tokens, self.cache_creation_input_tokens, self.cache_read_input_tokens, self.output_tokens]
            .iter()
            .fold(0u64, |sum, n| sum.saturating_add(n.unwrap_or(0)))
    }
}

/// What the meter saw of an answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metered {
    /// The usage figures read.
    pub usage: Usage,
    /// Whether the input side is known (`message_start`, or a JSON answer's `usage`).
    pub input_known: bool,
    /// Whether the final output count is known (`message_stop` after a `message_delta`, or a
    /// JSON answer's `usage`).
    pub output_final: bool,
}

/// Reads usage from an answer's delivered bytes, chunk by chunk.
#[derive(Debug)]
pub struct UsageMeter {
    source: Source,
    seen: Metered,
    delta_seen: bool,
}

#[derive(Debug)]
enum Source {
    /// An event stream.
    Stream(SseParser),
    /// A JSON body, kept until its end (`None` once it outgrew [`MAX_JSON_BYTES`]).
    Json(Option<Vec<u8>>),
    /// Metering stopped (malformed stream).
    Stopped,
}

impl UsageMeter {
    /// A meter for an event stream (`stream`) or a JSON answer.
    pub fn new(stream: bool) -> Self {
        let source =
            if stream { Source::Stream(SseParser::new(MAX_EVENT_BYTES)) } else { Source::Json(Some(Vec::new())) };
        Self { source, seen: Metered::default(), delta_seen: false }
    }

    /// Feeds delivered bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        match &mut self.source {
            Source::Stream(parser) => match parser.push(bytes) {
                Ok(events) => {
                    for event in events {
                        self.on_event(&event.event, &event.data);
                    }
                }
                Err(_) => self.source = Source::Stopped,
            },
            Source::Json(Some(body)) => {
                if body.len().saturating_add(bytes.len()) > MAX_JSON_BYTES {
                    self.source = Source::Json(None);
                } else {
                    body.extend_from_slice(bytes);
                }
            }
            Source::Json(None) | Source::Stopped => {}
        }
    }

    fn on_event(&mut self, name: &str, data: &str) {
        match name {
            "message_start" => {
                let Ok(value) = serde_json::from_str::<Value>(data) else { return };
                if let Some(usage) = value.get("message").and_then(|m| m.get("usage")) {
                    self.seen.usage.update(usage);
                    self.seen.input_known = true;
                }
            }
            "message_delta" => {
                let Ok(value) = serde_json::from_str::<Value>(data) else { return };
                if let Some(usage) = value.get("usage") {
                    self.seen.usage.update(usage);
                    self.delta_seen = true;
                }
            }
            "message_stop" => self.seen.output_final = self.delta_seen,
            _ => {}
        }
    }

    /// What was seen, once the answer ended (or was cut).
    pub fn finish(mut self) -> Metered {
        if let Source::Json(Some(body)) = &self.source {
            if let Some(usage) = serde_json::from_slice::<Value>(body).ok().as_ref().and_then(|v| v.get("usage")) {
                self.seen.usage.update(usage);
                self.seen.input_known = true;
                self.seen.output_final = true;
            }
        }
        self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn event(name: &str, data: Value) -> String {
        format!("event: {name}\ndata: {data}\n\n")
    }

    fn stream() -> String {
        [
            event("message_start", json!({"type": "message_start", "message": {"id": "m", "usage": {
                "input_tokens": 12, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 5000,
                "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
                "output_tokens": 1}}})),
            event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}})),
            event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 40}})),
            event("message_delta", json!({"type": "message_delta", "usage": {"output_tokens": 42, "server_tool_use": {"web_search_requests": 3}}})),
            event("message_stop", json!({"type": "message_stop"})),
        ]
        .concat()
    }

    fn meter(chunks: &[&[u8]], is_stream: bool) -> Metered {
        let mut meter = UsageMeter::new(is_stream);
        chunks.iter().for_each(|c| meter.push(c));
        meter.finish()
    }

    #[test]
    fn a_stream_gives_input_from_message_start_and_the_latest_output() {
        let seen = meter(&[stream().as_bytes()], true);
        assert!(seen.input_known && seen.output_final);
        assert_eq!(
            seen.usage,
            Usage {
                input_tokens: Some(12),
                output_tokens: Some(42),
                cache_creation_input_tokens: Some(300),
                cache_read_input_tokens: Some(5000),
                ephemeral_5m_input_tokens: Some(100),
                ephemeral_1h_input_tokens: Some(200),
                web_search_requests: Some(3),
            }
        );
        assert_eq!(seen.usage.total_tokens(), 12 + 300 + 5000 + 42);
    }

    #[test]
    fn a_stream_cut_before_message_stop_is_not_final() {
        let text = stream();
        let cut = text.find("event: message_delta").unwrap();
        let seen = meter(&[&text.as_bytes()[..cut]], true);
        assert!(seen.input_known && !seen.output_final);
        assert_eq!(seen.usage.output_tokens, Some(1));
    }

    #[test]
    fn a_json_answer_gives_its_usage() {
        let body =
            json!({"type": "message", "content": [], "usage": {"input_tokens": 3, "output_tokens": 2}}).to_string();
        let (a, b) = body.as_bytes().split_at(10);
        let seen = meter(&[a, b], false);
        assert!(seen.input_known && seen.output_final);
        assert_eq!((seen.usage.input_tokens, seen.usage.output_tokens), (Some(3), Some(2)));
    }

    #[test]
    fn hostile_numbers_are_ignored_and_counts_never_decrease() {
        let mut usage = Usage::default();
        usage.update(&json!({"input_tokens": -5, "output_tokens": 1.5, "cache_read_input_tokens": "9",
            "cache_creation_input_tokens": 1e30}));
        assert_eq!(usage, Usage::default());
        usage.update(&json!({"output_tokens": 100}));
        usage.update(&json!({"output_tokens": 7}));
        assert_eq!(usage.output_tokens, Some(100));
        usage.update(&json!({"output_tokens": u64::MAX, "input_tokens": u64::MAX}));
        assert_eq!(usage.total_tokens(), u64::MAX);
    }

    #[test]
    fn an_error_body_and_garbage_give_no_usage() {
        let seen = meter(&[br#"{"type":"error","error":{"type":"overloaded_error"}}"#], false);
        assert!(!seen.input_known && !seen.output_final);
        let seen = meter(&[b"\xff\xfe not sse"], true);
        assert_eq!(seen.usage, Usage::default());
    }

    #[test]
    fn an_oversized_json_answer_has_unknown_usage() {
        let mut meter = UsageMeter::new(false);
        meter.push(&vec![b' '; MAX_JSON_BYTES]);
        meter.push(br#"{"usage":{"input_tokens":1}}"#);
        assert!(!meter.finish().input_known);
    }

    proptest! {
        #[test]
        fn metering_does_not_depend_on_chunking(cuts in proptest::collection::vec(0usize..2000, 0..8)) {
            let text = stream();
            let bytes = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut meter = UsageMeter::new(true);
            let mut last = 0;
            for cut in cuts {
                meter.push(&bytes[last..cut]);
                last = cut;
            }
            meter.push(&bytes[last..]);
            prop_assert_eq!(meter.finish(), super::tests::meter(&[bytes], true));
        }
    }
}
