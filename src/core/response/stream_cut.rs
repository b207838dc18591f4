//! The stream cut: ends a streamed answer once its output passes the budget's allowance.
//!
//! Admission gives a streaming exchange an **output allowance**: how many output tokens the
//! answer may still produce before its budget is exhausted ([`StreamCut::new`]). This component
//! sits on the response path, after DLP masking, and watches the SSE events as they pass:
//!
//! - **Running count.** `usage.output_tokens` of `message_start` and of every `message_delta`
//!   (cumulative: the highest value seen is kept, a decreasing or malformed number changes
//!   nothing), and — since usage rarely arrives before the end — an estimate from the generated
//!   text seen so far: the UTF-8 bytes of every `text_delta`, `thinking_delta` and
//!   `input_json_delta`, one token per [`BYTES_PER_TOKEN`] bytes, rounded up, added to the
//!   `message_start` count. The running count is the larger of the two. The estimate is
//!   conservative (it over-counts): Claude's tokens average about 4 bytes of English text or
//!   code, and 3 bytes (one character) of CJK text.
//! - **The cut.** The first content delta that takes the running count past the allowance is
//!   delivered, then the answer is ended ([`Ending`]) and every later upstream byte is dropped;
//!   [`StreamCut::is_cut`] tells the glue to reset the upstream stream so generation stops. A
//!   `message_delta`, `message_stop` or `error` from the upstream means generation is over:
//!   nothing is cut after it.
//! - **The ending** is one of two ([`EndingStyle`], chosen per client by
//!   [`EndingStyle::for_client`]; docs/budgets.md, "The stream cut", gives the comparison with
//!   the real clients). A complete message ending closes every open content block coherently —
//!   a tool input's streamed JSON completed into valid JSON (an open string closed, a
//!   half-written number or keyword finished, a missing value `null`, open objects and arrays
//!   closed: [`JsonTail`]) — adds a visible note naming the budget in a text block, then
//!   `message_delta` with `stop_reason: "max_tokens"` and the usage so far, and `message_stop`.
//!   An error ending is one `event: error` of type `rate_limit_error` naming the budget, with
//!   open blocks left open, so no client takes a cut tool call for a complete one.
//!
//! A delta in the canonical shape ([`crate::core::response::sse::canonical_delta`]) is counted without a
//! JSON parse, exactly as the parse would count it (tested against the parsed path).
//!
//! Events are re-serialized with LF line ends (comments dropped), as the DLP redactor does, so
//! the bytes delivered — and where the cut falls — depend only on the upstream's bytes, never on
//! how they were chunked (property-tested below).
//!
//! Limits: a stream that cannot be parsed (invalid UTF-8, an event over [`MAX_EVENT_BYTES`]) is
//! ended at once with a `response_uninspectable` error and counts as cut, since nothing more can
//! be counted. Tool input nested deeper than [`MAX_JSON_DEPTH`], or that the upstream itself made
//! invalid, cannot be completed: its block is closed as it is. A thinking block cut before its
//! `signature_delta` has no signature; a client that sends it back in a later turn is refused by
//! Anthropic.

use crate::core::dlp::json::escape_into;
use crate::core::errors::{Denial, Reason};
use crate::core::response::sse::{canonical_delta, DeltaKind, SseEvent, SseParser};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Bytes of generated text counted as one output token by the estimate.
pub const BYTES_PER_TOKEN: u64 = 3;
/// Largest SSE event accepted (the same bound as the DLP redactor's).
pub const MAX_EVENT_BYTES: usize = crate::core::dlp::response::MAX_EVENT_BYTES;
/// Deepest tool input the ending can complete.
pub const MAX_JSON_DEPTH: usize = 256;

/// How a cut answer ends for the client (docs/budgets.md, "The stream cut", compares them with
/// the real clients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndingStyle {
    /// A complete message: a note in a text block, `message_delta` with
    /// `stop_reason: "max_tokens"` and the usage so far, `message_stop`.
    MaxTokens,
    /// An `event: error` of type `rate_limit_error` naming the budget; open blocks stay open.
    Error,
}

/// The `user-agent` prefix of Claude Code.
pub const CLAUDE_CODE_AGENT: &str = "claude-cli/";

impl EndingStyle {
    /// The ending for the client that sent `user_agent`: Claude Code gets [`Self::MaxTokens`]
    /// (with the reset that follows, it drops the cut turn and asks again without streaming,
    /// where admission answers with the budget's 429, and it never runs a cut tool call); every
    /// other client gets [`Self::Error`] (the SDKs raise it as an API error naming the budget).
    pub fn for_client(user_agent: Option<&str>) -> Self {
        if user_agent.is_some_and(|agent| agent.trim_start().starts_with(CLAUDE_CODE_AGENT)) {
            Self::MaxTokens
        } else {
            Self::Error
        }
    }
}

/// Why and where a stream was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The budget whose allowance was used up (`None`: the stream could not be parsed).
    pub budget: Option<String>,
    /// The running output-token count at the cut.
    pub output_tokens: u64,
    /// The allowance that was passed.
    pub allowance: u64,
}

