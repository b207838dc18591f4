//! Masking what the agent sends: every string of the conversation and the system prompt.
//!
//! Algorithm: the body (already accepted by [`crate::core::request::messages::check_body_with`], which bounds
//! its nesting) is parsed again into a borrowed view of `messages[]` and `system`. Every entry of
//! `messages` — user and assistant turns alike, including an assistant prefill — and the system
//! prompt are walked with [`redact_json_strings`] (an iterative walk, safe at any depth): every
//! string value is scanned except the Messages API's structural ones ([`structural`]: ids,
//! signatures, `type`/`role`/`name`/`media_type`, base64 and encrypted `data`). So text, tool
//! results, tool-call arguments (`input`, keys included), thinking text, text documents' `data`,
//! document and search-result titles, `context`, `source`, citations and image/document URLs are
//! all masked.
//!
//! Each string that had something masked is re-encoded and spliced in place; every other byte
//! of the body is kept, so the masked body stays byte-identical across turns and Anthropic's
//! prompt cache keeps hitting (masks are deterministic).
//!
//! Not scanned: tool definitions and MCP server entries (configuration written by the agent's
//! author; an MCP `authorization_token` must reach Anthropic unchanged to work), and base64
//! payloads (binary images and PDFs). A `block` finding refuses the request (403
//! `sensitive_data_blocked`).
//!
//! Thinking blocks sent back: their text was masked on the way out, so it has nothing new to
//! mask; a thinking block that does get masked here no longer matches its signature and
//! Anthropic refuses the request — preferred to forwarding the secret.

use super::json::{redact_json_strings, structural};
use super::mask::Tally;
use super::memo::CleanMemo;
use super::response::blocked;
use super::text::Redaction;
use crate::core::errors::{Denial, Reason};
use crate::core::request::nesting::check_depth;
use crate::core::request::splice::{apply, splice_of, Splice};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    messages: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    system: Option<&'a RawValue>,
}

/// Masks the client-supplied content of a Messages body. `None` means unchanged. With a memo
/// (and the salt naming the profile), messages (and a system prompt) found clean in an earlier
/// turn are skipped.
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
    check_depth(body)?;
    let parsed: Body = serde_json::from_str(text)
        .map_err(|e| Denial::new(Reason::InvalidRequest, format!("`messages` has an unexpected shape: {e}")))?;
    let digests: Vec<u128> = match memo {
        Some((memo, _)) => parsed.messages.iter().map(|m| memo.digest(m.get().as_bytes())).collect(),
        None => Vec::new(),
    };
    let known = Known { digests: &digests, ..Known::default() };
    apply(body, mask_messages(redaction, text, &parsed.messages, parsed.system, known, tally, memo)?.splices)
}

/// What the request path already knows of a body's messages before masking them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    /// Leading messages byte-identical to a session prefix found clean before
    /// ([`super::memo::SessionMemo`]): not scanned, not hashed.
    pub clean_prefix: usize,
    /// [`CleanMemo::digest`]s of the messages from index `digests_from` on (or empty: the
    /// per-worker memo is not consulted).
    pub digests: &'a [u128],
    /// The index of the message `digests` starts with.
    pub digests_from: usize,
}

impl Known<'_> {
    fn digest(&self, index: usize) -> Option<u128> {
        index.checked_sub(self.digests_from).and_then(|i| self.digests.get(i)).copied()
    }
}

/// What masking found: the splices, and how many leading messages were clean (no finding of
/// any action), the session prefix's next length.
#[derive(Debug, Default)]
pub struct Masking {
    /// Splices that mask what was found.
    pub splices: Vec<Splice>,
    /// Leading messages without a finding (the known clean prefix included).
    pub clean_leading: usize,
}

