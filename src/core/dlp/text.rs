//! Redacting text: a complete string at once, or a stream of pieces as they arrive.
//!
//! [`redact`] rewrites only the matched spans of a complete text and borrows it unchanged when
//! nothing is masked. [`TextStream`] is the same rewrite for text that arrives in pieces (the
//! `text_delta`s of one content block): each [`TextStream::push`] returns the part of the text
//! that has settled (see [`super::engine`]) with its masks applied, and keeps the undecided tail
//! plus a little settled context. [`TextStream::finish`] settles the rest.
//!
//! Cost: each push scans the held tail and some context again; once the tail is longer than
//! [`RESCAN_FROM`] it is scanned again only after half its length more has arrived, so the work
//! per byte is bounded whatever the text holds (a never-ending number run, a private key's body)
//! and the tail stays within [`Engine::hold_bound`]. Concatenating
//! everything a stream returns gives exactly what [`redact`] returns for the whole text, however
//! the text was split (property-tested below).
//!
//! A finding whose action is [`Action::Block`] stops the redaction with [`Blocked`] before any
//! of the span is returned; [`Action::Audit`] findings are counted and left in place.

use super::engine::{Action, Engine, Finding, Scratch};
use super::mask::{MaskKey, Tally};
use std::borrow::Cow;

/// What to look for and how to mask, for one direction of one role.
#[derive(Debug, Clone, Copy)]
pub struct Redaction<'a> {
    /// The compiled detectors.
    pub engine: &'a Engine,
    /// The action per detector index.
    pub actions: &'a [Action],
    /// The mask key.
    pub key: &'a MaskKey,
}

impl Redaction<'_> {
    /// Whether any detector is looked for at all.
    pub fn is_active(&self) -> bool {
        self.actions.iter().any(|a| *a != Action::Off)
    }
}

/// A `block` detector matched: the text must not be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// Id of the detector that matched (never the value).
    pub detector: String,
}

/// Masks the findings of `redaction` in a complete `text`.
pub fn redact<'t>(redaction: &Redaction, text: &'t str, tally: &mut Tally) -> Result<Cow<'t, str>, Blocked> {
    if !redaction.is_active() {
        return Ok(Cow::Borrowed(text));
    }
    let scan = redaction.engine.scan(text, 0, true, redaction.actions, &mut Scratch::default());
    apply(redaction, text, 0, text.len(), &scan.findings, tally)
}

/// Rewrites `text[from..to]`, masking the findings (whose masked parts lie inside that range;
/// a visible trigger literal may lie before `from`).
fn apply<'t>(
    redaction: &Redaction,
    text: &'t str,
    from: usize,
    to: usize,
    findings: &[Finding],
    tally: &mut Tally,
) -> Result<Cow<'t, str>, Blocked> {
    let piece = text.get(from..to).unwrap_or("");
    let mut out: Option<String> = None;
    let mut copied = from;
    for finding in findings {
        let Some(spec) = redaction.engine.spec(finding.detector) else { continue };
        let action = redaction.actions.get(finding.detector).copied().unwrap_or(Action::Off);
        match action {
            Action::Off => continue,
            Action::Audit => tally.add(&spec.id, Action::Audit),
            Action::Block => {
                tally.add(&spec.id, Action::Block);
                return Err(Blocked { detector: spec.id.clone() });
            }
            Action::Mask => {
                let value = text.get(finding.start..finding.end).unwrap_or("");
                let out = out.get_or_insert_with(|| String::with_capacity(piece.len() + 32));
                out.push_str(text.get(copied..finding.mask_from).unwrap_or(""));
                out.push_str(&redaction.key.mask(&spec.id, value));
                copied = finding.end;
                tally.add(&spec.id, Action::Mask);
            }
        }
    }
    Ok(match out {
        None => Cow::Borrowed(piece),
        Some(mut out) => {
            out.push_str(text.get(copied..to).unwrap_or(""));
            Cow::Owned(out)
        }
    })
}

