//! Holding proposed tool calls in the answer until each is judged.
//!
//! **Streams.** [`ToolHold`] reads the (already masked) event stream and returns the bytes that may
//! be delivered now:
//! - The stream is cut into events at their blank lines by a raw framer that follows the SSE line
//!   rules (CR, LF, CRLF, a CRLF split across chunks), and every event is parsed by
//!   [`SseParser`] fed the same bytes. An incomplete event is kept until its blank line (a few
//!   hundred bytes in practice), so a call's `content_block_start` is never half delivered. A
//!   delta in the canonical shape ([`crate::core::response::sse::canonical_delta`]) is read without a JSON
//!   parse, exactly as the parse reads it (property-tested against the parsed path).
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
//! - The result block of a server or MCP call (`web_search_tool_result`, `mcp_tool_result`, …:
//!   a block start whose `tool_use_id` names a held or refused call) is held from its start to its
//!   stop too, and replaced by [`RESULT_WITHHELD_TEXT`] when its call was refused (or when it
//!   carried events of other blocks); otherwise delivered as sent.
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
//! Memory: the incomplete event ([`MAX_EVENT_BYTES`] of line content, ≤ 3 × that with its line
//! ends), the held and
//! queued bytes (≤ [`MAX_HELD_BYTES`]), one assembled input per call (≤ [`MAX_CALL_INPUT_BYTES`],
//! counted in the held bytes) and the calls listed by [`ToolHold::dropped`].

use super::{CallKind, ToolCall};
use crate::core::dlp::json::escape_into;
use crate::core::errors::{Denial, Reason};
use crate::core::response::sse::{canonical_delta, DeltaKind, SseEvent, SseParser};
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

/// What the client reads in place of the result block of a refused server or MCP call (or of a
/// held result block that carried events of other blocks).
pub const RESULT_WITHHELD_TEXT: &str = "[warden: the result of a refused tool call was withheld]";

/// How many refused call ids are remembered to withhold the result blocks that answer them
/// (a server tool's result follows its call at once).
const REMEMBERED_REFUSALS: usize = 64;

