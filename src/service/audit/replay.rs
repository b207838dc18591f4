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
//! (`crate::core::request::comparable`: `cache_control` markers dropped, a string `content` read as one
//! text block), the same form an approval binds to: Claude Code re-sends the same history
//! in those different forms from one request to the next (it moves its cache breakpoints to the
//! newest messages, and sends a prompt as a block list in one request and as a string in the
//! next). Blobs are resolved from the store; a missing blob is shown as such.
//!
//! Agents ([`super::agents`]): when subagents of the session sent requests, the replay starts
//! with the tree of agents (main agent → subagents by parent id, with their request counts) and
//! shows each subagent's requests as one indented block (`│ `) under the agent that started it,
//! placed where the subagent's first request came; each turn names its subagent. Each
//! `tool_result` the request sent is listed with its size and the call it answers, joined over
//! the session's records; one answering no recorded call, or a call Warden refused, is flagged
//! `⚠`.
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

use super::agents::{agent_of, results_of, AgentNote, AgentTree, ResultNote, SessionIndex, Shown as Step};
use super::chain::{canonical, is_blob_name};
use super::store::{AuditError, AuditStore, RecordKey, StoredRecord, TurnCursor};

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
/// comparable form ([`crate::core::request::comparable`], the same form approvals bind to).
fn comparable(message: &Value) -> Vec<u8> {
    let mut message = message.clone();
    crate::core::request::comparable::comparable_message(&mut message);
    canonical(&message)
}

fn indent(text: &str) -> String {
    text.lines().collect::<Vec<_>>().join("\n    ")
}

/// One piece of a turn: a message block of the prompt or of the answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Text said by `speaker` (`user`, `assistant`).
    Text {
        /// Who said it.
        speaker: String,
        /// What was said.
        text: String,
    },
    /// A tool call.
    ToolCall {
        /// Who called (`assistant`).
        speaker: String,
        /// The tool's name.
        name: String,
        /// The call's id (`toolu_…`).
        id: String,
        /// Its input.
        input: Value,
    },
    /// A tool's result, sent back by the client.
    ToolResult {
        /// The call it answers.
        id: String,
        /// Whether the tool failed.
        is_error: bool,
        /// Its text (non-text content as a placeholder).
        text: String,
    },
    /// A block shown as a placeholder (an image, a document…).
    Other {
        /// Who sent it.
        speaker: String,
        /// Its type.
        kind: String,
    },
    /// A message whose blob the store lacks.
    Missing {
        /// The blob name.
        name: String,
    },
    /// A message whose blob is not JSON.
    NotJson {
        /// The blob name.
        name: String,
    },
}

impl Piece {
    fn render(&self, out: &mut String) {
        let _ = match self {
            Self::Text { speaker, text } => writeln!(out, "  {speaker}: {}", indent(text)),
            Self::ToolCall { speaker, name, id, input } => {
                writeln!(out, "  {speaker} → tool call {name} ({id}): {input}")
            }
            Self::ToolResult { id, is_error, text } => {
                let error = if *is_error { " (error)" } else { "" };
                writeln!(out, "  tool result{error} ({id}): {}", indent(text))
            }
            Self::Other { speaker, kind } => writeln!(out, "  {speaker}: [{kind}]"),
            Self::Missing { name } => writeln!(out, "  [message {name} is missing from the store]"),
            Self::NotJson { name } => writeln!(out, "  [message {name} is not JSON]"),
        };
    }
}

fn block_piece(speaker: &str, block: &Value) -> Option<Piece> {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or("?");
    let text = |key: &str| block.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    match kind {
        "text" => Some(Piece::Text { speaker: speaker.to_string(), text: text("text") }),
        "tool_use" => Some(Piece::ToolCall {
            speaker: speaker.to_string(),
            name: text("name"),
            id: text("id"),
            input: block.get("input").cloned().unwrap_or(Value::Null),
        }),
        "tool_result" => {
            let content: Vec<String> = blocks(block.get("content").unwrap_or(&Value::Null))
                .iter()
                .map(|b| {
                    b.get("text")
                        .and_then(Value::as_str)
                        .map_or_else(|| "[non-text content]".to_string(), str::to_string)
                })
                .collect();
            Some(Piece::ToolResult {
                id: text("tool_use_id"),
                is_error: block.get("is_error").and_then(Value::as_bool) == Some(true),
                text: content.join("\n"),
            })
        }
        "thinking" | "redacted_thinking" => None,
        other => Some(Piece::Other { speaker: speaker.to_string(), kind: other.to_string() }),
    }
}

