//! Holding proposed tool calls in the answer until each is judged.
//!
//! **Streams.** [`ToolHold`] reads the (already masked) event stream and returns the bytes that may
//! be delivered now:
//! - The stream is cut into events at their blank lines by a raw framer that follows the SSE line
//!   rules (CR, LF, CRLF, a CRLF split across chunks), and every event is parsed by
//!   [`SseParser`] fed the same bytes. An incomplete event is kept until its blank line (a few
//!   hundred bytes in practice), so a call's `content_block_start` is never half delivered.
//! - An event outside a call block passes the moment it is complete, as the upstream's own bytes.
//!   Text and thinking *before* a call are therefore never delayed.
//! - A call block — `content_block_start` of a `tool_use`, `server_tool_use` or `mcp_tool_use`
//!   (by the data's `type` or the `event:` name, whichever says so) — is kept from its start to the
//!   `content_block_stop` at its index. Its input is the concatenated `input_json_delta`
//!   `partial_json` pieces, or, when they are empty, the `input` given whole in the start (the
//!   official SDKs assemble it the same way). The complete call is then [`ToolHold::waiting`].
//! - Every byte after a call's start queues behind that call's decision, text included: the client
//!   must see blocks in their order (indices are positions in the message's content), and the text
//!   Claude writes after a call usually comments on it. Several calls in one message (parallel
//!   tool use) each wait in turn.
//! - [`Decision::Release`] delivers the block's original bytes. [`Decision::Refuse`] delivers, at
//!   the block's place, `content_block_start` of a text block at the same index, one `text_delta`
//!   with the text and `content_block_stop` (events re-serialized as `event: X\ndata: {json}\n\n`).
//!   Events that are not the block's own but arrived inside it (`ping`, `error`) follow it.
//! - When no call of the message was released, a `message_delta` whose `stop_reason` is
//!   `tool_use` is re-serialized with `end_turn` (every other field, usage included, kept as sent),
//!   so no `tool_use` id dangles and the clients end the turn cleanly.
//!
//! **Hostile streams.** Inside a call block, any other `content_block_*` event (a second start, a
//! delta or stop at another index, a delta that is not `input_json_delta`, an event whose name
//! and data type disagree, undecodable data) becomes part of the block and marks the call
//! [`ToolCall::malformed`], as does an input that does not parse (serde_json: nesting deeper than
//! 128 included), exceeds [`MAX_CALL_INPUT_BYTES`], or a start without a string `id` and `name`.
//! Rules never allow a malformed call by default. Event data that serde rejects is read again as a
//! generic JSON value (a duplicated key then counts as the official clients count it: the last
//! one wins). An event named `content_block_start` whose data is not JSON at all is held as a
//! malformed call with no index: refusing it delivers nothing in its place.
//!
//! **Fail closed.** A stream that cannot be parsed (invalid UTF-8, an event over
//! [`MAX_EVENT_BYTES`]) or that queues more than [`MAX_HELD_BYTES`] behind undecided calls stops
//! being read: a call still open is dropped, calls already complete still wait for their
//! decision, and after them the client receives a `response_uninspectable` error event; later
//! upstream bytes are dropped. (The DLP redactor ahead of the hold re-serializes every event, so in
//! Warden only the size bound can trigger here.)
//!
//! [`ToolHold::finish`] never releases a call: a call still open is dropped, a complete call still
//! undecided is replaced by a text block saying it was withheld (indices stay contiguous); both
//! are listed by [`ToolHold::dropped`] for the record (`incomplete`).
//!
//! **JSON answers.** [`calls_in_message`] lists the calls of a Messages response and
//! [`rewrite_message`] replaces the refused ones by text blocks and fixes `stop_reason` by the same
//! rules; every other field keeps its bytes (values are copied raw, never re-encoded).
//!
//! Memory: the incomplete event (≤ 2 × [`MAX_EVENT_BYTES`] with its line ends), the held and
//! queued bytes (≤ [`MAX_HELD_BYTES`]), one assembled input per call (≤ [`MAX_CALL_INPUT_BYTES`],
//! counted in the held bytes) and the calls listed by [`ToolHold::dropped`].

