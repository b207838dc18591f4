//! The scanning engine: finds detector matches in text, one-shot or over a growing stream.
//!
//! Algorithm, per text:
//! 1. **Candidates.** One Aho-Corasick pass (ASCII case-insensitive, overlapping) finds every
//!    trigger literal of every active detector; one byte loop finds number-like runs. Each hit
//!    becomes a candidate start (see [`super::detector`] for where each trigger starts).
//! 2. **Matches.** The detector's regex is searched *anchored* at the candidate start, over at
//!    most `max_len` bytes, with the whole text as context. The `secret` group (or the whole
//!    match) is the span; credential spans that are placeholders and spans the validator rejects
//!    are dropped. In a stream, the detector's lazy DFA first walks at most [`PEEK`] bytes from
//!    the candidate: if it dies there without passing a match, the candidate is dropped without
//!    a search (most hits of short literals such as `key`, `auth` or `--` end so). The scan's
//!    candidate and match lists and the capture slots live in the [`Scratch`], so a stream
//!    allocates them once.
//! 3. **Resolution.** Overlapping findings: the highest priority wins, then the longer span, then
//!    the earlier one. Findings come out in text order.
//!
//! Streaming ([`Engine::scan`] with `at_end = false`): a candidate is *undecided* while its
//! match could still change with more text — the detector's lazy DFA, run anchored from the
//! candidate start to the end of the text, is neither dead nor past `max_len`; in a
//! number-like run that touches the end, the candidates whose `max_len` window still reaches the
//! end are undecided (further back the window is complete, so the match is final). The text is also undecided from the start
//! of any trailing piece that could begin a masked span: a proper prefix of the literal of a
//! detector that masks its trigger too (most keep it visible: `ghp_[REDACTED:…]`), or, for
//! `Infix` detectors that mask the text before their literal (emails), the run of characters
//! that could precede it — in both cases only while the detector's DFA is still alive there. [`Scan::settled`] is the earliest undecided position: the
//! text before it will not change, whatever follows. A plain sentence whose last word is not
//! a possible secret prefix settles entirely.
//!
//! Limits: a pattern is assumed greedy-stable — once its DFA is dead, the match found is final.
//! The lazy DFA gives up on non-ASCII text next to a Unicode `\b`; such candidates stay
//! undecided until `max_len` bytes follow them. Only the first match per candidate start is
//! considered.

use super::detector::{Category, CharClass, DetectorSpec, Trigger, Validator};
use super::validators::is_placeholder;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::meta::Regex;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input};
use std::collections::HashMap;
use std::fmt;

/// Longest identifier run read back before a trigger literal (`STRIPE_` of `STRIPE_KEY`).
const MAX_NAME_BACK: usize = 64;

/// How many bytes from a stream's candidate its DFA walks, before any search, to drop a
/// candidate that cannot match (`key` in `keyboard`, the `--` of a Markdown rule).
const PEEK: usize = 32;

/// What a profile does with a detector's findings in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Not looked for.
    Off,
    /// Counted for the audit record, left in place.
    Audit,
    /// Replaced by a mask.
    Mask,
    /// The whole request or response is refused.
    Block,
}

/// A match of one detector: the span of `text` to mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// Index of the detector ([`Engine::spec`]).
    pub detector: usize,
    /// Byte offset where the value starts.
    pub start: usize,
    /// Byte offset just past the value.
    pub end: usize,
    /// Where the mask starts: `start`, or past the trigger literal for detectors that keep it
    /// visible (`ghp_[REDACTED:…]`). The mask's hash is still of the whole value.
    pub mask_from: usize,
}

/// The result of scanning a text that may still grow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Findings that end at or before `settled`, in text order, not overlapping.
    pub findings: Vec<Finding>,
    /// Length of the prefix of the text that no further text can change.
    pub settled: usize,
}

/// A detector that does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorError {
    /// The detector's id.
    pub id: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for DetectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "detector {}: {}", self.id, self.message)
    }
}

struct Compiled {
    regex: Regex,
    /// Index of the `secret` capture group, when the pattern has one.
    secret_group: Option<usize>,
    /// The same pattern as a lazy DFA, for "can this still match?" while streaming.
    dfa: DFA,
}

/// Which detector a trigger literal starts, and how.
#[derive(Debug, Clone, Copy)]
struct LiteralOwner {
    detector: usize,
    /// For `Infix`: the run class preceding the literal and how far back it may go.
    infix: Option<(CharClass, usize)>,
}