/// Watches an event stream and ends it at the allowance.
#[derive(Debug)]
pub struct StreamCut {
    parser: SseParser,
    allowance: u64,
    budget: String,
    style: EndingStyle,
    /// The highest cumulative `output_tokens` the upstream reported.
    reported: u64,
    /// `message_start`'s `output_tokens`: the base the estimate adds to.
    start_tokens: u64,
    /// UTF-8 bytes of generated text seen.
    generated_bytes: u64,
    /// Content blocks started and not yet stopped, by index.
    open: BTreeMap<u64, OpenBlock>,
    /// One past the highest block index seen.
    next_index: u64,
    /// The upstream ended generation (`message_delta`, `message_stop`, `error`).
    generation_over: bool,
    cut: Option<Cut>,
}

/// A content block the client has seen start.
#[derive(Debug)]
enum OpenBlock {
    Text,
    /// A block whose deltas are `input_json_delta` (tool_use, server_tool_use, mcp_tool_use).
    ToolInput(JsonTail),
    Other,
}

/// The fields of an event the cut reads.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    /// Any JSON value, so a malformed index does not hide the event's counts.
    #[serde(default)]
    index: Option<serde_json::Value>,
    #[serde(borrow, default)]
    delta: Option<DeltaHead<'a>>,
    #[serde(borrow, default)]
    content_block: Option<BlockHead<'a>>,
    #[serde(default)]
    usage: Option<UsageHead>,
    #[serde(default)]
    message: Option<MessageHead>,
}

/// A delta's fields. Unlike the DLP redactor's, `type` is optional: a `message_delta`'s delta
/// (`stop_reason`, `stop_sequence`) has none, and its event's usage must still be read.
#[derive(Deserialize)]
struct DeltaHead<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
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

#[derive(Deserialize)]
struct MessageHead {
    #[serde(default)]
    usage: Option<UsageHead>,
}

/// `output_tokens` as any JSON value: only a whole number that fits a u64 counts.
#[derive(Deserialize)]
struct UsageHead {
    #[serde(default)]
    output_tokens: Option<serde_json::Value>,
}

impl UsageHead {
    fn output_tokens(&self) -> Option<u64> {
        self.output_tokens.as_ref().and_then(serde_json::Value::as_u64)
    }
}

impl StreamCut {
    /// A cut after `allowance` output tokens, naming `budget`, ending as `style`.
    pub fn new(allowance: u64, budget: &str, style: EndingStyle) -> Self {
        Self {
            parser: SseParser::new(MAX_EVENT_BYTES),
            allowance,
            budget: budget.to_string(),
            style,
            reported: 0,
            start_tokens: 0,
            generated_bytes: 0,
            open: BTreeMap::new(),
            next_index: 0,
            generation_over: false,
            cut: None,
        }
    }