/// Redacts a text that arrives in pieces.
#[derive(Debug, Default)]
pub struct TextStream {
    /// Settled context (already returned) followed by the unsettled tail.
    buffer: String,
    /// Length of the settled context at the start of `buffer`.
    settled: usize,
    /// Stream offset of `buffer`'s first byte (bytes dropped so far).
    dropped: usize,
    /// Bytes added since the last scan.
    pending: usize,
    /// Bytes of text scanned so far (the work done), for the linearity tests.
    #[cfg(test)]
    scanned: usize,
    /// Bytes held back after the last scan.
    held_at_scan: usize,
    scratch: Scratch,
}

/// Held-back size from which a stream re-scans only after half of it again has arrived. Below
/// it every piece is scanned at once (a held word settles with the next piece); above it,
/// re-scanning the held tail (a number-like run, a private key's body, up to its detector's
/// `max_len`) for every small piece would cost the held size per piece: waiting for half more
/// keeps the work per byte bounded, at the price of holding at most half longer.
const RESCAN_FROM: usize = 48;

impl TextStream {
    /// Adds `piece` and returns the newly settled text, masked.
    pub fn push(&mut self, redaction: &Redaction, piece: &str, tally: &mut Tally) -> Result<String, Blocked> {
        if !redaction.is_active() {
            return Ok(piece.to_string());
        }
        self.buffer.push_str(piece);
        self.pending += piece.len();
        if self.held_at_scan >= RESCAN_FROM && self.pending * 2 < self.held_at_scan {
            return Ok(String::new());
        }
        self.advance(redaction, false, tally)
    }

    /// Settles and returns everything still held back; the stream can then be reused.
    pub fn finish(&mut self, redaction: &Redaction, tally: &mut Tally) -> Result<String, Blocked> {
        if !redaction.is_active() {
            return Ok(String::new());
        }
        let out = self.advance(redaction, true, tally);
        self.dropped += self.buffer.len();
        self.buffer.clear();
        self.settled = 0;
        self.held_at_scan = 0;
        self.scratch = Scratch::default();
        out
    }

    /// Bytes held back, not yet returned.
    pub fn held(&self) -> usize {
        self.buffer.len() - self.settled
    }