/// A compiled detector set.
pub struct Engine {
    specs: Vec<DetectorSpec>,
    compiled: Vec<Compiled>,
    literals: AhoCorasick,
    /// Per literal (Aho-Corasick pattern id): the detectors it triggers.
    owners: Vec<Vec<LiteralOwner>>,
    /// Length of the longest literal: how far back a hit reaching into new text can start.
    longest_literal: usize,
    /// Detectors triggered by number-like runs, grouped by run class: one pass per class.
    digit_groups: Vec<DigitGroup>,
    /// The literals (lower-case) of `Prefix` detectors that mask their literal too, as a trie, to
    /// find a trailing partial literal a stream must hold back (a detector that keeps its
    /// literal visible never holds one back).
    literal_trie: PrefixTrie,
    /// Length of the longest literal in `literal_trie`.
    longest_held_literal: usize,
    /// Per literal: whether a hit before the new text can still mask something in it (an
    /// `Infix` detector, or one that keeps its trigger visible).
    reaches_forward: Vec<bool>,
    /// `Infix` detectors that mask the run before their literal: `(detector, run, max_back)`.
    infix_runs: Vec<(usize, CharClass, usize)>,
    /// Bytes of already settled text a stream keeps as context for later matches.
    context_bytes: usize,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("detectors", &self.specs.len()).finish()
    }
}

/// Three stream offsets: a decided candidate's (detector, start, hold-from) as a key, a finding's
/// (start, end, mask-from) as a value.
type Decided = (usize, usize, usize);

/// Per-stream mutable state of a scan: the lazy DFAs' caches, the capture slots and the scan's
/// lists (kept for their capacity), and the decisions already made. A scratch belongs to one
/// engine: a new engine needs a new scratch.
#[derive(Default)]
pub struct Scratch {
    caches: Vec<Option<DfaCache>>,
    /// Offset of the scanned text's first byte in the whole stream (a stream drops text it
    /// no longer needs).
    base: usize,
    /// Decisions already made for candidates whose window was complete, keyed by detector and
    /// stream offsets of the start and of where it holds from: a stream re-scanning its held tail does not search them
    /// again (the window and the context before it cannot change). Values are stream offsets.
    decided: HashMap<Decided, Option<Decided>>,
    /// Per detector with a `secret` group: its capture slots, allocated once per scratch.
    captures: Vec<Option<Captures>>,
    /// The candidate list of the current scan (kept for its capacity).
    candidates: Vec<Candidate>,
    /// The matches of the current scan (kept for its capacity).
    hits: Vec<Hit>,
}

impl Scratch {
    /// Tells the scratch that the next text scanned starts at stream offset `base`.
    pub fn rebase(&mut self, base: usize) {
        self.base = base;
    }
}

impl fmt::Debug for Scratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Scratch")
    }
}

/// Where a detector's DFA stands after a stretch of text.
enum Walk {
    /// Dead: no more text can make it match; `matched` says whether it passed a match first.
    Dead { matched: bool },
    /// Alive (or given up): more text could still change the match.
    Alive,
}

/// A match found by one scan, before overlapping matches are resolved.
#[derive(Debug, Clone, Copy)]
struct Hit {
    finding: Finding,
    /// The detector's priority.
    priority: u8,
    /// Where the candidate (its trigger) starts: a hit that does not settle holds the text back
    /// to here.
    trigger: usize,
}

/// A detector and where its anchored search begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    detector: usize,
    start: usize,
    /// The earliest position the masked span can start: `start`, or the end of the trigger
    /// literal for detectors that keep it visible (`reveal_trigger`). An undecided candidate
    /// holds the text back from here.
    hold_from: usize,
    /// Whether the candidate belongs to a number-like run touching the end of the text.
    open_run: bool,
}

