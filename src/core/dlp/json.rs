//! Redacting the string values inside JSON text, complete or streamed.
//!
//! Secrets in JSON live in string values, often escaped (`\n` inside a PEM key, `\/` in a URL).
//! Both functions here decode each string, redact the decoded text with [`super::text`], and
//! re-encode it, so a secret is found whatever escapes it wears and a mask never breaks the JSON.
//! Everything outside strings passes through byte for byte.
//!
//! - [`redact_json`] rewrites a complete JSON text ([`redact_json_strings`] reports the changed
//!   strings instead, for surgical splices); a [`Skip`] rule, given each string's key path and
//!   its object's `type`, leaves some alone — [`structural`] is the Messages API's allowlist
//!   (ids, signatures, enum values, base64 and encrypted blobs, outside tool arguments).
//!   Unchanged strings keep their original bytes. The walk is iterative: any depth is safe.
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
use serde::Deserialize;
use std::borrow::Cow;

/// One string of a JSON text, as a [`Skip`] rule sees it.
#[derive(Debug)]
pub struct Field<'p, 'j> {
    /// The object keys leading to the string (array indices omitted; for a key, the path ends
    /// with that key).
    pub path: &'p [Cow<'j, str>],
    /// Whether the string is itself a key.
    pub is_key: bool,
    /// Whether an `input` key encloses the string (tool-call arguments), known without walking
    /// the path.
    pub in_input: bool,
    /// The `type` of the innermost enclosing object, when a string `type` member came before
    /// this string — or, for a `data` value, anywhere in the object (read ahead).
    pub object_type: Option<&'p str>,
}

/// Which strings of a JSON text are left alone: returns `true` to leave the string unchanged.
pub type Skip<'s> = &'s dyn Fn(&Field) -> bool;

/// JSON keys whose string values are identifiers, signatures, enum values or opaque tokens in
/// the Messages API, never content: the allowlist of what masking leaves alone.
pub const STRUCTURAL_KEYS: [&str; 13] = [
    "type",
    "id",
    "tool_use_id",
    "signature",
    "encrypted_content",
    "encrypted_index",
    "model",
    "role",
    "stop_reason",
    "stop_sequence",
    "name",
    "file_id",
    "media_type",
];

/// Object types whose `data` is binary or encrypted: base64 sources (images, PDFs, and any
/// other base64 payload — a secret inside base64 is not text a detector could find) and
/// `redacted_thinking` blocks.
const OPAQUE_DATA_TYPES: [&str; 2] = ["base64", "redacted_thinking"];

/// The Messages API's structural strings, in requests and responses alike: keys, and the values
/// of [`STRUCTURAL_KEYS`]; `data` only in a base64 source or a `redacted_thinking` block (a text
/// document's `data`, a fetched page's, is content). Inside tool arguments (`input`) nothing is
/// structural: every string there, keys included, is model or tool output.
pub fn structural(field: &Field) -> bool {
    if field.in_input {
        return false;
    }
    if field.is_key {
        return true;
    }
    match field.path.last().map(Cow::as_ref) {
        Some("data") => field.object_type.is_some_and(|t| OPAQUE_DATA_TYPES.contains(&t)),
        Some(key) => STRUCTURAL_KEYS.contains(&key),
        None => false,
    }
}

/// Redacts the strings of a complete JSON text that `skip` does not exclude.
pub fn redact_json<'j>(
    redaction: &Redaction,
    json: &'j str,
    skip: Skip,
    tally: &mut Tally,
) -> Result<Cow<'j, str>, Blocked> {
    let mut out: Option<String> = None;
    let mut copied = 0;
    redact_json_strings(redaction, json, skip, tally, |range, redacted| {
        let out = out.get_or_insert_with(|| String::with_capacity(json.len() + 64));
        out.push_str(json.get(copied..range.start).unwrap_or(""));
        out.push_str(&redacted);
        copied = range.end;
    })?;
    Ok(match out {
        None => Cow::Borrowed(json),
        Some(mut out) => {
            out.push_str(json.get(copied..).unwrap_or(""));
            Cow::Owned(out)
        }
    })
}

/// One open object or array of the walk.
struct Frame<'j> {
    /// Whether it is an object (its key is the last entry of the path).
    object: bool,
    /// Offset of the object's `{`.
    start: usize,
    /// The object's `type`, once a string `type` member was seen (or looked ahead for).
    kind: Option<Cow<'j, str>>,
    /// Whether the object was already read ahead for its `type`.
    peeked: bool,
}