    fn advance(&mut self, redaction: &Redaction, at_end: bool, tally: &mut Tally) -> Result<String, Blocked> {
        self.scratch.rebase(self.dropped);
        #[cfg(test)]
        {
            self.scanned += self.buffer.len();
        }
        let scan = redaction.engine.scan(&self.buffer, self.settled, at_end, redaction.actions, &mut self.scratch);
        let out = apply(redaction, &self.buffer, self.settled, scan.settled, &scan.findings, tally)?.into_owned();
        self.settled = scan.settled;
        // Keep only the context later matches may look back at.
        let keep_from = self.settled.saturating_sub(redaction.engine.context_bytes());
        let mut cut = keep_from;
        while cut > 0 && !self.buffer.is_char_boundary(cut) {
            cut -= 1;
        }
        if cut > 0 {
            self.buffer.drain(..cut);
            self.settled -= cut;
            self.dropped += cut;
        }
        self.pending = 0;
        self.held_at_scan = self.held();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::dlp::engine::tests::{small_engine, TOKEN};
    use proptest::prelude::*;

    fn stream_all(redaction: &Redaction, pieces: &[&str]) -> (String, Tally) {
        let mut tally = Tally::default();
        let mut stream = TextStream::default();
        let mut out = String::new();
        for piece in pieces {
            out.push_str(&stream.push(redaction, piece, &mut tally).unwrap());
        }
        out.push_str(&stream.finish(redaction, &mut tally).unwrap());
        (out, tally)
    }

    #[test]
    fn complete_text_is_masked_only_at_the_matches() {
        let engine = small_engine();
        let key = MaskKey::new(b"k".to_vec());
        let actions = vec![Action::Mask; 4];
        let r = Redaction { engine: &engine, actions: &actions, key: &key };
        let mut tally = Tally::default();
        let text = format!("use {TOKEN} now");
        let out = redact(&r, &text, &mut tally).unwrap();
        assert_eq!(out, format!("use {} now", key.mask("github-pat", TOKEN)));
        assert_eq!(tally.to_string(), "masked github-pat=1");
        assert!(matches!(redact(&r, "nothing here", &mut tally).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn a_secret_straddling_many_pieces_is_masked_and_plain_text_is_not_delayed() {
        let engine = small_engine();
        let key = MaskKey::new(b"k".to_vec());
        let actions = [Action::Mask, Action::Mask, Action::Off, Action::Mask];
        let r = Redaction { engine: &engine, actions: &actions, key: &key };
        let mut tally = Tally::default();
        let mut stream = TextStream::default();
        assert_eq!(stream.push(&r, "Your token is ", &mut tally).unwrap(), "Your token is ");
        assert_eq!(stream.push(&r, "gh", &mut tally).unwrap(), "");
        assert_eq!(stream.push(&r, &TOKEN[2..15], &mut tally).unwrap(), "");
        assert_eq!(stream.push(&r, &TOKEN[15..30], &mut tally).unwrap(), "");
        assert_eq!(stream.push(&r, &TOKEN[30..], &mut tally).unwrap(), "");
        assert_eq!(
            stream.push(&r, ". Keep it safe.", &mut tally).unwrap(),
            format!("{}. Keep it safe.", key.mask("github-pat", TOKEN))
        );
        assert_eq!(stream.finish(&r, &mut tally).unwrap(), "");
    }

    #[test]
    fn block_stops_before_any_part_of_the_secret() {
        let engine = small_engine();
        let key = MaskKey::new(b"k".to_vec());
        let actions = [Action::Block, Action::Mask, Action::Mask, Action::Mask];
        let r = Redaction { engine: &engine, actions: &actions, key: &key };
        let mut tally = Tally::default();
        let mut stream = TextStream::default();
        let mut delivered = stream.push(&r, "here: ", &mut tally).unwrap();
        delivered.push_str(&stream.push(&r, &TOKEN[..10], &mut tally).unwrap());
        assert_eq!(stream.push(&r, &TOKEN[10..], &mut tally).unwrap_or_default(), "");
        let err = stream.push(&r, " ok", &mut tally).unwrap_err();
        assert_eq!(err.detector, "github-pat");
        assert_eq!(delivered, "here: ");
    }

    fn split_points(len: usize) -> impl Strategy<Value = Vec<usize>> {
        proptest::collection::vec(0..=len, 0..8).prop_map(|mut v| {
            v.sort_unstable();
            v
        })
    }

    fn pieces_at<'t>(text: &'t str, cuts: &[usize]) -> Vec<&'t str> {
        let mut pieces = Vec::new();
        let mut last = 0;
        for &cut in cuts {
            let mut cut = cut.clamp(last, text.len());
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            pieces.push(&text[last..cut]);
            last = cut;
        }
        pieces.push(&text[last..]);
        pieces
    }

    fn corpus() -> impl Strategy<Value = String> {
        let parts = prop_oneof![
            Just(TOKEN.to_string()),
            Just("ann.lee@corp.io".to_string()),
            Just("4111 1111 1111 1111".to_string()),
            Just("password = \"s3cr3t-P4ss\"".to_string()),
            Just("password is fine".to_string()),
            Just("gh".to_string()),
            Just("é€😀".to_string()),
            "[a-z @.:=\"0-9\n-]{0,12}",
            // Long runs a stream may hold back: number-like, upper-case, an open assignment.
            (1usize..120).prop_map(|n| "1 ".repeat(n)),
            (1usize..200).prop_map(|n| "7".repeat(n)),
            (1usize..40).prop_map(|n| "ABCD EF12 ".repeat(n)),
            (200usize..700).prop_map(|n| format!("password={}", "x".repeat(n))),
        ];
        proptest::collection::vec(parts, 0..8).prop_map(|v| v.concat())
    }

    /// Streams `text` in pieces of `piece` bytes through the full catalog; returns the most
    /// held back at once and the bytes scanned.
    fn adversarial(text: &str, piece: usize) -> (usize, usize) {
        let engine = Engine::new(crate::core::dlp::catalog::builtin()).unwrap();
        let actions = vec![Action::Mask; engine.specs().len()];
        let key = MaskKey::new(b"k".to_vec());
        let r = Redaction { engine: &engine, actions: &actions, key: &key };
        let mut stream = TextStream::default();
        let mut tally = Tally::default();
        let (mut out, mut most_held) = (String::new(), 0);
        for chunk in text.as_bytes().chunks(piece) {
            out.push_str(&stream.push(&r, std::str::from_utf8(chunk).unwrap(), &mut tally).unwrap());
            most_held = most_held.max(stream.held());
        }
        out.push_str(&stream.finish(&r, &mut tally).unwrap());
        assert_eq!(out, redact(&r, text, &mut Tally::default()).unwrap());
        (most_held, stream.scanned)
    }

    /// Adversarial texts: long number-like, upper-case and base64 runs, and a private key's
    /// header followed by a long body.
    fn adversarial_texts() -> Vec<(&'static str, String)> {
        let hex: String = (0..20_000).map(|i| char::from(b"0123456789ABCDEF"[(i * 7 + i / 3) % 16])).collect();
        let b64: String = (0..20_000)
            .map(|i| {
                char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i * 31 + i / 7) % 64])
            })
            .collect();
        vec![
            ("digits and spaces", "1 ".repeat(10_000)),
            ("one digit run", "7".repeat(20_000)),
            ("upper-case hex", hex),
            ("upper-case words", "ABCD EF12 ".repeat(2_000)),
            ("base64", b64.clone()),
            ("private key body", format!("-----BEGIN PRIVATE KEY-----\n{b64}{b64}")),
        ]
    }

    #[test]
    fn long_runs_are_held_back_by_at_most_the_longest_match_a_detector_allows() {
        let bound = Engine::new(crate::core::dlp::catalog::builtin()).unwrap().hold_bound();
        assert_eq!(bound, 24_604, "the bound docs/dlp.md states");
        for (name, text) in adversarial_texts() {
            for piece in [1, 2, 12] {
                let (most_held, _) = adversarial(&text, piece);
                assert!(most_held <= bound, "{name} in {piece}-byte pieces: {most_held} bytes held (bound {bound})");
            }
        }
    }

    #[test]
    fn stream_work_is_linear_in_the_text_whatever_it_holds() {
        for (name, text) in adversarial_texts() {
            for piece in [1, 2, 12] {
                let (_, scanned) = adversarial(&text, piece);
                // Each byte is scanned a bounded number of times: the held tail (≤ 64 bytes
                // for number-like runs) plus context once per piece, or a quarter more of a
                // long tail before it is scanned again.
                assert!(scanned <= 400 * text.len(), "{name} in {piece}-byte pieces: {scanned} bytes scanned");
            }
        }
    }

    proptest! {
        #[test]
        fn streamed_text_equals_one_shot_for_any_split(text in corpus(), cuts in split_points(200)) {
            let engine = small_engine();
            let key = MaskKey::new(b"k".to_vec());
            let actions = vec![Action::Mask; 4];
            let r = Redaction { engine: &engine, actions: &actions, key: &key };
            let mut one_shot_tally = Tally::default();
            let one_shot = redact(&r, &text, &mut one_shot_tally).unwrap().into_owned();
            let (streamed, tally) = stream_all(&r, &pieces_at(&text, &cuts));
            prop_assert_eq!(&streamed, &one_shot);
            prop_assert_eq!(tally, one_shot_tally);
        }
    }
}

