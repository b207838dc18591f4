//! Glob patterns for model names, tool names, beta flags and MCP URLs.
//!
//! Syntax: `*` matches any run of characters except `/`, `**` any run including `/`, `?` exactly
//! one character other than `/`; every other character matches itself, case-sensitively. So
//! `https://*.example.com/**` matches every path on every subdomain of example.com, while
//! `https://*.example.com/x` cannot be satisfied by `https://evil.com/.example.com/x`. Brackets,
//! braces, backslashes and `***` are rejected at load, so nobody writes `claude-[ho]*` expecting a
//! character class.
//!
//! Matching is a dynamic program over (pattern token, text position): O(n·m) time, O(m) space,
//! no backtracking blow-up whatever the pattern.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    One,
    /// `*`
    Segment,
    /// `**`
    Any,
}

/// A validated glob pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    tokens: Vec<Token>,
    source: String,
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.source)
    }
}

impl Glob {
    /// Parses a pattern, or says why it is not one.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("empty pattern".to_string());
        }
        if let Some(bad) = pattern.chars().find(|c| matches!(c, '[' | ']' | '{' | '}' | '\\')) {
            return Err(format!("invalid glob {pattern:?}: '{bad}' is reserved (only *, ** and ? are special)"));
        }
        if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("invalid glob {pattern:?}: whitespace or control characters"));
        }
        if pattern.contains("***") {
            return Err(format!("invalid glob {pattern:?}: use * or **, not ***"));
        }
        let mut tokens = Vec::with_capacity(pattern.len());
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    Token::Any
                }
                '*' => Token::Segment,
                '?' => Token::One,
                other => Token::Literal(other),
            });
        }
        Ok(Self { tokens, source: pattern.to_string() })
    }

    /// The pattern as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether `text` matches the whole pattern.
    // Every index is bounded by the loops (j ≤ text.len(), rows of text.len() + 1).
    #[allow(clippy::indexing_slicing)]
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        // reachable[j]: the tokens consumed so far can match exactly text[..j].
        let mut reachable = vec![false; text.len() + 1];
        reachable[0] = true;
        for token in &self.tokens {
            let mut next = vec![false; text.len() + 1];
            for j in 0..=text.len() {
                next[j] = match token {
                    Token::Segment | Token::Any => {
                        let star_extends = j > 0 && next[j - 1] && (*token == Token::Any || text[j - 1] != '/');
                        reachable[j] || star_extends
                    }
                    Token::One => j > 0 && reachable[j - 1] && text[j - 1] != '/',
                    Token::Literal(c) => j > 0 && reachable[j - 1] && text[j - 1] == *c,
                };
            }
            reachable = next;
        }
        reachable[text.len()]
    }
}

/// An ordered list of globs; matches when any member does. Empty matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobSet {
    globs: Vec<Glob>,
}

impl GlobSet {
    /// A set from already-validated globs.
    pub fn new(globs: Vec<Glob>) -> Self {
        Self { globs }
    }

    /// Whether any glob matches `text`.
    pub fn matches(&self, text: &str) -> bool {
        self.globs.iter().any(|g| g.matches(text))
    }

    /// Whether the set is empty (and so allows nothing).
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn glob(p: &str) -> Glob {
        Glob::parse(p).unwrap()
    }

    #[test]
    fn star_and_question_mark_match_as_documented() {
        let cases = [
            ("claude-*", "claude-haiku-4-5", true),
            ("claude-haiku-*", "claude-haiku-4-5", true),
            ("claude-haiku-*", "claude-sonnet-4-5", false),
            ("claude-haiku-*", "claude-haiku-", true),
            ("*", "", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*-2025-*", "web-fetch-2025-09-10", true),
            ("https://*.example.com/*", "https://mcp.example.com/sse", true),
            ("https://*.example.com/*", "https://evil.com/x.example.com/", false),
            ("https://mcp.example.com/*", "https://mcp.example.com/a/b", false),
            ("https://mcp.example.com/**", "https://mcp.example.com/a/b", true),
            ("https://**", "https://anything.example/x/y", true),
            ("a?c", "a/c", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob(pattern).matches(text), expected, "{pattern} vs {text}");
        }
    }

    #[test]
    fn reserved_and_empty_patterns_are_rejected() {
        for bad in ["", "claude-[ho]*", "{a,b}", "a\\*", "has space", "tab\t", "a***"] {
            assert!(Glob::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn empty_set_matches_nothing() {
        assert!(!GlobSet::default().matches("anything"));
    }

    /// The recursive definition of glob matching, as a reference.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p {
            [] => t.is_empty(),
            ['*', '*', rest @ ..] => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            ['*', rest @ ..] => {
                (0..=t.len()).take_while(|&i| i == 0 || t[i - 1] != '/').any(|i| reference(rest, &t[i..]))
            }
            [c, rest @ ..] => t
                .split_first()
                .is_some_and(|(&tc, trest)| (if *c == '?' { tc != '/' } else { *c == tc }) && reference(rest, trest)),
        }
    }

    proptest! {
        #[test]
        fn matcher_agrees_with_the_recursive_definition(p in "[ab/*?]{1,8}", t in "[ab/]{0,10}") {
            prop_assume!(!p.contains("***"));
            let g = glob(&p);
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            prop_assert_eq!(g.matches(&t), reference(&pc, &tc));
        }
    }
}
