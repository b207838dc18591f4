//! Redacting the string values inside JSON text, complete or streamed.
//!
//! Secrets in JSON live in string values, often escaped (`\n` inside a PEM key, `\/` in a URL).
//! Both functions here decode each string, redact the decoded text with [`super::text`], and
//! re-encode it, so a secret is found whatever escapes it wears and a mask never breaks the JSON.
//! Everything outside strings passes through byte for byte.
//!
//! - [`redact_json`] rewrites a complete JSON text; a [`Skip`] rule, given each string's key
//!   path, leaves some alone (signatures, ids, encrypted blobs outside tool arguments).
//!   Unchanged strings keep their original bytes.
//! - [`JsonStream`] rewrites JSON arriving in fragments (the `partial_json` of a tool call):
//!   structure passes at once, a string's content flows through a [`TextStream`] (so only an
//!   undecided tail is held), and its closing quote waits until that stream is finished. Every
//!   string, keys included, is redacted and re-encoded.
//!
//! Limits: the input is trusted to be JSON (it comes from Anthropic); malformed input is passed
//! through as well as possible, never rejected here. A lone UTF-16 surrogate escape decodes to
//! U+FFFD.

use super::mask::Tally;
use super::text::{redact, Blocked, Redaction, TextStream};
use std::borrow::Cow;

/// Which strings of a JSON text are redacted: called with the path of object keys leading to
/// the string (array indices omitted; for a key, the path ends with that key) and whether the
/// string is itself a key; returns `true` to leave it alone.
pub type Skip<'s> = &'s dyn Fn(&[Cow<str>], bool) -> bool;

/// Redacts the strings of a complete JSON text that `skip` does not exclude.
pub fn redact_json<'j>(
    redaction: &Redaction,
    json: &'j str,
    skip: Skip,
    tally: &mut Tally,
) -> Result<Cow<'j, str>, Blocked> {
    if !redaction.is_active() {
        return Ok(Cow::Borrowed(json));
    }
    let bytes = json.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    // One entry per open object or array: the object's current key (arrays hold `None`).
    let mut frames: Vec<Option<Cow<str>>> = Vec::new();
    let mut path: Vec<Cow<str>> = Vec::new();
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'{' => frames.push(Some(Cow::Borrowed(""))),
            b'[' => frames.push(None),
            b'}' | b']' => {
                frames.pop();
            }
            _ => {}
        }
        if byte != b'"' {
            i += 1;
            continue;
        }
        let end = string_end(bytes, i);
        let token = json.get(i..end).unwrap_or("");
        let is_key = bytes.get(end..).unwrap_or(&[]).iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':');
        let content = decode_string(token);
        if is_key {
            if let Some(Some(key)) = frames.last_mut() {
                *key = content.clone();
            }
        }
        path.clear();
        path.extend(frames.iter().flatten().cloned());
        if !skip(&path, is_key) {
            if let Cow::Owned(redacted) = redact(redaction, &content, tally)? {
                let out = out.get_or_insert_with(|| String::with_capacity(json.len() + 64));
                out.push_str(json.get(copied..i).unwrap_or(""));
                out.push('"');
                escape_into(&redacted, out);
                out.push('"');
                copied = end;
            }
        }
        i = end.max(i + 1);
    }
    Ok(match out {
        None => Cow::Borrowed(json),
        Some(mut out) => {
            out.push_str(json.get(copied..).unwrap_or(""));
            Cow::Owned(out)
        }
    })
}

/// Index just past the closing quote of the string starting at `start` (or the end of input).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The decoded content of a JSON string token (with its quotes).
fn decode_string(token: &str) -> Cow<'_, str> {
    let inner = token.strip_prefix('"').map(|t| t.strip_suffix('"').unwrap_or(t)).unwrap_or(token);
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut decoder = Unescaper::default();
    let mut out = String::with_capacity(inner.len());
    for c in inner.chars() {
        decoder.push(c, &mut out);
    }
    decoder.finish(&mut out);
    Cow::Owned(out)
}

/// Appends `text` as JSON string content (without quotes).
pub fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
}

/// Decodes JSON string escapes one character at a time (escapes may be split across fragments).
#[derive(Debug, Default, Clone)]
struct Unescaper {
    /// Characters of an escape seen so far, from the backslash.
    escape: String,
    /// A high surrogate waiting for its low half.
    high_surrogate: Option<u32>,
}