/// The `type` member of an object, read ahead of the walk.
#[derive(Deserialize)]
struct TypeHead<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
}

/// The string `type` of the object starting at `json[start..]`, parsed ahead (other members
/// skipped). `None` when it has none or does not parse (over-deep, duplicate `type`).
fn peek_type(json: &str, start: usize) -> Option<Cow<'_, str>> {
    let rest = json.get(start..)?;
    serde_json::Deserializer::from_str(rest).into_iter::<TypeHead>().next()?.ok()?.kind
}

/// Redacts the strings of a complete JSON text that `skip` does not exclude, reporting each
/// changed one as its byte range in `json` (quotes included) and its new JSON string token, in
/// text order. The walk is a loop with an explicit stack (no recursion, whatever the depth);
/// the path costs one entry per open object.
pub fn redact_json_strings(
    redaction: &Redaction,
    json: &str,
    skip: Skip,
    tally: &mut Tally,
    mut changed: impl FnMut(std::ops::Range<usize>, String),
) -> Result<(), Blocked> {
    if !redaction.is_active() {
        return Ok(());
    }
    let bytes = json.as_bytes();
    let mut frames: Vec<Frame> = Vec::new();
    let mut path: Vec<Cow<str>> = Vec::new();
    // How many entries of `path` are `input`: kept as the path changes, so rules stay O(1).
    let mut inputs = 0usize;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'{' => {
                frames.push(Frame { object: true, start: i, kind: None, peeked: false });
                path.push(Cow::Borrowed(""));
            }
            b'[' => frames.push(Frame { object: false, start: i, kind: None, peeked: false }),
            b'}' | b']' if frames.pop().is_some_and(|f| f.object) && path.pop().is_some_and(|k| k == "input") => {
                inputs -= 1;
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
        let in_object = frames.last().is_some_and(|f| f.object);
        if is_key && in_object {
            if let Some(key) = path.last_mut() {
                inputs -= usize::from(key == "input");
                inputs += usize::from(content == "input");
                *key = content.clone();
            }
        }
        // A `data` value before its object's `type`: read the type ahead, once per object.
        if !is_key && in_object && path.last().is_some_and(|k| k == "data") {
            if let Some(frame) = frames.last_mut().filter(|f| f.kind.is_none() && !f.peeked) {
                frame.peeked = true;
                frame.kind = peek_type(json, frame.start);
            }
        }
        let object_type = frames.last().and_then(|f| f.kind.as_deref());
        let field = Field { path: &path, is_key, in_input: inputs > 0, object_type };
        if !skip(&field) {
            if let Cow::Owned(redacted) = redact(redaction, &content, tally)? {
                let mut encoded = String::with_capacity(redacted.len() + 2);
                encoded.push('"');
                escape_into(&redacted, &mut encoded);
                encoded.push('"');
                changed(i..end, encoded);
            }
        }
        if !is_key && in_object && path.last().is_some_and(|k| k == "type") {
            if let Some(frame) = frames.last_mut() {
                frame.kind = Some(content);
            }
        }
        i = end.max(i + 1);
    }
    Ok(())
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
    // serde_json decodes a valid string token fast; a lone surrogate or a cut token falls back
    // to the character decoder (U+FFFD).
    if let Ok(decoded) = serde_json::from_str::<String>(token) {
        return Cow::Owned(decoded);
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
            let skip = |f: &Field| f.is_key || (f.path.last().is_some_and(|k| k == "signature") && !f.in_input);
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
            let out = redact_json(r, &json, &|_| false, &mut Tally::default()).unwrap();
            let value: Vec<String> = serde_json::from_str(&out).unwrap();
            assert_eq!(
                value[0],
                format!("line\nmail: {}\t{}", key.mask("email", "ann.lee@corp.io"), key.mask("github-pat", TOKEN))
            );
            let plain = r#"{"a": "nothing \"here\""}"#;
            assert!(matches!(redact_json(r, plain, &|_| false, &mut Tally::default()).unwrap(), Cow::Borrowed(_)));
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
                let one_shot = redact_json(r, &json, &|_| false, &mut Tally::default()).unwrap();
                let one_shot: serde_json::Value = serde_json::from_str(&one_shot).unwrap();
                prop_assert_eq!(streamed, one_shot);
                Ok(())
            })?;
        }
    }
}