impl Engine {
    /// Compiles `specs`; every broken detector is reported.
    pub fn new(specs: Vec<DetectorSpec>) -> Result<Self, Vec<DetectorError>> {
        let mut errors = Vec::new();
        let mut compiled = Vec::with_capacity(specs.len());
        let mut literal_texts: Vec<Vec<u8>> = Vec::new();
        let mut owners: Vec<Vec<LiteralOwner>> = Vec::new();
        let mut digit_groups: Vec<DigitGroup> = Vec::new();
        let mut context_bytes = 64;
        for (index, spec) in specs.iter().enumerate() {
            match compile(spec) {
                Ok(c) => compiled.push(c),
                Err(message) => {
                    errors.push(DetectorError { id: spec.id.clone(), message });
                    continue;
                }
            }
            let (literals, infix) = match &spec.trigger {
                Trigger::Prefix(literals) => (literals.as_slice(), None),
                Trigger::Infix { literals, run, max_back } => {
                    context_bytes = context_bytes.max(max_back + 8);
                    (literals.as_slice(), Some((*run, *max_back)))
                }
                Trigger::Digits { run, min_digits } => {
                    match digit_groups.iter_mut().find(|g| g.class == *run) {
                        Some(group) => group.detectors.push((index, *min_digits, spec.max_len)),
                        None => digit_groups.push(DigitGroup::new(*run, (index, *min_digits, spec.max_len))),
                    }
                    (&[][..], None)
                }
            };
            if matches!(spec.trigger, Trigger::Prefix(_) | Trigger::Infix { .. }) && literals.is_empty() {
                errors.push(DetectorError {
                    id: spec.id.clone(),
                    message: "a trigger needs at least one literal".into(),
                });
            }
            for literal in literals {
                if literal.is_empty() {
                    errors.push(DetectorError { id: spec.id.clone(), message: "a trigger literal is empty".into() });
                    continue;
                }
                let lower = literal.to_ascii_lowercase().into_bytes();
                let owner = LiteralOwner { detector: index, infix };
                match literal_texts.iter().position(|l| *l == lower) {
                    Some(at) => {
                        if let Some(list) = owners.get_mut(at) {
                            list.push(owner);
                        }
                    }
                    None => {
                        literal_texts.push(lower);
                        owners.push(vec![owner]);
                    }
                }
            }
        }
        let literals = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&literal_texts)
            .map_err(|e| vec![DetectorError { id: "(literals)".into(), message: e.to_string() }]);
        let literals = match literals {
            Ok(l) if errors.is_empty() => l,
            Ok(_) => return Err(errors),
            Err(mut e) => {
                errors.append(&mut e);
                return Err(errors);
            }
        };
        // One pass over the literals and their owners derives everything the scans need.
        let mut literal_trie = PrefixTrie::default();
        let mut reaches_forward = Vec::with_capacity(owners.len());
        let mut infix_runs = Vec::new();
        let mut longest_literal = 0;
        let mut longest_held_literal = 0;
        for (literal, owners) in literal_texts.iter().zip(&owners) {
            longest_literal = longest_literal.max(literal.len());
            reaches_forward.push(
                owners.iter().any(|o| o.infix.is_some() || specs.get(o.detector).is_some_and(|s| s.reveal_trigger)),
            );
            let masks_literal = |o: &&LiteralOwner| {
                o.infix.is_none()
                    && specs
                        .get(o.detector)
                        .is_some_and(|s| matches!(s.trigger, Trigger::Prefix(_)) && !s.reveal_trigger)
            };
            if owners.iter().any(|o| masks_literal(&o)) {
                literal_trie.insert(literal, owners.iter().filter(masks_literal).map(|o| o.detector));
                longest_held_literal = longest_held_literal.max(literal.len());
            }
            for owner in owners {
                let masks_run = specs.get(owner.detector).is_some_and(|s| !s.reveal_trigger);
                if let (Some((run, max_back)), true) = (owner.infix, masks_run) {
                    if !infix_runs.contains(&(owner.detector, run, max_back)) {
                        infix_runs.push((owner.detector, run, max_back));
                    }
                }
            }
        }
        // A stream keeps at least the longest literal as context, so a trigger delivered in an
        // earlier piece is still found when its value arrives.
        let context_bytes = context_bytes.max(longest_literal + 8);
        Ok(Self {
            specs,
            compiled,
            literals,
            owners,
            longest_literal,
            digit_groups,
            literal_trie,
            longest_held_literal,
            reaches_forward,
            infix_runs,
            context_bytes,
        })
    }

    /// The detector at `index`.
    pub fn spec(&self, index: usize) -> Option<&DetectorSpec> {
        self.specs.get(index)
    }

    /// Every detector, in index order.
    pub fn specs(&self) -> &[DetectorSpec] {
        &self.specs
    }

    /// Index of the detector with `id`.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.specs.iter().position(|s| s.id == id)
    }

    /// How many bytes of settled text a stream should keep before the unsettled rest, so that
    /// matches reaching back (an email's local part, a URL's scheme) still see them.
    pub fn context_bytes(&self) -> usize {
        self.context_bytes
    }

    /// The most text a stream holds back at once ("hold-back bound"): the longest match any
    /// detector allows (`max_len`), half more while a held tail waits to be scanned again
    /// ([`super::text::TextStream`]), and the longest trigger literal.
    pub fn hold_bound(&self) -> usize {
        let longest = self.specs.iter().map(|s| s.max_len).max().unwrap_or(0);
        longest + longest / 2 + self.longest_literal
    }

    /// All findings of all detectors in a complete text.
    pub fn find_all(&self, text: &str) -> Vec<Finding> {
        let active = vec![Action::Mask; self.specs.len()];
        self.scan(text, 0, true, &active, &mut Scratch::default()).findings
    }

    /// Scans `text[from..]` (the text before `from` is context only) with the detectors whose
    /// action in `active` is not [`Action::Off`]. With `at_end`, the text is complete and
    /// everything settles; otherwise see the module header.
    pub fn scan(&self, text: &str, from: usize, at_end: bool, active: &[Action], scratch: &mut Scratch) -> Scan {
        let from = floor_char_boundary(text, from);
        // The per-scan lists live in the scratch, so a stream allocates them once.
        let mut candidates = std::mem::take(&mut scratch.candidates);
        let mut hits = std::mem::take(&mut scratch.hits);
        candidates.clear();
        hits.clear();
        self.candidates(text, from, at_end, active, &mut candidates);
        let mut settled = text.len();
        // Where the earliest undecided candidate starts: its match, once decided, may overlap and
        // win over any finding that ends after it.
        let mut undecided_from = usize::MAX;
        for candidate in &candidates {
            let Some((spec, compiled)) = self.specs.get(candidate.detector).zip(self.compiled.get(candidate.detector))
            else {
                continue;
            };
            let window_end = floor_char_boundary(text, candidate.start.saturating_add(spec.max_len).min(text.len()));
            // In a stream (whose scratch keeps the DFA caches), a trigger whose pattern dies within
            // a few bytes is dropped before any search: the same automaton, so nothing is lost.
            if !at_end && !candidate.open_run && self.cannot_match(candidate, text, window_end, scratch) {
                continue;
            }
            if !at_end && (candidate.open_run || self.may_grow(candidate, text, window_end, scratch)) {
                settled = settled.min(candidate.hold_from);
                undecided_from = undecided_from.min(candidate.start);
                continue;
            }
            let key = (candidate.detector, scratch.base + candidate.start, scratch.base + candidate.hold_from);
            let span = match scratch.decided.get(&key) {
                Some(decided) => decided.and_then(|(start, end, mask_from)| {
                    let back = |at: usize| at.checked_sub(scratch.base);
                    Some(Finding {
                        detector: candidate.detector,
                        start: back(start)?,
                        end: back(end)?,
                        mask_from: back(mask_from)?,
                    })
                }),
                None => {
                    let span = self.match_at(candidate, spec, compiled, text, window_end, &mut scratch.captures);
                    if !at_end {
                        let base = scratch.base;
                        scratch.decided.insert(key, span.map(|f| (base + f.start, base + f.end, base + f.mask_from)));
                    }
                    span
                }
            };
            if let Some(span) = span {
                if span.mask_from >= from {
                    hits.push(Hit { finding: span, priority: spec.priority, trigger: candidate.start });
                }
            }
        }
        if !at_end {
            settled = settled.min(self.trailing_hold(text, from, active, scratch));
        }
        // A finding settles only whole and only once nothing can displace it. Otherwise the text
        // is held back to its trigger, not just to its masked part: the next scan must find the
        // trigger again (a trigger before `from` is only looked at again if it reaches forward).
        // Not settled: a finding that reaches past the settled point, and anything it overlaps
        // (which of overlapping findings wins may still change); a finding that ends after an
        // undecided candidate's start (that candidate's match may overlap it and win).
        loop {
            let before = settled;
            for Hit { finding, trigger, .. } in &hits {
                let restart = (*trigger).min(finding.mask_from);
                let unsettled = finding.end > settled || finding.end > undecided_from;
                if unsettled && restart < settled {
                    settled = restart;
                }
            }
            if settled == before {
                break;
            }
        }
        hits.retain(|h| h.finding.end <= settled);
        let findings = resolve(&mut hits);
        scratch.candidates = candidates;
        scratch.hits = hits;
        // Decisions before the settled point are never asked for again.
        let forget_before = scratch.base + settled.max(from);
        if scratch.decided.len() > 64 {
            scratch.decided.retain(|(_, start, _), _| *start >= forget_before);
        }
        Scan { findings, settled: settled.max(from) }
    }

    /// The candidates of a scan, sorted by start, into `out` (empty on entry).
    fn candidates(&self, text: &str, from: usize, at_end: bool, active: &[Action], out: &mut Vec<Candidate>) {
        let bytes = text.as_bytes();
        let is_active = |d: usize| active.get(d).is_some_and(|a| *a != Action::Off);
        // Literal hits may start in the context before `from` only if they reach into the new text.
        let search_from = floor_char_boundary(text, from.saturating_sub(self.longest_literal));
        for hit in self.literals.find_overlapping_iter(aho_corasick::Input::new(text).range(search_from..)) {
            if hit.end() <= from && !self.reaches_forward.get(hit.pattern().as_usize()).copied().unwrap_or(false) {
                continue;
            }
            let Some(owners) = self.owners.get(hit.pattern().as_usize()) else { continue };
            for owner in owners.iter().filter(|o| is_active(o.detector)) {
                let start = match owner.infix {
                    None => hit.start(),
                    Some((run, max_back)) => run_start(bytes, hit.start(), run, max_back),
                };
                let revealed = self.specs.get(owner.detector).is_some_and(|s| s.reveal_trigger);
                let hold_from = if revealed { hit.end() } else { start };
                out.push(Candidate { detector: owner.detector, start, hold_from, open_run: false });
            }
        }
        for group in &self.digit_groups {
            if group.detectors.iter().any(|(d, _, _)| is_active(*d)) {
                group.push_candidates(bytes, from, at_end, &is_active, out);
            }
        }
        out.sort_unstable_by_key(|c| (c.start, c.detector, c.hold_from, c.open_run));
        out.dedup();
    }

    /// Whether more text could still change what the candidate matches: its anchored DFA is
    /// alive at the end of the text and the window is not full.
    fn may_grow(&self, candidate: &Candidate, text: &str, window_end: usize, scratch: &mut Scratch) -> bool {
        if window_end < text.len() {
            return false; // the window is complete: the decision is final
        }
        let Some(spec) = self.specs.get(candidate.detector) else { return false };
        if window_end.saturating_sub(candidate.start) >= spec.max_len {
            return false;
        }
        self.alive(candidate.detector, text, candidate.start, window_end, scratch)
    }

    /// Whether the detector's DFA, anchored at `start` (with the text before it as look-behind
    /// context), is still alive after `text[start..end]`: more text could still make it match.
    fn alive(&self, detector: usize, text: &str, start: usize, end: usize, scratch: &mut Scratch) -> bool {
        !matches!(self.walk(detector, text, start, end, scratch), Walk::Dead { .. })
    }

    /// Whether the candidate's DFA dies within [`PEEK`] bytes (and its window) without passing a
    /// match: then no search from there can match.
    fn cannot_match(&self, candidate: &Candidate, text: &str, window_end: usize, scratch: &mut Scratch) -> bool {
        let end = window_end.min(candidate.start.saturating_add(PEEK));
        matches!(self.walk(candidate.detector, text, candidate.start, end, scratch), Walk::Dead { matched: false })
    }

    /// Runs the detector's DFA anchored at `start` (with the text before it as look-behind
    /// context) over `text[start..end]`. A DFA that gives up (non-ASCII text next to a Unicode
    /// `\b`) counts as alive.
    fn walk(&self, detector: usize, text: &str, start: usize, end: usize, scratch: &mut Scratch) -> Walk {
        let Some(compiled) = self.compiled.get(detector) else { return Walk::Dead { matched: false } };
        if scratch.caches.len() < self.compiled.len() {
            scratch.caches.resize_with(self.compiled.len(), || None);
        }
        let Some(slot) = scratch.caches.get_mut(detector) else { return Walk::Alive };
        let cache = slot.get_or_insert_with(|| compiled.dfa.create_cache());
        let input = Input::new(text).range(start..end).anchored(Anchored::Yes);
        let Ok(mut state) = compiled.dfa.start_state_forward(cache, &input) else { return Walk::Alive };
        let mut matched = false;
        for &byte in text.as_bytes().get(start..end).unwrap_or(&[]) {
            state = match compiled.dfa.next_state(cache, state, byte) {
                Ok(s) => s,
                Err(_) => return Walk::Alive,
            };
            if state.is_dead() {
                return Walk::Dead { matched };
            }
            if state.is_quit() {
                return Walk::Alive;
            }
            // Match states come one byte late: this one says a match ended before `byte`.
            matched |= state.is_match();
        }
        Walk::Alive
    }

    /// The span the detector masks when anchored at the candidate, if it matches and validates.
    fn match_at(
        &self,
        candidate: &Candidate,
        spec: &DetectorSpec,
        compiled: &Compiled,
        text: &str,
        window_end: usize,
        captures: &mut Vec<Option<Captures>>,
    ) -> Option<Finding> {
        if candidate.start > window_end || !text.is_char_boundary(candidate.start) {
            return None;
        }
        let input = Input::new(text).range(candidate.start..window_end).anchored(Anchored::Yes);
        let (start, end) = match compiled.secret_group {
            None => {
                let m = compiled.regex.search(&input)?;
                (m.start(), m.end())
            }
            Some(group) => {
                if captures.len() <= candidate.detector {
                    captures.resize_with(candidate.detector + 1, || None);
                }
                let caps =
                    captures.get_mut(candidate.detector)?.get_or_insert_with(|| compiled.regex.create_captures());
                compiled.regex.search_captures(&input, caps);
                let span = caps.get_group(group)?;
                (span.start, span.end)
            }
        };
        let value = text.get(start..end)?;
        if value.is_empty() {
            return None;
        }
        // A valid checksum makes the value certain; otherwise the placeholder check and the
        // validator decide.
        if !spec.validator.certifies(value) {
            if spec.category == Category::Credential && is_placeholder(value) {
                return None;
            }
            // Only an assignment reads its name: other detectors skip the walk back.
            let context = match spec.validator {
                Validator::Assignment => text.get(name_start(text, candidate.start)..start).unwrap_or(""),
                _ => "",
            };
            if !spec.validator.accepts_after(context, value) {
                return None;
            }
        }
        let mask_from = candidate.hold_from.clamp(start, end);
        (mask_from < end).then_some(Finding { detector: candidate.detector, start, end, mask_from })
    }

    /// Start of the trailing piece of `text` that could begin a masked span once more text
    /// arrives: a proper prefix of a literal, or the run before an `Infix` literal, from where
    /// the detector's DFA is still alive. Detectors that keep their trigger visible hold nothing
    /// here: their masked span cannot begin before the literal is complete.
    fn trailing_hold(&self, text: &str, from: usize, active: &[Action], scratch: &mut Scratch) -> usize {
        let bytes = text.as_bytes();
        let mut hold = text.len();
        let masks_from_start = |d: usize| {
            active.get(d).is_some_and(|a| *a != Action::Off) && self.specs.get(d).is_some_and(|s| !s.reveal_trigger)
        };
        let longest = self.longest_held_literal.saturating_sub(1).min(bytes.len().saturating_sub(from));
        let tail_start = bytes.len() - longest;
        let tail = bytes.get(tail_start..).unwrap_or(&[]);
        let is_prefix = |d: usize| self.specs.get(d).is_some_and(|s| matches!(s.trigger, Trigger::Prefix(_)));
        for (offset, detectors) in self.literal_trie.open_suffixes(tail) {
            let start = tail_start + offset;
            if text.is_char_boundary(start)
                && detectors
                    .iter()
                    .any(|&d| is_prefix(d) && masks_from_start(d) && self.alive(d, text, start, bytes.len(), scratch))
            {
                hold = hold.min(start);
                break;
            }
        }
        for &(detector, run, max_back) in &self.infix_runs {
            if masks_from_start(detector) {
                let start = run_start(bytes, bytes.len(), run, max_back);
                if start < bytes.len() && self.alive(detector, text, start, bytes.len(), scratch) {
                    hold = hold.min(start);
                }
            }
        }
        floor_char_boundary(text, hold.max(from))
    }
}