use super::{CallKind, ToolCall};
use crate::core::dlp::json::escape_into;
use crate::core::errors::{Denial, Reason};
use crate::core::sse::{SseEvent, SseParser};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;

/// Largest SSE event accepted (the DLP redactor's bound).
pub const MAX_EVENT_BYTES: usize = crate::core::dlp::response::MAX_EVENT_BYTES;
/// Largest assembled call input; a longer one makes the call malformed.
pub const MAX_CALL_INPUT_BYTES: usize = 4 << 20;
/// Most bytes kept at once: open and waiting call blocks and everything queued behind them.
pub const MAX_HELD_BYTES: usize = 32 << 20;

/// What the client reads in place of a call that was still undecided when the answer ended.
pub const WITHHELD_TEXT: &str = "[warden: a proposed tool call was withheld: it was not decided before the answer ended]";

/// What happens to a held call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Deliver the block exactly as Claude sent it.
    Release,
    /// Replace the block with a text block carrying `text`.
    Refuse {
        /// What the agent's user reads instead of the call.
        text: String,
    },
}

/// The stream state machine that holds tool-call blocks (see the module header).
#[derive(Debug)]
pub struct ToolHold {
    framer: Framer,
    parser: SseParser,
    /// Raw bytes of the event being received (not yet ended by its blank line).
    partial: Vec<u8>,
    /// What is held, in stream order: the front is the oldest undecided call (or nothing).
    units: VecDeque<Unit>,
    /// Whether the last unit is a call block not yet stopped.
    open: bool,
    /// Bytes kept in `units`.
    held_bytes: usize,
    /// Calls delivered or withheld so far, and how many of them were released.
    calls_done: u64,
    calls_released: u64,
    /// The stream stopped being read (parse failure, overflow, or [`ToolHold::finish`]).
    stopped: bool,
    dropped: Vec<ToolCall>,
}

impl Default for ToolHold {
    fn default() -> Self {
        Self::new()
    }
}

/// One piece of the held stream.
#[derive(Debug)]
enum Unit {
    /// Bytes to deliver as they are.
    Raw(Vec<u8>),
    /// A `message_delta` with `stop_reason: "tool_use"`: rewritten when no call was released.
    StopReason { raw: Vec<u8>, data: String },
    /// A call block.
    Call(Box<HeldCall>),
}

impl Unit {
    fn footprint(&self) -> usize {
        match self {
            Self::Raw(raw) => raw.len(),
            Self::StopReason { raw, data } => raw.len().saturating_add(data.len()),
            Self::Call(call) => call.footprint(),
        }
    }
}

/// A call block being assembled or waiting for its decision.
#[derive(Debug)]
struct HeldCall {
    /// The start's `index`, as raw JSON text (`None`: the start could not be read).
    index: Option<String>,
    id: Option<String>,
    kind: CallKind,
    name: Option<String>,
    server_name: Option<String>,
    /// The start's `input`, raw JSON text.
    start_input: Option<String>,
    /// The concatenated `partial_json` pieces.
    json: String,
    malformed: bool,
    /// Every byte of the block, interleaved events included: what a release delivers.
    raw: Vec<u8>,
    /// Events inside the block that are not the block's own: delivered after a replacement.
    others: Vec<u8>,
    /// The assembled call, once the block stopped.
    call: Option<ToolCall>,
}

impl HeldCall {
    fn footprint(&self) -> usize {
        self.raw.len().saturating_add(self.others.len()).saturating_add(self.json.len())
    }

    /// The call as assembled so far (complete or not).
    fn assemble(&self) -> ToolCall {
        let mut malformed = self.malformed || self.id.is_none() || self.name.is_none();
        let text = if self.json.is_empty() { self.start_input.as_deref().unwrap_or("{}") } else { &self.json };
        let input = if malformed {
            Value::Null
        } else {
            match serde_json::from_str::<Value>(text) {
                Ok(value) => value,
                Err(_) => {
                    malformed = true;
                    Value::Null
                }
            }
        };
        ToolCall {
            id: self.id.clone().unwrap_or_default(),
            kind: self.kind,
            name: self.name.clone().unwrap_or_default(),
            server_name: self.server_name.clone(),
            input,
            malformed,
        }
    }

