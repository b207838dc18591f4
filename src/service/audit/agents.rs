//! The agents of a session and the provenance of their tool results, for `warden audit replay`
//! and the session page.
//!
//! Claude Code runs subagents inside one session: their requests carry the session's id plus
//! the subagent's own id and, for a subagent started by another, its parent's id (the record's
//! `agent`; the main agent's records have none). [`AgentTree::build`] arranges a session's
//! records into the tree of agents: the main agent at the root, each subagent under the agent
//! that started it (a subagent that names no parent was started by the main agent), each node
//! listing its records in request order. A parent named but never seen sending a request still
//! gets a node (its requests may have been pruned); hostile parent links that form a cycle are
//! cut at the main agent, and agents beyond [`MAX_AGENTS`] hang from the main agent directly.
//!
//! Provenance: [`SessionIndex`] walks the session's records once and keeps every tool call
//! their answers proposed — from the record's `tool_calls` (what Warden decided) and from the
//! `tool_use` blocks of the delivered answer (calls no rule judged: `delivered`). Each recorded
//! `tool_result` is then joined to the call it answers ([`Provenance`]); the filter's own note in
//! the record (`tool_results[].answers`, known only when the same worker saw the call) is used
//! when the walk did not reach the call. A result that answers no recorded call, or a call
//! Warden refused, is flagged ([`Provenance::is_suspicious`]): the agent sent back a result for
//! a call Claude never proposed to it. Limits: the walk stops after [`MAX_INDEXED_RECORDS`]
//! records; a session pruned by retention loses the calls of its pruned records, and a result
//! answering one of those is flagged as unrecorded.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::store::{AuditError, AuditStore, RecordKey, TurnCursor};

/// Most distinct agents arranged in a tree; later ones hang from the main agent.
pub const MAX_AGENTS: usize = 500;

/// Most records [`SessionIndex::walk`] reads.
pub const MAX_INDEXED_RECORDS: u64 = 20_000;

/// Records before a page that the session page reads for its tree and provenance.
pub const PAGE_WINDOW: u32 = 2_000;

/// Records read per query by the walk.
const CHUNK: u32 = 500;

/// The agent that sent a request, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AgentNote {
    /// The (sub)agent's id.
    #[serde(default)]
    pub id: Option<String>,
    /// The agent that started it (`None`: the main agent).
    #[serde(default)]
    pub parent: Option<String>,
}

/// Which call a tool result answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// A call proposed in the answer of record `record` (its id, or the request id the filter
    /// noted), which Warden handled with `outcome` (`allowed`, `approved`, `denied`, …, or
    /// `delivered` when no rule judged it).
    Call {
        /// The record (or request) whose answer proposed the call.
        record: String,
        /// What Warden did with the call.
        outcome: String,
    },
    /// No recorded answer proposed the call.
    Unrecorded,
}

impl Provenance {
    /// Whether the result deserves a look: it answers no recorded call, or a call Warden did
    /// not deliver (denied, refused by a reviewer, timed out, cut short).
    pub fn is_suspicious(&self) -> bool {
        match self {
            Self::Call { outcome, .. } => !matches!(outcome.as_str(), "allowed" | "approved" | "delivered"),
            Self::Unrecorded => true,
        }
    }

    /// In words: `answers gw-1's call (allowed)`, `answers gw-2's call, which Warden denied`.
    pub fn describe(&self) -> String {
        match self {
            Self::Call { record, outcome } if self.is_suspicious() => {
                format!("answers {record}'s call, which was {}", outcome.replace('_', " "))
            }
            Self::Call { record, outcome } => format!("answers {record}'s call ({outcome})"),
            Self::Unrecorded => "answers no recorded call".to_string(),
        }
    }
}

/// One `tool_result` a request sent back, as recorded, with its provenance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultNote {
    /// The call id it answers.
    pub tool_use_id: String,
    /// Its content's size in bytes, as sent.
    pub bytes: u64,
    /// Whether it was over the role's limit (and withheld).
    pub over_limit: bool,
    /// Whether the agent marked it an error.
    pub is_error: bool,
    /// The call it answers.
    pub provenance: Provenance,
}

