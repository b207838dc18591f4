//! Masking what the agent sends: user text, tool results and text documents in a Messages body.
//!
//! Algorithm: the body (already accepted by [`crate::core::messages::check_body`]) is parsed
//! again into a borrowed view of `messages[]`, keeping each scanned string as a raw JSON slice.
//! For every `user` message it scans:
//! - string `content`, and `text` of `text` blocks;
//! - `tool_result` blocks: string `content`, and `text` of the text blocks inside it;
//! - `document` blocks whose `source` is `{"type": "text"}`: `source.data`; and plain-text
//!   `content` blocks of `{"type": "content"}` sources.
//!
//! Each string that had something masked is re-encoded and spliced in place; every other byte
//! of the body is kept, so the masked body stays byte-identical across turns and Anthropic's
//! prompt cache keeps hitting (masks are deterministic).
//!
//! Not scanned: assistant turns (they were masked on the way out), the system prompt and tool
//! definitions (written by the agent's author, not read from the environment), images and PDFs
//! (binary). A `block` finding refuses the request (403 `sensitive_data_blocked`).

use super::json::escape_into;
use super::mask::Tally;
use super::memo::CleanMemo;
use super::response::blocked;
use super::text::{redact, Redaction};
use crate::core::errors::{Denial, Reason};
use crate::core::messages::Message;
use crate::core::splice::{apply, splice_of, Splice};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    messages: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<&'a RawValue>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
    #[serde(borrow, default)]
    source: Option<Source<'a>>,
}

#[derive(Deserialize)]
struct Source<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

/// Masks the user-supplied text of a Messages body. `None` means unchanged. With a memo (and
/// the salt naming the profile), user messages found clean in an earlier turn are skipped.
pub fn redact_request(
    redaction: &Redaction,
    body: &[u8],
    tally: &mut Tally,
    memo: Option<(&CleanMemo, u64)>,
) -> Result<Option<Vec<u8>>, Denial> {
    if !redaction.is_active() {
        return Ok(None);
    }
    let text = std::str::from_utf8(body).map_err(|_| Denial::new(Reason::InvalidJson, "the body is not UTF-8"))?;
    let parsed: Body = serde_json::from_str(text)
        .map_err(|e| Denial::new(Reason::InvalidRequest, format!("`messages` has an unexpected shape: {e}")))?;
    let digests: Vec<u128> = match memo {
        Some((memo, _)) => parsed.messages.iter().map(|m| memo.digest(m.get().as_bytes())).collect(),
        None => Vec::new(),
    };
    apply(body, mask_messages(redaction, text, &parsed.messages, &digests, tally, memo)?)
}

/// The splices that mask the user-supplied text of `messages` (raw entries borrowed from
/// `text`, the body parsed once by [`crate::core::messages::check_body_with`]). With a memo,
/// `digests` holds each message's [`CleanMemo::digest`] (or is empty: nothing is skipped).
pub fn mask_messages(
    redaction: &Redaction,
    text: &str,
    messages: &[&RawValue],
    digests: &[u128],
    tally: &mut Tally,
    memo: Option<(&CleanMemo, u64)>,
) -> Result<Vec<Splice>, Denial> {
    if !redaction.is_active() {
        return Ok(Vec::new());
    }
    let mut scan = Scanner { redaction, text, tally, splices: Vec::new() };
    for (i, raw) in messages.iter().enumerate() {
        let memo = memo.zip(digests.get(i));
        // A message seen clean in an earlier turn is skipped whole: only its raw bytes were
        // hashed, nothing is parsed or decoded again.
        if memo.is_some_and(|((memo, salt), digest)| memo.is_clean(salt, *digest)) {
            continue;
        }
        let message = Message::parse(raw)?;
        let (findings, splices) = (scan.tally.count(), scan.splices.len());
        if let (Some("user"), Some(content)) = (message.role.as_deref(), message.content) {
            scan.content(content)?;
        }
        if let (Some(((memo, salt), digest)), true) =
            (memo, scan.tally.count() == findings && scan.splices.len() == splices)
        {
            memo.remember(salt, *digest);
        }
    }
    Ok(scan.splices)
}

struct Scanner<'r, 't> {
    redaction: &'r Redaction<'r>,
    text: &'t str,
    tally: &'r mut Tally,
    splices: Vec<Splice>,
}