    /// The text block replacing the call (nothing when its index is unknown).
    fn replacement(&self, text: &str) -> String {
        let Some(index) = &self.index else { return String::new() };
        let mut out = String::with_capacity(text.len() + 300);
        write_event(
            &mut out,
            "content_block_start",
            &format!(r#"{{"type":"content_block_start","index":{index},"content_block":{{"type":"text","text":""}}}}"#),
        );
        let mut delta = format!(r#"{{"type":"content_block_delta","index":{index},"delta":{{"type":"text_delta","text":""#);
        escape_into(text, &mut delta);
        delta.push_str("\"}}");
        write_event(&mut out, "content_block_delta", &delta);
        write_event(&mut out, "content_block_stop", &format!(r#"{{"type":"content_block_stop","index":{index}}}"#));
        out
    }
}

fn write_event(out: &mut String, event: &str, data: &str) {
    out.push_str("event: ");
    out.push_str(event);
    out.push_str("\ndata: ");
    out.push_str(data);
    out.push_str("\n\n");
}

impl ToolHold {
    /// A hold for a new answer stream.
    pub fn new() -> Self {
        Self {
            framer: Framer::default(),
            parser: SseParser::new(MAX_EVENT_BYTES),
            partial: Vec::new(),
            units: VecDeque::new(),
            open: false,
            held_bytes: 0,
            calls_done: 0,
            calls_released: 0,
            stopped: false,
            dropped: Vec::new(),
        }
    }

    /// Feeds stream bytes; returns the bytes that may be delivered now. When a held call is
    /// complete, delivery stops behind it until [`ToolHold::decide`].
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.stopped {
            return out;
        }
        let mut rest = bytes;
        while let Some(end) = self.framer.next_boundary(rest) {
            let (segment, tail) = rest.split_at(end);
            rest = tail;
            let events = match self.parser.push(segment) {
                Ok(events) => events,
                Err(error) => {
                    self.fail(&error.to_string(), &mut out);
                    return out;
                }
            };
            let raw: Cow<[u8]> = if self.partial.is_empty() {
                Cow::Borrowed(segment)
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(segment);
                Cow::Owned(whole)
            };
            self.on_segment(raw, events, &mut out);
            if self.held_bytes > MAX_HELD_BYTES {
                self.fail(&format!("the answer held behind a tool call exceeds {MAX_HELD_BYTES} bytes"), &mut out);
                return out;
            }
        }
        if !rest.is_empty() {
            // No blank line in `rest`, so the parser completes no event with it.
            if let Err(error) = self.parser.push(rest) {
                self.fail(&error.to_string(), &mut out);
                return out;
            }
            self.partial.extend_from_slice(rest);
            if self.partial.len() > 2 * MAX_EVENT_BYTES {
                self.fail(&format!("an event-stream event exceeds {MAX_EVENT_BYTES} bytes"), &mut out);
            }
        }
        out
    }

    /// The oldest complete call waiting for a decision.
    pub fn waiting(&self) -> Option<&ToolCall> {
        match self.units.front() {
            Some(Unit::Call(call)) => call.call.as_ref(),
            _ => None,
        }
    }

    /// Decides the waiting call; returns the bytes that may be delivered now (the block or its
    /// replacement, and whatever queued behind it up to the next waiting call). Without a
    /// waiting call it does nothing.
    pub fn decide(&mut self, decision: Decision) -> Vec<u8> {
        let mut out = Vec::new();
        if self.waiting().is_none() {
            return out;
        }
        if let Some(Unit::Call(call)) = self.pop() {
            self.calls_done = self.calls_done.saturating_add(1);
            match decision {
                Decision::Release => {
                    self.calls_released = self.calls_released.saturating_add(1);
                    out.extend_from_slice(&call.raw);
                }
                Decision::Refuse { text } => {
                    out.extend_from_slice(call.replacement(&text).as_bytes());
                    out.extend_from_slice(&call.others);
                }
            }
        }
        self.flush(&mut out);
        out
    }

    /// The upstream stream ended: returns what is left to deliver. A call still undecided or a
    /// block cut off before its `content_block_stop` is never released (see
    /// [`ToolHold::dropped`]); an undecided complete call is replaced by [`WITHHELD_TEXT`].
    /// Call it once the waiting calls are decided, or to give up on them.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.stopped {
            self.stopped = true;
            let trailing = std::mem::take(&mut self.partial);
            if self.parser.finish().is_ok() && !self.open && !trailing.is_empty() && !holds_call_start(&trailing) {
                // An unterminated event no client dispatches: delivered as sent, unless it could
                // be read as a call.
                self.enqueue(Unit::Raw(trailing));
            }
            self.drop_open();
        }
        self.flush(&mut out);
        while let Some(unit) = self.pop() {
            match unit {
                Unit::Call(call) => {
                    self.calls_done = self.calls_done.saturating_add(1);
                    self.dropped.push(call.assemble());
                    out.extend_from_slice(call.replacement(WITHHELD_TEXT).as_bytes());
                    out.extend_from_slice(&call.others);
                }
                other => self.emit(other, &mut out),
            }
        }
        out
    }

    /// Calls that were never delivered nor refused by a decision: blocks cut off before their
    /// stop (input as far as received, so usually malformed) and calls still undecided at
    /// [`ToolHold::finish`]. The caller records them as `incomplete`.
    pub fn dropped(&self) -> &[ToolCall] {
        &self.dropped
    }

    /// Whether anything is held (a call open or waiting, and what queues behind it).
    pub fn is_holding(&self) -> bool {
        !self.units.is_empty()
    }

    fn pop(&mut self) -> Option<Unit> {
        let unit = self.units.pop_front()?;
        self.held_bytes = self.held_bytes.saturating_sub(unit.footprint());
        Some(unit)
    }

    /// Appends a unit behind the held ones (merging raw bytes).
    fn enqueue(&mut self, unit: Unit) {
        self.held_bytes = self.held_bytes.saturating_add(unit.footprint());
        if let (Unit::Raw(bytes), Some(Unit::Raw(last))) = (&unit, self.units.back_mut()) {
            last.extend_from_slice(bytes);
            return;
        }
        self.units.push_back(unit);
    }

    /// Delivers every unit before the first call.
    fn flush(&mut self, out: &mut Vec<u8>) {
        while matches!(self.units.front(), Some(Unit::Raw(_) | Unit::StopReason { .. })) {
            if let Some(unit) = self.pop() {
                self.emit(unit, out);
            }
        }
    }

    fn emit(&mut self, unit: Unit, out: &mut Vec<u8>) {
        match unit {
            Unit::Raw(raw) => out.extend_from_slice(&raw),
            Unit::StopReason { raw, data } => {
                let rewritten = (self.calls_done > 0 && self.calls_released == 0)
                    .then(|| with_stop_reason_end_turn(&data))
                    .flatten();
                match rewritten {
                    Some(data) => {
                        let mut event = String::with_capacity(data.len() + 40);
                        write_event(&mut event, "message_delta", &data);
                        out.extend_from_slice(event.as_bytes());
                    }
                    None => out.extend_from_slice(&raw),
                }
            }
            Unit::Call(_) => {}
        }
    }

    /// The open call can never complete: it is dropped, the events inside it stay.
    fn drop_open(&mut self) {
        if !std::mem::take(&mut self.open) {
            return;
        }
        if let Some(Unit::Call(call)) = self.units.pop_back() {
            self.held_bytes = self.held_bytes.saturating_sub(call.footprint());
            self.dropped.push(call.assemble());
            if !call.others.is_empty() {
                self.enqueue(Unit::Raw(call.others));
            }
        }
    }

    /// The stream cannot be read further: see the module header.
    fn fail(&mut self, detail: &str, out: &mut Vec<u8>) {
        self.stopped = true;
        self.partial = Vec::new();
        self.drop_open();
        let event = Denial::new(Reason::ResponseUninspectable, detail).to_error_event();
        self.enqueue(Unit::Raw(event.into_bytes()));
        self.flush(out);
    }

    /// One complete event (`events` has the parsed event, or nothing for a comment or an event
    /// without data) and its raw bytes.
    fn on_segment(&mut self, raw: Cow<[u8]>, events: Vec<SseEvent>, out: &mut Vec<u8>) {
        let event = events.into_iter().next_back();
        if self.open {
            self.in_call(raw, event.as_ref());
            return;
        }
        let Some(event) = event else {
            return self.pass(raw, out);
        };
        let head = Head::read(&event.data);
        let named = |name: &str| event.event == name || head.as_ref().is_some_and(|h| h.kind.as_deref() == Some(name));
        if named("content_block_start") {
            let block = head.as_ref().and_then(|h| h.content_block.as_ref());
            let kind = block.and_then(|b| b.kind.as_deref()).and_then(CallKind::of_block_type);
            match (head.as_ref(), kind) {
                (Some(head), Some(kind)) => return self.start_call(raw, &event, head, kind),
                (None, _) => return self.start_unreadable(raw),
                _ => {}
            }
        } else if named("message_delta") {
            let stop_reason = head.as_ref().and_then(|h| h.delta.as_ref()).and_then(|d| d.stop_reason.as_deref());
            if stop_reason == Some("tool_use") {
                let unit = Unit::StopReason { raw: raw.into_owned(), data: event.data };
                self.enqueue(unit);
                return self.flush(out);
            }
        }
        self.pass(raw, out);
    }

    /// Delivers bytes now, or queues them behind a held call.
    fn pass(&mut self, raw: Cow<[u8]>, out: &mut Vec<u8>) {
        if self.units.is_empty() {
            out.extend_from_slice(&raw);
        } else {
            self.enqueue(Unit::Raw(raw.into_owned()));
        }
    }

    fn start_call(&mut self, raw: Cow<[u8]>, event: &SseEvent, head: &Head, kind: CallKind) {
        let block = head.content_block.as_ref();
        let text = |field: Option<&Cow<str>>| field.map(|value| value.to_string());
        let consistent = event.event == "content_block_start" && head.kind.as_deref() == Some("content_block_start");
        let call = HeldCall {
            index: head.index.as_deref().map(str::to_string),
            id: text(block.and_then(|b| b.id.as_ref())),
            kind,
            name: text(block.and_then(|b| b.name.as_ref())),
            server_name: text(block.and_then(|b| b.server_name.as_ref())),
            start_input: text(block.and_then(|b| b.input.as_ref())),
            json: String::new(),
            malformed: !consistent || head.index.is_none(),
            raw: raw.into_owned(),
            others: Vec::new(),
            call: None,
        };
        self.open = true;
        self.enqueue(Unit::Call(Box::new(call)));
    }

    /// An event named `content_block_start` whose data is not JSON: a malformed call with no
    /// index, complete at once.
    fn start_unreadable(&mut self, raw: Cow<[u8]>) {
        let mut call = HeldCall {
            index: None,
            id: None,
            kind: CallKind::ToolUse,
            name: None,
            server_name: None,
            start_input: None,
            json: String::new(),
            malformed: true,
            raw: raw.into_owned(),
            others: Vec::new(),
            call: None,
        };
        call.call = Some(call.assemble());
        self.enqueue(Unit::Call(Box::new(call)));
    }

    /// An event inside the open call block.
    fn in_call(&mut self, raw: Cow<[u8]>, event: Option<&SseEvent>) {
        let before = self.units.back().map_or(0, Unit::footprint);
        let Some(Unit::Call(call)) = self.units.back_mut() else {
            self.open = false;
            return;
        };
        call.raw.extend_from_slice(&raw);
        if let Some(event) = event {
            let head = Head::read(&event.data);
            let block_event = event.event.starts_with("content_block_")
                || head.as_ref().and_then(|h| h.kind.as_deref()).is_some_and(|k| k.starts_with("content_block_"));
            if !block_event {
                call.others.extend_from_slice(&raw);
            } else {
                match own_event(call, event, head.as_ref()) {
                    Some(Own::Piece(piece)) => {
                        if call.json.len().saturating_add(piece.len()) > MAX_CALL_INPUT_BYTES {
                            call.malformed = true;
                        } else if !call.malformed {
                            call.json.push_str(piece);
                        }
                    }
                    Some(Own::Stop) => {
                        call.call = Some(call.assemble());
                        self.open = false;
                    }
                    None => call.malformed = true,
                }
            }
        }
        let after = call.footprint();
        self.held_bytes = self.held_bytes.saturating_add(after.saturating_sub(before));
    }
}

/// What a `content_block_*` event inside a call block is to that block.
enum Own<'a> {
    /// An `input_json_delta` piece at the block's index.
    Piece(&'a str),
    /// The block's `content_block_stop`.
    Stop,
}

/// The event as the block's own delta or stop, or `None` when it is anything else.
fn own_event<'a>(call: &HeldCall, event: &SseEvent, head: Option<&'a Head<'a>>) -> Option<Own<'a>> {
    let head = head?;
    let kind = head.kind.as_deref()?;
    if event.event != kind || head.index.is_none() || head.index.as_deref() != call.index.as_deref() {
        return None;
    }
    match kind {
        "content_block_stop" => Some(Own::Stop),
        "content_block_delta" => {
            let delta = head.delta.as_ref()?;
            match (delta.kind.as_deref(), delta.partial_json.as_deref()) {
                (Some("input_json_delta"), Some(piece)) => Some(Own::Piece(piece)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether an unterminated trailing event could be read as a call start (it is then dropped).
fn holds_call_start(trailing: &[u8]) -> bool {
    let mut parser = SseParser::new(usize::MAX);
    let Ok(events) = parser.push(trailing).and_then(|mut events| {
        events.extend(parser.push(b"\n\n")?);
        Ok(events)
    }) else {
        return true;
    };
    events.iter().any(|event| {
        let head = Head::read(&event.data);
        let block_type = head.as_ref().and_then(|h| h.content_block.as_ref()).and_then(|b| b.kind.as_deref());
        event.event == "content_block_start"
            || block_type.and_then(CallKind::of_block_type).is_some()
            || head.is_none() && !event.data.trim().is_empty()
    })
}

/// Cuts raw stream bytes at the ends of events (blank lines), by the SSE line rules.
#[derive(Debug)]
struct Framer {
    /// The last line end seen was a CR: an LF right after it belongs to it.
    after_cr: bool,
    /// No byte of the current line seen yet.
    line_empty: bool,
}

impl Default for Framer {
    fn default() -> Self {
        Self { after_cr: false, line_empty: true }
    }
}

impl Framer {
    /// The length of `bytes` up to and including the next blank line's end, if there is one.
    fn next_boundary(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut at = 0;
        loop {
            if std::mem::take(&mut self.after_cr) {
                match bytes.get(at) {
                    Some(b'\n') => at = at.saturating_add(1),
                    Some(_) => {}
                    None => {
                        self.after_cr = true;
                        return None;
                    }
                }
            }
            let rest = bytes.get(at..)?;
            let Some(found) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if !rest.is_empty() {
                    self.line_empty = false;
                }
                return None;
            };
            let blank = self.line_empty && found == 0;
            self.after_cr = rest.get(found) == Some(&b'\r');
            self.line_empty = true;
            at = at.saturating_add(found).saturating_add(1);
            if blank {
                return Some(at);
            }
        }
    }
}

/// The fields of an event (or a content block) the hold reads. Raw JSON texts are kept for
/// `index` and `input`; strings are borrowed when they have no escapes.
#[derive(Debug, Default, Deserialize)]
struct Head<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "raw_text")]
    index: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content_block: Option<BlockHead<'a>>,
    #[serde(borrow, default)]
    delta: Option<DeltaHead<'a>>,
}

#[derive(Debug, Default, Deserialize)]
struct BlockHead<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    server_name: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "raw_text")]
    input: Option<Cow<'a, str>>,
}