/// A refused request's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The refusal code (`model_not_allowed`, …).
    pub reason: String,
    /// The HTTP status the client got.
    pub status: String,
    /// The message the client got.
    pub message: String,
}

/// The approval a held request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalNote {
    /// `approved` or `denied`.
    pub decision: String,
    /// Who decided.
    pub reviewer: String,
    /// The review's id.
    pub review: String,
    /// When a session grant gave (or came with) the approval: `grant G (for session S until T)`.
    pub grant: Option<String>,
}

/// `grant G (for session S until T)` for a record's `approval.grant`.
fn grant_note(grant: &Value) -> Option<String> {
    let id = grant.get("id")?.as_str()?;
    let session = grant.get("session_id")?.as_str()?;
    let until = grant.get("expires_at")?.as_i64().map(crate::service::util::format_utc)?;
    Some(format!("grant {id} (for session {session} until {until})"))
}

/// Token counts of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens {
    /// Input tokens.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Cache reads.
    pub cache_read: u64,
    /// Cache writes.
    pub cache_write: u64,
}

/// One record of a session, ready to show: what it added to the conversation and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// Storage position.
    pub position: i64,
    /// Record time (ms; the request's start).
    pub time: i64,
    /// Record id.
    pub id: String,
    /// Who (`-` when unknown).
    pub subject: String,
    /// Under which role (`-` when unknown).
    pub role: String,
    /// The model asked for (`-` when none).
    pub model: String,
    /// How the exchange ended (`completed`, `refused`, …).
    pub outcome: String,
    /// The messages of the request not shown before.
    pub prompt: Vec<Piece>,
    /// The refusal, when the request was refused.
    pub refusal: Option<Refusal>,
    /// The approval, when the request was held for one.
    pub approval: Option<ApprovalNote>,
    /// The response as delivered.
    pub answer: Vec<Piece>,
    /// The response's error, if any (JSON).
    pub response_error: Option<String>,
    /// DLP findings: (`masked`/`blocked`/`audited`, `detector×count, …`).
    pub dlp: Vec<(String, String)>,
    /// Token counts, when the record has usage.
    pub tokens: Option<Tokens>,
    /// The exchange's cost in billionths of a dollar, when the record has it (`cost_nanos`).
    pub cost_nanos: Option<u64>,
    /// The subagent that sent the request (`None`: the main agent).
    pub agent: Option<AgentNote>,
    /// The `tool_result`s the request sent back, with the calls they answer.
    pub results: Vec<ResultNote>,
}

impl Turn {
    /// `subagent <id>` for a subagent's request.
    pub fn agent_label(&self) -> Option<String> {
        self.agent.as_ref().and_then(|a| a.id.as_ref()).map(|id| format!("subagent {id}"))
    }

    /// The turn as `warden audit replay` prints it.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "── {} · {} · {} ({}) · {} · {}{}",
            self.id,
            crate::service::util::format_utc(self.time.div_euclid(1000)),
            self.subject,
            self.role,
            self.model,
            self.outcome,
            self.agent_label().map(|label| format!(" · {label}")).unwrap_or_default()
        );
        self.prompt.iter().for_each(|piece| piece.render(&mut out));
        for result in &self.results {
            let mark = if result.provenance.is_suspicious() { "⚠" } else { "↳" };
            let _ = writeln!(out, "  {mark} {}", result.describe());
        }
        if let Some(refusal) = &self.refusal {
            let _ = writeln!(out, "  ✗ refused: {} ({}) {}", refusal.reason, refusal.status, refusal.message);
        }
        if let Some(approval) = &self.approval {
            let _ = writeln!(
                out,
                "  approval: {} by {} (review {}){}",
                approval.decision,
                approval.reviewer,
                approval.review,
                approval.grant.as_ref().map(|g| format!(", by {g}")).unwrap_or_default()
            );
        }
        self.answer.iter().for_each(|piece| piece.render(&mut out));
        if let Some(error) = &self.response_error {
            let _ = writeln!(out, "  response error: {error}");
        }
        if !self.dlp.is_empty() {
            let listed: Vec<String> = self.dlp.iter().map(|(action, counts)| format!("{action} {counts}")).collect();
            let _ = writeln!(out, "  dlp: {}", listed.join("; "));
        }
        if let Some(t) = &self.tokens {
            let _ = writeln!(
                out,
                "  tokens: in {}, out {}, cache read {}, cache write {}",
                t.input, t.output, t.cache_read, t.cache_write
            );
        }
        out
    }
}

