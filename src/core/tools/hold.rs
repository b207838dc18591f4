//! Holding proposed tool calls in the answer until each is judged.
//!
//! Streamed answers: [`ToolHold`] reads the (already masked) event stream. Events of text and
//! thinking blocks, `message_start`, `ping` and the like pass as they arrive. The events of a
//! `tool_use` / `server_tool_use` / `mcp_tool_use` block are kept from its `content_block_start`
//! to its `content_block_stop`; the complete call is then [`ToolHold::waiting`], and every later
//! byte queues behind it until [`ToolHold::decide`] releases the block byte-identical or replaces it
//! with a text block at the same index. When every call of the message was refused, the
//! `message_delta`'s `stop_reason` `tool_use` becomes `end_turn`, so no tool_use id dangles.
//!
//! Whole JSON answers: [`calls_in_message`] lists the calls of a Messages response and
//! [`rewrite_message`] replaces the refused ones.
//!
//! (Skeleton: the stream state machine is being written; today everything passes.)

use super::ToolCall;

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
#[derive(Debug, Default)]
pub struct ToolHold {
    waiting: Option<ToolCall>,
}

impl ToolHold {
    /// A hold for a new answer stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds stream bytes; returns the bytes that may be delivered now. When a held call is
    /// complete, delivery stops behind it until [`ToolHold::decide`].
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        bytes.to_vec()
    }

    /// The oldest complete call waiting for a decision.
    pub fn waiting(&self) -> Option<&ToolCall> {
        self.waiting.as_ref()
    }

    /// Decides the waiting call; returns the bytes that may be delivered now (the block or its
    /// replacement, and whatever queued behind it up to the next waiting call).
    pub fn decide(&mut self, _decision: Decision) -> Vec<u8> {
        self.waiting = None;
        Vec::new()
    }

    /// The upstream stream ended: returns what is left to deliver. A call still undecided or a
    /// block cut off before its `content_block_stop` is never released.
    pub fn finish(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

/// The calls of a whole (non-streamed) Messages response body, in order.
pub fn calls_in_message(_body: &[u8]) -> Vec<ToolCall> {
    Vec::new()
}

/// The body with each call named in `refused` (`(tool_use id, text)`) replaced by a text block,
/// and `stop_reason` `tool_use` turned into `end_turn` when no call is left; `None` when nothing
/// changes.
pub fn rewrite_message(_body: &[u8], _refused: &[(String, String)]) -> Option<Vec<u8>> {
    None
}
