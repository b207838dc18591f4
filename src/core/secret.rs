//! `Secret`: a string that must never be shown.
//!
//! Upstream keys live in this type from the moment they are read. `Debug` and `Display` print a
//! fixed placeholder, so a key cannot reach a log line, an error message or a test snapshot by
//! accident; the only way to the bytes is the explicit [`Secret::expose`].

use std::fmt;

/// A credential value (an Anthropic API key) whose formatting never reveals it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value read from the environment or a secret file.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value itself, for the one place that needs it: the upstream `x-api-key` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let secret = Secret::new("sk-ant-api03-very-secret".to_string());
        assert!(!format!("{secret:?}").contains("very-secret"));
        assert!(!format!("{secret}").contains("very-secret"));
        assert_eq!(secret.expose(), "sk-ant-api03-very-secret");
    }
}