fn counts(value: Option<&Value>) -> String {
    value
        .and_then(Value::as_object)
        .map(|map| map.iter().map(|(k, v)| format!("{k}×{v}")).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn field<'v>(record: &'v Value, path: &[&str]) -> Option<&'v Value> {
    let mut value = record;
    for key in path {
        value = value.get(key)?;
    }
    Some(value)
}

fn text_at(record: &Value, path: &[&str]) -> String {
    field(record, path).and_then(Value::as_str).unwrap_or("-").to_string()
}

fn parse_row(row: &StoredRecord) -> Result<Value, AuditError> {
    serde_json::from_str(&row.record)
        .map_err(|e| AuditError::Database(format!("position {}: the stored record is not JSON: {e}", row.position)))
}

/// Reads a session's records as [`Turn`]s, remembering what was shown so that re-sent history
/// is shown once.
pub struct TurnReader<'s> {
    store: &'s dyn AuditStore,
    shown: Shown,
}

impl<'s> TurnReader<'s> {
    /// A reader that has shown nothing yet.
    pub fn new(store: &'s dyn AuditStore) -> Self {
        Self { store, shown: Shown::default() }
    }

    /// Marks everything `row` holds — its messages and its response — as shown, without making
    /// a turn of it: a page that starts in the middle of a session seeds its reader with the
    /// record before it, since clients re-send the whole history each turn.
    pub fn seed(&mut self, row: &StoredRecord) -> Result<(), AuditError> {
        let record = parse_row(row)?;
        for name in message_names(&record) {
            if !self.shown.messages.insert(name.as_bytes().to_vec()) {
                continue;
            }
            let Some(content) = self.store.blob(&name)? else { continue };
            if let Ok(message) = serde_json::from_str::<Value>(&content) {
                self.shown.messages.insert(comparable(&message));
                blocks(message.get("content").unwrap_or(&Value::Null)).iter().filter_map(piece).for_each(|p| {
                    self.shown.pieces.insert(p);
                });
            }
        }
        if let Some(content) = field(&record, &["response", "content"]).and_then(Value::as_array) {
            content.iter().filter_map(piece).for_each(|p| {
                self.shown.pieces.insert(p);
            });
        }
        Ok(())
    }

