//! `warden redact --eval DIR`: scores the detectors on an evaluation set.
//!
//! DIR holds two JSON-lines files (the project's own set is written by
//! `tests/dlp-corpus/generate.py`; users can write theirs):
//!
//! * `secrets.jsonl`: `{"id", "kind", "category", "wrapper", "text", "secrets": [{"start", "end"}]}`
//!   — a text carrying secrets, with the UTF-8 byte span of each one's private part (a vendor
//!   prefix that may stay visible is outside the span);
//! * `clean.jsonl`: `{"id", "category", "text"}` — a text with nothing to mask.
//!
//! Every text is redacted exactly as `--jsonl` redacts it (same [`Redaction`]), then scored:
//!
//! * a sample is **caught** when no 8 consecutive characters of any of its private parts remain
//!   in the output (a blocked text delivers nothing, so it is caught); **partial** when a finding
//!   touched a private part but 8 or more of its characters remain; **missed** otherwise. The
//!   detectors whose findings touched the private parts are counted per kind ("caught by").
//! * a clean text is a **false positive** when its output differs from it (or it was blocked).
//! * throughput: after scoring, the one-shot redactions are timed again in [`SPEED_ROUNDS`]
//!   rounds, for the texts with secrets, the clean texts and both, and the fastest round counts
//!   (a shared machine's other work only ever slows a round down). Texts of a few hundred bytes
//!   that each hold a secret measure the cost per finding, not the scan rate of ordinary text
//!   (`cargo bench --bench dlp` measures that).
//! * streaming ≡ one-shot: each text is also pushed through a [`TextStream`] in
//!   [`CHUNKINGS`] seeded random chunkings (pieces of 1 byte up to a few hundred, cut at character
//!   boundaries); the concatenated output must equal the one-shot output byte for byte (or both
//!   block on the same detector). Any difference is listed and makes the exit status
//!   [`EXIT_STREAM_DIFFERS`].
//!
//! Limits: the texts are read whole into memory (an evaluation set, not a data stream); the
//! output names samples by id only, never their text (a user's set may hold real secrets).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;
use warden::core::dlp::engine::{Action, Scratch};
use warden::core::dlp::mask::Tally;
use warden::core::dlp::text::{redact, Blocked, Redaction, TextStream};

/// Exit status when a streamed redaction differs from the one-shot redaction of the same text.
pub const EXIT_STREAM_DIFFERS: u8 = 5;
/// Consecutive characters of a private part that, left in the output, make it a leak.
pub const LEAK_WINDOW: usize = 8;
/// The largest piece of each streamed chunking, in bytes: tiny, middling and large pieces.
pub const CHUNKINGS: [usize; 3] = [8, 64, 400];
/// Rounds of the throughput measurement (the fastest counts).
pub const SPEED_ROUNDS: usize = 5;
/// Ids of missed or partial samples shown per kind in the terminal table (`--json` has them all).
const IDS_SHOWN: usize = 3;

/// One line of `secrets.jsonl`.
#[derive(Deserialize)]
struct SecretSample {
    id: serde_json::Value,
    kind: String,
    category: String,
    text: String,
    secrets: Vec<Span>,
}

/// The UTF-8 byte span of one private part.
#[derive(Deserialize, Debug, Clone, Copy)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// Byte just past the end.
    pub end: usize,
}

/// One line of `clean.jsonl`.
#[derive(Deserialize)]
struct CleanSample {
    id: serde_json::Value,
    category: String,
    text: String,
}

/// How well one sample's private parts were masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No [`LEAK_WINDOW`] consecutive characters of any private part remain.
    Caught,
    /// A finding touched a private part, but a leak remains.
    Partial,
    /// Nothing touched the private parts and they remain.
    Missed,
}

/// Totals of one kind or category of secrets.
#[derive(Serialize, Debug, Default, Clone, PartialEq, Eq)]
pub struct Recall {
    /// Samples.
    pub total: u32,
    /// Samples caught.
    pub caught: u32,
    /// Samples partly masked, with a leak left.
    pub partial: u32,
    /// Samples not masked at all.
    pub missed: u32,
}