/// Start of the identifier run (`A-Z a-z 0-9 _ . -`) that ends at `at`, at most
/// [`MAX_NAME_BACK`] bytes back: the part of a name before its trigger literal.
fn name_start(text: &str, at: usize) -> usize {
    let bytes = text.as_bytes().get(..at).unwrap_or(&[]);
    let run = bytes
        .iter()
        .rev()
        .take(MAX_NAME_BACK)
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        .count();
    at.saturating_sub(run)
}

fn compile(spec: &DetectorSpec) -> Result<Compiled, String> {
    let regex = Regex::new(&spec.pattern).map_err(|e| format!("invalid pattern: {e}"))?;
    let secret_group = regex.group_info().to_index(regex_automata::PatternID::ZERO, "secret");
    let dfa = DFA::builder()
        .configure(DFA::config().unicode_word_boundary(true))
        .build(&spec.pattern)
        .map_err(|e| format!("pattern too complex for streaming: {e}"))?;
    if spec.max_len == 0 {
        return Err("max_len must be positive".into());
    }
    Ok(Compiled { regex, secret_group, dfa })
}

/// The trigger literals as a byte trie (lower-case), to find a text's trailing partial literal.
#[derive(Default)]
struct PrefixTrie {
    /// Node 0 is the root; each node lists its edges and the detectors of the literals that
    /// continue past it.
    nodes: Vec<TrieNode>,
}