impl Unescaper {
    fn push(&mut self, c: char, out: &mut String) {
        if self.escape.is_empty() {
            if c == '\\' {
                self.escape.push(c);
            } else {
                self.flush_surrogate(out);
                out.push(c);
            }
            return;
        }
        self.escape.push(c);
        if self.escape.len() == 2 {
            let simple = match c {
                '"' => Some('"'),
                '\\' => Some('\\'),
                '/' => Some('/'),
                'b' => Some('\u{08}'),
                'f' => Some('\u{0c}'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                'u' => None,
                other => Some(other),
            };
            if let Some(decoded) = simple {
                self.escape.clear();
                self.flush_surrogate(out);
                out.push(decoded);
            }
            return;
        }
        if self.escape.len() < 6 {
            return;
        }
        let code = self.escape.get(2..6).and_then(|hex| u32::from_str_radix(hex, 16).ok());
        self.escape.clear();
        match code {
            Some(high @ 0xD800..=0xDBFF) => {
                self.flush_surrogate(out);
                self.high_surrogate = Some(high);
            }
            Some(low @ 0xDC00..=0xDFFF) => match self.high_surrogate.take() {
                Some(high) => {
                    let combined = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    out.push(char::from_u32(combined).unwrap_or('\u{FFFD}'));
                }
                None => out.push('\u{FFFD}'),
            },
            Some(code) => {
                self.flush_surrogate(out);
                out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
            }
            None => {
                self.flush_surrogate(out);
                out.push('\u{FFFD}');
            }
        }
    }

    fn flush_surrogate(&mut self, out: &mut String) {
        if self.high_surrogate.take().is_some() {
            out.push('\u{FFFD}');
        }
    }

    fn finish(&mut self, out: &mut String) {
        self.flush_surrogate(out);
        if !self.escape.is_empty() {
            self.escape.clear();
            out.push('\u{FFFD}');
        }
    }
}

/// Redacts JSON text that arrives in fragments.
#[derive(Debug, Default)]
pub struct JsonStream {
    in_string: bool,
    unescaper: Unescaper,
    text: TextStream,
}

impl JsonStream {
    /// Adds a fragment; returns the JSON text that can be delivered now.
    pub fn push(&mut self, redaction: &Redaction, fragment: &str, tally: &mut Tally) -> Result<String, Blocked> {
        if !redaction.is_active() {
            return Ok(fragment.to_string());
        }
        let mut out = String::with_capacity(fragment.len() + 8);
        let mut decoded = String::new();
        for c in fragment.chars() {
            if !self.in_string {
                out.push(c);
                if c == '"' {
                    self.in_string = true;
                }
                continue;
            }
            if c == '"' && self.unescaper.escape.is_empty() {
                self.unescaper.finish(&mut decoded);
                self.emit(redaction, &mut decoded, &mut out, tally)?;
                escape_into(&self.text.finish(redaction, tally)?, &mut out);
                out.push('"');
                self.in_string = false;
                continue;
            }
            self.unescaper.push(c, &mut decoded);
        }
        self.emit(redaction, &mut decoded, &mut out, tally)?;
        Ok(out)
    }

    /// Ends the input: returns whatever an unterminated string still held.
    pub fn finish(&mut self, redaction: &Redaction, tally: &mut Tally) -> Result<String, Blocked> {
        let mut decoded = String::new();
        self.unescaper.finish(&mut decoded);
        let mut out = String::new();
        self.emit(redaction, &mut decoded, &mut out, tally)?;
        escape_into(&self.text.finish(redaction, tally)?, &mut out);
        self.in_string = false;
        Ok(out)
    }