impl ResultNote {
    /// One line: `result toolu_1: 7 bytes · answers gw-1's call (allowed)`.
    pub fn describe(&self) -> String {
        let mut line = format!("result {}: {} bytes", self.tool_use_id, self.bytes);
        if self.is_error {
            line.push_str(" (error)");
        }
        if self.over_limit {
            line.push_str(" · over the role's limit, withheld");
        }
        line.push_str(" · ");
        line.push_str(&self.provenance.describe());
        line
    }
}

/// What a record says about its agent and its tool results (the rest is ignored).
#[derive(Deserialize, Default)]
struct RecordParts {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    agent: Option<AgentNote>,
    #[serde(default)]
    tool_calls: Vec<RecordedCall>,
    #[serde(default)]
    tool_results: Vec<RecordedResult>,
    #[serde(default)]
    response: Option<RecordedResponse>,
}

#[derive(Deserialize)]
struct RecordedCall {
    #[serde(default)]
    id: String,
    #[serde(default)]
    outcome: String,
}

#[derive(Deserialize)]
struct RecordedResult {
    #[serde(default)]
    tool_use_id: String,
    #[serde(default)]
    bytes: u64,
    #[serde(default)]
    over_limit: bool,
    #[serde(default)]
    is_error: bool,
    #[serde(default)]
    answers: Option<RecordedAnswer>,
}

#[derive(Deserialize)]
struct RecordedAnswer {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    outcome: String,
}

#[derive(Deserialize)]
struct RecordedResponse {
    #[serde(default)]
    content: Vec<Value>,
}

fn parts(record: &Value) -> RecordParts {
    RecordParts::deserialize(record).unwrap_or_default()
}

/// The record's agent, when it names one.
pub fn agent_of(record: &Value) -> Option<AgentNote> {
    parts(record).agent.filter(|a| a.id.is_some() || a.parent.is_some())
}

/// The record's tool results, their provenance from the record alone (the filter's note), to be
/// completed by [`SessionIndex::resolve`].
pub fn results_of(record: &Value) -> Vec<ResultNote> {
    parts(record)
        .tool_results
        .into_iter()
        .map(|r| ResultNote {
            provenance: match r.answers {
                Some(a) => Provenance::Call { record: a.request_id, outcome: a.outcome },
                None => Provenance::Unrecorded,
            },
            tool_use_id: r.tool_use_id,
            bytes: r.bytes,
            over_limit: r.over_limit,
            is_error: r.is_error,
        })
        .collect()
}

/// Every call the session's records proposed, and the agent of each record, in request order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionIndex {
    /// Call id → (record id, outcome).
    calls: HashMap<String, (String, String)>,
    /// Each record's (id, key, agent), in request order.
    pub records: Vec<(String, RecordKey, Option<AgentNote>)>,
    /// Whether older records of the session were left out (the walk stopped at
    /// [`MAX_INDEXED_RECORDS`], or a page's window did not reach the session's start).
    pub truncated: bool,
}

impl SessionIndex {
    /// Reads the session's records (at most [`MAX_INDEXED_RECORDS`]).
    pub fn walk(store: &dyn AuditStore, session: &str) -> Result<Self, AuditError> {
        let mut index = Self::default();
        let mut cursor = TurnCursor::First;
        loop {
            let rows = store.session_records(session, cursor, CHUNK)?;
            let Some(last) = rows.last() else { break };
            cursor = TurnCursor::After(RecordKey { time: last.time, position: last.position });
            for row in &rows {
                if index.records.len() as u64 >= MAX_INDEXED_RECORDS {
                    index.truncated = true;
                    return Ok(index);
                }
                let record: Value = serde_json::from_str(&row.record).unwrap_or(Value::Null);
                index.add(&record, RecordKey { time: row.time, position: row.position });
            }
        }
        Ok(index)
    }