#[derive(Default)]
struct TrieNode {
    edges: Vec<(u8, usize)>,
    continuing: Vec<usize>,
}

impl PrefixTrie {
    fn insert(&mut self, literal: &[u8], detectors: impl Iterator<Item = usize> + Clone) {
        if self.nodes.is_empty() {
            self.nodes.push(TrieNode::default());
        }
        let mut node = 0;
        for &byte in literal {
            if let Some(n) = self.nodes.get_mut(node) {
                n.continuing.extend(detectors.clone());
            }
            let next = self.nodes.get(node).and_then(|n| n.edges.iter().find(|(b, _)| *b == byte)).map(|(_, to)| *to);
            node = match next {
                Some(to) => to,
                None => {
                    let to = self.nodes.len();
                    self.nodes.push(TrieNode::default());
                    if let Some(n) = self.nodes.get_mut(node) {
                        n.edges.push((byte, to));
                    }
                    to
                }
            };
        }
    }

    /// Every offset in `tail` (earliest first) from which the rest of `tail` is a proper prefix
    /// of a literal (compared ASCII case-insensitively), with the detectors of those literals.
    fn open_suffixes<'t>(&'t self, tail: &'t [u8]) -> impl Iterator<Item = (usize, &'t [usize])> + 't {
        (0..tail.len()).filter_map(move |start| {
            let mut node = 0;
            for byte in tail.get(start..).unwrap_or(&[]) {
                let lower = byte.to_ascii_lowercase();
                node = self.nodes.get(node)?.edges.iter().find(|(b, _)| *b == lower)?.1;
            }
            let continuing = &self.nodes.get(node)?.continuing;
            (!continuing.is_empty()).then_some((start, continuing.as_slice()))
        })
    }
}