    /// The turn `row` makes: the messages it adds, its decision, its answer and its figures.
    pub fn read(&mut self, row: &StoredRecord) -> Result<Turn, AuditError> {
        let record = parse_row(row)?;
        let mut prompt = Vec::new();
        for name in message_names(&record) {
            if !self.shown.messages.insert(name.as_bytes().to_vec()) {
                continue;
            }
            let Some(content) = self.store.blob(&name)? else {
                prompt.push(Piece::Missing { name });
                continue;
            };
            match serde_json::from_str::<Value>(&content) {
                Ok(message) => {
                    if self.shown.messages.insert(comparable(&message)) {
                        self.message_pieces(&message, &mut prompt);
                    }
                }
                Err(_) => prompt.push(Piece::NotJson { name }),
            }
        }
        let refusal =
            (field(&record, &["decision", "allowed"]).and_then(Value::as_bool) == Some(false)).then(|| Refusal {
                reason: text_at(&record, &["decision", "reason"]),
                status: field(&record, &["decision", "status"]).map(Value::to_string).unwrap_or_default(),
                message: text_at(&record, &["decision", "message"]),
            });
        let approval = field(&record, &["approval"]).filter(|a| a.is_object()).map(|approval| {
            let get = |k: &str| approval.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
            ApprovalNote {
                decision: get("decision"),
                reviewer: get("reviewer"),
                review: get("review"),
                grant: approval.get("grant").and_then(grant_note),
            }
        });
        let mut answer = Vec::new();
        if let Some(content) = field(&record, &["response", "content"]).and_then(Value::as_array) {
            for block in content {
                answer.extend(block_piece("assistant", block));
                if let Some(p) = piece(block) {
                    self.shown.pieces.insert(p);
                }
            }
        }
        let dlp = ["masked", "blocked", "audited"]
            .iter()
            .filter_map(|k| {
                let listed = counts(field(&record, &["dlp", k]));
                (!listed.is_empty()).then(|| (k.to_string(), listed))
            })
            .collect();
        let tokens = field(&record, &["usage"]).filter(|u| u.is_object()).map(|usage| {
            let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
            Tokens {
                input: n("input_tokens"),
                output: n("output_tokens"),
                cache_read: n("cache_read_input_tokens"),
                cache_write: n("cache_creation_input_tokens"),
            }
        });
        let cost_nanos = field(&record, &["cost_nanos"])
            .or_else(|| field(&record, &["usage", "cost_nanos"]))
            .and_then(Value::as_u64);
        Ok(Turn {
            position: row.position,
            time: field(&record, &["timings", "start"]).and_then(Value::as_i64).unwrap_or(0),
            id: text_at(&record, &["id"]),
            subject: text_at(&record, &["identity", "subject"]),
            role: text_at(&record, &["identity", "role"]),
            model: text_at(&record, &["model"]),
            outcome: text_at(&record, &["outcome"]),
            prompt,
            refusal,
            approval,
            answer,
            response_error: field(&record, &["response", "error"]).filter(|e| !e.is_null()).map(Value::to_string),
            dlp,
            tokens,
            cost_nanos,
            agent: agent_of(&record),
            results: results_of(&record),
        })
    }

    fn message_pieces(&mut self, message: &Value, out: &mut Vec<Piece>) {
        let role = message.get("role").and_then(Value::as_str).unwrap_or("?");
        let content = blocks(message.get("content").unwrap_or(&Value::Null));
        if role == "assistant" {
            let pieces: Vec<String> = content.iter().filter_map(piece).collect();
            if !pieces.is_empty() && pieces.iter().all(|p| self.shown.pieces.contains(p)) {
                return;
            }
        }
        for block in &content {
            out.extend(block_piece(role, block));
            if let Some(p) = piece(block) {
                self.shown.pieces.insert(p);
            }
        }
    }
}

/// The blob names of `request.messages`.
fn message_names(record: &Value) -> Vec<String> {
    field(record, &["request", "messages"])
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).filter(|n| is_blob_name(n)).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Records read per query while walking a whole session.
const WALK_CHUNK: u32 = 500;

/// Visits the session's turns in request order (their time — the start of the request — then
/// their position), a chunk of records at a time; returns the number of records.
pub fn turns(
    store: &dyn AuditStore,
    session: &str,
    visit: &mut dyn FnMut(Turn) -> Result<(), AuditError>,
) -> Result<u64, AuditError> {
    let mut reader = TurnReader::new(store);
    let mut cursor = TurnCursor::First;
    let mut count = 0;
    loop {
        let rows = store.session_records(session, cursor, WALK_CHUNK)?;
        let Some(last) = rows.last() else { break };
        cursor = TurnCursor::After(RecordKey { time: last.time, position: last.position });
        for row in &rows {
            visit(reader.read(row)?)?;
            count += 1;
        }
    }
    Ok(count)
}

/// A page of a session's turns.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnPage {
    /// The page's turns, in request order.
    pub turns: Vec<Turn>,
    /// Keys of the page's first and last records (none for an empty page).
    pub bounds: Option<(RecordKey, RecordKey)>,
    /// The session's records before this page.
    pub before: i64,
    /// The session's records.
    pub total: i64,
    /// The agents of the page's records and the ones before it ([`TurnPage::index`]).
    pub agents: AgentTree,
    /// The page's records and up to [`super::agents::PAGE_WINDOW`] before it: their agents and
    /// calls.
    pub index: SessionIndex,
}

