//! A role's tool rules, compiled from `roles.<name>.tools.rules`, and their judgement of a call.
//!
//! Rules are tried in order; the first whose conditions all hold decides (`allow`, `deny` or
//! `approve`); when none matches, the call is allowed.
//!
//! (Skeleton: conditions are being written; today no rule exists and every call is allowed.)

use super::{CallContext, Judgement, ToolCall};

/// A role's compiled tool rules.
#[derive(Debug, Default)]
pub struct ToolRules {
    rules: Vec<()>,
}

impl ToolRules {
    /// Whether the role has no rule (then no call is held at all).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Judges a complete call: the first matching rule's action, else allow.
    pub fn judge(&self, _call: &ToolCall, _context: &CallContext) -> Judgement {
        Judgement::default_allow()
    }
}