/// Keeps the highest-priority, then longest, then earliest of overlapping findings (`hits` is
/// left reordered).
fn resolve(hits: &mut [Hit]) -> Vec<Finding> {
    if hits.is_empty() {
        return Vec::new();
    }
    hits.sort_by(|a, b| {
        let (fa, fb) = (&a.finding, &b.finding);
        b.priority.cmp(&a.priority).then((fb.end - fb.start).cmp(&(fa.end - fa.start))).then(fa.start.cmp(&fb.start))
    });
    let mut kept: Vec<Finding> = Vec::with_capacity(hits.len());
    for Hit { finding, .. } in hits.iter() {
        if !kept.iter().any(|k| k.start < finding.end && finding.start < k.end) {
            kept.push(*finding);
        }
    }
    kept.sort_by_key(|f| f.start);
    kept
}

/// Start of the run of `class` bytes ending at `end` (at most `max_back` long).
fn run_start(bytes: &[u8], end: usize, class: CharClass, max_back: usize) -> usize {
    let mut start = end;
    while start > 0 && end - start < max_back && bytes.get(start - 1).is_some_and(|b| class.contains(*b)) {
        start -= 1;
    }
    start
}

/// Detectors sharing a number-like run class, and a lookup table of the class.
struct DigitGroup {
    class: CharClass,
    table: [bool; 256],
    /// `(detector, min_digits, max_len)`.
    detectors: Vec<(usize, usize, usize)>,
}

