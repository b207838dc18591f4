//! What a name in a policy may be: reason codes, rule ids and other names chosen by the policy
//! author. A leaf, so that modules the policy compiles into (tool rules) can check names without
//! depending on the policy's root.

/// Whether `name` is a reason code or name: letters, digits, `-`, `_` or `.`, not empty.
pub(crate) fn is_token(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
