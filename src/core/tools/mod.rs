//! Governing the tool calls Claude proposes: what a proposed call is, what the role's tool rules
//! say about it, and how the answer stream holds it until that is decided.
//!
//! Claude proposes a call as a `tool_use` block (`server_tool_use` and `mcp_tool_use` for tools
//! Anthropic runs) in its answer; the agent runs it only once the block is complete. Warden holds
//! each such block from its `content_block_start` to its `content_block_stop` ([`hold`]), judges the
//! complete call by the role's rules ([`rules`]) — first match wins: allow, deny or approve — and
//! then releases the block unchanged or replaces it with a text block saying what was refused
//! and why. Text and thinking blocks are never held.
//!
//! Layout: [`hold`] is the stream state machine (SSE and whole JSON answers); [`rules`] compiles
//! and evaluates the policy's rules, helped by [`command`] (shell command lines) and [`paths`]
//! (file paths against globs and the agent's workspace). Nothing here calls the host.
//! The request side: [`agents`] reads which (sub)agent sent a request, [`results`] the
//! `tool_result` blocks it sends back (their record, their size limit, their provenance).

pub mod agents;
pub mod command;
pub mod govern;
pub mod hold;
pub mod paths;
pub mod results;
pub mod rules;

use serde_json::Value;

/// Which content block type carried the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// `tool_use`: a client tool the agent runs (Bash, Read, `mcp__server__tool`, …).
    ToolUse,
    /// `server_tool_use`: a tool Anthropic runs (web search, code execution, web fetch).
    ServerToolUse,
    /// `mcp_tool_use`: a tool of an MCP server declared in the request's `mcp_servers`.
    McpToolUse,
}

impl CallKind {
    /// The kind of a content block `type`, or `None` for blocks that are not calls.
    pub fn of_block_type(block_type: &str) -> Option<Self> {
        match block_type {
            "tool_use" => Some(Self::ToolUse),
            "server_tool_use" => Some(Self::ServerToolUse),
            "mcp_tool_use" => Some(Self::McpToolUse),
            _ => None,
        }
    }

    /// The content block `type` this kind is sent as.
    pub fn block_type(self) -> &'static str {
        match self {
            Self::ToolUse => "tool_use",
            Self::ServerToolUse => "server_tool_use",
            Self::McpToolUse => "mcp_tool_use",
        }
    }
}

/// One complete call Claude proposed.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The block's `id` (`toolu_…`), which the agent's `tool_result` answers.
    pub id: String,
    /// The block type.
    pub kind: CallKind,
    /// The tool's name as Claude wrote it (`Bash`, `mcp__github__create_issue`, `web_search`).
    pub name: String,
    /// `server_name` of an `mcp_tool_use` block.
    pub server_name: Option<String>,
    /// The complete input. A streamed input that is not valid JSON is `Value::Null` with
    /// [`ToolCall::malformed`] set: rules judge it as such (it is never allowed by default).
    pub input: Value,
    /// Whether the streamed input could not be assembled into JSON.
    pub malformed: bool,
}

/// What the judging of a call may depend on besides the call itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The working directory the agent declared (Claude Code's system prompt states it), used for
    /// "outside the workspace" conditions; `None` when the request did not say.
    pub workspace: Option<String>,
    /// Whether the request came from a subagent (Claude Code's `x-claude-code-agent-id` names a
    /// subagent; see [`AgentIds`]).
    pub subagent: bool,
}

/// The agent that sent a request, as Claude Code marks it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentIds {
    /// `x-claude-code-agent-id`: the agent (a subagent) that sent the request.
    pub agent_id: Option<String>,
    /// `x-claude-code-parent-agent-id`: the agent that started it.
    pub parent_agent_id: Option<String>,
}

/// What a rule decides about a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolAction {
    /// The call is released unchanged.
    Allow,
    /// The call is replaced by a text block saying it was refused and why.
    Deny,
    /// The call waits for a human's decision (the approval flow); approved → released, denied or
    /// timed out → handled as [`ToolAction::Deny`].
    Approve,
}

impl ToolAction {
    /// The action's policy spelling (`allow`, `deny`, `approve`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Approve => "approve",
        }
    }
}

/// The rules' verdict on one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// What happens to the call.
    pub action: ToolAction,
    /// The matching rule's id (its `id`, else `tools.rules[N]`); `None` when no rule matched
    /// and the role's default applied.
    pub rule: Option<String>,
    /// Why, in words an agent's user understands ("pipes a download into a shell").
    pub reason: String,
}

impl Judgement {
    /// The verdict when no rule matches: allow.
    pub fn default_allow() -> Self {
        Self { action: ToolAction::Allow, rule: None, reason: String::new() }
    }
}
