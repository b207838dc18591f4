//! Glob patterns for model names, tool names, beta flags and the parts of MCP URLs.
//!
//! Syntax: `*` matches any run of characters except `/`, `**` any run including `/`, `?` exactly
//! one character other than `/`; every other character matches itself, case-sensitively. So
//! `claude-haiku-*` matches every Haiku model and `mcp__github__*` every tool of one MCP server.
//! Brackets, braces, backslashes and `***` are rejected at load, so nobody writes `claude-[ho]*`
//! expecting a character class. MCP URL patterns are split into parts first and each part is a
//! glob of its own ([`super::url_glob`]).
//!
//! Algorithm: a pattern of k tokens is a Thompson automaton with states 0..=k ("k tokens
//! consumed"), simulated bit-parallel: the set of live states is a fixed 256-bit mask, and each
//! character of the text costs a handful of word operations (shift, and, or) plus a binary search
//! of the pattern's distinct literal characters. Matching is O(text) time whatever the pattern —
//! no backtracking, no allocation — and stops as soon as no state is alive. Patterns are capped at
//! [`MAX_PATTERN_CHARS`] tokens so the state set fits the fixed mask.
//!
//! Limits: the text is compared character by character (Unicode scalar values), without any
//! normalisation; callers cap the identifiers they match (`messages::MAX_IDENTIFIER_BYTES`).

use std::fmt;

/// The longest pattern, in tokens (`**` is one token): its states fit a 256-bit set.
pub const MAX_PATTERN_CHARS: usize = 255;

const WORDS: usize = 4;

/// A set of automaton states (bit i: state i).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct Mask([u64; WORDS]);

impl Mask {
    fn bit(i: usize) -> Self {
        let mut mask = Self::default();
        if let Some(word) = mask.0.get_mut(i / 64) {
            *word = 1 << (i % 64);
        }
        mask
    }

    fn and(self, other: Self) -> Self {
        let mut out = self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a &= b;
        }
        out
    }

    fn or(self, other: Self) -> Self {
        let mut out = self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        out
    }

    /// Every state i becomes state i + 1.
    fn advance(self) -> Self {
        let mut out = Self::default();
        let mut carry = 0;
        for (o, w) in out.0.iter_mut().zip(self.0) {
            *o = (w << 1) | carry;
            carry = w >> 63;
        }
        out
    }

    fn is_empty(self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
}

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

/// A validated glob pattern, compiled to its automaton.
#[derive(Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    /// The accepting state: every token consumed.
    accept: Mask,
    /// Each distinct literal character and the tokens that are that literal; sorted by character.
    literals: Vec<(char, Mask)>,
    /// `?` tokens.
    one: Mask,
    /// `*` tokens.
    segment: Mask,
    /// `**` tokens.
    any: Mask,
    /// The states live before any character: state 0 and what the stars at the start skip to.
    start: Mask,
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.source)
    }
}

/// Why a pattern is not a glob; each but the first and last names the pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobError {
    /// The empty string.
    Empty,
    /// A character kept for later syntax (`[`, `]`, `{`, `}`, `\\`).
    Reserved {
        /// The pattern.
        pattern: String,
        /// The reserved character.
        character: char,
    },
    /// Whitespace (beyond plain spaces in free-text patterns) or control characters.
    Whitespace(String),
    /// `***`, which means nothing `**` does not.
    TripleStar(String),
    /// More than [`MAX_PATTERN_CHARS`] tokens.
    TooLong,
}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty pattern"),
            Self::Reserved { pattern, character } => {
                write!(f, "invalid glob {pattern:?}: '{character}' is reserved (only *, ** and ? are special)")
            }
            Self::Whitespace(pattern) => write!(f, "invalid glob {pattern:?}: whitespace or control characters"),
            Self::TripleStar(pattern) => write!(f, "invalid glob {pattern:?}: use * or **, not ***"),
            Self::TooLong => write!(f, "invalid glob: longer than {MAX_PATTERN_CHARS} characters"),
        }
    }
}

impl std::error::Error for GlobError {}

impl Glob {
    /// Parses a pattern, or says why it is not one.
    pub fn parse(pattern: &str) -> Result<Self, GlobError> {
        Self::parse_with(pattern, false)
    }

    /// Parses a pattern for free text (a token claim such as a workflow name): plain spaces are
    /// literal characters; other whitespace and control characters are still refused.
    pub fn parse_text(pattern: &str) -> Result<Self, GlobError> {
        Self::parse_with(pattern, true)
    }

    fn parse_with(pattern: &str, spaces: bool) -> Result<Self, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        if let Some(bad) = pattern.chars().find(|c| matches!(c, '[' | ']' | '{' | '}' | '\\')) {
            return Err(GlobError::Reserved { pattern: pattern.to_string(), character: bad });
        }
        if pattern.chars().any(|c| (c.is_whitespace() && !(spaces && c == ' ')) || c.is_control()) {
            return Err(GlobError::Whitespace(pattern.to_string()));
        }
        if pattern.contains("***") {
            return Err(GlobError::TripleStar(pattern.to_string()));
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
        if tokens.len() > MAX_PATTERN_CHARS {
            return Err(GlobError::TooLong);
        }
        let mut glob = Self {
            source: pattern.to_string(),
            accept: Mask::bit(tokens.len()),
            literals: Vec::new(),
            one: Mask::default(),
            segment: Mask::default(),
            any: Mask::default(),
            start: Mask::default(),
        };
        for (i, token) in tokens.iter().enumerate() {
            let bit = Mask::bit(i);
            match token {
                Token::Literal(c) => match glob.literals.binary_search_by_key(c, |(l, _)| *l) {
                    Ok(at) => {
                        if let Some((_, mask)) = glob.literals.get_mut(at) {
                            *mask = mask.or(bit);
                        }
                    }
                    Err(at) => glob.literals.insert(at, (*c, bit)),
                },
                Token::One => glob.one = glob.one.or(bit),
                Token::Segment => glob.segment = glob.segment.or(bit),
                Token::Any => glob.any = glob.any.or(bit),
            }
        }
        glob.start = glob.closure(Mask::bit(0));
        Ok(glob)
    }