impl DigitGroup {
    fn new(class: CharClass, detector: (usize, usize, usize)) -> Self {
        let mut table = [false; 256];
        for (byte, slot) in table.iter_mut().enumerate() {
            *slot = u8::try_from(byte).is_ok_and(|b| class.contains(b));
        }
        Self { class, table, detectors: vec![detector] }
    }

    fn contains(&self, byte: u8) -> bool {
        self.table.get(usize::from(byte)).copied().unwrap_or(false)
    }

    /// Candidates in `bytes[from..]`: in each maximal run of the class holding at least a
    /// detector's `min_digits` digits, the run start and every token start (a letter, digit,
    /// `+` or `(` after a non-alphanumeric byte). A run touching the end of a text that may grow
    /// gives open candidates whatever its digits — but only where the detector's window
    /// (`max_len` bytes, plus one byte of look-ahead for `\b`) still reaches past the end: a
    /// candidate further back is decided whatever follows, so a long run (`1 1 1 …`, an
    /// upper-case word list) is held back by at most `max_len` bytes, not as a whole.
    fn push_candidates(
        &self,
        bytes: &[u8],
        from: usize,
        at_end: bool,
        is_active: &impl Fn(usize) -> bool,
        out: &mut Vec<Candidate>,
    ) {
        let active = || self.detectors.iter().copied().filter(|(d, _, _)| is_active(*d));
        let mut i = from;
        while i < bytes.len() {
            // Skip to the next digit: a run worth looking at holds one.
            let Some(offset) = bytes.get(i..).and_then(|rest| rest.iter().position(u8::is_ascii_digit)) else { break };
            let digit_at = i + offset;
            let mut start = digit_at;
            while start > 0 && bytes.get(start - 1).is_some_and(|b| self.contains(*b)) {
                start -= 1;
            }
            let mut end = digit_at;
            let mut digits = 0;
            while let Some(&b) = bytes.get(end) {
                if !self.contains(b) {
                    break;
                }
                digits += usize::from(b.is_ascii_digit());
                end += 1;
            }
            let open_run = !at_end && end == bytes.len();
            for (detector, min_digits, max_len) in active() {
                if digits < min_digits && !open_run {
                    continue;
                }
                // Open candidates only hold the text back from where they start: the earliest
                // one per detector is enough.
                let mut held = false;
                for at in start.max(from)..end {
                    let token_start = at == start || bytes.get(at - 1).is_some_and(|p| !p.is_ascii_alphanumeric());
                    if token_start
                        && bytes.get(at).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'(')
                    {
                        let open = open_run && bytes.len() <= at.saturating_add(max_len);
                        if open && held {
                            break;
                        }
                        held |= open;
                        // A decided candidate of a run with too few digits so far cannot match:
                        // its whole window is already part of that run.
                        if open || digits >= min_digits {
                            out.push(Candidate { detector, start: at, hold_from: at, open_run: open });
                        }
                    }
                }
            }
            i = end.max(digit_at + 1);
        }
        // A trailing run without digits yet ("call (", "IBAN DE") may still become one.
        if !at_end && bytes.last().is_some_and(|b| self.contains(*b)) {
            let mut start = bytes.len();
            while start > from && bytes.get(start - 1).is_some_and(|b| self.contains(*b)) {
                start -= 1;
            }
            let mut held: Vec<usize> = Vec::new();
            for at in start..bytes.len() {
                let token_start = at == start || bytes.get(at - 1).is_some_and(|p| !p.is_ascii_alphanumeric());
                if token_start && bytes.get(at).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'(') {
                    // Only where the window still reaches past the end: further back, the
                    // window is complete and holds no digit, so nothing can match there.
                    for (detector, _, _) in active().filter(|(_, _, m)| bytes.len() <= at.saturating_add(*m)) {
                        if !held.contains(&detector) {
                            held.push(detector);
                            out.push(Candidate { detector, start: at, hold_from: at, open_run: true });
                        }
                    }
                }
            }
        }
    }
}