#[cfg(test)]
mod catalog_stream_tests {
    use super::*;
    use crate::core::dlp::catalog;
    use crate::core::dlp::detector::Category;

    /// Prose that mentions no credential keyword, but is full of words that begin like vendor
    /// prefixes (`s`k-, `a`ge, `dapi`, `hf`, `xai`, `pul`, `gh`…).
    const PLAIN: &str = "Sure! Here is the plan: first we update the parser so that it handles \
        chunks split anywhere, then we add tests for the store and the reset flow. The rotation \
        runs nightly at 2am; ask Dana if the pipeline fails or the xai and dapi clients hang. \
        Let me know what you think, and I will open a pull request with the changes on GitHub.";

    /// The same with credential keywords, whose values could follow them.
    const KEYWORDS: &str = "The password reset flow rotates each token; the secret store keeps \
        the api key rotation log.";

    /// Pieces as Claude streams them: a word with its leading space, punctuation attached.
    fn words(text: &str) -> Vec<&str> {
        let mut pieces = Vec::new();
        let mut start = 0;
        for (i, c) in text.char_indices().skip(1) {
            if c == ' ' {
                pieces.push(&text[start..i]);
                start = i;
            }
        }
        pieces.push(&text[start..]);
        pieces
    }

    /// For each piece: what a stream holds back after it, with the given categories active.
    fn held_after_each_piece(text: &str, categories: &[Category]) -> Vec<(String, String)> {
        let engine = Engine::new(catalog::builtin()).unwrap();
        let actions: Vec<Action> = engine
            .specs()
            .iter()
            .map(|s| if categories.contains(&s.category) { Action::Mask } else { Action::Off })
            .collect();
        let key = MaskKey::new(b"k".to_vec());
        let r = Redaction { engine: &engine, actions: &actions, key: &key };
        let mut stream = TextStream::default();
        let mut tally = Tally::default();
        let mut out = String::new();
        let mut held = Vec::new();
        for piece in words(text) {
            out.push_str(&stream.push(&r, piece, &mut tally).unwrap());
            held.push((piece.to_string(), stream.buffer[stream.settled..].to_string()));
        }
        out.push_str(&stream.finish(&r, &mut tally).unwrap());
        assert_eq!(out, text, "nothing here is masked");
        held
    }