#[derive(Debug, Default, Deserialize)]
struct DeltaHead<'a> {
    #[serde(borrow, rename = "type", default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

fn raw_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    let raw: &'de RawValue = Deserialize::deserialize(deserializer)?;
    Ok(Some(Cow::Borrowed(raw.get())))
}

fn string_of(value: &Value, field: &str) -> Option<Cow<'static, str>> {
    value.get(field).and_then(Value::as_str).map(|s| Cow::Owned(s.to_string()))
}

fn raw_of(value: &Value, field: &str) -> Option<Cow<'static, str>> {
    value.get(field).map(|v| Cow::Owned(v.to_string()))
}

impl<'a> Head<'a> {
    /// Reads an event's data: the borrowed fast path, else (a duplicated key, a field of an
    /// unexpected type) a generic JSON value, last key winning as in the official clients.
    /// `None` when the data is not JSON serde can read.
    fn read(data: &'a str) -> Option<Head<'a>> {
        if let Ok(head) = serde_json::from_str::<Head>(data) {
            return Some(head);
        }
        let value: Value = serde_json::from_str(data).ok()?;
        Some(Head {
            kind: string_of(&value, "type"),
            index: raw_of(&value, "index"),
            content_block: value.get("content_block").map(BlockHead::from_value),
            delta: value.get("delta").map(|delta| DeltaHead {
                kind: string_of(delta, "type"),
                partial_json: string_of(delta, "partial_json"),
                stop_reason: string_of(delta, "stop_reason"),
            }),
        })
    }
}

impl BlockHead<'_> {
    fn from_value(block: &Value) -> BlockHead<'static> {
        BlockHead {
            kind: string_of(block, "type"),
            id: string_of(block, "id"),
            name: string_of(block, "name"),
            server_name: string_of(block, "server_name"),
            input: raw_of(block, "input"),
        }
    }

    /// Reads one content block of a JSON answer (as [`Head::read`] does).
    fn read(text: &str) -> Option<BlockHead<'_>> {
        if let Ok(block) = serde_json::from_str::<BlockHead>(text) {
            return Some(block);
        }
        serde_json::from_str::<Value>(text).ok().map(|value| BlockHead::from_value(&value))
    }

    /// The call this block proposes, if it is one (`None` for text, thinking, results, …).
    fn call(&self) -> Option<ToolCall> {
        let kind = self.kind.as_deref().and_then(CallKind::of_block_type)?;
        let mut held = HeldCall {
            index: None,
            id: self.id.as_ref().map(|s| s.to_string()),
            kind,
            name: self.name.as_ref().map(|s| s.to_string()),
            server_name: self.server_name.as_ref().map(|s| s.to_string()),
            start_input: self.input.as_ref().map(|s| s.to_string()),
            json: String::new(),
            malformed: false,
            raw: Vec::new(),
            others: Vec::new(),
            call: None,
        };
        held.malformed = held.start_input.is_none();
        Some(held.assemble())
    }
}