/// What the client reads in place of a call that was still undecided when the answer ended.
pub const WITHHELD_TEXT: &str =
    "[warden: a proposed tool call was withheld: it was not decided before the answer ended]";

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
    /// The latest refused call ids (at most [`REMEMBERED_REFUSALS`]).
    refused_ids: VecDeque<String>,
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
    /// For the result block of a server or MCP call (`web_search_tool_result`, `mcp_tool_result`,
    /// …), the `tool_use_id` it answers: such a block is withheld with its call.
    result_of: Option<String>,
    /// The block's `content_block_stop` arrived.
    stopped: bool,
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
        let mut delta =
            format!(r#"{{"type":"content_block_delta","index":{index},"delta":{{"type":"text_delta","text":""#);
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
            refused_ids: VecDeque::new(),
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
            if self.stopped {
                return out;
            }
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
            // The parser bounds an event's line content; with one-byte lines and CRLF ends the raw
            // bytes are at most three times that, so this only guards against a parser change.
            if self.partial.len() > MAX_EVENT_BYTES.saturating_mul(3).saturating_add(3) {
                self.fail(&format!("an event-stream event exceeds {MAX_EVENT_BYTES} bytes"), &mut out);
            }
        }
        out
    }

    /// The oldest complete call waiting for a decision.
    pub fn waiting(&self) -> Option<&ToolCall> {
        match self.units.front() {
            Some(Unit::Call(call)) if call.result_of.is_none() => call.call.as_ref(),
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
                    if let Some(id) = &call.id {
                        self.remember_refusal(id);
                    }
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
                Unit::Call(call) if call.result_of.is_none() => {
                    self.calls_done = self.calls_done.saturating_add(1);
                    self.dropped.push(call.assemble());
                    out.extend_from_slice(call.replacement(WITHHELD_TEXT).as_bytes());
                    out.extend_from_slice(&call.others);
                    if let Some(id) = &call.id {
                        self.remember_refusal(id);
                    }
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
        let ready = |unit: &Unit| match unit {
            Unit::Raw(_) | Unit::StopReason { .. } => true,
            Unit::Call(call) => call.result_of.is_some() && call.stopped,
        };
        while self.units.front().is_some_and(ready) {
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
            Unit::Call(block) => {
                // A result block (calls are delivered by `decide` and `finish`). One that carried
                // anything but its own events (a call's start, say) is never delivered as is.
                let refused = block.result_of.as_ref().is_some_and(|id| self.refused_ids.contains(id));
                if refused || block.malformed {
                    out.extend_from_slice(block.replacement(RESULT_WITHHELD_TEXT).as_bytes());
                    out.extend_from_slice(&block.others);
                } else {
                    out.extend_from_slice(&block.raw);
                }
            }
        }
    }

    fn remember_refusal(&mut self, id: &str) {
        if self.refused_ids.len() >= REMEMBERED_REFUSALS {
            self.refused_ids.pop_front();
        }
        self.refused_ids.push_back(id.to_string());
    }

    /// Whether a result block answering `id` must be held: its call was refused, or is still
    /// held and may be.
    fn holds_results_of(&self, id: &str) -> bool {
        self.refused_ids.iter().any(|refused| refused == id)
            || self.units.iter().any(
                |unit| matches!(unit, Unit::Call(call) if call.result_of.is_none() && call.id.as_deref() == Some(id)),
            )
    }

    /// The open call can never complete: it is dropped, the events inside it stay.
    fn drop_open(&mut self) {
        if !std::mem::take(&mut self.open) {
            return;
        }
        if let Some(Unit::Call(call)) = self.units.pop_back() {
            self.held_bytes = self.held_bytes.saturating_sub(call.footprint());
            if call.result_of.is_none() {
                self.dropped.push(call.assemble());
            }
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
        if events.len() > 1 {
            // The framer and the parser agree on blank lines, so this cannot happen; if it did,
            // the bytes could not be attributed to one event.
            return self.fail("an event-stream segment holds more than one event", out);
        }
        let event = events.into_iter().next();
        if self.open {
            return self.in_call(raw, event.as_ref(), out);
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
                (Some(head), Some(kind)) => return self.start_call(raw, &event, head, kind, None),
                (None, _) => return self.start_unreadable(raw),
                (Some(head), None) => {
                    let answers = block.and_then(|b| b.tool_use_id.as_deref());
                    if let Some(id) = answers.filter(|id| self.holds_results_of(id)) {
                        let id = id.to_string();
                        return self.start_call(raw, &event, head, CallKind::ToolUse, Some(id));
                    }
                }
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

    /// Opens a held block: a call, or (`result_of`) the result block of a held or refused call.
    fn start_call(&mut self, raw: Cow<[u8]>, event: &SseEvent, head: &Head, kind: CallKind, result_of: Option<String>) {
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
            result_of,
            stopped: false,
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
            result_of: None,
            stopped: false,
        };
        call.call = Some(call.assemble());
        self.enqueue(Unit::Call(Box::new(call)));
    }

    /// An event inside the open call block.
    fn in_call(&mut self, raw: Cow<[u8]>, event: Option<&SseEvent>, out: &mut Vec<u8>) {
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
                        call.stopped = true;
                        if call.result_of.is_none() {
                            call.call = Some(call.assemble());
                        }
                        self.open = false;
                    }
                    None => call.malformed = true,
                }
            }
        }
        let after = call.footprint();
        self.held_bytes = self.held_bytes.saturating_add(after.saturating_sub(before));
        if !self.open {
            self.flush(out);
        }
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
    #[serde(borrow, default)]
    tool_use_id: Option<Cow<'a, str>>,
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
        if let Some(delta) = canonical_delta(data) {
            // The response stream's fast path: what the parse below reads, without the parse (a
            // canonical index is its own raw text).
            return Some(Head {
                kind: Some(Cow::Borrowed("content_block_delta")),
                index: Some(Cow::Owned(delta.index.to_string())),
                content_block: None,
                delta: Some(DeltaHead {
                    kind: Some(Cow::Borrowed(delta.kind.type_name())),
                    partial_json: (delta.kind == DeltaKind::InputJson).then_some(Cow::Borrowed(delta.piece)),
                    stop_reason: None,
                }),
            });
        }
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
            tool_use_id: string_of(block, "tool_use_id"),
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
            result_of: None,
            stopped: false,
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
    let mut refused_calls = 0usize;
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
        let answers_refused = head.as_ref().and_then(|h| h.tool_use_id.as_deref()).and_then(text_for).is_some();
        let text = if call_id.is_none() && answers_refused {
            Some(RESULT_WITHHELD_TEXT)
        } else {
            call_id.and_then(text_for).map(String::as_str)
        };
        match text {
            Some(text) => {
                replaced = replaced.saturating_add(1);
                if call_id.is_some() {
                    refused_calls = refused_calls.saturating_add(1);
                }
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
    if refused_calls == calls && stop_reason.as_deref() == Some("tool_use") {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::response::sse::tests::{canonical_deltas, split};
    use proptest::prelude::*;
    use serde_json::json;

    fn event(name: &str, data: &Value) -> String {
        format!("event: {name}\ndata: {data}\n\n")
    }
    fn message_start() -> String {
        event(
            "message_start",
            &json!({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"usage":{"input_tokens":10,"output_tokens":1}}}),
        )
    }
    fn text_start(index: u64) -> String {
        event(
            "content_block_start",
            &json!({"type":"content_block_start","index":index,"content_block":{"type":"text","text":""}}),
        )
    }
    fn thinking_start(index: u64) -> String {
        event(
            "content_block_start",
            &json!({"type":"content_block_start","index":index,"content_block":{"type":"thinking","thinking":""}}),
        )
    }
    fn text_delta(index: u64, text: &str) -> String {
        event(
            "content_block_delta",
            &json!({"type":"content_block_delta","index":index,"delta":{"type":"text_delta","text":text}}),
        )
    }
    fn thinking_delta(index: u64, text: &str) -> String {
        event(
            "content_block_delta",
            &json!({"type":"content_block_delta","index":index,"delta":{"type":"thinking_delta","thinking":text}}),
        )
    }
    fn tool_start(index: u64, id: &str, name: &str) -> String {
        event(
            "content_block_start",
            &json!({"type":"content_block_start","index":index,"content_block":{"type":"tool_use","id":id,"name":name,"input":{}}}),
        )
    }
    fn json_delta(index: u64, piece: &str) -> String {
        event(
            "content_block_delta",
            &json!({"type":"content_block_delta","index":index,"delta":{"type":"input_json_delta","partial_json":piece}}),
        )
    }
    fn stop(index: u64) -> String {
        event("content_block_stop", &json!({"type":"content_block_stop","index":index}))
    }
    fn message_delta(stop_reason: &str) -> String {
        event(
            "message_delta",
            &json!({"type":"message_delta","delta":{"stop_reason":stop_reason,"stop_sequence":null},"usage":{"output_tokens":99}}),
        )
    }
    fn message_stop() -> String {
        event("message_stop", &json!({"type":"message_stop"}))
    }
    const PING: &str = "event: ping\ndata: {\"type\": \"ping\"}\n\n";

    /// A tool block at `index` whose input `{"command":"ls -la"}` comes in three pieces.
    fn bash_call(index: u64, id: &str) -> String {
        [
            tool_start(index, id, "Bash"),
            json_delta(index, ""),
            json_delta(index, "{\"command\": \"ls"),
            json_delta(index, " -la\"}"),
            stop(index),
        ]
        .concat()
    }

    /// A message: text, a call, text after it, the end.
    fn text_call_text() -> String {
        [
            message_start(),
            text_start(0),
            text_delta(0, "Let me look."),
            stop(0),
            bash_call(1, "toolu_1"),
            message_delta("tool_use"),
            message_stop(),
        ]
        .concat()
    }

    /// Feeds `chunks`, deciding each waiting call with `decide`, then finishes.
    fn run(chunks: &[&[u8]], mut decide: impl FnMut(&ToolCall) -> Decision) -> (Vec<u8>, ToolHold) {
        let mut hold = ToolHold::new();
        let mut out = Vec::new();
        let settle = |hold: &mut ToolHold, out: &mut Vec<u8>, decide: &mut dyn FnMut(&ToolCall) -> Decision| {
            while let Some(call) = hold.waiting().cloned() {
                out.extend(hold.decide(decide(&call)));
            }
        };
        for chunk in chunks {
            out.extend(hold.push(chunk));
            settle(&mut hold, &mut out, &mut decide);
        }
        out.extend(hold.finish());
        (out, hold)
    }

    /// Refuses call `toolu_N` when `refusals[N]`, releases the others.
    fn refuse_listed(refusals: &[bool]) -> impl Fn(&ToolCall) -> Decision + Copy + '_ {
        |call| {
            let n: usize = call.id.trim_start_matches("toolu_").parse().unwrap();
            if refusals[n] {
                refuse(call)
            } else {
                Decision::Release
            }
        }
    }

    fn release(_: &ToolCall) -> Decision {
        Decision::Release
    }
    fn refuse(call: &ToolCall) -> Decision {
        Decision::Refuse { text: format!("refused {} ({})", call.name, call.id) }
    }

    fn events_of(bytes: &[u8]) -> Vec<SseEvent> {
        let mut parser = SseParser::new(usize::MAX);
        let events = parser.push(bytes).unwrap();
        parser.finish().unwrap();
        events
    }

    /// What a client assembles: (block types in index order, text per block, tool ids, stop
    /// reason); panics where an official client would fail (a block not started or not stopped,
    /// indices out of order, an event name that disagrees with its data).
    fn client_view(bytes: &[u8]) -> (Vec<String>, Vec<String>, Vec<String>, Option<String>) {
        let mut types: Vec<String> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut open: Vec<bool> = Vec::new();
        let mut ids = Vec::new();
        let mut stop_reason = None;
        for event in events_of(bytes) {
            let data: Value = serde_json::from_str(&event.data).unwrap();
            assert_eq!(data["type"].as_str(), Some(event.event.as_str()), "event name and type agree");
            let index = data["index"].as_u64().map(|i| i as usize);
            match event.event.as_str() {
                "content_block_start" => {
                    assert_eq!(index, Some(types.len()), "blocks start in index order, contiguously");
                    let kind = data["content_block"]["type"].as_str().unwrap().to_string();
                    if kind == "tool_use" {
                        ids.push(data["content_block"]["id"].as_str().unwrap().to_string());
                    }
                    types.push(kind);
                    texts.push(String::new());
                    open.push(true);
                }
                "content_block_delta" => {
                    let index = index.unwrap();
                    assert!(open[index], "delta to an open block");
                    let delta = &data["delta"];
                    let piece =
                        delta["text"].as_str().or(delta["thinking"].as_str()).or(delta["partial_json"].as_str());
                    texts[index].push_str(piece.unwrap_or(""));
                }
                "content_block_stop" => {
                    let index = index.unwrap();
                    assert!(open[index], "stop of an open block");
                    open[index] = false;
                }
                "message_delta" => {
                    assert!(open.iter().all(|o| !o), "every started block stopped before message_delta");
                    stop_reason = data["delta"]["stop_reason"].as_str().map(str::to_string);
                }
                _ => {}
            }
        }
        (types, texts, ids, stop_reason)
    }

    #[test]
    fn a_stream_without_calls_passes_each_event_the_moment_it_is_complete() {
        let events = [
            message_start(),
            text_start(0),
            text_delta(0, "héllo ✓"),
            PING.to_string(),
            stop(0),
            message_delta("end_turn"),
            message_stop(),
        ];
        let mut hold = ToolHold::new();
        for event in &events {
            let (head, tail) = event.as_bytes().split_at(event.len() - 1);
            assert_eq!(hold.push(head), b"", "an incomplete event is kept");
            assert_eq!(hold.push(tail), event.as_bytes(), "a complete event passes at once");
        }
        assert_eq!(hold.finish(), b"");
        assert!(hold.dropped().is_empty());
    }

    #[test]
    fn text_before_a_call_is_never_delayed_and_text_after_it_waits_for_the_decision() {
        let before = [message_start(), text_start(0), text_delta(0, "Let me look."), stop(0)].concat();
        let mut hold = ToolHold::new();
        assert_eq!(hold.push(before.as_bytes()), before.as_bytes());
        assert_eq!(hold.push(tool_start(1, "toolu_1", "Bash").as_bytes()), b"", "the call's start is held");
        assert_eq!(hold.waiting(), None, "an open call is not yet waiting");
        assert_eq!(hold.push(json_delta(1, "{\"command\":\"ls\"}").as_bytes()), b"");
        assert_eq!(hold.push(stop(1).as_bytes()), b"");
        assert_eq!(hold.waiting().map(|c| c.name.as_str()), Some("Bash"));
        let after = [text_start(2), text_delta(2, "Done."), stop(2)].concat();
        assert_eq!(hold.push(after.as_bytes()), b"", "text after a call queues behind its decision");
        let released = hold.decide(Decision::Release);
        let block = [tool_start(1, "toolu_1", "Bash"), json_delta(1, "{\"command\":\"ls\"}"), stop(1)].concat();
        assert_eq!(released, [block, after].concat().as_bytes());
        assert_eq!(hold.waiting(), None);
    }

    #[test]
    fn the_call_is_assembled_from_its_pieces() {
        let mut hold = ToolHold::new();
        hold.push(text_call_text().as_bytes());
        let call = hold.waiting().unwrap();
        assert_eq!(
            call,
            &ToolCall {
                id: "toolu_1".into(),
                kind: CallKind::ToolUse,
                name: "Bash".into(),
                server_name: None,
                input: json!({"command": "ls -la"}),
                malformed: false,
            }
        );
    }

    #[test]
    fn an_input_given_whole_in_the_start_is_the_call_s_input() {
        let start = json!({"type":"content_block_start","index":0,"content_block":{"type":"mcp_tool_use","id":"mcptoolu_1","name":"create_issue","server_name":"github","input":{"title":"x"}}});
        let stream = [event("content_block_start", &start), stop(0)].concat();
        let mut hold = ToolHold::new();
        hold.push(stream.as_bytes());
        let call = hold.waiting().unwrap();
        assert_eq!(
            (call.kind, call.server_name.as_deref(), &call.input),
            (CallKind::McpToolUse, Some("github"), &json!({"title":"x"}))
        );
    }

    #[test]
    fn a_released_call_is_delivered_byte_identical() {
        let stream = text_call_text();
        let (out, hold) = run(&[stream.as_bytes()], release);
        assert_eq!(out, stream.as_bytes());
        assert!(hold.dropped().is_empty());
    }

    #[test]
    fn a_refused_call_becomes_a_text_block_at_its_index_and_the_turn_ends() {
        let (out, _) = run(&[text_call_text().as_bytes()], refuse);
        let (types, texts, ids, stop_reason) = client_view(&out);
        assert_eq!(types, ["text", "text"]);
        assert_eq!(texts[1], "refused Bash (toolu_1)");
        assert!(ids.is_empty(), "no tool_use id is left");
        assert_eq!(stop_reason.as_deref(), Some("end_turn"));
        let delta = events_of(&out).into_iter().find(|e| e.event == "message_delta").unwrap();
        let expected = events_of(message_delta("end_turn").as_bytes()).remove(0);
        assert_eq!(delta.data, expected.data, "only the stop reason changed, usage untouched");
    }

    #[test]
    fn parallel_calls_wait_in_turn_and_the_turn_ends_only_when_none_was_released() {
        let stream = [
            message_start(),
            bash_call(0, "toolu_a"),
            bash_call(1, "toolu_b"),
            message_delta("tool_use"),
            message_stop(),
        ]
        .concat();
        let mut seen = Vec::new();
        let (out, _) = run(&[stream.as_bytes()], |call| {
            seen.push(call.id.clone());
            if call.id == "toolu_a" {
                Decision::Release
            } else {
                refuse(call)
            }
        });
        assert_eq!(seen, ["toolu_a", "toolu_b"]);
        let (types, _, ids, stop_reason) = client_view(&out);
        assert_eq!(
            (types, ids, stop_reason.as_deref()),
            (vec!["tool_use".to_string(), "text".into()], vec!["toolu_a".to_string()], Some("tool_use"))
        );
        let (out, _) = run(&[stream.as_bytes()], refuse);
        let (types, _, ids, stop_reason) = client_view(&out);
        assert_eq!(
            (types, ids, stop_reason.as_deref()),
            (vec!["text".to_string(), "text".into()], vec![], Some("end_turn"))
        );
    }

    #[test]
    fn the_second_call_is_not_waiting_before_the_first_is_decided() {
        let stream = [bash_call(0, "toolu_a"), bash_call(1, "toolu_b")].concat();
        let mut hold = ToolHold::new();
        assert_eq!(hold.push(stream.as_bytes()), b"");
        assert_eq!(hold.waiting().unwrap().id, "toolu_a");
        assert_eq!(hold.decide(Decision::Release), bash_call(0, "toolu_a").as_bytes());
        assert_eq!(hold.waiting().unwrap().id, "toolu_b");
        assert_eq!(hold.decide(Decision::Release), bash_call(1, "toolu_b").as_bytes());
        assert_eq!(hold.decide(Decision::Release), b"", "deciding with nothing waiting does nothing");
    }

    #[test]
    fn thinking_text_and_calls_interleave() {
        let stream = [
            message_start(),
            thinking_start(0),
            thinking_delta(0, "I should list files."),
            stop(0),
            bash_call(1, "toolu_1"),
            thinking_start(2),
            thinking_delta(2, "And read one."),
            stop(2),
            text_start(3),
            text_delta(3, "Reading"),
            stop(3),
            bash_call(4, "toolu_2"),
            message_delta("tool_use"),
            message_stop(),
        ]
        .concat();
        let (out, _) = run(&[stream.as_bytes()], release);
        assert_eq!(out, stream.as_bytes());
        let (out, _) = run(&[stream.as_bytes()], refuse);
        let (types, texts, ids, stop_reason) = client_view(&out);
        assert_eq!(types, ["thinking", "text", "thinking", "text", "text"]);
        assert_eq!((texts[2].as_str(), texts[4].as_str()), ("And read one.", "refused Bash (toolu_2)"));
        assert!(ids.is_empty());
        assert_eq!(stop_reason.as_deref(), Some("end_turn"));
    }

    #[test]
    fn events_inside_a_call_that_are_not_its_own_follow_its_replacement() {
        let stream = [tool_start(0, "toolu_1", "Bash"), PING.to_string(), json_delta(0, "{}"), stop(0)].concat();
        let (out, _) = run(&[stream.as_bytes()], release);
        assert_eq!(out, stream.as_bytes());
        let (out, _) = run(&[stream.as_bytes()], refuse);
        let names: Vec<String> = events_of(&out).into_iter().map(|e| e.event).collect();
        assert_eq!(names, ["content_block_start", "content_block_delta", "content_block_stop", "ping"]);
    }

    fn waiting_of(stream: &str) -> ToolCall {
        let mut hold = ToolHold::new();
        hold.push(stream.as_bytes());
        hold.waiting().cloned().unwrap()
    }

    #[test]
    fn hostile_blocks_make_the_call_malformed() {
        let cases = [
            ("input that is not JSON", [tool_start(0, "t", "Bash"), json_delta(0, "{\"command\":"), stop(0)].concat()),
            (
                "a second start at the same index",
                [tool_start(0, "t", "Bash"), tool_start(0, "u", "Read"), json_delta(0, "{}"), stop(0)].concat(),
            ),
            (
                "a start at another index",
                [tool_start(0, "t", "Bash"), text_start(1), json_delta(0, "{}"), stop(0)].concat(),
            ),
            (
                "a delta at another index",
                [tool_start(0, "t", "Bash"), json_delta(1, "{}"), json_delta(0, "{}"), stop(0)].concat(),
            ),
            ("a text delta in a call", [tool_start(0, "t", "Bash"), text_delta(0, "{}"), stop(0)].concat()),
            ("a stop at another index", [tool_start(0, "t", "Bash"), stop(1), json_delta(0, "{}"), stop(0)].concat()),
            (
                "input nested too deep",
                [tool_start(0, "t", "Bash"), json_delta(0, &"[".repeat(200)), json_delta(0, &"]".repeat(200)), stop(0)]
                    .concat(),
            ),
            (
                "a name that is not a string",
                event(
                    "content_block_start",
                    &json!({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":7,"input":{}}}),
                ) + &stop(0),
            ),
            (
                "an event name that disagrees",
                tool_start(0, "t", "Bash").replacen("event: content_block_start", "event: ping", 1) + &stop(0),
            ),
            (
                "a delta whose name disagrees",
                [
                    tool_start(0, "t", "Bash"),
                    json_delta(0, "{}").replacen("event: content_block_delta", "event: ping", 1),
                    stop(0),
                ]
                .concat(),
            ),
        ];
        for (what, stream) in cases {
            let call = waiting_of(&stream);
            assert!(call.malformed, "{what}");
            assert_eq!(call.input, Value::Null, "{what}");
        }
    }

    #[test]
    fn an_oversized_input_makes_the_call_malformed() {
        let piece = "a".repeat(MAX_CALL_INPUT_BYTES / 2 + 1);
        let stream = [
            tool_start(0, "t", "Write"),
            json_delta(0, "\""),
            json_delta(0, &piece),
            json_delta(0, &piece),
            json_delta(0, "\""),
            stop(0),
        ]
        .concat();
        assert!(waiting_of(&stream).malformed);
    }

    #[test]
    fn a_duplicated_type_key_is_read_as_the_clients_read_it() {
        let data = r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","type":"tool_use","id":"t","name":"Bash","input":{}}}"#;
        let stream = format!("event: content_block_start\ndata: {data}\n\n{}", stop(0));
        let mut hold = ToolHold::new();
        assert_eq!(hold.push(stream.as_bytes()), b"", "the call is held");
        assert_eq!(hold.waiting().map(|c| c.name.as_str()), Some("Bash"));
    }

    #[test]
    fn a_start_event_whose_data_is_not_json_is_held_as_a_malformed_call() {
        let stream = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"input\":NaN}\n\n";
        let mut hold = ToolHold::new();
        assert_eq!(hold.push(stream.as_bytes()), b"");
        assert!(hold.waiting().unwrap().malformed);
        assert_eq!(hold.decide(Decision::Refuse { text: "no".into() }), b"", "no index: nothing in its place");
    }

    #[test]
    fn an_escaped_type_is_still_a_call() {
        let data = r#"{"type":"content_block\u005fstart","index":0,"content_block":{"type":"tool\u005fuse","id":"t","name":"Bash","input":{}}}"#;
        let stream = format!("event: content_block_start\ndata: {data}\n\n{}", stop(0));
        let mut hold = ToolHold::new();
        assert_eq!(hold.push(stream.as_bytes()), b"");
        assert!(hold.waiting().is_some());
    }

    #[test]
    fn finish_never_releases_an_undecided_or_incomplete_call() {
        // Undecided: replaced by the withheld note, the rest delivered, the turn ended.
        let mut hold = ToolHold::new();
        assert_eq!(
            hold.push(text_call_text().as_bytes()),
            [message_start(), text_start(0), text_delta(0, "Let me look."), stop(0)].concat().as_bytes()
        );
        let rest = hold.finish();
        let (types, texts, ids, stop_reason) =
            client_view(&[message_start().as_bytes(), text_start(0).as_bytes(), &stop(0).into_bytes(), &rest].concat());
        assert_eq!(types, ["text", "text"]);
        assert_eq!(texts[1], WITHHELD_TEXT);
        assert!(ids.is_empty());
        assert_eq!(stop_reason.as_deref(), Some("end_turn"));
        assert_eq!(hold.dropped().iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["toolu_1"]);
        // Incomplete: dropped; an error event inside it still reaches the client.
        let error = event("error", &json!({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}));
        let stream = [tool_start(0, "toolu_2", "Bash"), json_delta(0, "{\"command\":\"rm"), error.clone()].concat();
        let (out, hold) = run(&[stream.as_bytes()], release);
        assert_eq!(out, error.as_bytes());
        assert_eq!(hold.dropped().len(), 1);
        assert!(hold.dropped()[0].malformed);
        assert_eq!(hold.dropped()[0].id, "toolu_2");
    }

    #[test]
    fn an_unterminated_last_event_is_delivered_unless_it_could_be_a_call() {
        let (out, _) = run(&[b"data: {\"type\":\"ping\"}"], release);
        assert_eq!(out, b"data: {\"type\":\"ping\"}");
        let start = tool_start(0, "t", "Bash");
        let (out, _) = run(&[start.trim_end().as_bytes()], release);
        assert_eq!(out, b"");
    }

    #[test]
    fn an_unreadable_stream_drops_the_open_call_and_ends_with_an_error() {
        let stream =
            [tool_start(0, "t", "Bash").into_bytes(), b"data: \xff\n\n".to_vec(), stop(0).into_bytes()].concat();
        let (out, hold) = run(&[&stream], release);
        let events = events_of(&out);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, "error");
        assert!(events[0].data.contains("response_uninspectable"));
        assert_eq!(hold.dropped().len(), 1);
    }

    #[test]
    fn complete_calls_before_a_failure_still_wait_for_their_decision() {
        let stream = [bash_call(0, "toolu_1").into_bytes(), b"data: \xff\n\n".to_vec()].concat();
        let mut hold = ToolHold::new();
        assert_eq!(hold.push(&stream), b"");
        assert!(hold.waiting().is_some());
        let out = hold.decide(Decision::Release);
        assert!(out.starts_with(bash_call(0, "toolu_1").as_bytes()));
        assert_eq!(events_of(&out).last().map(|e| e.event.as_str()), Some("error"));
        assert_eq!(hold.push(PING.as_bytes()), b"", "nothing is read after the failure");
    }

    #[test]
    fn what_queues_behind_a_call_is_bounded() {
        let mut hold = ToolHold::new();
        hold.push(bash_call(0, "toolu_1").as_bytes());
        let big = text_delta(1, &"x".repeat(MAX_EVENT_BYTES - 100));
        let mut out = Vec::new();
        for _ in 0..(MAX_HELD_BYTES / big.len() + 1) {
            out.extend(hold.push(big.as_bytes()));
        }
        assert!(hold.held_bytes <= MAX_HELD_BYTES + big.len());
        assert_eq!(out, b"");
        let out = hold.decide(Decision::Release);
        assert_eq!(events_of(&out).last().map(|e| e.event.as_str()), Some("error"));
    }

    #[test]
    fn crlf_and_cr_streams_are_held_and_released_identically() {
        for ending in ["\r\n", "\r"] {
            let stream = text_call_text().replace('\n', ending);
            let (out, _) = run(&split(stream.as_bytes(), &[5, 77, 301, 302, 303, 640]), release);
            assert_eq!(out, stream.as_bytes(), "{ending:?}");
            let (out, _) = run(&[stream.as_bytes()], refuse);
            let (types, _, ids, _) = client_view(&out);
            assert_eq!((types.len(), ids.len()), (2, 0), "{ending:?}");
        }
    }

    fn server_call_and_result(index: u64, id: &str) -> String {
        let start = json!({"type":"content_block_start","index":index,"content_block":{"type":"server_tool_use","id":id,"name":"web_search","input":{}}});
        let result = json!({"type":"content_block_start","index":index + 1,"content_block":{"type":"web_search_tool_result","tool_use_id":id,"content":[{"type":"web_search_result","url":"https://example.com","title":"x","encrypted_content":"abc"}]}});
        [
            event("content_block_start", &start),
            json_delta(index, "{\"query\":\"x\"}"),
            stop(index),
            event("content_block_start", &result),
            stop(index + 1),
        ]
        .concat()
    }

    #[test]
    fn the_result_block_of_a_refused_server_call_is_withheld_with_it() {
        let stream = [
            message_start(),
            server_call_and_result(0, "srvtoolu_1"),
            text_start(2),
            text_delta(2, "Found."),
            stop(2),
            message_delta("end_turn"),
            message_stop(),
        ]
        .concat();
        let (out, _) = run(&[stream.as_bytes()], release);
        assert_eq!(out, stream.as_bytes());
        let (out, _) =
            run(&split(stream.as_bytes(), &[3, 200, 401, 777]), |_| Decision::Refuse { text: "no search".into() });
        let (types, texts, _, _) = client_view(&out);
        assert_eq!(types, ["text", "text", "text"]);
        assert_eq!(texts, ["no search", RESULT_WITHHELD_TEXT, "Found."]);
        assert!(!String::from_utf8(out).unwrap().contains("srvtoolu_1"), "no reference to the refused call is left");
    }

    #[test]
    fn a_call_hidden_inside_a_held_result_block_is_never_delivered() {
        let start = json!({"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"x"}}});
        let result = json!({"type":"content_block_start","index":1,"content_block":{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]}});
        let stream = [
            event("content_block_start", &start),
            stop(0),
            event("content_block_start", &result),
            tool_start(2, "toolu_x", "Bash"),
            stop(1),
        ]
        .concat();
        let (out, _) = run(&[stream.as_bytes()], release);
        let (types, texts, ids, _) = client_view(&out);
        assert_eq!(types, ["server_tool_use", "text"]);
        assert_eq!(texts[1], RESULT_WITHHELD_TEXT);
        assert!(ids.is_empty() && !String::from_utf8(out).unwrap().contains("toolu_x"));
    }

    #[test]
    fn a_result_block_of_no_held_call_passes_at_once() {
        let result = json!({"type":"content_block_start","index":0,"content_block":{"type":"web_search_tool_result","tool_use_id":"srvtoolu_0","content":[]}});
        let start = event("content_block_start", &result);
        let mut hold = ToolHold::new();
        assert_eq!(hold.push(start.as_bytes()), start.as_bytes());
    }

    // ---- JSON answers ----

    const ANSWER: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"Let me look."},{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"ls"}},{"type":"tool_use","id":"toolu_2","name":"Read","input":{"file_path":"/x/.env"}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":12345678901234567890123,"output_tokens":5}}"#;

    #[test]
    fn calls_of_a_json_answer_are_listed_in_order() {
        let calls = calls_in_message(ANSWER.as_bytes());
        assert_eq!(
            calls.iter().map(|c| (c.id.as_str(), c.name.as_str())).collect::<Vec<_>>(),
            [("toolu_1", "Bash"), ("toolu_2", "Read")]
        );
        assert_eq!(calls[1].input, json!({"file_path":"/x/.env"}));
        assert!(calls_in_message(br#"{"type":"error","error":{"type":"overloaded_error","message":"x"}}"#).is_empty());
    }

    #[test]
    fn a_refused_json_call_becomes_a_text_block_keeping_every_other_byte() {
        assert_eq!(rewrite_message(ANSWER.as_bytes(), &[]), None);
        assert_eq!(rewrite_message(ANSWER.as_bytes(), &[("toolu_9".into(), "x".into())]), None);
        let one = rewrite_message(ANSWER.as_bytes(), &[("toolu_2".into(), "no \"env\"".into())]).unwrap();
        let expected = ANSWER.replace(
            r#"{"type":"tool_use","id":"toolu_2","name":"Read","input":{"file_path":"/x/.env"}}"#,
            r#"{"type":"text","text":"no \"env\""}"#,
        );
        assert_eq!(
            String::from_utf8(one).unwrap(),
            expected,
            "one call left: stop_reason stays; numbers keep their digits"
        );
        let both =
            rewrite_message(ANSWER.as_bytes(), &[("toolu_1".into(), "a".into()), ("toolu_2".into(), "b".into())])
                .unwrap();
        let value: Value = serde_json::from_slice(&both).unwrap();
        assert_eq!(value["stop_reason"], "end_turn");
        assert_eq!(
            value["content"],
            json!([{"type":"text","text":"Let me look."},{"type":"text","text":"a"},{"type":"text","text":"b"}])
        );
        assert!(calls_in_message(&both).is_empty());
    }

    #[test]
    fn the_result_block_of_a_refused_json_server_call_is_withheld_with_it() {
        let body = r#"{"content":[{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{"query":"x"}},{"type":"web_search_tool_result","tool_use_id":"srvtoolu_1","content":[]},{"type":"text","text":"Found."}],"stop_reason":"end_turn"}"#;
        let out = rewrite_message(body.as_bytes(), &[("srvtoolu_1".into(), "no search".into())]).unwrap();
        let expected = format!(
            r#"{{"content":[{{"type":"text","text":"no search"}},{{"type":"text","text":"{RESULT_WITHHELD_TEXT}"}},{{"type":"text","text":"Found."}}],"stop_reason":"end_turn"}}"#
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn an_unreadable_json_answer_is_one_malformed_call_and_refusing_it_answers_an_error() {
        let deep = format!(
            r#"{{"content":[{{"type":"tool_use","type":"tool_use","id":"t","name":"Bash","input":{}{}}}]}}"#,
            "[".repeat(300),
            "]".repeat(300)
        );
        for body in [&b"{\"content\": NaN"[..], deep.as_bytes()] {
            let calls = calls_in_message(body);
            assert_eq!(calls.len(), 1);
            assert!(calls[0].malformed && calls[0].id.is_empty());
        }
        let error = rewrite_message(b"{\"content\": NaN", &[(String::new(), "no".into())]).unwrap();
        assert!(String::from_utf8(error).unwrap().contains("response_uninspectable"));
        assert!(calls_in_message(b"<html>bad gateway</html>").is_empty());
    }

    #[test]
    fn a_deep_input_in_a_json_answer_is_a_malformed_call() {
        let body = format!(
            r#"{{"content":[{{"type":"tool_use","id":"t","name":"Bash","input":{}{}}}]}}"#,
            "[".repeat(300),
            "]".repeat(300)
        );
        let calls = calls_in_message(body.as_bytes());
        assert_eq!((calls.len(), calls[0].id.as_str(), calls[0].malformed), (1, "t", true));
    }

    // ---- properties ----

    /// One content block of a generated message.
    #[derive(Debug, Clone)]
    enum Gen {
        Text(Vec<String>),
        Thinking(Vec<String>),
        Call(Vec<usize>),
    }

    fn block_strategy() -> impl Strategy<Value = Gen> {
        prop_oneof![
            prop::collection::vec("[a-zé✓ \n\"]{0,12}", 0..4).prop_map(Gen::Text),
            prop::collection::vec("[a-z ]{0,12}", 0..3).prop_map(Gen::Thinking),
            prop::collection::vec(0usize..60, 0..5).prop_map(Gen::Call),
        ]
    }

    /// The stream of a message made of `blocks` (pings sprinkled), and how many calls it has.
    fn generated(blocks: &[Gen], pings: &[bool]) -> (String, usize) {
        let mut out = message_start();
        let mut calls = 0;
        let ping = |at: usize, out: &mut String| {
            if pings.get(at).copied().unwrap_or(false) {
                out.push_str(PING);
            }
        };
        for (index, block) in blocks.iter().enumerate() {
            let i = index as u64;
            match block {
                Gen::Text(pieces) => {
                    out.push_str(&text_start(i));
                    pieces.iter().for_each(|p| out.push_str(&text_delta(i, p)));
                }
                Gen::Thinking(pieces) => {
                    out.push_str(&thinking_start(i));
                    pieces.iter().for_each(|p| out.push_str(&thinking_delta(i, p)));
                }
                Gen::Call(cuts) => {
                    calls += 1;
                    out.push_str(&tool_start(i, &format!("toolu_{index}"), "Bash"));
                    ping(index, &mut out);
                    let input = json!({"command": format!("echo {index} && ls -la \"a b\""), "n": index}).to_string();
                    for piece in split(input.as_bytes(), cuts) {
                        out.push_str(&json_delta(i, std::str::from_utf8(piece).unwrap_or("")));
                    }
                }
            }
            out.push_str(&stop(i));
            ping(index + 1, &mut out);
        }
        out.push_str(&message_delta(if calls > 0 { "tool_use" } else { "end_turn" }));
        out.push_str(&message_stop());
        (out, calls)
    }

    proptest! {
        #[test]
        fn released_output_is_the_input_whatever_the_chunking(
            blocks in prop::collection::vec(block_strategy(), 0..6),
            pings in prop::collection::vec(any::<bool>(), 0..8),
            ending in prop::sample::select(vec!["\n", "\r\n", "\r"]),
            cuts in prop::collection::vec(0usize..4000, 0..16),
        ) {
            let (stream, calls) = generated(&blocks, &pings);
            let stream = stream.replace('\n', ending);
            let mut seen = 0;
            let (out, hold) = run(&split(stream.as_bytes(), &cuts), |call| {
                seen += 1;
                assert!(!call.malformed, "{call:?}");
                Decision::Release
            });
            prop_assert_eq!(out, stream.as_bytes());
            prop_assert_eq!(seen, calls);
            prop_assert!(hold.dropped().is_empty());
        }

        #[test]
        fn refused_output_is_the_same_whatever_the_chunking_and_stays_valid_for_clients(
            blocks in prop::collection::vec(block_strategy(), 0..6),
            pings in prop::collection::vec(any::<bool>(), 0..8),
            refusals in prop::collection::vec(any::<bool>(), 6),
            cuts in prop::collection::vec(0usize..4000, 0..16),
        ) {
            let (stream, calls) = generated(&blocks, &pings);
            let decide = refuse_listed(&refusals);
            let (whole, _) = run(&[stream.as_bytes()], decide);
            let (chunked, _) = run(&split(stream.as_bytes(), &cuts), decide);
            prop_assert_eq!(&chunked, &whole);
            let (types, texts, ids, stop_reason) = client_view(&whole);
            prop_assert_eq!(types.len(), blocks.len());
            let released: Vec<String> = blocks.iter().enumerate()
                .filter(|(n, b)| matches!(b, Gen::Call(_)) && !refusals[*n])
                .map(|(n, _)| format!("toolu_{n}"))
                .collect();
            prop_assert_eq!(&ids, &released);
            for (n, block) in blocks.iter().enumerate() {
                if matches!(block, Gen::Call(_)) && refusals[n] {
                    prop_assert_eq!(&types[n], "text");
                    prop_assert_eq!(&texts[n], &format!("refused Bash (toolu_{n})"));
                }
            }
            let expected = if calls > 0 && released.is_empty() { "end_turn" } else if calls > 0 { "tool_use" } else { "end_turn" };
            prop_assert_eq!(stop_reason.as_deref(), Some(expected));
        }

        #[test]
        fn deltas_read_without_the_parse_are_held_and_refused_as_parsed_ones(
            blocks in prop::collection::vec(block_strategy(), 0..6),
            pings in prop::collection::vec(any::<bool>(), 0..8),
            refusals in prop::collection::vec(any::<bool>(), 6),
            cuts in prop::collection::vec(0usize..4000, 0..16),
        ) {
            let (parsed, calls) = generated(&blocks, &pings);
            let fast = canonical_deltas(&parsed);
            let mut seen = Vec::new();
            let (out, _) = run(&split(fast.as_bytes(), &cuts), |call| { seen.push(format!("{call:?}")); Decision::Release });
            prop_assert_eq!(out, fast.as_bytes());
            let mut parsed_seen = Vec::new();
            run(&[parsed.as_bytes()], |call| { parsed_seen.push(format!("{call:?}")); Decision::Release });
            prop_assert_eq!(seen.len(), calls);
            prop_assert_eq!(&seen, &parsed_seen, "the same calls, read the same");
            let decide = refuse_listed(&refusals);
            let (fast_out, fast_hold) = run(&split(fast.as_bytes(), &cuts), decide);
            let (parsed_out, parsed_hold) = run(&[parsed.as_bytes()], decide);
            prop_assert_eq!(client_view(&fast_out), client_view(&parsed_out));
            prop_assert_eq!(fast_hold.dropped(), parsed_hold.dropped());
        }

        #[test]
        fn hostile_json_answers_never_panic_and_readable_ones_stay_readable(
            pieces in prop::collection::vec(prop::sample::select(vec![
                "{", "}", "[", "]", ",", ":", "\"content\"", "\"type\"", "\"tool_use\"", "\"id\"", "\"t\"",
                "\"name\"", "\"input\"", "\"stop_reason\"", "\"tool_use_id\"", "1e999", "null", "\"\\u005f\"",
            ]), 0..40),
            refuse_empty in any::<bool>(),
        ) {
            let body = pieces.concat();
            let mut refused: Vec<(String, String)> =
                calls_in_message(body.as_bytes()).into_iter().map(|call| (call.id, "no".to_string())).collect();
            if refuse_empty {
                refused.push((String::new(), "no".into()));
            }
            if let Some(rewritten) = rewrite_message(body.as_bytes(), &refused) {
                if serde_json::from_str::<Value>(&body).is_ok() {
                    prop_assert!(serde_json::from_slice::<Value>(&rewritten).is_ok());
                    prop_assert!(calls_in_message(&rewritten).is_empty());
                }
            }
        }

        #[test]
        fn hostile_bytes_never_panic_and_stay_split_invariant(
            pieces in prop::collection::vec(prop::sample::select(vec![
                "event: content_block_start\n", "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"B\",\"input\":{}}}\n",
                "event: content_block_delta\n", "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n",
                "event: content_block_stop\n", "data: {\"type\":\"content_block_stop\",\"index\":0}\n",
                "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"}}\n",
                "\n", "\r", "\r\n", ": c\n", "data: x\n", "\u{feff}",
            ]), 0..40),
            refusals in prop::collection::vec(any::<bool>(), 0..8),
            cuts in prop::collection::vec(0usize..3000, 0..12),
        ) {
            let stream: String = pieces.concat();
            let refusals = &refusals;
            let decide = |mut n: usize| move |_: &ToolCall| {
                n += 1;
                if refusals.get(n).copied().unwrap_or(false) { Decision::Refuse { text: "no".into() } } else { Decision::Release }
            };
            let (whole, _) = run(&[stream.as_bytes()], decide(0));
            let (chunked, _) = run(&split(stream.as_bytes(), &cuts), decide(0));
            prop_assert_eq!(chunked, whole);
        }
    }
}