    #[test]
    fn credential_detectors_deliver_plain_prose_at_once() {
        let held: Vec<_> = held_after_each_piece(PLAIN, &[Category::Credential])
            .into_iter()
            .filter(|(_, held)| !held.is_empty())
            .collect();
        assert_eq!(held, Vec::<(String, String)>::new());
    }

    #[test]
    fn after_a_credential_keyword_only_the_rest_of_that_piece_waits() {
        for (piece, held) in held_after_each_piece(KEYWORDS, &[Category::Credential]) {
            assert!(piece.ends_with(&held), "{held:?} held after {piece:?}");
        }
    }

    #[test]
    fn with_personal_data_detectors_at_most_the_last_word_of_a_piece_waits() {
        for (piece, held) in held_after_each_piece(PLAIN, &[Category::Credential, Category::Pii]) {
            assert!(piece.ends_with(&held) && !held.contains(' '), "{held:?} held after {piece:?}");
        }
    }
}

#[cfg(test)]
mod catalog_split_tests {
    use super::*;
    use crate::core::dlp::catalog;
    use crate::core::dlp::engine::Engine;

    /// Texts whose streamed masking once differed from the one-shot masking at some split.
    const REGRESSIONS: [&str; 3] = [
        "Authorization: Token access_token$production$frgj66fjmosqxn57$c421fbf951f98b69002997a4d55cf565\nContent-Type: application/json",
        "$ npx release-tool search --national-id=BSN = 508474954 --verbose",
        "$ mycli catalog --national-id SIN: 438 853 665 --region us-east-1",
    ];

    #[test]
    fn the_full_catalog_streams_these_texts_as_one_shot_at_every_split() {
        let engine = Engine::new(catalog::builtin()).unwrap();
        let actions = vec![Action::Mask; engine.specs().len()];
        let key = MaskKey::new(b"k".to_vec());
        let r = Redaction { engine: &engine, actions: &actions, key: &key };
        let mut failures = Vec::new();
        for text in REGRESSIONS {
            let one_shot = redact(&r, text, &mut Tally::default()).unwrap().into_owned();
            for cut in (1..text.len()).filter(|&c| text.is_char_boundary(c)) {
                let mut stream = TextStream::default();
                let mut tally = Tally::default();
                let mut out = stream.push(&r, &text[..cut], &mut tally).unwrap();
                out.push_str(&stream.push(&r, &text[cut..], &mut tally).unwrap());
                out.push_str(&stream.finish(&r, &mut tally).unwrap());
                if out != one_shot {
                    failures.push(format!("cut {cut} of {text:?}:\n  stream   {out:?}\n  one-shot {one_shot:?}"));
                    break;
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
