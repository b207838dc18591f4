//! A push parser for server-sent events (SSE), as Anthropic's streaming API sends them.
//!
//! Bytes arrive in chunks of any size, split anywhere: inside a line, between a CR and its LF,
//! inside a multi-byte UTF-8 character. [`SseParser::push`] buffers only the current incomplete
//! line and the current event's fields, and returns every event completed by the chunk.
//!
//! Algorithm (the WHATWG EventSource rules, minus reconnection):
//! - a line ends at CR, LF or CRLF; a CR at the end of a chunk waits for the next byte to know
//!   whether an LF follows;
//! - lines are decoded as UTF-8 only once complete, so a character split across chunks is never
//!   seen in halves; invalid UTF-8 is an error, not a replacement character;
//! - `field: value` (one leading space of the value dropped), `field` alone has an empty value,
//!   lines starting with `:` are comments and ignored; a leading byte-order mark is skipped;
//! - `data` lines accumulate, joined by `\n`; `event`, `id` and `retry` are kept; a blank line
//!   dispatches the event if it has data (an event without data is dropped, as browsers do);
//! - at the end of the stream an unterminated event is dropped, as the specification says.
//!
//! Limits: an event (its pending line plus its fields) larger than the configured bound is an
//! error, so a hostile upstream cannot make the filter buffer without end. After an error the
//! parser stays failed: the caller ends the stream.
//!
//! The result depends only on the bytes, never on how they were chunked (split-invariance,
//! property-tested below).
//!
//! [`canonical_delta`] reads a Messages `content_block_delta` event's data without a JSON parse
//! when it has exactly the canonical shape Anthropic sends (the response stages' fast path),
//! and declines anything else.

use std::fmt;