    /// Feeds stream bytes; returns the bytes to deliver now (nothing once the stream was cut).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.cut.is_some() {
            return Vec::new();
        }
        let mut out = String::new();
        match self.parser.push(chunk) {
            Ok(events) => {
                for event in events {
                    self.on_event(event, &mut out);
                    if self.cut.is_some() {
                        break;
                    }
                }
            }
            Err(error) => self.fail(&error.to_string(), &mut out),
        }
        out.into_bytes()
    }

    /// The stream ended; returns what is still to deliver (only an error for a broken stream).
    pub fn finish(&mut self) -> Vec<u8> {
        if self.cut.is_some() {
            return Vec::new();
        }
        let mut out = String::new();
        if let Err(error) = self.parser.finish() {
            self.fail(&error.to_string(), &mut out);
        }
        out.into_bytes()
    }

    /// Whether the answer was ended here: later upstream bytes are dropped, and the glue resets
    /// the upstream stream.
    pub fn is_cut(&self) -> bool {
        self.cut.is_some()
    }

    /// The cut, once it happened.
    pub fn cut(&self) -> Option<&Cut> {
        self.cut.as_ref()
    }

    /// The running output-token count (reported or estimated, whichever is larger).
    pub fn output_tokens(&self) -> u64 {
        let estimate = self.generated_bytes.div_ceil(BYTES_PER_TOKEN);
        self.reported.max(self.start_tokens.saturating_add(estimate))
    }

    fn on_event(&mut self, event: SseEvent, out: &mut String) {
        if let Some(delta) = canonical_delta(&event.data) {
            // The fast path: the same reading as the parse below, without the parse.
            self.count_delta(delta.index, delta.kind, delta.piece);
            event.write_wire(out);
            if !self.generation_over && self.output_tokens() > self.allowance {
                self.end(out);
            }
            return;
        }
        let head: Option<Head> = serde_json::from_str(&event.data).ok();
        let Some(head) = head else {
            out.push_str(&event.to_wire());
            return;
        };
        let mut counts = false;
        let index = head.index.as_ref().and_then(serde_json::Value::as_u64);
        match (head.kind.as_ref(), index) {
            ("message_start", _) => {
                if let Some(tokens) =
                    head.message.as_ref().and_then(|m| m.usage.as_ref()).and_then(|u| u.output_tokens())
                {
                    self.start_tokens = tokens;
                    self.reported = self.reported.max(tokens);
                }
            }
            ("content_block_start", Some(index)) => {
                let kind = head.content_block.as_ref().map(|b| b.kind.as_ref()).unwrap_or("");
                let block = match kind {
                    "text" => OpenBlock::Text,
                    "tool_use" | "server_tool_use" | "mcp_tool_use" => OpenBlock::ToolInput(JsonTail::default()),
                    _ => OpenBlock::Other,
                };
                self.open.insert(index, block);
                self.next_index = self.next_index.max(index.saturating_add(1));
            }
            ("content_block_delta", Some(index)) => {
                let delta = head.delta.as_ref();
                let piece = delta.and_then(|d| match d.kind.as_deref() {
                    Some("text_delta") => Some((DeltaKind::Text, d.text.as_deref()?)),
                    Some("thinking_delta") => Some((DeltaKind::Thinking, d.thinking.as_deref()?)),
                    Some("input_json_delta") => Some((DeltaKind::InputJson, d.partial_json.as_deref()?)),
                    _ => None,
                });
                if let Some((kind, piece)) = piece {
                    self.count_delta(index, kind, piece);
                    counts = true;
                }
            }
            ("content_block_stop", Some(index)) => {
                self.open.remove(&index);
            }
            ("message_delta", _) => {
                if let Some(tokens) = head.usage.as_ref().and_then(UsageHead::output_tokens) {
                    self.reported = self.reported.max(tokens);
                }
                self.generation_over = true;
            }
            ("message_stop", _) | ("error", _) => self.generation_over = true,
            _ => {}
        }
        out.push_str(&event.to_wire());
        if counts && !self.generation_over && self.output_tokens() > self.allowance {
            self.end(out);
        }
    }

    /// Counts a delta's piece as generated output; a tool input's fragment also extends the
    /// block's JSON tail (to close it if the answer is cut).
    fn count_delta(&mut self, index: u64, kind: DeltaKind, piece: &str) {
        self.generated_bytes = self.generated_bytes.saturating_add(piece.len() as u64);
        if let (Some(OpenBlock::ToolInput(tail)), DeltaKind::InputJson) = (self.open.get_mut(&index), kind) {
            tail.push(piece);
        }
    }

    /// Ends the answer as its style says: the message ending closes every open block (a tool
    /// input completed first), adds the note and the `max_tokens` end; the error ending is one
    /// error event.
    fn end(&mut self, out: &mut String) {
        let output_tokens = self.output_tokens();
        let note = format!(
            "budget {:?} exhausted: the answer was cut after about {output_tokens} output tokens (allowance {})",
            self.budget, self.allowance
        );
        self.cut = Some(Cut { budget: Some(self.budget.clone()), output_tokens, allowance: self.allowance });
        if self.style == EndingStyle::Error {
            // Open blocks stay open, as in Anthropic's own mid-stream errors: a client that acts
            // on each block as it stops (Claude Code runs a tool call as soon as its block
            // stops) must never receive a cut tool call as complete.
            let message = format!("warden: budget_exhausted: {note}; new requests wait for the budget to reset");
            let data =
                format!(r#"{{"type":"error","error":{{"type":"rate_limit_error","message":{}}}}}"#, quoted(&message));
            write(out, "error", &data);
            return;
        }
        let last_text = self.open.iter().rev().find(|(_, b)| matches!(b, OpenBlock::Text)).map(|(i, _)| *i);
        for (index, block) in std::mem::take(&mut self.open) {
            if let OpenBlock::ToolInput(tail) = &block {
                if let Some(closing) = tail.closing().filter(|c| !c.is_empty()) {
                    write_delta(out, index, "input_json_delta", "partial_json", &closing);
                }
            }
            if Some(index) == last_text {
                write_delta(out, index, "text_delta", "text", &format!("\n\n[warden: {note}]"));
            }
            write(out, "content_block_stop", &format!(r#"{{"type":"content_block_stop","index":{index}}}"#));
        }
        if last_text.is_none() {
            // No text block was open: the note gets one of its own.
            let index = self.next_index;
            let start = format!(
                r#"{{"type":"content_block_start","index":{index},"content_block":{{"type":"text","text":""}}}}"#
            );
            write(out, "content_block_start", &start);
            write_delta(out, index, "text_delta", "text", &format!("[warden: {note}]"));
            write(out, "content_block_stop", &format!(r#"{{"type":"content_block_stop","index":{index}}}"#));
        }
        let delta = format!(
            r#"{{"type":"message_delta","delta":{{"stop_reason":"max_tokens","stop_sequence":null}},"usage":{{"output_tokens":{output_tokens}}}}}"#
        );
        write(out, "message_delta", &delta);
        write(out, "message_stop", r#"{"type":"message_stop"}"#);
    }

    /// The stream cannot be parsed: end it with an error; nothing more can be counted.
    fn fail(&mut self, why: &str, out: &mut String) {
        out.push_str(&Denial::new(Reason::ResponseUninspectable, why).to_error_event());
        self.cut = Some(Cut { budget: None, output_tokens: self.output_tokens(), allowance: self.allowance });
    }
}

/// Writes one event; `data` is its JSON, fields in Anthropic's order (`type` first).
fn write(out: &mut String, event: &str, data: &str) {
    out.push_str("event: ");
    out.push_str(event);
    out.push_str("\ndata: ");
    out.push_str(data);
    out.push_str("\n\n");
}

/// Writes a `content_block_delta` of `kind` carrying `value` in `field`.
fn write_delta(out: &mut String, index: u64, kind: &str, field: &str, value: &str) {
    let data = format!(
        r#"{{"type":"content_block_delta","index":{index},"delta":{{"type":"{kind}","{field}":{}}}}}"#,
        quoted(value)
    );
    write(out, "content_block_delta", &data);
}

/// `text` as a JSON string.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    escape_into(text, &mut out);
    out.push('"');
    out
}

/// Where a streamed JSON text stands, so it can be completed into valid JSON.
///
/// A push scanner over the text (no value is kept): a stack of open containers, whether the
/// scanner is inside a string (a key or a value) and in which escape, inside a number or a
/// keyword, and what the grammar expects next. [`JsonTail::closing`] is the shortest suffix
/// that makes the text valid. Text the scanner finds invalid, or deeper than
/// [`MAX_JSON_DEPTH`], cannot be completed (`None`).
#[derive(Debug, Default)]
pub struct JsonTail {
    stack: Vec<Container>,
    expect: Expect,
    token: Token,
    broken: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Container {
    Object,
    Array,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Expect {
    /// A value (the document's first, or after `:`).
    #[default]
    Value,
    /// A value or `]` (just after `[`).
    ValueOrClose,
    /// A key or `}` (just after `{`).
    KeyOrClose,
    /// A key (after `,` in an object).
    Key,
    /// `:` after a key.
    Colon,
    /// `,` or the container's close, after a value.
    CommaOrClose,
    /// The document's value is complete.
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Token {
    #[default]
    None,
    /// Inside a string: a key or not, and the escape state.
    String { key: bool, escape: Escape },
    /// Inside a number; the last character decides what completes it.
    Number { last: char, exponent: bool, fraction: bool, leading_zero: bool },
    /// Inside `true`, `false` or `null`: the keyword and how many characters were seen.
    Keyword { word: &'static str, seen: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Backslash,
    /// `\u` and this many hex digits.
    Unicode(u8),
}

impl JsonTail {
    /// Scans the next piece of the text.
    pub fn push(&mut self, piece: &str) {
        for c in piece.chars() {
            if self.broken {
                return;
            }
            self.step(c);
        }
    }

    /// The suffix that completes the text seen so far into valid JSON (a document that never
    /// started becomes `{}`); `None` when the text cannot be completed.
    pub fn closing(&self) -> Option<String> {
        if self.broken {
            return None;
        }
        let mut out = String::new();
        let mut expect = self.expect;
        match &self.token {
            Token::None => {}
            Token::String { key, escape } => {
                match escape {
                    Escape::None => {}
                    Escape::Backslash => out.push('\\'),
                    Escape::Unicode(seen) => (*seen..4).for_each(|_| out.push('0')),
                }
                out.push('"');
                if *key {
                    out.push_str(":null");
                }
                expect = Expect::CommaOrClose;
            }
            Token::Number { last, .. } => {
                if matches!(last, '-' | '+' | '.' | 'e' | 'E') {
                    out.push('0');
                }
                expect = Expect::CommaOrClose;
            }
            Token::Keyword { word, seen } => {
                out.push_str(word.get(*seen..).unwrap_or_default());
                expect = Expect::CommaOrClose;
            }
        }
        match expect {
            Expect::Value if self.stack.is_empty() => out.push_str("{}"),
            Expect::Value => out.push_str("null"),
            Expect::Key => out.push_str("\"\":null"),
            Expect::Colon => out.push_str(":null"),
            Expect::ValueOrClose | Expect::KeyOrClose | Expect::CommaOrClose | Expect::Done => {}
        }
        for container in self.stack.iter().rev() {
            out.push(if *container == Container::Object { '}' } else { ']' });
        }
        Some(out)
    }

    fn step(&mut self, c: char) {
        match self.token.clone() {
            Token::String { key, escape } => self.in_string(c, key, escape),
            Token::Number { last, exponent, fraction, leading_zero } => {
                let continues = match c {
                    // JSON has no leading zeros: `0` then a digit is invalid.
                    '0'..='9' => !(leading_zero && !fraction && !exponent),
                    '.' => !fraction && !exponent && last.is_ascii_digit(),
                    'e' | 'E' => !exponent && last.is_ascii_digit(),
                    '+' | '-' => matches!(last, 'e' | 'E'),
                    _ => false,
                };
                if continues {
                    let leading_zero = (leading_zero || (last == '-' && c == '0')) && c.is_ascii_digit();
                    let exponent = exponent || matches!(c, 'e' | 'E');
                    let fraction = fraction || c == '.';
                    self.token = Token::Number { last: c, exponent, fraction, leading_zero };
                } else if last.is_ascii_digit() {
                    self.token = Token::None;
                    self.expect = self.after_value();
                    self.step(c);
                } else {
                    self.broken = true;
                }
            }
            Token::Keyword { word, seen } => {
                if word.chars().nth(seen) == Some(c) {
                    let seen = seen.saturating_add(1);
                    if seen == word.len() {
                        self.token = Token::None;
                        self.expect = self.after_value();
                    } else {
                        self.token = Token::Keyword { word, seen };
                    }
                } else {
                    self.broken = true;
                }
            }
            Token::None => self.structural(c),
        }
    }

    fn in_string(&mut self, c: char, key: bool, escape: Escape) {
        let escape = match (escape, c) {
            (Escape::None, '"') => {
                self.token = Token::None;
                self.expect = if key { Expect::Colon } else { self.after_value() };
                return;
            }
            (Escape::None, '\\') => Escape::Backslash,
            (Escape::None, c) if u32::from(c) >= 0x20 => Escape::None,
            (Escape::Backslash, 'u') => Escape::Unicode(0),
            (Escape::Backslash, '"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => Escape::None,
            (Escape::Unicode(n), h) if h.is_ascii_hexdigit() => {
                if n >= 3 {
                    Escape::None
                } else {
                    Escape::Unicode(n.saturating_add(1))
                }
            }
            _ => {
                self.broken = true;
                return;
            }
        };
        self.token = Token::String { key, escape };
    }

    fn structural(&mut self, c: char) {
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            return;
        }
        let value_expected = matches!(self.expect, Expect::Value | Expect::ValueOrClose);
        match c {
            '{' | '[' if value_expected => {
                if self.stack.len() >= MAX_JSON_DEPTH {
                    self.broken = true;
                    return;
                }
                let (container, expect) = if c == '{' {
                    (Container::Object, Expect::KeyOrClose)
                } else {
                    (Container::Array, Expect::ValueOrClose)
                };
                self.stack.push(container);
                self.expect = expect;
            }
            '}' if matches!(self.expect, Expect::KeyOrClose | Expect::CommaOrClose)
                && self.stack.last() == Some(&Container::Object) =>
            {
                self.stack.pop();
                self.expect = self.after_value();
            }
            ']' if matches!(self.expect, Expect::ValueOrClose | Expect::CommaOrClose)
                && self.stack.last() == Some(&Container::Array) =>
            {
                self.stack.pop();
                self.expect = self.after_value();
            }
            ',' if self.expect == Expect::CommaOrClose => {
                self.expect = if self.stack.last() == Some(&Container::Object) { Expect::Key } else { Expect::Value };
            }
            ':' if self.expect == Expect::Colon => self.expect = Expect::Value,
            '"' if matches!(self.expect, Expect::Key | Expect::KeyOrClose) => {
                self.token = Token::String { key: true, escape: Escape::None };
            }
            '"' if value_expected => self.token = Token::String { key: false, escape: Escape::None },
            '-' | '0'..='9' if value_expected => {
                self.token = Token::Number { last: c, exponent: false, fraction: false, leading_zero: c == '0' };
            }
            't' | 'f' | 'n' if value_expected => {
                let word = match c {
                    't' => "true",
                    'f' => "false",
                    _ => "null",
                };
                self.token = Token::Keyword { word, seen: 1 };
            }
            _ => self.broken = true,
        }
    }

    /// What follows a complete value at the current depth.
    fn after_value(&self) -> Expect {
        if self.stack.is_empty() {
            Expect::Done
        } else {
            Expect::CommaOrClose
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::response::sse::tests::{canonical_deltas, split};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn event(data: Value) -> String {
        format!("event: {}\ndata: {}\n\n", data["type"].as_str().unwrap(), data)
    }

    fn start(output_tokens: u64) -> String {
        event(
            json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"usage":{"input_tokens":10,"output_tokens":output_tokens}}}),
        )
    }

    fn block_start(index: u64, block: Value) -> String {
        event(json!({"type":"content_block_start","index":index,"content_block":block}))
    }

    fn delta(index: u64, delta: Value) -> String {
        event(json!({"type":"content_block_delta","index":index,"delta":delta}))
    }

    fn text(index: u64, text: &str) -> String {
        delta(index, json!({"type":"text_delta","text":text}))
    }

    fn stop(index: u64) -> String {
        event(json!({"type":"content_block_stop","index":index}))
    }

    fn finale(stop_reason: &str, output_tokens: u64) -> String {
        event(
            json!({"type":"message_delta","delta":{"stop_reason":stop_reason,"stop_sequence":null},"usage":{"output_tokens":output_tokens}}),
        ) + &event(json!({"type":"message_stop"}))
    }

    /// A text answer of `deltas` deltas of 30 bytes (10 estimated tokens) each.
    fn text_stream(deltas: usize) -> String {
        let mut s = start(1) + &block_start(0, json!({"type":"text","text":""}));
        s += "event: ping\ndata: {\"type\": \"ping\"}\n\n";
        for i in 0..deltas {
            s += &text(0, &format!("{:<30}", format!("part {i}")));
        }
        s + &stop(0) + &finale("end_turn", 10 * deltas as u64)
    }

    fn run(cut: &mut StreamCut, chunks: &[&[u8]]) -> String {
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(cut.push(chunk));
        }
        out.extend(cut.finish());
        String::from_utf8(out).unwrap()
    }

    fn cut_once(stream: &str, allowance: u64, style: EndingStyle) -> (String, StreamCut) {
        let mut cut = StreamCut::new(allowance, "team-daily", style);
        let out = run(&mut cut, &[stream.as_bytes()]);
        (out, cut)
    }

    fn events(bytes: &str) -> Vec<(String, Value)> {
        let mut parser = SseParser::new(1 << 20);
        let events = parser.push(bytes.as_bytes()).unwrap();
        parser.finish().unwrap();
        events.into_iter().map(|e| (e.event.clone(), serde_json::from_str(&e.data).unwrap())).collect()
    }

    /// Checks what a client needs of a Messages stream: every event's type matches its name,
    /// every started block is stopped once, after its deltas; exactly one message_start first
    /// and one message_stop last, after a message_delta with a stop_reason; tool input parses.
    /// Returns (stop_reason, output_tokens, text of all text blocks, tool inputs).
    fn check_message(bytes: &str) -> (String, u64, String, Vec<Value>) {
        let events = events(bytes);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"message_start"), "{bytes}");
        assert_eq!(names.last(), Some(&"message_stop"), "{bytes}");
        assert_eq!(names.iter().filter(|n| **n == "message_stop").count(), 1);
        let mut open: BTreeMap<u64, (String, String)> = BTreeMap::new();
        let mut stopped = Vec::new();
        let (mut text, mut tools, mut stop_reason, mut tokens) = (String::new(), Vec::new(), None, 0);
        for (name, data) in &events {
            assert_eq!(data["type"].as_str(), Some(name.as_str()));
            let index = data["index"].as_u64();
            match name.as_str() {
                "content_block_start" => {
                    let index = index.unwrap();
                    assert!(!open.contains_key(&index) && !stopped.contains(&index), "index {index} reused");
                    open.insert(index, (data["content_block"]["type"].as_str().unwrap().into(), String::new()));
                }
                "content_block_delta" => {
                    let (kind, acc) = open.get_mut(&index.unwrap()).expect("a delta of an open block");
                    match kind.as_str() {
                        "text" => {
                            let piece = data["delta"]["text"].as_str().unwrap();
                            acc.push_str(piece);
                            text.push_str(piece);
                        }
                        "tool_use" => acc.push_str(data["delta"]["partial_json"].as_str().unwrap()),
                        _ => {}
                    }
                }
                "content_block_stop" => {
                    let index = index.unwrap();
                    let (kind, acc) = open.remove(&index).expect("a stop of an open block");
                    if kind == "tool_use" {
                        tools.push(serde_json::from_str::<Value>(&acc).expect("tool input is valid JSON"));
                    }
                    stopped.push(index);
                }
                "message_delta" => {
                    assert!(open.is_empty(), "message_delta with blocks open: {open:?}");
                    stop_reason = data["delta"]["stop_reason"].as_str().map(str::to_string);
                    tokens = data["usage"]["output_tokens"].as_u64().unwrap();
                }
                _ => {}
            }
        }
        (stop_reason.expect("a stop_reason"), tokens, text, tools)
    }

    #[test]
    fn a_stream_within_the_allowance_passes_unchanged() {
        let stream = text_stream(5);
        let (out, cut) = cut_once(&stream, 1_000, EndingStyle::MaxTokens);
        assert_eq!(out, stream);
        assert!(!cut.is_cut());
        assert_eq!(cut.output_tokens(), 51, "the reported 50 is below 1 + the estimate of 50");
    }

    #[test]
    fn the_cut_falls_on_the_first_delta_past_the_allowance() {
        // 1 (message_start) + 10 per delta: the 4th delta reaches 41 > 35.
        let (out, cut) = cut_once(&text_stream(8), 35, EndingStyle::MaxTokens);
        assert!(out.contains("part 3") && !out.contains("part 4"), "{out}");
        assert_eq!(cut.cut(), Some(&Cut { budget: Some("team-daily".into()), output_tokens: 41, allowance: 35 }));
        let (stop_reason, tokens, text, _) = check_message(&out);
        assert_eq!((stop_reason.as_str(), tokens), ("max_tokens", 41));
        assert!(
            text.ends_with("\n\n[warden: budget \"team-daily\" exhausted: the answer was cut after about 41 output tokens (allowance 35)]"),
            "{text}"
        );
    }

    #[test]
    fn exactly_at_the_allowance_is_not_cut() {
        let (_, cut) = cut_once(&text_stream(4), 41, EndingStyle::MaxTokens);
        assert!(!cut.is_cut());
        let (_, cut) = cut_once(&text_stream(4), 40, EndingStyle::MaxTokens);
        assert!(cut.is_cut());
    }

    #[test]
    fn the_error_ending_names_the_budget_as_a_rate_limit_error() {
        let (out, cut) = cut_once(&text_stream(8), 35, EndingStyle::Error);
        assert!(cut.is_cut());
        let events = events(&out);
        let (name, last) = events.last().unwrap();
        assert_eq!(name, "error");
        assert_eq!(last["error"]["type"], "rate_limit_error");
        let message = last["error"]["message"].as_str().unwrap();
        assert!(message.starts_with("warden: budget_exhausted: budget \"team-daily\" exhausted"), "{message}");
        assert!(!events.iter().any(|(n, _)| n == "content_block_stop"), "the cut block stays open");
        assert!(!events.iter().any(|(n, _)| n == "message_stop"));
    }

    #[test]
    fn a_tool_call_cut_with_the_error_ending_is_never_completed() {
        let s = start(1)
            + &block_start(0, json!({"type":"tool_use","id":"toolu_1","name":"Bash","input":{}}))
            + &delta(0, json!({"type":"input_json_delta","partial_json":"{\"command\": \"rm -rf /tmp/a"}))
            + &delta(0, json!({"type":"input_json_delta","partial_json":"/b\"}"}))
            + &stop(0);
        let (out, cut) = cut_once(&s, 5, EndingStyle::Error);
        assert!(cut.is_cut());
        let names: Vec<String> = events(&out).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["message_start", "content_block_start", "content_block_delta", "error"]);
    }

    #[test]
    fn claude_code_gets_the_message_ending_and_every_other_client_the_error() {
        assert_eq!(EndingStyle::for_client(Some("claude-cli/2.0.76 (external, cli)")), EndingStyle::MaxTokens);
        for agent in [Some("Anthropic/Python 0.70.0"), Some("Anthropic/JS 0.60.0"), Some("curl/8"), None] {
            assert_eq!(EndingStyle::for_client(agent), EndingStyle::Error, "{agent:?}");
        }
    }

    #[test]
    fn later_upstream_bytes_are_dropped_after_the_cut() {
        let stream = text_stream(8);
        let (first, rest) = stream.split_at(stream.find("part 5").unwrap());
        let mut cut = StreamCut::new(35, "b", EndingStyle::MaxTokens);
        let delivered = cut.push(first.as_bytes());
        assert!(cut.is_cut() && !delivered.is_empty());
        assert!(cut.push(rest.as_bytes()).is_empty());
        assert!(cut.finish().is_empty());
    }

    #[test]
    fn reported_usage_counts_when_larger_than_the_estimate_and_never_decreases() {
        let mut s = start(1) + &block_start(0, json!({"type":"text","text":""})) + &text(0, "a");
        // A hostile upstream: a mid-stream message_delta reports 500, then one reports less.
        let mid = event(json!({"type":"message_delta","delta":{},"usage":{"output_tokens":500}}));
        let lower = event(json!({"type":"message_delta","delta":{},"usage":{"output_tokens":3}}));
        s += &(mid + &lower);
        let (out, cut) = cut_once(&s, 100, EndingStyle::MaxTokens);
        assert_eq!(out, s, "a message_delta ends generation: nothing is cut after it");
        assert_eq!(cut.output_tokens(), 500);
    }

    #[test]
    fn hostile_usage_numbers_are_ignored() {
        for bad in [json!(-5), json!(1.5), json!("12"), json!(1e30), json!(null), json!({"n": 1})] {
            let s = event(json!({"type":"message_start","message":{"usage":{"output_tokens":bad}}}))
                + &block_start(0, json!({"type":"text","text":""}))
                + &text(0, "abc");
            let (_, cut) = cut_once(&s, 10, EndingStyle::MaxTokens);
            assert_eq!(cut.output_tokens(), 1, "{bad}");
        }
        let huge = start(u64::MAX) + &block_start(0, json!({"type":"text","text":""})) + &text(0, "abcdef");
        let (out, cut) = cut_once(&huge, 10, EndingStyle::MaxTokens);
        assert_eq!(cut.cut().unwrap().output_tokens, u64::MAX, "saturates, never wraps");
        check_message(&out);
    }

    #[test]
    fn a_stream_without_any_usage_is_cut_on_the_estimate() {
        let mut s = event(json!({"type":"message_start","message":{"id":"m"}}));
        s += &block_start(0, json!({"type":"text","text":""}));
        s += &text(0, &"x".repeat(31));
        let (out, cut) = cut_once(&s, 10, EndingStyle::MaxTokens);
        assert_eq!(cut.output_tokens(), 11);
        assert_eq!(check_message(&out).1, 11);
    }

    #[test]
    fn an_upstream_error_ends_generation_and_nothing_is_cut_after_it() {
        let s = start(1)
            + &block_start(0, json!({"type":"text","text":""}))
            + &event(json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}))
            + &text(0, &"x".repeat(300));
        let (out, cut) = cut_once(&s, 5, EndingStyle::MaxTokens);
        assert_eq!(out, s);
        assert!(!cut.is_cut());
    }

    #[test]
    fn thinking_counts_and_its_block_is_closed() {
        let s = start(1)
            + &block_start(0, json!({"type":"thinking","thinking":"","signature":""}))
            + &delta(0, json!({"type":"thinking_delta","thinking":"x".repeat(60)}));
        let (out, cut) = cut_once(&s, 10, EndingStyle::MaxTokens);
        assert!(cut.is_cut());
        let (stop_reason, tokens, text, _) = check_message(&out);
        assert_eq!((stop_reason.as_str(), tokens), ("max_tokens", 21));
        assert!(text.starts_with("[warden: budget \"team-daily\" exhausted"), "a note block follows: {text}");
        let starts: Vec<u64> = events(&out)
            .iter()
            .filter(|(n, _)| n == "content_block_start")
            .map(|(_, d)| d["index"].as_u64().unwrap())
            .collect();
        assert_eq!(starts, [0, 1]);
    }

    #[test]
    fn a_cut_inside_tool_input_leaves_valid_json() {
        let full = r#"{"command": "ls -la \"/tmp/dir\" \u00e9", "n": [1, -2.5e+3, true, null], "o": {"k": false}}"#;
        let mut cuts = 0;
        for end in 2..=full.len() {
            let Some(prefix) = full.get(..end) else { continue };
            let s = start(1)
                + &block_start(0, json!({"type":"text","text":""}))
                + &text(0, "Running it.")
                + &stop(0)
                + &block_start(1, json!({"type":"tool_use","id":"toolu_1","name":"Bash","input":{}}))
                + &delta(1, json!({"type":"input_json_delta","partial_json":""}))
                + &delta(1, json!({"type":"input_json_delta","partial_json":prefix}))
                + &delta(1, json!({"type":"input_json_delta","partial_json":full.get(end..).unwrap()}))
                + &stop(1)
                + &finale("tool_use", 40);
            // 1 + ceil(11 / 3) = 5 before the tool input: the prefix (2 bytes or more) passes it.
            let (out, cut) = cut_once(&s, 5, EndingStyle::MaxTokens);
            assert!(cut.is_cut(), "{prefix}");
            cuts += 1;
            let (_, _, _, tools) = check_message(&out);
            assert_eq!(tools.len(), 1, "{prefix}");
            assert!(tools[0].is_object(), "{prefix} -> {}", tools[0]);
        }
        assert!(cuts > 80);
    }

    #[test]
    fn json_tail_completes_every_prefix_of_valid_json() {
        for doc in [
            r#"{"a": "x\"y\\z\u0041", "b": [1, 22.5, -3e-2, 4E+10, {}, []], "c": {"d": [true, false, null]}}"#,
            r#"[{"k": "v"}, [[]], "s", 0]"#,
            r#"  {  "spaced" :  [ 1 , 2 ]  }  "#,
        ] {
            for end in 0..=doc.len() {
                let Some(prefix) = doc.get(..end) else { continue };
                let mut tail = JsonTail::default();
                tail.push(prefix);
                let closing = tail.closing().unwrap_or_else(|| panic!("{prefix}"));
                let whole = format!("{prefix}{closing}");
                assert!(serde_json::from_str::<Value>(&whole).is_ok(), "{prefix} + {closing}");
            }
        }
    }

    #[test]
    fn json_tail_gives_up_on_invalid_or_too_deep_input() {
        let mut tail = JsonTail::default();
        tail.push("{\"a\" 1}");
        assert_eq!(tail.closing(), None);
        let mut deep = JsonTail::default();
        deep.push(&"[".repeat(MAX_JSON_DEPTH + 1));
        assert_eq!(deep.closing(), None);
        let mut fine = JsonTail::default();
        fine.push(&"[".repeat(MAX_JSON_DEPTH));
        assert_eq!(fine.closing(), Some("]".repeat(MAX_JSON_DEPTH)));
    }

    #[test]
    fn an_unparsable_stream_is_ended_with_an_error() {
        let mut cut = StreamCut::new(100, "b", EndingStyle::MaxTokens);
        let out = String::from_utf8(cut.push(b"data: \xff\n\n")).unwrap();
        assert!(out.contains("response_uninspectable"), "{out}");
        assert!(cut.is_cut());
    }

    /// A stream with thinking, text (multi-byte too) and a tool call.
    fn mixed_stream() -> String {
        start(2)
            + &block_start(0, json!({"type":"thinking","thinking":"","signature":""}))
            + &delta(0, json!({"type":"thinking_delta","thinking":"Let me think about ✓ this."}))
            + &delta(0, json!({"type":"signature_delta","signature":"c2ln"}))
            + &stop(0)
            + &block_start(1, json!({"type":"text","text":""}))
            + &text(1, "Héllo, I will run ")
            + &text(1, "a command for you now.")
            + &stop(1)
            + &block_start(2, json!({"type":"tool_use","id":"toolu_1","name":"Bash","input":{}}))
            + &delta(2, json!({"type":"input_json_delta","partial_json":"{\"command\": \"ec"}))
            + &delta(2, json!({"type":"input_json_delta","partial_json":"ho hi\", \"timeout\": 12"}))
            + &delta(2, json!({"type":"input_json_delta","partial_json":"0}"}))
            + &stop(2)
            + &finale("tool_use", 40)
    }

    #[test]
    fn deltas_read_without_the_parse_are_counted_and_cut_exactly_as_parsed_ones() {
        let fast = canonical_deltas(&mixed_stream());
        assert!(fast.contains(r#"data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"a command for you now."}}"#));
        for allowance in 0..60 {
            for style in [EndingStyle::MaxTokens, EndingStyle::Error] {
                let (slow_out, slow) = cut_once(&mixed_stream(), allowance, style);
                let (fast_out, fast_cut) = cut_once(&fast, allowance, style);
                assert_eq!(fast_cut.cut(), slow.cut(), "allowance {allowance}");
                assert_eq!(fast_cut.output_tokens(), slow.output_tokens());
                assert_eq!(events(&fast_out), events(&slow_out), "allowance {allowance}");
            }
        }
    }

    proptest! {
        #[test]
        fn any_chunking_delivers_the_same_bytes_and_cuts_at_the_same_event(
            allowance in 0u64..60,
            error_style in any::<bool>(),
            crlf in any::<bool>(),
            cuts in prop::collection::vec(0usize..4000, 0..16),
        ) {
            let style = if error_style { EndingStyle::Error } else { EndingStyle::MaxTokens };
            let stream = if crlf { mixed_stream().replace('\n', "\r\n") } else { mixed_stream() };
            let mut whole = StreamCut::new(allowance, "b", style);
            let one_shot = run(&mut whole, &[stream.as_bytes()]);
            let mut chunked = StreamCut::new(allowance, "b", style);
            let pieces = run(&mut chunked, &split(stream.as_bytes(), &cuts));
            prop_assert_eq!(&pieces, &one_shot);
            prop_assert_eq!(chunked.cut(), whole.cut());
            if whole.is_cut() && !error_style {
                check_message(&one_shot);
            }
        }

        #[test]
        fn arbitrary_json_pieces_never_panic(piece in "[\\[\\]{}\":,0-9a-z\\\\ .eE+-]{0,40}") {
            let mut tail = JsonTail::default();
            tail.push(&piece);
            if let Some(closing) = tail.closing() {
                let whole = format!("{piece}{closing}");
                prop_assert!(serde_json::from_str::<Value>(&whole).is_ok(), "{} + {}", piece, closing);
            }
        }
    }
}