impl Recall {
    fn add(&mut self, outcome: Outcome) {
        self.total += 1;
        match outcome {
            Outcome::Caught => self.caught += 1,
            Outcome::Partial => self.partial += 1,
            Outcome::Missed => self.missed += 1,
        }
    }

    /// Caught over total, in percent (100 for no samples).
    pub fn percent(&self) -> f64 {
        percent(self.caught, self.total, 100.0)
    }
}

/// The scores of one kind of secret.
#[derive(Serialize, Debug, Default)]
pub struct KindScore {
    /// `credential` or `pii` (as the set says).
    pub category: String,
    /// The counts.
    #[serde(flatten)]
    pub recall: Recall,
    /// Findings touching the private parts, per detector id.
    pub detectors: BTreeMap<String, u32>,
    /// Ids of the samples not caught (partial or missed).
    pub not_caught: Vec<serde_json::Value>,
}

/// The false positives of one category of clean texts.
#[derive(Serialize, Debug, Default)]
pub struct CleanScore {
    /// Texts.
    pub total: u32,
    /// Texts whose output differs (or that were blocked).
    pub changed: u32,
    /// Findings per detector id.
    pub detectors: BTreeMap<String, u32>,
    /// Ids of the changed texts.
    pub changed_ids: Vec<serde_json::Value>,
}

/// One-shot speed.
#[derive(Serialize, Debug, Default)]
pub struct Throughput {
    /// Texts redacted.
    pub texts: usize,
    /// Bytes redacted.
    pub bytes: u64,
    /// Seconds of the fastest round of one-shot redactions of every text.
    pub seconds: f64,
    /// Megabytes (10⁶ bytes) per second.
    pub mb_per_s: f64,
}

/// The streaming check.
#[derive(Serialize, Debug, Default)]
pub struct Streaming {
    /// Texts streamed.
    pub texts: u32,
    /// Chunkings per text.
    pub chunkings: usize,
    /// Ids of the texts whose streamed output differed from the one-shot output.
    pub differences: Vec<serde_json::Value>,
}

/// The whole evaluation (`--json` prints it).
#[derive(Serialize, Debug, Default)]
pub struct Report {
    /// Per kind of secret.
    pub kinds: BTreeMap<String, KindScore>,
    /// Per category of secret (`credential`, `pii`) and `all`.
    pub categories: BTreeMap<String, Recall>,
    /// Per category of clean text, and `all`.
    pub clean: BTreeMap<String, CleanScore>,
    /// One-shot speed over the texts with secrets (`secrets`), the clean texts (`clean`) and
    /// both (`all`).
    pub throughput: BTreeMap<String, Throughput>,
    /// Streaming ≡ one-shot.
    pub streaming: Streaming,
}

/// Whether `output` still holds [`LEAK_WINDOW`] consecutive characters of `private` (all of it,
/// when it is shorter).
pub fn leaks(private: &str, output: &str) -> bool {
    if private.is_empty() {
        return false;
    }
    let bounds: Vec<usize> = private.char_indices().map(|(i, _)| i).chain([private.len()]).collect();
    let windows = bounds.len().saturating_sub(LEAK_WINDOW).max(1);
    (0..windows).any(|first| {
        let from = bounds.get(first).copied().unwrap_or(0);
        let to = bounds.get(first + LEAK_WINDOW).copied().unwrap_or(private.len());
        private.get(from..to).is_some_and(|window| output.contains(window))
    })
}

/// Scores one sample: `output` is what the redaction delivered (`None` when it was blocked),
/// `touched` whether any finding overlapped a private part.
pub fn score(text: &str, spans: &[Span], output: Option<&str>, touched: bool) -> Outcome {
    let Some(output) = output else { return Outcome::Caught };
    let leaked = spans.iter().any(|span| text.get(span.start..span.end).is_some_and(|p| leaks(p, output)));
    match (leaked, touched) {
        (false, _) => Outcome::Caught,
        (true, true) => Outcome::Partial,
        (true, false) => Outcome::Missed,
    }
}