/// The splices that mask the client-supplied content of `messages` and `system` (raw values
/// borrowed from `text`, the body parsed once by [`crate::core::request::messages::check_body_with`]).
/// `known` says which messages are known clean (skipped) and gives the digests the per-worker
/// memo is consulted with; the system prompt's digest is computed here.
pub fn mask_messages(
    redaction: &Redaction,
    text: &str,
    messages: &[&RawValue],
    system: Option<&RawValue>,
    known: Known,
    tally: &mut Tally,
    memo: Option<(&CleanMemo, u64)>,
) -> Result<Masking, Denial> {
    if !redaction.is_active() {
        return Ok(Masking::default());
    }
    let mut splices = Vec::new();
    let mut clean_leading = known.clean_prefix.min(messages.len());
    let system_digest = system.zip(memo).map(|(raw, (memo, _))| memo.digest(raw.get().as_bytes()));
    let parts = messages
        .iter()
        .enumerate()
        .skip(clean_leading)
        .map(|(i, raw)| (Some(i), *raw, known.digest(i)))
        .chain(system.map(|raw| (None, raw, system_digest)));
    for (index, raw, digest) in parts {
        let memo = memo.zip(digest);
        // A part seen clean in an earlier turn is skipped whole: only its raw bytes were
        // hashed, nothing is parsed or decoded again.
        let clean = if memo.is_some_and(|((memo, salt), digest)| memo.is_clean(salt, digest)) {
            true
        } else {
            let (findings, before) = (tally.count(), splices.len());
            let json = raw.get();
            redact_json_strings(redaction, json, &structural, tally, |range, encoded| {
                splices.push(splice_of(text, json.get(range).unwrap_or(""), encoded.into_bytes()));
            })
            .map_err(blocked)?;
            let clean = tally.count() == findings && splices.len() == before;
            if let (Some(((memo, salt), digest)), true) = (memo, clean) {
                memo.remember(salt, digest);
            }
            clean
        };
        if clean && index == Some(clean_leading) {
            clean_leading += 1;
        }
    }
    Ok(Masking { splices, clean_leading })
}