/// Whether a `content-type` value announces an event stream (`text/event-stream`, any case,
/// parameters allowed).
pub fn is_event_stream(content_type: &str) -> bool {
    content_type.trim_start().to_ascii_lowercase().starts_with("text/event-stream")
}

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event` field; empty when absent (the specification's default type is `message`).
    pub event: String,
    /// The `data` lines, joined by `\n`.
    pub data: String,
    /// The last `id` field, if any.
    pub id: Option<String>,
    /// The last `retry` field, if any (kept verbatim).
    pub retry: Option<String>,
}

impl SseEvent {
    /// The event in wire form, ending with the blank line that dispatches it.
    pub fn to_wire(&self) -> String {
        let mut out = String::with_capacity(self.data.len() + self.event.len() + 16);
        self.write_wire(&mut out);
        out
    }

    /// Appends the event in wire form (as [`SseEvent::to_wire`]) to `out`, with no allocation of
    /// its own.
    pub fn write_wire(&self, out: &mut String) {
        if !self.event.is_empty() {
            out.push_str("event: ");
            out.push_str(&self.event);
            out.push('\n');
        }
        if let Some(id) = &self.id {
            out.push_str("id: ");
            out.push_str(id);
            out.push('\n');
        }
        if let Some(retry) = &self.retry {
            out.push_str("retry: ");
            out.push_str(retry);
            out.push('\n');
        }
        for line in self.data.split('\n') {
            out.push_str("data: ");
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
}

/// The kind of a `content_block_delta` that carries a piece of a block's text, thinking or tool
/// input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeltaKind {
    /// `text_delta`, its piece in `text`.
    Text,
    /// `thinking_delta`, its piece in `thinking`.
    Thinking,
    /// `input_json_delta`, its piece (a fragment of the tool input's JSON) in `partial_json`.
    InputJson,
}

impl DeltaKind {
    /// The delta's `type` value.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::Text => "text_delta",
            Self::Thinking => "thinking_delta",
            Self::InputJson => "input_json_delta",
        }
    }

    /// The name of the delta's string field.
    pub fn field(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Thinking => "thinking",
            Self::InputJson => "partial_json",
        }
    }
}

/// A `content_block_delta` read by [`canonical_delta`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanonicalDelta<'a> {
    /// The content block's `index`.
    pub index: u64,
    /// The delta's kind.
    pub kind: DeltaKind,
    /// The delta's string: its JSON value, which is its raw bytes.
    pub piece: &'a str,
}

/// The response stream's fast path: reads a `content_block_delta` event's data without a JSON
/// parse when it has exactly the canonical shape Anthropic sends, byte for byte,
/// `{"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"…"}}` (or
/// `thinking_delta`/`thinking`, `input_json_delta`/`partial_json`): no whitespace, `N` a JSON
/// integer without a leading zero and of at most 19 digits (so it fits a `u64`), a string with
/// no backslash, no quote and no control character, and nothing after the closing `"}}`. Such a
/// string's JSON value is its own bytes, and no escape (`\u0067hp_`) can hide anything from
/// the detectors, so the result is exactly what a JSON parse would read. Any other data
/// (escapes, whitespace, other field orders, extra fields) returns `None`: the caller parses it.
pub fn canonical_delta(data: &str) -> Option<CanonicalDelta<'_>> {
    const HEAD: &str = "{\"type\":\"content_block_delta\",\"index\":";
    const DELTA: &str = ",\"delta\":{\"type\":\"";
    const KINDS: [DeltaKind; 3] = [DeltaKind::Text, DeltaKind::Thinking, DeltaKind::InputJson];
    let rest = data.strip_prefix(HEAD)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (number, rest) = rest.split_at_checked(digits)?;
    if digits == 0 || digits > 19 || (digits > 1 && number.starts_with('0')) {
        return None;
    }
    let index = number.parse::<u64>().ok()?;
    let rest = rest.strip_prefix(DELTA)?;
    let (kind, rest) = KINDS.iter().find_map(|kind| {
        let rest = rest.strip_prefix(kind.type_name())?.strip_prefix("\",\"")?;
        Some((*kind, rest.strip_prefix(kind.field())?.strip_prefix("\":\"")?))
    })?;
    let piece = rest.strip_suffix("\"}}")?;
    if piece.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        return None;
    }
    Some(CanonicalDelta { index, kind, piece })
}

/// Why a stream cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    /// A line is not valid UTF-8.
    InvalidUtf8,
    /// An event grew past the bound (in bytes).
    EventTooLarge(usize),
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUtf8 => f.write_str("an event-stream line is not valid UTF-8"),
            Self::EventTooLarge(limit) => write!(f, "an event-stream event exceeds {limit} bytes"),
        }
    }
}

/// The parser's state between chunks.
#[derive(Debug, Clone)]
pub struct SseParser {
    max_event_bytes: usize,
    /// Bytes of the current, incomplete line.
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF starting this chunk belongs to that line end.
    after_cr: bool,
    /// Still at the very start of the stream (a byte-order mark may follow).
    at_start: bool,
    /// Fields of the event being read.
    pending: SseEvent,
    /// Whether `pending` has received a `data` field.
    has_data: bool,
    /// Bytes held in `pending`.
    pending_bytes: usize,
    failed: Option<SseError>,
}

const BOM: &[u8] = "\u{feff}".as_bytes();