    /// The index a page of a session needs: up to `before` records before the page (read
    /// backwards from `first`, the page's first record), then the page's own `rows`. Bounded
    /// whatever the session's length; calls older than the window are not joined.
    pub fn window(
        store: &dyn AuditStore,
        session: &str,
        first: RecordKey,
        before: u32,
        rows: &[super::store::StoredRecord],
    ) -> Result<Self, AuditError> {
        let mut earlier = store.session_records(session, TurnCursor::Before(first), before)?;
        earlier.reverse();
        let mut index = Self { truncated: earlier.len() as u64 >= u64::from(before), ..Self::default() };
        for row in earlier.iter().chain(rows) {
            let record: Value = serde_json::from_str(&row.record).unwrap_or(Value::Null);
            index.add(&record, RecordKey { time: row.time, position: row.position });
        }
        Ok(index)
    }

    /// Adds one record.
    pub fn add(&mut self, record: &Value, key: RecordKey) {
        let parts = parts(record);
        let id = parts.id.clone().unwrap_or_else(|| "-".to_string());
        for call in parts.tool_calls {
            self.calls.insert(call.id, (id.clone(), call.outcome));
        }
        let delivered = parts.response.iter().flat_map(|r| r.content.iter());
        for block in delivered.filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use")) {
            if let Some(call) = block.get("id").and_then(Value::as_str) {
                self.calls.entry(call.to_string()).or_insert_with(|| (id.clone(), "delivered".to_string()));
            }
        }
        let agent = parts.agent.filter(|a| a.id.is_some() || a.parent.is_some());
        self.records.push((id, key, agent));
    }

    /// Completes the provenance of `results` from the session's calls (which win over the
    /// filter's note: they name the record, and they are complete).
    pub fn resolve(&self, results: &mut [ResultNote]) {
        for result in results {
            if let Some((record, outcome)) = self.calls.get(&result.tool_use_id) {
                result.provenance = Provenance::Call { record: record.clone(), outcome: outcome.clone() };
            }
        }
    }

    /// The tree of the session's agents over [`SessionIndex::records`].
    pub fn tree(&self) -> AgentTree {
        AgentTree::build(self.records.iter().map(|(_, _, agent)| agent.as_ref()))
    }
}

/// One agent of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentNode {
    /// The agent's id (`None`: the main agent).
    pub id: Option<String>,
    /// Its parent node (`None` for the main agent).
    pub parent: Option<usize>,
    /// Child nodes, in order of first appearance.
    pub children: Vec<usize>,
    /// Its records, as indexes into the list the tree was built from, in that list's order.
    pub records: Vec<usize>,
}

impl AgentNode {
    /// `main agent`, or `subagent <id>`.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("subagent {id}"),
            None => "main agent".to_string(),
        }
    }
}

/// A session's agents as a tree: node 0 is the main agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentTree {
    /// The nodes; node 0 is the main agent, the others in order of first appearance.
    pub nodes: Vec<AgentNode>,
}