    /// The pattern as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// `states` plus every state a star at a live state may skip to (a star matches the empty
    /// run). `***` is refused, so two stars are never adjacent: one step reaches the fixed point.
    fn closure(&self, states: Mask) -> Mask {
        states.or(states.and(self.segment.or(self.any)).advance())
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        if self.accept.0.get(1..).is_some_and(|high| high.iter().all(|w| *w == 0)) {
            self.run(text, |mask| mask.0.first().copied().unwrap_or(0))
        } else {
            self.run(text, |mask| *mask)
        }
    }

    /// The automaton run over `text`, with state sets of type `B`: one machine word for patterns
    /// of fewer than 64 tokens (the common case), the full 256-bit mask otherwise.
    fn run<B: Bits>(&self, text: &str, narrow: impl Fn(&Mask) -> B) -> bool {
        let (one, segment, any, accept) =
            (narrow(&self.one), narrow(&self.segment), narrow(&self.any), narrow(&self.accept));
        let stars = segment.or(any);
        let mut states = narrow(&self.start);
        for c in text.chars() {
            // Stars stay where they are on any character they match; literals and `?` consume
            // the character and move on.
            let mut stay = states.and(any);
            let mut step = match self.literals.binary_search_by_key(&c, |(l, _)| *l) {
                Ok(at) => self.literals.get(at).map_or(B::default(), |(_, mask)| states.and(narrow(mask))),
                Err(_) => B::default(),
            };
            if c != '/' {
                stay = stay.or(states.and(segment));
                step = step.or(states.and(one));
            }
            let next = stay.or(step.advance());
            states = next.or(next.and(stars).advance());
            if states.is_empty() {
                return false;
            }
        }
        !states.and(accept).is_empty()
    }
}

/// A set of automaton states: a machine word or the full mask.
trait Bits: Copy + Default {
    fn and(self, other: Self) -> Self;
    fn or(self, other: Self) -> Self;
    /// Every state i becomes state i + 1.
    fn advance(self) -> Self;
    fn is_empty(self) -> bool;
}

impl Bits for u64 {
    fn and(self, other: Self) -> Self {
        self & other
    }
    fn or(self, other: Self) -> Self {
        self | other
    }
    fn advance(self) -> Self {
        self << 1
    }
    fn is_empty(self) -> bool {
        self == 0
    }
}

impl Bits for Mask {
    fn and(self, other: Self) -> Self {
        Mask::and(self, other)
    }
    fn or(self, other: Self) -> Self {
        Mask::or(self, other)
    }
    fn advance(self) -> Self {
        Mask::advance(self)
    }
    fn is_empty(self) -> bool {
        Mask::is_empty(self)
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

    #[test]
    fn patterns_longer_than_a_machine_word_match_like_short_ones() {
        for len in [62, 63, 64, 65, 127, 128, 200, MAX_PATTERN_CHARS - 2] {
            let prefix = "a".repeat(len);
            let g = glob(&format!("{prefix}*z"));
            assert!(g.matches(&format!("{prefix}z")), "{len}");
            assert!(g.matches(&format!("{prefix}xyz")), "{len}");
            assert!(!g.matches(&format!("{prefix}x/z")), "{len}");
            assert!(!g.matches(&format!("{}z", "a".repeat(len - 1))), "{len}");
        }
    }

    #[test]
    fn over_long_patterns_are_rejected() {
        assert!(Glob::parse(&"a".repeat(MAX_PATTERN_CHARS)).is_ok());
        assert!(Glob::parse(&"a".repeat(MAX_PATTERN_CHARS + 1)).is_err());
        // `**` is one token.
        assert!(Glob::parse(&format!("{}**", "a".repeat(MAX_PATTERN_CHARS - 1))).is_ok());
    }

    #[test]
    fn a_huge_text_is_matched_in_one_pass() {
        let text = format!("claude-{}", "x".repeat(1_000_000));
        assert!(glob("claude-*").matches(&text));
        assert!(!glob("claude-*-4-5*").matches(&text));
        assert!(glob("claude-**x").matches(&text));
        assert!(!glob("claude-haiku-*").matches(&text));
    }

    #[test]
    fn non_ascii_characters_are_single_characters() {
        assert!(glob("caf?").matches("café"));
        assert!(glob("*é*").matches("résumé"));
        assert!(!glob("caf?").matches("cafés"));
    }

    proptest! {
        #[test]
        fn long_patterns_agree_with_the_recursive_definition(p in "[ab/*?]{1,8}", t in "[ab/]{0,10}") {
            prop_assume!(!p.contains("***"));
            let prefix = "ab".repeat(35);
            let g = glob(&format!("{prefix}{p}"));
            let pc: Vec<char> = format!("{prefix}{p}").chars().collect();
            let tc: Vec<char> = format!("{prefix}{t}").chars().collect();
            prop_assert_eq!(g.matches(&format!("{prefix}{t}")), reference(&pc, &tc));
        }

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
