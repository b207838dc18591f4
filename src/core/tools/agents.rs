//! Which agent sent a request: Claude Code's subagent headers, read with hostile input in mind.
//!
//! Claude Code marks the requests of a subagent (the Task/Agent tool) with
//! `x-claude-code-agent-id` (the subagent's own id) and, for a subagent started by another
//! subagent, `x-claude-code-parent-agent-id`; the main agent's requests carry neither, and every
//! agent of one session shares its `x-claude-code-session-id`. [`read_agent_headers`] turns the
//! headers into [`AgentIds`] for the audit record and the tool rules
//! ([`super::CallContext::subagent`]).
//!
//! Bounds: each value is 1 to [`MAX_AGENT_ID_BYTES`] bytes of `A–Z a–z 0–9 . _ : -` (real ids are
//! short hex or UUID strings), and each header appears at most once. Anything else is refused
//! with `invalid_request` before the body is read: a hostile client cannot bloat records or
//! smuggle control characters into the views that show the agent tree. Limits: the headers are
//! the client's claim — nothing proves that a request came from the agent it names, so they label
//! records and select rules, they never grant anything.

use super::AgentIds;
use crate::core::errors::{Denial, Reason};

/// The header naming the (sub)agent that sent a request.
pub const AGENT_HEADER: &str = "x-claude-code-agent-id";

/// The header naming the agent that started the sender.
pub const PARENT_AGENT_HEADER: &str = "x-claude-code-parent-agent-id";

/// Longest agent id accepted, in bytes.
pub const MAX_AGENT_ID_BYTES: usize = 128;

/// Reads the agent headers from every value each carries (`agent`: the values of
/// [`AGENT_HEADER`], `parent`: those of [`PARENT_AGENT_HEADER`]).
pub fn read_agent_headers<'a>(
    agent: impl Iterator<Item = &'a str>,
    parent: impl Iterator<Item = &'a str>,
) -> Result<AgentIds, Denial> {
    Ok(AgentIds { agent_id: one_id(AGENT_HEADER, agent)?, parent_agent_id: one_id(PARENT_AGENT_HEADER, parent)? })
}

/// The header's single value, checked; `None` when absent.
fn one_id<'a>(header: &str, mut values: impl Iterator<Item = &'a str>) -> Result<Option<String>, Denial> {
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Denial::new(Reason::InvalidRequest, format!("`{header}` must appear at most once")));
    }
    if value.is_empty()
        || value.len() > MAX_AGENT_ID_BYTES
        || !value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    {
        return Err(Denial::new(
            Reason::InvalidRequest,
            format!(
                "`{header}` must be 1 to {MAX_AGENT_ID_BYTES} characters of letters, digits, `.`, `_`, `:` and `-`"
            ),
        ));
    }
    Ok(Some(value.to_string()))
}

impl AgentIds {
    /// Whether the request came from a subagent (it named an agent or a parent).
    pub fn is_subagent(&self) -> bool {
        self.agent_id.is_some() || self.parent_agent_id.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(agent: &[&str], parent: &[&str]) -> Result<AgentIds, Denial> {
        read_agent_headers(agent.iter().copied(), parent.iter().copied())
    }

    #[test]
    fn the_main_agent_sends_no_header_and_is_not_a_subagent() {
        let ids = read(&[], &[]).unwrap();
        assert_eq!(ids, AgentIds::default());
        assert!(!ids.is_subagent());
    }

    #[test]
    fn a_nested_subagent_names_itself_and_its_parent() {
        let ids = read(&["a1b2c3d4e5f6"], &["0e9f-4c1a:x_y.z"]).unwrap();
        assert_eq!(ids.agent_id.as_deref(), Some("a1b2c3d4e5f6"));
        assert_eq!(ids.parent_agent_id.as_deref(), Some("0e9f-4c1a:x_y.z"));
        assert!(ids.is_subagent());
    }

    #[test]
    fn ids_at_the_length_bound_pass_and_one_byte_more_is_refused() {
        let longest = "a".repeat(MAX_AGENT_ID_BYTES);
        assert!(read(&[&longest], &[]).is_ok());
        let denial = read(&[&format!("{longest}a")], &[]).unwrap_err();
        assert_eq!(denial.reason, Reason::InvalidRequest);
        assert!(denial.detail.contains(AGENT_HEADER), "{}", denial.detail);
    }

    #[test]
    fn empty_values_spaces_controls_and_unicode_are_refused_without_echoing_the_value() {
        for bad in ["", "a b", "a\u{7}b", "agent\u{202e}", "é", "a/b", "<script>", "a\"b"] {
            let denial = read(&[], &[bad]).unwrap_err();
            assert_eq!(denial.reason, Reason::InvalidRequest, "{bad:?}");
            assert!(denial.detail.contains(PARENT_AGENT_HEADER));
            assert!(bad.is_empty() || !denial.detail.contains(bad), "{bad:?} echoed");
        }
    }

    #[test]
    fn a_repeated_header_is_refused_even_with_the_same_value() {
        assert!(read(&["a1", "a1"], &[]).is_err());
        assert!(read(&[], &["p", "q"]).is_err());
    }
}