/// Up to `limit` turns of the session from `cursor` on. The reader is seeded with the record
/// just before the page, so what that record's request and answer held is not shown again (a
/// message shown further back and re-sent in another form may be; the whole-session walk of
/// [`turns`] shows it once).
pub fn page(store: &dyn AuditStore, session: &str, cursor: TurnCursor, limit: u32) -> Result<TurnPage, AuditError> {
    let rows = store.session_records(session, cursor, limit)?;
    let total = store.session_record_count(session, None)?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        let (agents, index) = (AgentTree::build(std::iter::empty()), SessionIndex::default());
        return Ok(TurnPage { turns: Vec::new(), bounds: None, before: 0, total, agents, index });
    };
    let first_key = RecordKey { time: first.time, position: first.position };
    let last_key = RecordKey { time: last.time, position: last.position };
    let mut reader = TurnReader::new(store);
    if let Some(previous) = store.session_records(session, TurnCursor::Before(first_key), 1)?.first() {
        reader.seed(previous)?;
    }
    let mut turns = rows.iter().map(|row| reader.read(row)).collect::<Result<Vec<_>, _>>()?;
    let before = store.session_record_count(session, Some(first_key))?;
    let index = SessionIndex::window(store, session, first_key, super::agents::PAGE_WINDOW, &rows)?;
    turns.iter_mut().for_each(|turn| index.resolve(&mut turn.results));
    Ok(TurnPage { turns, bounds: Some((first_key, last_key)), before, total, agents: index.tree(), index })
}