/// A JSON object's members in their order, values kept as raw JSON text.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

impl<'a> Members<'a> {
    /// The last member named `key` (the one the official clients keep).
    fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The object with every member named in `changes` given its new value (raw JSON text).
    fn to_json_with(&self, changes: &[(&str, &str)]) -> String {
        let mut out = String::from("{");
        for (position, (k, v)) in self.0.iter().enumerate() {
            if position > 0 {
                out.push(',');
            }
            out.push('"');
            escape_into(k, &mut out);
            out.push_str("\":");
            let changed = changes.iter().find(|(key, _)| key == k).map(|(_, value)| *value);
            out.push_str(changed.unwrap_or(v.get()));
        }
        out.push('}');
        out
    }
}

/// A `message_delta`'s data with its `delta.stop_reason` set to `end_turn`; `None` when it
/// cannot be read.
fn with_stop_reason_end_turn(data: &str) -> Option<String> {
    let event: Members = serde_json::from_str(data).ok()?;
    let delta: Members = serde_json::from_str(event.get("delta")?.get()).ok()?;
    Some(event.to_json_with(&[("delta", &delta.to_json_with(&[("stop_reason", "\"end_turn\"")]))]))
}

/// The calls of a whole (non-streamed) Messages response body, in order. A body that starts
/// like a JSON object but cannot be read (or a content block that cannot be read) counts as one
/// malformed call with an empty id, so that it is never let through unjudged.
pub fn calls_in_message(body: &[u8]) -> Vec<ToolCall> {
    let unreadable = || ToolCall {
        id: String::new(),
        kind: CallKind::ToolUse,
        name: String::new(),
        server_name: None,
        input: Value::Null,
        malformed: true,
    };
    match read_content(body) {
        Content::Blocks(_, blocks) => blocks
            .iter()
            .filter_map(|block| match BlockHead::read(block.get()) {
                Some(head) => head.call(),
                None => Some(unreadable()),
            })
            .collect(),
        Content::None => Vec::new(),
        Content::Unreadable => vec![unreadable()],
    }
}