impl SseParser {
    /// A parser refusing events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes,
            line: Vec::new(),
            after_cr: false,
            at_start: true,
            pending: SseEvent::default(),
            has_data: false,
            pending_bytes: 0,
            failed: None,
        }
    }

    /// Feeds a chunk; returns the events it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let mut events = Vec::new();
        let result = self.push_inner(chunk, &mut events);
        match result {
            Ok(()) => Ok(events),
            Err(error) => {
                self.failed = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Ends the stream. A final line without a line end still counts as a line; an event not
    /// dispatched by a blank line is dropped.
    pub fn finish(&mut self) -> Result<(), SseError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.take_line(&line, &mut Vec::new())?;
        }
        Ok(())
    }

    fn push_inner(&mut self, mut chunk: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.at_start {
            // The BOM may itself be split across chunks: hold the prefix until it is decided.
            let held = self.line.len();
            let wanted = BOM.len() - held;
            let take = wanted.min(chunk.len());
            let (head, rest) = chunk.split_at(take);
            self.line.extend_from_slice(head);
            if BOM.starts_with(&self.line) {
                if self.line.len() < BOM.len() {
                    return Ok(());
                }
                self.line.clear();
                chunk = rest;
            } else {
                // Not a BOM: the held bytes are ordinary line bytes; re-feed them with the rest.
                let mut replay = std::mem::take(&mut self.line);
                replay.extend_from_slice(rest);
                self.at_start = false;
                return self.scan(&replay, events);
            }
            self.at_start = false;
        }
        self.scan(chunk, events)
    }

    fn scan(&mut self, mut chunk: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(end) = chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
            let (content, rest) = chunk.split_at(end);
            let line = if self.line.is_empty() {
                self.take_line(content, events)?;
                None
            } else {
                self.line.extend_from_slice(content);
                Some(std::mem::take(&mut self.line))
            };
            if let Some(line) = line {
                self.take_line(&line, events)?;
            }
            let is_cr = rest.first() == Some(&b'\r');
            chunk = rest.get(1..).unwrap_or_default();
            if is_cr {
                match chunk.first() {
                    Some(b'\n') => chunk = chunk.get(1..).unwrap_or_default(),
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.line.extend_from_slice(chunk);
        self.check_size()
    }

    fn take_line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        // Every line counts against the bound, comments too, so the outcome does not depend on
        // whether the line arrived whole or in pieces.
        if self.pending_bytes + line.len() > self.max_event_bytes {
            return Err(SseError::EventTooLarge(self.max_event_bytes));
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::InvalidUtf8)?;
        if line.is_empty() {
            let event = std::mem::take(&mut self.pending);
            if std::mem::take(&mut self.has_data) {
                events.push(event);
            }
            self.pending_bytes = 0;
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.pending.data.push('\n');
                }
                self.pending.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.pending.event = value.to_string(),
            "id" if !value.contains('\0') => self.pending.id = Some(value.to_string()),
            "retry" => self.pending.retry = Some(value.to_string()),
            _ => {}
        }
        self.pending_bytes += line.len();
        Ok(())
    }

    fn check_size(&self) -> Result<(), SseError> {
        if self.pending_bytes + self.line.len() > self.max_event_bytes {
            Err(SseError::EventTooLarge(self.max_event_bytes))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: usize = 1 << 20;

    /// A short Anthropic stream, LF line ends.
    const STREAM: &str = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}\n",
        "\n",
        ": a comment\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"héllo ✓\"}}\n",
        "\n",
        "event: ping\n",
        "data: {\"type\": \"ping\"}\n",
        "\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n",
        "\n",
    );

    fn parse_all(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, SseError> {
        let mut parser = SseParser::new(MAX);
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(parser.push(chunk)?);
        }
        parser.finish()?;
        Ok(events)
    }

    fn names(events: &[SseEvent]) -> Vec<&str> {
        events.iter().map(|e| e.event.as_str()).collect()
    }

    #[test]
    fn anthropic_stream_parses_into_its_events() {
        let events = parse_all(&[STREAM.as_bytes()]).unwrap();
        assert_eq!(names(&events), ["message_start", "content_block_delta", "ping", "message_stop"]);
        assert!(events[1].data.contains("héllo ✓"));
        assert_eq!(events[2].data, "{\"type\": \"ping\"}");
    }

    #[test]
    fn crlf_and_cr_twins_parse_identically() {
        let lf = parse_all(&[STREAM.as_bytes()]).unwrap();
        let crlf = STREAM.replace('\n', "\r\n");
        let cr = STREAM.replace('\n', "\r");
        assert_eq!(parse_all(&[crlf.as_bytes()]).unwrap(), lf);
        assert_eq!(parse_all(&[cr.as_bytes()]).unwrap(), lf);
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_end() {
        let events = parse_all(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]).unwrap();
        assert_eq!(events, vec![SseEvent { data: "a\nb".into(), ..Default::default() }]);
        let with_empty_chunks = parse_all(&[b"data: a\r", b"", b"\ndata: b\r", b"", b"", b"\n\r\n"]).unwrap();
        assert_eq!(with_empty_chunks, events);
    }

    #[test]
    fn multibyte_characters_split_across_chunks_survive() {
        let text = "data: ✓é\n\n".as_bytes();
        let (a, b) = text.split_at(7); // inside the three bytes of ✓
        let events = parse_all(&[a, b]).unwrap();
        assert_eq!(events[0].data, "✓é");
    }

    #[test]
    fn fields_follow_the_specification() {
        let events =
            parse_all(&[b"data\ndata:x\ndata:  two spaces\nid: 7\nretry: 100\nevent:e\nunknown: z\n\n"]).unwrap();
        assert_eq!(
            events,
            vec![SseEvent {
                event: "e".into(),
                data: "\nx\n two spaces".into(),
                id: Some("7".into()),
                retry: Some("100".into()),
            }]
        );
    }

    #[test]
    fn events_without_data_and_unterminated_events_are_dropped() {
        assert_eq!(parse_all(&[b"event: ping\n\n"]).unwrap(), vec![]);
        assert_eq!(parse_all(&[b"data: never dispatched"]).unwrap(), vec![]);
    }

    #[test]
    fn byte_order_mark_is_skipped_even_when_split() {
        let mut stream = BOM.to_vec();
        stream.extend_from_slice(b"data: x\n\n");
        let one_shot = parse_all(&[&stream]).unwrap();
        assert_eq!(one_shot[0].data, "x");
        assert_eq!(parse_all(&[&stream[..1], &stream[1..2], &stream[2..]]).unwrap(), one_shot);
        assert_eq!(parse_all(&[b"d", b"ata: y\n\n"]).unwrap()[0].data, "y");
    }

    #[test]
    fn invalid_utf8_is_an_error_and_the_parser_stays_failed() {
        let mut parser = SseParser::new(MAX);
        assert_eq!(parser.push(b"data: \xff\n\n"), Err(SseError::InvalidUtf8));
        assert_eq!(parser.push(b"data: fine\n\n"), Err(SseError::InvalidUtf8));
    }

    #[test]
    fn oversized_events_are_refused_without_a_line_end() {
        let mut parser = SseParser::new(64);
        assert!(parser.push(b"data: short\n").is_ok());
        assert_eq!(parser.push(&[b'a'; 100]), Err(SseError::EventTooLarge(64)));
        let mut parser = SseParser::new(64);
        let many_lines = "data: 0123456789\n".repeat(10);
        assert_eq!(parser.push(many_lines.as_bytes()), Err(SseError::EventTooLarge(64)));
    }

    #[test]
    fn wire_form_parses_back_to_the_same_event() {
        for event in parse_all(&[STREAM.as_bytes(), b"id: 9\nretry: 5\ndata: a\ndata: b\n\n"]).unwrap() {
            assert_eq!(parse_all(&[event.to_wire().as_bytes()]).unwrap(), vec![event]);
        }
    }

    /// Splits `bytes` at the given cut points (any order, any duplicates).
    pub(crate) fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for point in points {
            chunks.push(&bytes[start..point]);
            start = point;
        }
        chunks.push(&bytes[start..]);
        chunks
    }

    /// `stream` with its text, thinking and tool-input deltas in the canonical shape Anthropic
    /// sends (`type` first; the fast path reads them), other events as they were.
    pub(crate) fn canonical_deltas(stream: &str) -> String {
        let line = |line: &str| -> String {
            let Some(data) = line.strip_prefix("data: ") else { return line.to_string() };
            let value: serde_json::Value = serde_json::from_str(data).unwrap();
            let delta = &value["delta"];
            let Some(kind) =
                delta["type"].as_str().filter(|k| value["type"] == "content_block_delta" && *k != "signature_delta")
            else {
                return line.to_string();
            };
            let field =
                kind.strip_suffix("_delta").map(|f| if f == "input_json" { "partial_json" } else { f }).unwrap();
            format!(
                "data: {{\"type\":\"content_block_delta\",\"index\":{},\"delta\":{{\"type\":\"{kind}\",\"{field}\":{}}}}}",
                value["index"], delta[field]
            )
        };
        stream.split('\n').map(line).collect::<Vec<_>>().join("\n")
    }

    #[test]
    fn canonical_deltas_are_read_without_a_parse_exactly_as_the_parse_reads_them() {
        let read = |data: &str| canonical_delta(data).map(|d| (d.index, d.kind, d.piece.to_string()));
        for (data, index, kind, piece) in [
            (
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"héllo ✓"}}"#,
                0,
                DeltaKind::Text,
                "héllo ✓",
            ),
            (
                r#"{"type":"content_block_delta","index":12,"delta":{"type":"thinking_delta","thinking":""}}"#,
                12,
                DeltaKind::Thinking,
                "",
            ),
            (
                r#"{"type":"content_block_delta","index":9999999999999999999,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#,
                9_999_999_999_999_999_999,
                DeltaKind::InputJson,
                "{}",
            ),
        ] {
            assert_eq!(read(data), Some((index, kind, piece.to_string())), "{data}");
            let value: serde_json::Value = serde_json::from_str(data).unwrap();
            assert_eq!(value["index"].as_u64(), Some(index));
            assert_eq!(value["delta"][kind.field()].as_str(), Some(piece));
        }
    }

    #[test]
    fn anything_but_the_canonical_shape_is_left_to_the_parse() {
        let declined = [
            // escapes, quotes, control characters in the string
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"\u0067hp_"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a\"b"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}"}}"#,
            "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\nb\"}}",
            "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\tb\"}}",
            // numbers: leading zero, too long, negative, fraction, missing
            r#"{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"a"}}"#,
            r#"{"type":"content_block_delta","index":18446744073709551616,"delta":{"type":"text_delta","text":"a"}}"#,
            r#"{"type":"content_block_delta","index":-1,"delta":{"type":"text_delta","text":"a"}}"#,
            r#"{"type":"content_block_delta","index":1.0,"delta":{"type":"text_delta","text":"a"}}"#,
            r#"{"type":"content_block_delta","delta":{"type":"text_delta","text":"a"}}"#,
            // whitespace, other orders, other fields, a mismatched field, trailing bytes
            r#"{"type": "content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}}"#,
            r#"{"index":0,"type":"content_block_delta","delta":{"type":"text_delta","text":"a"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","x":1}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","thinking":"a"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"a"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}} "#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a"}"#,
        ];
        for data in declined {
            assert_eq!(canonical_delta(data), None, "{data}");
        }
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_one_shot_result(
            ending in prop::sample::select(vec!["\n", "\r\n", "\r"]),
            cuts in prop::collection::vec(0usize..2000, 0..12),
        ) {
            let stream = STREAM.replace('\n', ending);
            let one_shot = parse_all(&[stream.as_bytes()]);
            prop_assert_eq!(parse_all(&split(stream.as_bytes(), &cuts)), one_shot);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_stay_split_invariant(
            bytes in prop::collection::vec(prop::sample::select(b"data: \r\nevent:x\xc3\xa9:".to_vec()), 0..80),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let one_shot = parse_all(&[&bytes]);
            prop_assert_eq!(parse_all(&split(&bytes, &cuts)), one_shot);
        }
    }
}