    fn emit(
        &mut self,
        redaction: &Redaction,
        decoded: &mut String,
        out: &mut String,
        tally: &mut Tally,
    ) -> Result<(), Blocked> {
        if !decoded.is_empty() {
            escape_into(&self.text.push(redaction, decoded, tally)?, out);
            decoded.clear();
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::core::dlp::engine::tests::{small_engine, TOKEN};
    use crate::core::dlp::engine::Action;
    use crate::core::dlp::mask::MaskKey;
    use proptest::prelude::*;

    fn with_redaction<T>(f: impl FnOnce(&Redaction, &MaskKey) -> T) -> T {
        let engine = small_engine();
        let key = MaskKey::new(b"k".to_vec());
        let actions = vec![Action::Mask; 4];
        f(&Redaction { engine: &engine, actions: &actions, key: &key }, &key)
    }

    #[test]
    fn string_values_are_masked_keys_and_skipped_fields_are_not() {
        with_redaction(|r, key| {
            let json = format!(
                r#"{{"a": "x {TOKEN}", "signature": "{TOKEN}", "{TOKEN}": 1, "n": 4111111111111111, "input": {{"signature": ["{TOKEN}"]}}}}"#
            );
            let skip = |path: &[Cow<str>], is_key: bool| {
                is_key || (path.last().is_some_and(|k| k == "signature") && !path.iter().any(|k| k == "input"))
            };
            let out = redact_json(r, &json, &skip, &mut Tally::default()).unwrap();
            let value: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(value["a"], format!("x {}", key.mask("github-pat", TOKEN)));
            assert_eq!(value["signature"], TOKEN);
            assert_eq!(value[TOKEN], 1);
            assert_eq!(value["n"], 4111111111111111u64);
            assert_eq!(value["input"]["signature"][0], key.mask("github-pat", TOKEN), "the path decides, not the key");
        });
    }

    #[test]
    fn escaped_secrets_are_found_and_unchanged_json_is_borrowed() {
        with_redaction(|r, key| {
            let json = format!(r#"["line\nmail: ann.lee\u0040corp.io\t{}"]"#, TOKEN.replace('_', "\\u005f"));
            let out = redact_json(r, &json, &|_, _| false, &mut Tally::default()).unwrap();
            let value: Vec<String> = serde_json::from_str(&out).unwrap();
            assert_eq!(
                value[0],
                format!("line\nmail: {}\t{}", key.mask("email", "ann.lee@corp.io"), key.mask("github-pat", TOKEN))
            );
            let plain = r#"{"a": "nothing \"here\""}"#;
            assert!(matches!(redact_json(r, plain, &|_, _| false, &mut Tally::default()).unwrap(), Cow::Borrowed(_)));
        });
    }

    fn stream(r: &Redaction, fragments: &[&str]) -> String {
        let mut s = JsonStream::default();
        let mut tally = Tally::default();
        let mut out: String = fragments.iter().map(|f| s.push(r, f, &mut tally).unwrap()).collect();
        out.push_str(&s.finish(r, &mut tally).unwrap());
        out
    }

    #[test]
    fn streamed_tool_input_is_valid_json_with_the_secret_masked() {
        with_redaction(|r, key| {
            let json = format!(r#"{{"command": "curl -H 'Authorization: token {TOKEN}' https://api"}}"#);
            let fragments: Vec<&str> = vec!["", &json[..5], &json[5..30], &json[30..50], &json[50..]];
            let out = stream(r, &fragments);
            let value: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(
                value["command"],
                format!("curl -H 'Authorization: token {}' https://api", key.mask("github-pat", TOKEN))
            );
        });
    }

    proptest! {
        #[test]
        fn streamed_json_decodes_to_the_one_shot_result_for_any_split(
            values in proptest::collection::vec(prop_oneof![
                Just(TOKEN.to_string()), Just("ann.lee@corp.io".to_string()), Just("é😀\n\"q\"\\".to_string()), "[a-z @.0-9]{0,10}"
            ], 1..5),
            cuts in proptest::collection::vec(0usize..400, 0..8),
        ) {
            with_redaction(|r, _| {
                let json = serde_json::to_string(&serde_json::json!({ "v": values.concat(), "list": values })).unwrap();
                let mut cuts = cuts.clone();
                cuts.sort_unstable();
                let mut fragments = Vec::new();
                let mut last = 0;
                for cut in cuts {
                    let mut cut = cut.clamp(last, json.len());
                    while !json.is_char_boundary(cut) { cut += 1; }
                    fragments.push(&json[last..cut]);
                    last = cut;
                }
                fragments.push(&json[last..]);
                let streamed: serde_json::Value = serde_json::from_str(&stream(r, &fragments)).unwrap();
                let one_shot = redact_json(r, &json, &|_, _| false, &mut Tally::default()).unwrap();
                let one_shot: serde_json::Value = serde_json::from_str(&one_shot).unwrap();
                prop_assert_eq!(streamed, one_shot);
                Ok(())
            })?;
        }
    }
}