/// Checks that every span lies on character boundaries inside the text and is not empty.
fn check_spans(text: &str, spans: &[Span]) -> Result<(), String> {
    if spans.is_empty() {
        return Err("no secrets listed".into());
    }
    for span in spans {
        if span.start >= span.end || text.get(span.start..span.end).is_none() {
            return Err(format!(
                "secret span {}..{} is not a non-empty span on UTF-8 character boundaries of the text ({} bytes)",
                span.start,
                span.end,
                text.len()
            ));
        }
    }
    Ok(())
}

/// A small deterministic generator (SplitMix64) for the chunkings: no dependency, same cuts on
/// every run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `1..=max` (`max` ≥ 1).
    fn piece(&mut self, max: usize) -> usize {
        let max = u64::try_from(max.max(1)).unwrap_or(u64::MAX);
        usize::try_from(self.next() % max).unwrap_or(0).saturating_add(1)
    }
}

/// Cuts `text` into pieces of 1 to `max` bytes (moved forward to character boundaries).
pub fn chunk(text: &str, max: usize, seed: u64) -> Vec<&str> {
    let mut rng = SplitMix(seed);
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < text.len() {
        let mut cut = at.saturating_add(rng.piece(max)).min(text.len());
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        pieces.push(text.get(at..cut).unwrap_or(""));
        at = cut;
    }
    pieces
}

/// What streaming `pieces` delivers: the text, or the detector that blocked it.
fn stream(redaction: &Redaction, pieces: &[&str]) -> Result<String, Blocked> {
    let mut tally = Tally::default();
    let mut stream = TextStream::default();
    let mut out = String::new();
    for piece in pieces {
        out.push_str(&stream.push(redaction, piece, &mut tally)?);
    }
    out.push_str(&stream.finish(redaction, &mut tally)?);
    Ok(out)
}

/// Whether every chunking of `text` streams to `one_shot`.
fn streams_alike(redaction: &Redaction, text: &str, one_shot: &Result<String, Blocked>, seed: u64) -> bool {
    CHUNKINGS.iter().enumerate().all(|(n, max)| {
        let pieces = chunk(text, *max, seed.wrapping_mul(31).wrapping_add(n as u64));
        stream(redaction, &pieces) == *one_shot
    })
}

/// The evaluation in progress.
struct Evaluation<'r> {
    redaction: &'r Redaction<'r>,
    report: Report,
    scratch: Scratch,
    seed: u64,
    /// The texts with secrets and the clean texts, for the throughput rounds.
    secret_texts: Vec<String>,
    clean_texts: Vec<String>,
}

impl<'r> Evaluation<'r> {
    /// Redacts `text` once and streamed; returns the one-shot result and its tally.
    fn redact(&mut self, id: &serde_json::Value, text: &str) -> (Result<String, Blocked>, Tally) {
        let mut tally = Tally::default();
        let one_shot = redact(self.redaction, text, &mut tally).map(std::borrow::Cow::into_owned);
        self.seed += 1;
        self.report.streaming.texts += 1;
        if !streams_alike(self.redaction, text, &one_shot, self.seed) {
            self.report.streaming.differences.push(id.clone());
        }
        (one_shot, tally)
    }

    fn secret(&mut self, sample: SecretSample) {
        let (one_shot, _) = self.redact(&sample.id, &sample.text);
        self.secret_texts.push(sample.text.clone());
        let scan = self.redaction.engine.scan(&sample.text, 0, true, self.redaction.actions, &mut self.scratch);
        let entry = self.report.kinds.entry(sample.kind).or_default();
        entry.category.clone_from(&sample.category);
        let mut touched = false;
        for finding in &scan.findings {
            let masks = matches!(self.redaction.actions.get(finding.detector), Some(Action::Mask | Action::Block));
            let overlaps = sample.secrets.iter().any(|s| finding.mask_from < s.end && finding.end > s.start);
            if masks && overlaps {
                touched = true;
                if let Some(spec) = self.redaction.engine.spec(finding.detector) {
                    *entry.detectors.entry(spec.id.clone()).or_default() += 1;
                }
            }
        }
        let outcome = score(&sample.text, &sample.secrets, one_shot.as_deref().ok(), touched);
        entry.recall.add(outcome);
        if outcome != Outcome::Caught {
            entry.not_caught.push(sample.id);
        }
        self.report.categories.entry(sample.category).or_default().add(outcome);
        self.report.categories.entry("all".into()).or_default().add(outcome);
    }