impl AgentTree {
    /// Arranges records (their agents, in request order) into the tree.
    pub fn build<'a>(agents: impl Iterator<Item = Option<&'a AgentNote>>) -> Self {
        let main = AgentNode { id: None, parent: None, children: Vec::new(), records: Vec::new() };
        let mut nodes = vec![main];
        let mut by_id: HashMap<String, usize> = HashMap::new();
        // The parent each agent first claimed, by node.
        let mut claimed: Vec<Option<String>> = vec![None];
        let mut node_of = |id: &str, nodes: &mut Vec<AgentNode>, claimed: &mut Vec<Option<String>>| -> usize {
            if let Some(&at) = by_id.get(id) {
                return at;
            }
            if nodes.len() > MAX_AGENTS {
                return 0;
            }
            nodes.push(AgentNode { id: Some(id.to_string()), parent: None, children: Vec::new(), records: Vec::new() });
            claimed.push(None);
            by_id.insert(id.to_string(), nodes.len() - 1);
            nodes.len() - 1
        };
        for (i, agent) in agents.enumerate() {
            // A record naming a parent but no agent of its own is the main agent's (a stray
            // header: Claude Code's main agent sends neither).
            let at = match agent.and_then(|a| a.id.as_deref().map(|id| (a, id))) {
                Some((a, id)) => {
                    let at = node_of(id, &mut nodes, &mut claimed);
                    if let (Some(parent), Some(slot)) = (&a.parent, claimed.get_mut(at)) {
                        if at != 0 && parent != id {
                            slot.get_or_insert_with(|| parent.clone());
                        }
                    }
                    at
                }
                None => 0,
            };
            if let Some(node) = nodes.get_mut(at) {
                node.records.push(i);
            }
        }
        // Parents named but never seen get nodes too (their requests may have been pruned).
        let named: Vec<String> = claimed.iter().flatten().cloned().collect();
        for parent in named {
            node_of(&parent, &mut nodes, &mut claimed);
        }
        let mut parents: Vec<usize> =
            claimed.iter().map(|c| c.as_ref().and_then(|p| by_id.get(p).copied()).unwrap_or(0)).collect();
        // Cut cycles: a node whose parent chain comes back to it hangs from the main agent (each
        // cycle is cut at its first node; the others then reach the main agent through it).
        for at in 1..parents.len() {
            let mut step = at;
            for _ in 0..parents.len() {
                step = parents.get(step).copied().unwrap_or(0);
                if step == 0 || step == at {
                    break;
                }
            }
            if step == at {
                if let Some(slot) = parents.get_mut(at) {
                    *slot = 0;
                }
            }
        }
        for (at, parent) in parents.iter().enumerate().skip(1) {
            if let Some(node) = nodes.get_mut(at) {
                node.parent = Some(*parent);
            }
            if let Some(parent) = nodes.get_mut(*parent) {
                parent.children.push(at);
            }
        }
        Self { nodes }
    }

    /// Whether any subagent appears.
    pub fn has_subagents(&self) -> bool {
        self.nodes.len() > 1
    }

    /// The tree as text lines (`main agent · 3 requests`, `└─ subagent a7 · 2 requests`, …),
    /// children indented under their parent.
    pub fn outline(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut stack = vec![(0usize, 0usize)];
        while let Some((at, depth)) = stack.pop() {
            let Some(node) = self.nodes.get(at) else { continue };
            let count = node.records.len();
            let branch = if depth == 0 { String::new() } else { format!("{}└─ ", "   ".repeat(depth - 1)) };
            lines.push(format!("{branch}{} · {count} request{}", node.label(), if count == 1 { "" } else { "s" }));
            stack.extend(node.children.iter().rev().map(|&child| (child, depth + 1)));
        }
        lines
    }

    /// The order to show records in: each agent's records in request order, each subagent's
    /// records as one block placed before the first of its parent's records that came after
    /// the subagent's first request. Yields (record index, depth, the node whose block starts
    /// there, if one does).
    pub fn display_order(&self) -> Vec<Shown> {
        let mut out = Vec::new();
        self.show(0, 0, &mut out);
        out
    }

    fn show(&self, at: usize, depth: usize, out: &mut Vec<Shown>) {
        let Some(node) = self.nodes.get(at) else { return };
        // Depth is bounded by the number of nodes (the tree has no cycles), itself bounded.
        let first = |child: usize| self.nodes.get(child).and_then(|c| c.records.first().copied());
        let mut pending: Vec<usize> = node.children.clone();
        pending.sort_by_key(|&c| first(c).unwrap_or(usize::MAX));
        let mut pending = pending.into_iter().peekable();
        for &record in &node.records {
            while let Some(child) = pending.next_if(|&c| first(c).is_some_and(|f| f < record)) {
                self.block(child, depth, out);
            }
            out.push(Shown::Record { index: record, depth });
        }
        for child in pending {
            self.block(child, depth, out);
        }
    }

    fn block(&self, child: usize, depth: usize, out: &mut Vec<Shown>) {
        out.push(Shown::Start { node: child, depth });
        self.show(child, depth + 1, out);
        out.push(Shown::End { node: child, depth });
    }
}