/// Prints the session's conversation to `out`, subagents' requests grouped under the agent that
/// started them; returns the number of records shown.
pub fn replay(store: &dyn AuditStore, session: &str, pace: bool, out: &mut dyn Write) -> Result<u64, AuditError> {
    let io = |e: std::io::Error| AuditError::Database(format!("cannot write: {e}"));
    let index = SessionIndex::walk(store, session)?;
    let mut all = Vec::new();
    let count = turns(store, session, &mut |mut turn| {
        index.resolve(&mut turn.results);
        all.push(turn);
        Ok(())
    })?;
    let tree = AgentTree::build(all.iter().map(|turn| turn.agent.as_ref()));
    if tree.has_subagents() {
        let mut text = String::from("agents:\n");
        tree.outline().iter().for_each(|line| {
            let _ = writeln!(text, "  {line}");
        });
        out.write_all(text.as_bytes()).map_err(io)?;
    }
    let frame = |depth: usize| "│ ".repeat(depth);
    let mut previous_start: Option<i64> = None;
    for step in tree.display_order() {
        let text = match step {
            Step::Start { node, depth } => {
                let node = tree.nodes.get(node);
                let parent = node.and_then(|n| n.parent).and_then(|p| tree.nodes.get(p));
                format!(
                    "{}┌ {} (started by the {}) · {} request(s)\n",
                    frame(depth),
                    node.map(|n| n.label()).unwrap_or_default(),
                    parent.map(|p| p.label()).unwrap_or_default(),
                    node.map_or(0, |n| n.records.len())
                )
            }
            Step::End { node, depth } => {
                format!("{}└ end of {}\n", frame(depth), tree.nodes.get(node).map(|n| n.label()).unwrap_or_default())
            }
            Step::Record { index, depth } => {
                let Some(turn) = all.get(index) else { continue };
                if pace {
                    if let Some(previous) = previous_start {
                        let gap = (turn.time - previous).clamp(0, MAX_PACE_GAP_MS);
                        std::thread::sleep(Duration::from_millis(u64::try_from(gap).unwrap_or(0)));
                    }
                    previous_start = Some(turn.time);
                }
                let prefix = frame(depth);
                turn.render_text().lines().map(|line| format!("{prefix}{line}\n")).collect()
            }
        };
        out.write_all(text.as_bytes()).map_err(io)?;
        out.flush().map_err(io)?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn an_approval_from_a_session_grant_names_the_grant() {
        let mut store = memory_store();
        let line = json!({"version": 1, "source": "gw", "seq": 1, "id": "gw-1", "session_id": "s",
                          "decision": {"allowed": true}, "outcome": "completed",
                          "approval": {"decision": "approved", "reviewer": "bob", "review": "rev_1", "reasons": ["opus_model"],
                                       "grant": {"id": "grt_1", "session_id": "s", "expires_at": 1_800_000_000,
                                                 "reasons": ["opus_model"]}}});
        store.append(&[parse_record(line.to_string().as_bytes(), 0).unwrap()]).unwrap();
        let mut out = Vec::new();
        replay(&store, "s", false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(
                "approval: approved by bob (review rev_1), by grant grt_1 (for session s until 2027-01-15T08:00:00Z)"
            ),
            "{text}"
        );
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

    /// A record of session "s" from `agent` (a subagent id and its parent), with `extra` fields.
    fn agent_record(seq: i64, agent: Option<(&str, Option<&str>)>, prompt: &str, extra: Value) -> IncomingRecord {
        let message = json!({"role": "user", "content": prompt}).to_string();
        let mut line = json!({"version": 1, "source": "gw", "seq": seq, "id": format!("gw-{seq}"), "session_id": "s",
                              "timings": {"start": seq * 100}, "outcome": "completed",
                              "request": {"messages": [blob_name(&message)]},
                              "blobs": {blob_name(&message): message}});
        if let Some((id, parent)) = agent {
            line["agent"] = json!({"id": id, "parent": parent});
        }
        for (key, value) in extra.as_object().unwrap() {
            line[key] = value.clone();
        }
        parse_record(line.to_string().as_bytes(), 0).unwrap()
    }

    #[test]
    fn a_subagents_requests_are_shown_under_the_agent_that_started_it_with_result_provenance() {
        let task =
            json!({"response": {"content": [{"type": "tool_use", "id": "toolu_task", "name": "Task", "input": {}}]}});
        let results = json!({"tool_results": [
            {"tool_use_id": "toolu_task", "bytes": 12, "over_limit": false, "is_error": false},
            {"tool_use_id": "toolu_forged", "bytes": 3, "over_limit": false, "is_error": false}]});
        let mut store = memory_store();
        store
            .append(&[
                agent_record(1, None, "main asks", task),
                agent_record(2, Some(("a7", None)), "sub works", json!({})),
                agent_record(3, Some(("b9", Some("a7"))), "nested works", json!({})),
                agent_record(4, None, "main goes on", results),
            ])
            .unwrap();
        let mut out = Vec::new();
        assert_eq!(replay(&store, "s", false, &mut out).unwrap(), 4);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().map(|l| l.split(" · ").next().unwrap_or(l)).collect();
        assert_eq!(
            lines,
            [
                "agents:",
                "  main agent",
                "  └─ subagent a7",
                "     └─ subagent b9",
                "── gw-1",
                "  user: main asks",
                "  assistant → tool call Task (toolu_task): {}",
                "┌ subagent a7 (started by the main agent)",
                "│ ── gw-2",
                "│   user: sub works",
                "│ ┌ subagent b9 (started by the subagent a7)",
                "│ │ ── gw-3",
                "│ │   user: nested works",
                "│ └ end of subagent b9",
                "└ end of subagent a7",
                "── gw-4",
                "  user: main goes on",
                "  ↳ result toolu_task: 12 bytes",
                "  ⚠ result toolu_forged: 3 bytes",
            ],
            "{text}"
        );
        assert!(text.contains("answers gw-1's call (delivered)"), "{text}");
        assert!(text.contains("toolu_forged: 3 bytes · answers no recorded call"), "{text}");
        assert!(text.contains("── gw-3 ·") && text.contains("· subagent b9\n"), "{text}");
    }

    #[test]
    fn a_later_page_joins_its_results_to_calls_made_before_it_and_shows_the_tree() {
        let task =
            json!({"response": {"content": [{"type": "tool_use", "id": "toolu_task", "name": "Task", "input": {}}]}});
        let results = json!({"tool_results": [{"tool_use_id": "toolu_task", "bytes": 2, "over_limit": false, "is_error": false}]});
        let mut store = memory_store();
        store
            .append(&[
                agent_record(1, None, "main asks", task),
                agent_record(2, Some(("a7", None)), "sub works", json!({})),
                agent_record(3, None, "main goes on", results),
            ])
            .unwrap();
        let page = page(&store, "s", TurnCursor::After(RecordKey { time: 200, position: 2 }), 10).unwrap();
        assert_eq!(page.turns.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["gw-3"]);
        assert_eq!(page.turns[0].results[0].describe(), "result toolu_task: 2 bytes · answers gw-1's call (delivered)");
        assert_eq!(page.agents.outline(), ["main agent · 2 requests", "└─ subagent a7 · 1 request"]);
        assert!(!page.index.truncated, "the window reached the session's start");
    }
}