    fn clean(&mut self, sample: CleanSample) {
        let (one_shot, tally) = self.redact(&sample.id, &sample.text);
        self.clean_texts.push(sample.text.clone());
        let changed = one_shot.as_deref() != Ok(sample.text.as_str());
        for category in [sample.category, "all".to_string()] {
            let entry = self.report.clean.entry(category).or_default();
            entry.total += 1;
            if changed {
                entry.changed += 1;
                entry.changed_ids.push(sample.id.clone());
                for (id, _, n) in tally.entries() {
                    *entry.detectors.entry(id.to_string()).or_default() += n;
                }
            }
        }
    }
}

/// Reads `path` line by line, handing every parsed line to `each`.
fn read_lines<T: for<'de> Deserialize<'de>>(
    path: &Path,
    mut each: impl FnMut(T) -> Result<(), String>,
) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |message: String| format!("{}:{}: {message}", path.display(), number + 1);
        // serde's messages may quote a value: only its category and position are shown.
        let sample = serde_json::from_str(&line)
            .map_err(|e| at(format!("not a valid sample ({:?} error at column {})", e.classify(), e.column())))?;
        each(sample).map_err(at)?;
    }
    Ok(())
}

/// Evaluates the set in `dir`.
pub fn evaluate(redaction: &Redaction, dir: &Path) -> Result<Report, String> {
    let mut evaluation = Evaluation {
        redaction,
        report: Report::default(),
        scratch: Scratch::default(),
        seed: 0,
        secret_texts: Vec::new(),
        clean_texts: Vec::new(),
    };
    evaluation.report.streaming.chunkings = CHUNKINGS.len();
    read_lines(&dir.join("secrets.jsonl"), |sample: SecretSample| {
        check_spans(&sample.text, &sample.secrets)?;
        evaluation.secret(sample);
        Ok(())
    })?;
    read_lines(&dir.join("clean.jsonl"), |sample: CleanSample| {
        evaluation.clean(sample);
        Ok(())
    })?;
    let mut report = evaluation.report;
    let all: Vec<String> = evaluation.secret_texts.iter().chain(&evaluation.clean_texts).cloned().collect();
    for (set, texts) in [("secrets", &evaluation.secret_texts), ("clean", &evaluation.clean_texts), ("all", &all)] {
        report.throughput.insert(set.to_string(), throughput(redaction, texts));
    }
    Ok(report)
}

/// The one-shot speed over `texts`: the fastest of [`SPEED_ROUNDS`] rounds.
fn throughput(redaction: &Redaction, texts: &[String]) -> Throughput {
    let bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
    let mut fastest = f64::INFINITY;
    for _ in 0..SPEED_ROUNDS {
        let mut tally = Tally::default();
        let started = Instant::now();
        for text in texts {
            // The result is discarded; black_box keeps the work from being optimised away.
            std::hint::black_box(redact(redaction, std::hint::black_box(text), &mut tally).is_ok());
        }
        fastest = fastest.min(started.elapsed().as_secs_f64());
    }
    let seconds = if fastest.is_finite() { fastest } else { 0.0 };
    let mb_per_s = if seconds > 0.0 { bytes as f64 / 1e6 / seconds } else { 0.0 };
    Throughput { texts: texts.len(), bytes, seconds, mb_per_s }
}

/// Runs the evaluation and prints it (a table, or JSON with `json`).
pub fn run(redaction: &Redaction, dir: &Path, json: bool) -> Result<ExitCode, String> {
    let report = evaluate(redaction, dir)?;
    let mut out = io::stdout().lock();
    let written = if json {
        serde_json::to_writer_pretty(&mut out, &report).map_err(io::Error::from).and_then(|()| writeln!(out))
    } else {
        print_table(&report, &mut out)
    };
    written.and_then(|()| out.flush()).map_err(|e| format!("cannot write the output: {e}"))?;
    Ok(if report.streaming.differences.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_STREAM_DIFFERS) })
}