#[cfg(test)]
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
            "messages": [
                {"role": "user", "content": format!("my token {TOKEN}")},
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
        assert_eq!(out["messages"][1]["content"][0]["content"], format!("GITHUB_TOKEN={mask}\n"));
        assert_eq!(out["messages"][1]["content"][1]["content"][0]["text"], format!("x\"{mask}\""));
        assert_eq!(out["messages"][1]["content"][2]["source"]["data"], format!("doc {mask}"));
        // Base64 payloads are binary: left alone.
        assert_eq!(out["messages"][1]["content"][3], body["messages"][1]["content"][3]);
        assert_eq!(tally.to_string(), "masked github-pat=4");
    }

    #[test]
    fn every_client_controlled_string_that_reaches_claude_is_masked() {
        let secret = |what: &str| format!("{what} {TOKEN}");
        let body = json!({
            "model": "claude-sonnet-4-5",
            "system": [{"type": "text", "text": secret("system block"), "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "search_result", "source": format!("https://x.io/?t={TOKEN}"), "title": secret("title"),
                     "content": [{"type": "text", "text": secret("result")}]},
                    {"type": "document", "title": secret("doc title"), "context": secret("context"),
                     "source": {"type": "url", "url": format!("https://x.io/{TOKEN}.pdf")}},
                    {"type": "image", "source": {"type": "url", "url": format!("https://x.io/{TOKEN}.png")}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": secret("thought"), "signature": TOKEN},
                    {"type": "redacted_thinking", "data": TOKEN},
                    {"type": "text", "text": secret("said")},
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": secret("run"), (TOKEN): 1}}
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
                {"role": "assistant", "content": secret("prefill")}
            ]
        });
        let (out, tally, key) = run([Action::Mask; 4], &body);
        let out = String::from_utf8(out.unwrap().unwrap()).unwrap();
        let value: Value = serde_json::from_str(&out).unwrap();
        let mask = key.mask("github-pat", TOKEN);
        let masked = |what: &str| format!("{what} {mask}");
        assert_eq!(value["system"][0]["text"], masked("system block"));
        let user = &value["messages"][0]["content"];
        assert_eq!(user[0]["source"], format!("https://x.io/?t={mask}"));
        assert_eq!(user[0]["title"], masked("title"));
        assert_eq!(user[0]["content"][0]["text"], masked("result"));
        assert_eq!(user[1]["title"], masked("doc title"));
        assert_eq!(user[1]["context"], masked("context"));
        assert_eq!(user[1]["source"]["url"], format!("https://x.io/{mask}.pdf"));
        assert_eq!(user[2]["source"]["url"], format!("https://x.io/{mask}.png"));
        let assistant = &value["messages"][1]["content"];
        assert_eq!(assistant[0]["thinking"], masked("thought"));
        assert_eq!(assistant[0]["signature"], TOKEN, "signatures are structural");
        assert_eq!(assistant[1]["data"], TOKEN, "encrypted thinking is opaque");
        assert_eq!(assistant[2]["text"], masked("said"));
        assert_eq!(assistant[3]["input"]["command"], masked("run"));
        assert_eq!(assistant[3]["input"][&mask], 1, "tool arguments' keys are content");
        assert_eq!((assistant[3]["id"].as_str(), assistant[3]["name"].as_str()), (Some("toolu_1"), Some("Bash")));
        assert_eq!(value["messages"][3]["content"], masked("prefill"));
        assert_eq!(tally.to_string(), "masked github-pat=13");
        // Only the changed strings were rewritten.
        let original = body.to_string();
        assert_eq!(out.len() as isize - original.len() as isize, 13 * (mask.len() as isize - TOKEN.len() as isize));
    }

    #[test]
    fn a_plain_string_system_prompt_is_masked_and_remembered_when_clean() {
        let engine = small_engine();
        let key = MaskKey::new(b"k".to_vec());
        let actions = [Action::Mask; 4];
        let r = Redaction { engine: &engine, actions: &actions, key: &key };
        let memo = CleanMemo::new(b"m");
        let dirty = json!({"system": format!("s {TOKEN}"), "messages": []}).to_string();
        let out = redact_request(&r, dirty.as_bytes(), &mut Tally::default(), Some((&memo, 0))).unwrap().unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["system"], format!("s {}", key.mask("github-pat", TOKEN)));
        assert_eq!(memo.len(), 0);
        let clean = json!({"system": "be brief", "messages": []}).to_string();
        assert_eq!(redact_request(&r, clean.as_bytes(), &mut Tally::default(), Some((&memo, 0))).unwrap(), None);
        assert_eq!(memo.len(), 1);
    }

    #[test]
    fn over_deep_bodies_are_refused_and_deep_content_is_walked_without_recursion() {
        use crate::core::request::nesting::{nested_tool_results, on_small_stack, SMALL_STACK};
        for levels in [4_000, 100_000] {
            let (refused, masked) = on_small_stack(SMALL_STACK, move || {
                let body = nested_tool_results(levels, &format!("deep {TOKEN}"));
                let engine = small_engine();
                let key = MaskKey::new(b"k".to_vec());
                let actions = [Action::Mask; 4];
                let r = Redaction { engine: &engine, actions: &actions, key: &key };
                let refused = redact_request(&r, body.as_bytes(), &mut Tally::default(), None).unwrap_err().reason;
                // The walk itself needs no depth limit: handed the raw message directly, it masks
                // the innermost text.
                let text = body.as_str();
                let start = text.find("{\"role\"").unwrap();
                let message = &text[start..text.len() - 2];
                let raw: &RawValue = serde_json::from_str(message).unwrap();
                let mut tally = Tally::default();
                let splices =
                    mask_messages(&r, text, &[raw], None, Known::default(), &mut tally, None).unwrap().splices;
                (refused, splices.len())
            });
            assert_eq!(refused, Reason::InvalidRequest);
            assert_eq!(masked, 1);
        }
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

    #[test]
    fn masking_counts_the_leading_clean_messages_and_skips_a_known_clean_prefix() {
        let engine = small_engine();
        let key = MaskKey::new(b"k".to_vec());
        let actions = [Action::Mask; 4];
        let r = Redaction { engine: &engine, actions: &actions, key: &key };
        let messages = [
            json!({"role": "user", "content": "hello"}).to_string(),
            json!({"role": "assistant", "content": "hi"}).to_string(),
            json!({"role": "user", "content": format!("key {TOKEN}")}).to_string(),
            json!({"role": "user", "content": "clean again"}).to_string(),
        ];
        let text = format!("[{}]", messages.join(","));
        let raws: Vec<&RawValue> = serde_json::from_str(&text).unwrap();
        let masked = mask_messages(&r, &text, &raws, None, Known::default(), &mut Tally::default(), None).unwrap();
        assert_eq!((masked.splices.len(), masked.clean_leading), (1, 2), "the run stops at the finding");
        let mut tally = Tally::default();
        let known = Known { clean_prefix: 3, ..Known::default() };
        let skipped = mask_messages(&r, &text, &raws, None, known, &mut tally, None).unwrap();
        assert_eq!(
            (skipped.splices.len(), skipped.clean_leading, tally.count()),
            (0, 4, 0),
            "a known prefix is not read"
        );
        let inactive = Redaction { engine: &engine, actions: &[Action::Off; 4], key: &key };
        let off = mask_messages(&inactive, &text, &raws, None, Known::default(), &mut Tally::default(), None).unwrap();
        assert_eq!(off.clean_leading, 0, "nothing scanned, nothing known clean");
    }
}