/// The body with each call named in `refused` (`(tool_use id, text)`) replaced by a text block,
/// and `stop_reason` `tool_use` turned into `end_turn` when no call is left; `None` when nothing
/// changes. Every other member keeps its raw bytes. Refusing the empty id (an unreadable body
/// or block, see [`calls_in_message`]) replaces an unreadable block, or turns an unreadable
/// body into a `response_uninspectable` error body.
pub fn rewrite_message(body: &[u8], refused: &[(String, String)]) -> Option<Vec<u8>> {
    if refused.is_empty() {
        return None;
    }
    let text_for = |id: &str| refused.iter().find(|(refused_id, _)| refused_id == id).map(|(_, text)| text);
    let (message, blocks) = match read_content(body) {
        Content::Blocks(message, blocks) => (message, blocks),
        Content::None => return None,
        Content::Unreadable => {
            text_for("")?;
            let denial = Denial::new(Reason::ResponseUninspectable, "the answer could not be read for its tool calls");
            return Some(denial.to_reply("").body.into_bytes());
        }
    };
    let mut calls = 0usize;
    let mut replaced = 0usize;
    let mut content = String::from("[");
    for (position, block) in blocks.iter().enumerate() {
        if position > 0 {
            content.push(',');
        }
        let head = BlockHead::read(block.get());
        let call_id = match &head {
            Some(head) => head.kind.as_deref().and_then(CallKind::of_block_type).map(|_| {
                let id: &str = head.id.as_deref().unwrap_or("");
                id
            }),
            None => Some(""),
        };
        if call_id.is_some() {
            calls = calls.saturating_add(1);
        }
        match call_id.and_then(text_for) {
            Some(text) => {
                replaced = replaced.saturating_add(1);
                content.push_str(r#"{"type":"text","text":""#);
                escape_into(text, &mut content);
                content.push_str("\"}");
            }
            None => content.push_str(block.get()),
        }
    }
    content.push(']');
    if replaced == 0 {
        return None;
    }
    let mut changes = vec![("content", content.as_str())];
    let stop_reason = message.get("stop_reason").and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
    if replaced == calls && stop_reason.as_deref() == Some("tool_use") {
        changes.push(("stop_reason", "\"end_turn\""));
    }
    Some(message.to_json_with(&changes).into_bytes())
}

/// A JSON answer's content blocks.
enum Content<'a> {
    /// The message's members and its `content` array's elements.
    Blocks(Members<'a>, Vec<&'a RawValue>),
    /// An object without a `content` array (an error body, say).
    None,
    /// Not readable as JSON but starting like an object.
    Unreadable,
}

fn read_content(body: &[u8]) -> Content<'_> {
    let looks_like_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let Ok(text) = std::str::from_utf8(body) else {
        return if looks_like_object { Content::Unreadable } else { Content::None };
    };
    let Ok(message) = serde_json::from_str::<Members>(text) else {
        return if looks_like_object { Content::Unreadable } else { Content::None };
    };
    let Some(content) = message.get("content") else { return Content::None };
    match serde_json::from_str::<Vec<&RawValue>>(content.get()) {
        Ok(blocks) => Content::Blocks(message, blocks),
        Err(_) => Content::None,
    }
}