/// The largest char boundary at or before `index`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut i = index.min(text.len());
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::core::dlp::detector::Validator;

    /// Four detectors, one of each trigger shape (indices 0–3: github-pat, assignment, email,
    /// card), shared by the DLP unit tests.
    pub(crate) fn small_engine() -> Engine {
        Engine::new(vec![
            DetectorSpec::prefixed("github-pat", "GitHub token", &["ghp_"], r"ghp_[A-Za-z0-9]{36}\b"),
            DetectorSpec::prefixed(
                "assignment",
                "generic",
                &["password"],
                r#"(?i)password\s*[:=]\s*"?(?P<secret>[^\s"]{8,})"#,
            )
            .priority(10)
            .reveal_trigger(),
            DetectorSpec {
                id: "email".into(),
                category: Category::Pii,
                description: "email".into(),
                trigger: Trigger::Infix { literals: vec!["@".into()], run: CharClass::EmailLocal, max_back: 64 },
                pattern: r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}".into(),
                validator: Validator::None,
                max_len: 256,
                priority: 20,
                reveal_trigger: false,
            },
            DetectorSpec {
                id: "card".into(),
                category: Category::Pii,
                description: "card".into(),
                trigger: Trigger::Digits { run: CharClass::Number, min_digits: 13 },
                pattern: r"\d{4}(?:[ -]?\d{4}){3}\b".into(),
                validator: Validator::Luhn,
                max_len: 32,
                priority: 20,
                reveal_trigger: false,
            },
        ])
        .unwrap()
    }

    /// A fabricated GitHub token the small engine finds.
    pub(crate) const TOKEN: &str = "ghp_Z9yX8wV7uT6sR5qP4oN3mL2kJ1iH0gF9eD8c";

    /// `(detector id, matched value)` of every finding in `text`.
    pub(crate) fn ids(engine: &Engine, text: &str) -> Vec<(String, String)> {
        engine
            .find_all(text)
            .iter()
            .map(|f| (engine.spec(f.detector).unwrap().id.clone(), text[f.start..f.end].to_string()))
            .collect()
    }

    #[test]
    fn finds_prefixed_infix_and_digit_detectors_in_one_pass() {
        let e = small_engine();
        let text = format!("token {TOKEN}, mail ann.lee@corp.io, card 4111 1111 1111 1111.");
        assert_eq!(
            ids(&e, &text),
            vec![
                ("github-pat".to_string(), TOKEN.to_string()),
                ("email".to_string(), "ann.lee@corp.io".to_string()),
                ("card".to_string(), "4111 1111 1111 1111".to_string()),
            ]
        );
    }

    #[test]
    fn secret_group_masks_only_the_value_and_specific_detectors_win() {
        let e = small_engine();
        assert_eq!(ids(&e, "password = \"s3cr3t-P4ss\""), vec![("assignment".into(), "s3cr3t-P4ss".into())]);
        let text = format!("PASSWORD={TOKEN}");
        assert_eq!(ids(&e, &text), vec![("github-pat".into(), TOKEN.into())]);
    }

    #[test]
    fn validators_and_placeholders_reject_candidates() {
        let e = small_engine();
        assert!(ids(&e, "card 4111 1111 1111 1112").is_empty());
        assert!(ids(&e, "password = \"<your-password>\"").is_empty());
    }

    #[test]
    fn stream_scan_settles_plain_text_at_once() {
        let e = small_engine();
        let active = vec![Action::Mask; 4];
        let mut scratch = Scratch::default();
        // Without the email detector a plain sentence settles entirely.
        let no_email = [Action::Mask, Action::Mask, Action::Off, Action::Mask];
        let text = "The build passed. ";
        assert_eq!(e.scan(text, 0, false, &no_email, &mut scratch).settled, text.len());
        // A trailing word could be an email's local part.
        let text = "write to ann";
        assert_eq!(e.scan(text, 0, false, &active, &mut scratch).settled, "write to ".len());
        // A partial literal waits; an undecided token waits from its start.
        let text = "key: gh";
        assert_eq!(e.scan(text, 0, false, &no_email, &mut scratch).settled, "key: ".len());
        let text = format!("key: {}", &TOKEN[..20]);
        assert_eq!(e.scan(&text, 0, false, &no_email, &mut scratch).settled, "key: ".len());
        // A dead candidate settles: "password is" can no longer become an assignment.
        let text = "the password is fine.";
        assert_eq!(e.scan(text, 0, false, &no_email, &mut scratch).settled, text.len());
        // Digits touching the end wait.
        let text = "call 4111 1111";
        assert_eq!(e.scan(text, 0, false, &no_email, &mut scratch).settled, "call ".len());
    }
}