/// One step of [`AgentTree::display_order`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// A subagent's block starts.
    Start {
        /// Its node.
        node: usize,
        /// The depth of the block's frame (its records are one deeper).
        depth: usize,
    },
    /// A record.
    Record {
        /// Its index in the list the tree was built from.
        index: usize,
        /// How many subagent blocks enclose it.
        depth: usize,
    },
    /// A subagent's block ends.
    End {
        /// Its node.
        node: usize,
        /// The depth of the block's frame.
        depth: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn note(id: &str, parent: Option<&str>) -> Option<AgentNote> {
        Some(AgentNote { id: Some(id.to_string()), parent: parent.map(str::to_string) })
    }

    fn tree(agents: &[Option<AgentNote>]) -> AgentTree {
        AgentTree::build(agents.iter().map(Option::as_ref))
    }

    #[test]
    fn subagents_hang_from_the_agent_that_started_them_and_their_blocks_sit_where_they_began() {
        // main, main, sub a (from main), nested b (from a), a again, main.
        let agents = [None, None, note("a", None), note("b", Some("a")), note("a", None), None];
        let tree = tree(&agents);
        assert_eq!(
            tree.outline(),
            ["main agent · 3 requests", "└─ subagent a · 2 requests", "   └─ subagent b · 1 request"]
        );
        let order: Vec<String> = tree
            .display_order()
            .iter()
            .map(|s| match s {
                Shown::Start { node, depth } => format!("{depth}+{}", tree.nodes[*node].label()),
                Shown::Record { index, depth } => format!("{depth}:{index}"),
                Shown::End { node, depth } => format!("{depth}-{}", tree.nodes[*node].label()),
            })
            .collect();
        assert_eq!(
            order,
            ["0:0", "0:1", "0+subagent a", "1:2", "1+subagent b", "2:3", "1-subagent b", "1:4", "0-subagent a", "0:5"]
        );
    }

    #[test]
    fn an_unseen_parent_gets_a_node_and_a_parent_cycle_is_cut_at_the_main_agent() {
        let tree = tree(&[note("x", Some("ghost")), note("p", Some("q")), note("q", Some("p"))]);
        let outline = tree.outline();
        assert!(outline.contains(&"   └─ subagent x · 1 request".to_string()), "{outline:?}");
        assert!(outline.contains(&"└─ subagent ghost · 0 requests".to_string()), "{outline:?}");
        let shown = tree.display_order().iter().filter(|s| matches!(s, Shown::Record { .. })).count();
        assert_eq!(shown, 3, "every record is shown once, cycle or not");
    }

    #[test]
    fn a_flood_of_agents_is_bounded() {
        let agents: Vec<Option<AgentNote>> = (0..MAX_AGENTS * 3).map(|i| note(&format!("a{i}"), None)).collect();
        let tree = tree(&agents);
        assert!(tree.nodes.len() <= MAX_AGENTS + 1);
        assert_eq!(tree.nodes.iter().map(|n| n.records.len()).sum::<usize>(), MAX_AGENTS * 3);
    }

    #[test]
    fn results_are_joined_to_the_sessions_calls_and_refused_or_unknown_calls_are_flagged() {
        let mut index = SessionIndex::default();
        let key = RecordKey { time: 1, position: 1 };
        index.add(
            &json!({"id": "gw-1", "tool_calls": [{"id": "toolu_denied", "outcome": "denied"}],
                    "response": {"content": [{"type": "tool_use", "id": "toolu_ok"}]}}),
            key,
        );
        let record = json!({"id": "gw-2", "tool_results": [
            {"tool_use_id": "toolu_ok", "bytes": 3, "over_limit": false, "is_error": false},
            {"tool_use_id": "toolu_denied", "bytes": 4, "over_limit": false, "is_error": false},
            {"tool_use_id": "toolu_made_up", "bytes": 5, "over_limit": true, "is_error": true},
            {"tool_use_id": "toolu_other_worker", "bytes": 6, "over_limit": false, "is_error": false,
             "answers": {"request_id": "req-9", "outcome": "approved"}}]});
        let mut results = results_of(&record);
        index.resolve(&mut results);
        let lines: Vec<(String, bool)> = results.iter().map(|r| (r.describe(), r.provenance.is_suspicious())).collect();
        assert_eq!(
            lines,
            [
                ("result toolu_ok: 3 bytes · answers gw-1's call (delivered)".to_string(), false),
                ("result toolu_denied: 4 bytes · answers gw-1's call, which was denied".to_string(), true),
                (
                    "result toolu_made_up: 5 bytes (error) · over the role's limit, withheld · answers no recorded call"
                        .to_string(),
                    true
                ),
                ("result toolu_other_worker: 6 bytes · answers req-9's call (approved)".to_string(), false),
            ]
        );
    }
}