impl Scanner<'_, '_> {
    /// A `content` value: a string, or an array of blocks.
    fn content(&mut self, raw: &RawValue) -> Result<(), Denial> {
        let json = raw.get();
        if json.starts_with('"') {
            return self.string(raw);
        }
        if !json.starts_with('[') {
            return Ok(());
        }
        let blocks: Vec<Block> = serde_json::from_str(json).map_err(|e| {
            Denial::new(Reason::InvalidRequest, format!("a content block has an unexpected shape: {e}"))
        })?;
        for block in &blocks {
            match block.kind.as_deref() {
                Some("text") => self.optional_string(block.text)?,
                Some("tool_result") => {
                    if let Some(content) = block.content {
                        self.content(content)?;
                    }
                }
                Some("document") => {
                    if let Some(source) = &block.source {
                        match source.kind.as_deref() {
                            Some("text") => self.optional_string(source.data)?,
                            Some("content") => {
                                if let Some(content) = source.content {
                                    self.content(content)?;
                                }
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn optional_string(&mut self, raw: Option<&RawValue>) -> Result<(), Denial> {
        match raw {
            Some(raw) if raw.get().starts_with('"') => self.string(raw),
            _ => Ok(()),
        }
    }

    /// A JSON string: decode, redact, and splice it back if anything was masked.
    fn string(&mut self, raw: &RawValue) -> Result<(), Denial> {
        let decoded: Cow<str> = serde_json::from_str(raw.get())
            .map_err(|e| Denial::new(Reason::InvalidRequest, format!("a text value is not a string: {e}")))?;
        if let Cow::Owned(redacted) = redact(self.redaction, &decoded, self.tally).map_err(blocked)? {
            let mut encoded = String::with_capacity(redacted.len() + 2);
            encoded.push('"');
            escape_into(&redacted, &mut encoded);
            encoded.push('"');
            self.splices.push(splice_of(self.text, raw.get(), encoded.into_bytes()));
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
    use serde_json::{json, Value};

    fn run(actions: [Action; 4], body: &Value) -> (Result<Option<Vec<u8>>, Denial>, Tally, MaskKey) {
        let engine = small_engine();
        let key = MaskKey::new(b"k".to_vec());
        let r = Redaction { engine: &engine, actions: &actions, key: &key };
        let mut tally = Tally::default();
        let out = redact_request(&r, body.to_string().as_bytes(), &mut tally, None);
        (out, tally, key)
    }

    #[test]
    fn user_text_tool_results_and_text_documents_are_masked_in_place() {
        let body = json!({
            "model": "claude-sonnet-4-5",
            "system": format!("system {TOKEN}"),
            "messages": [
                {"role": "user", "content": format!("my token {TOKEN}")},
                {"role": "assistant", "content": [{"type": "text", "text": format!("echo {TOKEN}")}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": format!("GITHUB_TOKEN={TOKEN}\n")},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": [{"type": "text", "text": format!("x\"{TOKEN}\"")}]},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": format!("doc {TOKEN}")}},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": TOKEN}},
                    {"type": "text", "text": "ok"}
                ]}
            ]
        });
        let (out, tally, key) = run([Action::Mask; 4], &body);
        let out: Value = serde_json::from_slice(&out.unwrap().unwrap()).unwrap();
        let mask = key.mask("github-pat", TOKEN);
        assert_eq!(out["messages"][0]["content"], format!("my token {mask}"));
        assert_eq!(out["messages"][2]["content"][0]["content"], format!("GITHUB_TOKEN={mask}\n"));
        assert_eq!(out["messages"][2]["content"][1]["content"][0]["text"], format!("x\"{mask}\""));
        assert_eq!(out["messages"][2]["content"][2]["source"]["data"], format!("doc {mask}"));
        // Not scanned: the system prompt, assistant turns and binary sources.
        assert_eq!(out["system"], body["system"]);
        assert_eq!(out["messages"][1], body["messages"][1]);
        assert_eq!(out["messages"][2]["content"][3], body["messages"][2]["content"][3]);
        assert_eq!(tally.to_string(), "masked github-pat=4");
    }

    #[test]
    fn unchanged_bodies_are_forwarded_as_they_are() {
        let body = json!({"messages": [{"role": "user", "content": "hello"}]});
        let (out, tally, _) = run([Action::Mask; 4], &body);
        assert_eq!(out.unwrap(), None);
        assert!(tally.is_empty());
    }

    #[test]
    fn other_bytes_are_kept_exactly() {
        let body = format!("{{ \"messages\" : [ {{\"role\":\"user\",\"content\":\"a {TOKEN} b\"}} ],\n \"z\": 1 }}");
        let engine = small_engine();
        let key = MaskKey::new(b"k".to_vec());
        let actions = [Action::Mask; 4];
        let r = Redaction { engine: &engine, actions: &actions, key: &key };
        let out = redact_request(&r, body.as_bytes(), &mut Tally::default(), None).unwrap().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), body.replace(TOKEN, &key.mask("github-pat", TOKEN)));
    }

    #[test]
    fn a_blocked_secret_refuses_the_request_without_naming_it() {
        let body = json!({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": TOKEN}]}]});
        let (out, _, _) = run([Action::Block, Action::Mask, Action::Mask, Action::Mask], &body);
        let denial = out.unwrap_err();
        assert_eq!(denial.reason, Reason::SensitiveDataBlocked);
        assert!(denial.detail.contains("github-pat") && !denial.detail.contains(TOKEN));
    }

    #[test]
    fn the_memo_skips_clean_history_but_never_a_finding() {
        let history = "fn main() { println!(\"hello\"); }\n".repeat(40);
        let body = json!({"messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": history}]},
            {"role": "user", "content": format!("{history} and {TOKEN}")}
        ]})
        .to_string();
        let engine = small_engine();
        let key = MaskKey::new(b"k".to_vec());
        let actions = [Action::Mask; 4];
        let r = Redaction { engine: &engine, actions: &actions, key: &key };
        let memo = CleanMemo::new(b"m");
        let mut first = Tally::default();
        let once = redact_request(&r, body.as_bytes(), &mut first, Some((&memo, 0))).unwrap();
        assert_eq!(memo.len(), 1, "only the clean message is remembered");
        let mut second = Tally::default();
        let twice = redact_request(&r, body.as_bytes(), &mut second, Some((&memo, 0))).unwrap();
        assert_eq!(once, twice);
        assert_eq!(first, second);
        assert_eq!(second.to_string(), "masked github-pat=1");
    }

    #[test]
    fn audit_only_counts_without_changing() {
        let body = json!({"messages": [{"role": "user", "content": "mail ann.lee@corp.io"}]});
        let (out, tally, _) = run([Action::Mask, Action::Mask, Action::Audit, Action::Mask], &body);
        assert_eq!(out.unwrap(), None);
        assert_eq!(tally.to_string(), "audited email=1");
    }
}