fn percent(part: u32, whole: u32, empty: f64) -> f64 {
    if whole == 0 {
        empty
    } else {
        f64::from(part) * 100.0 / f64::from(whole)
    }
}

/// `a×3 b×1`, most frequent first.
fn counts(detectors: &BTreeMap<String, u32>) -> String {
    let mut sorted: Vec<_> = detectors.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    sorted.iter().map(|(id, n)| format!("{id}×{n}")).collect::<Vec<_>>().join(" ")
}

/// Up to [`IDS_SHOWN`] ids, then how many more.
fn some_ids(ids: &[serde_json::Value]) -> String {
    let mut shown: Vec<String> =
        ids.iter().take(IDS_SHOWN).map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_string)).collect();
    if ids.len() > IDS_SHOWN {
        shown.push(format!("+{} more", ids.len() - IDS_SHOWN));
    }
    shown.join(", ")
}

/// The entries of `map` with the `all` total last.
fn last_all<V>(map: &BTreeMap<String, V>) -> impl Iterator<Item = (&String, &V)> {
    map.iter().filter(|(k, _)| *k != "all").chain(map.iter().filter(|(k, _)| *k == "all"))
}

/// The report as terminal tables.
pub fn print_table(report: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "Secrets (caught: no {LEAK_WINDOW} consecutive characters of a private part left)")?;
    writeln!(
        out,
        "{:<36} {:<10} {:>5} {:>6} {:>7} {:>6} {:>7}  caught by / not caught",
        "kind", "category", "total", "caught", "partial", "missed", "recall"
    )?;
    for (kind, score) in &report.kinds {
        let r = &score.recall;
        let mut notes = counts(&score.detectors);
        if !score.not_caught.is_empty() {
            notes = format!("{notes}  not caught: {}", some_ids(&score.not_caught));
        }
        writeln!(
            out,
            "{kind:<36} {:<10} {:>5} {:>6} {:>7} {:>6} {:>6.1}%  {}",
            score.category,
            r.total,
            r.caught,
            r.partial,
            r.missed,
            r.percent(),
            notes.trim()
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<47} {:>5} {:>6} {:>7} {:>6} {:>7}",
        "category", "total", "caught", "partial", "missed", "recall"
    )?;
    for (category, r) in last_all(&report.categories) {
        writeln!(
            out,
            "{category:<47} {:>5} {:>6} {:>7} {:>6} {:>6.1}%",
            r.total,
            r.caught,
            r.partial,
            r.missed,
            r.percent()
        )?;
    }
    writeln!(out)?;
    writeln!(out, "Clean texts (a false positive: the output differs)")?;
    writeln!(out, "{:<47} {:>5} {:>7} {:>7}  detectors / changed", "category", "texts", "changed", "rate")?;
    for (category, c) in last_all(&report.clean) {
        let mut notes = counts(&c.detectors);
        if !c.changed_ids.is_empty() && category != "all" {
            notes = format!("{notes}  {}", some_ids(&c.changed_ids));
        }
        writeln!(
            out,
            "{category:<47} {:>5} {:>7} {:>6.2}%  {}",
            c.total,
            c.changed,
            percent(c.changed, c.total, 0.0),
            notes.trim()
        )?;
    }
    writeln!(out)?;
    writeln!(out, "One-shot throughput (fastest of {SPEED_ROUNDS} rounds)")?;
    for (set, t) in &report.throughput {
        let per_text = if t.texts > 0 { t.seconds * 1e6 / t.texts as f64 } else { 0.0 };
        writeln!(
            out,
            "{set:<8} {:>6} texts {:>6.2} MB in {:.3} s = {:>6.1} MB/s ({per_text:.1} µs per text)",
            t.texts,
            t.bytes as f64 / 1e6,
            t.seconds,
            t.mb_per_s
        )?;
    }
    let s = &report.streaming;
    writeln!(
        out,
        "Streaming ≡ one-shot: {} texts × {} chunkings, {} differing{}",
        s.texts,
        s.chunkings,
        s.differences.len(),
        if s.differences.is_empty() { String::new() } else { format!(": {}", some_ids(&s.differences)) }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    #[test]
    fn eight_consecutive_characters_left_are_a_leak_seven_are_not() {
        let private = "abcdefghijklmnop";
        assert!(leaks(private, "xx ijklmnop yy"));
        assert!(!leaks(private, "xx jklmnop yy abcdefg [REDACTED]"));
        assert!(!leaks(private, "[REDACTED:x:123456]"));
    }

    #[test]
    fn a_private_part_shorter_than_the_window_leaks_only_whole() {
        assert!(leaks("abc12", "see abc12 here"));
        assert!(!leaks("abc12", "see abc1 here"));
    }

    #[test]
    fn windows_count_characters_not_bytes() {
        // 8 characters, 16 bytes: a 7-character rest does not leak, the 8 do.
        let private = "éééééééé";
        assert!(leaks(private, "xéééééééé"));
        assert!(!leaks(private, "xééééééé"));
    }

    #[test]
    fn a_masked_secret_is_caught_a_half_masked_one_partial_an_untouched_one_missed() {
        let text = "key=AKIAABCDEFGHIJKLMNOP end";
        let spans = [span(8, 24)];
        assert_eq!(score(text, &spans, Some("key=AKIA[REDACTED:aws:0a0b0c] end"), true), Outcome::Caught);
        assert_eq!(score(text, &spans, Some("key=AKIA[REDACTED:aws:0a0b0c]IJKLMNOP end"), true), Outcome::Partial);
        assert_eq!(score(text, &spans, Some(text), false), Outcome::Missed);
    }

    #[test]
    fn a_blocked_text_is_caught() {
        assert_eq!(score("a=secretsecret", &[span(2, 14)], None, true), Outcome::Caught);
    }

    #[test]
    fn one_leaking_part_of_several_spoils_the_sample() {
        let text = "user=aaaaaaaaaa pass=bbbbbbbbbb";
        let spans = [span(5, 15), span(21, 31)];
        assert_eq!(score(text, &spans, Some("user=[R] pass=bbbbbbbbbb"), true), Outcome::Partial);
        assert_eq!(score(text, &spans, Some("user=[R] pass=[R]"), true), Outcome::Caught);
    }

    #[test]
    fn spans_are_utf8_byte_offsets_checked_against_character_boundaries() {
        let text = "clé=ÉÉsecret1234";
        let start = text.find("ÉÉ").unwrap();
        assert!(check_spans(text, &[span(start, text.len())]).is_ok());
        assert!(check_spans(text, &[span(start + 1, text.len())]).is_err());
        assert!(check_spans(text, &[span(start, text.len() + 1)]).is_err());
        assert!(check_spans(text, &[span(4, 4)]).is_err());
        assert!(check_spans(text, &[]).is_err());
        assert_eq!(&text[start..], "ÉÉsecret1234");
    }

    #[test]
    fn chunkings_cover_the_text_at_character_boundaries_and_repeat_for_a_seed() {
        let text = "héllo wörld ✓ ".repeat(40);
        for max in CHUNKINGS {
            let pieces = chunk(&text, max, 7);
            assert_eq!(pieces.concat(), text);
            assert!(pieces.iter().all(|p| !p.is_empty() && p.len() <= max + 3));
            assert_eq!(pieces, chunk(&text, max, 7));
        }
        assert!(chunk(&text, 8, 1).len() > chunk(&text, 400, 1).len());
        assert_ne!(chunk(&text, 64, 1), chunk(&text, 64, 2));
    }

    #[test]
    fn counts_list_the_most_frequent_detector_first() {
        let detectors = BTreeMap::from([("a".to_string(), 1), ("b".to_string(), 5)]);
        assert_eq!(counts(&detectors), "b×5 a×1");
    }
}
