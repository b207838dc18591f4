//! `warden audit verify`: recomputes the chain, the blob names and the checkpoint signatures of
//! a database or an export, and reports the first break and every sequence gap.
//!
//! Algorithm (two passes over the rows in position order):
//! 1. index every row's hash → position (8-byte prefixes, so a million rows cost ~16 MB);
//! 2. walk the rows, checking for each, until the first break: its position follows the previous
//!    one (else **deleted**: positions missing), its `prev_hash` is the previous row's hash
//!    ([`GENESIS`] for position 1) — else it links to an earlier row (**inserted**: the rows in
//!    between are not in the chain), to a later row (**reordered**) or to no row (**deleted**:
//!    the row it followed is gone) — and its `hash` is SHA-256(prev_hash ‖ record) (else
//!    **modified**). Sequence numbers per source, referenced blobs and checkpoint positions are
//!    collected on the way.
//!
//! Then: every checkpoint's signature (when a public key is given) and its hash against the row
//! at its position (a mismatch means the chain was rewritten at or before it: **modified**); the
//! chain must reach the last checkpoint (else **truncated**); every blob must hash to its name
//! and every referenced blob must exist; per source, the sequence must run 1, 2, 3, … without
//! gaps. The first break reported is the one at the smallest position.
//!
//! Limits: records appended after the last checkpoint by someone holding the database can only
//! be detected against an external copy of the head (an export, or Envoy's access log); a
//! partial export (`--since`, `--session`) is checked row by row and link by link only where
//! positions are consecutive, without truncation or gap checks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use ct_codecs::{Base64, Decoder};
use serde::Deserialize;
use serde_json::Value;

use super::chain::{blob_name, chain_hash, checkpoint_payload, referenced_blobs, GENESIS};
use super::retention::{Prune, PrunedSeqs};
use super::store::{AuditError, AuditStore, Checkpoint, RecordFilter, SqliteAuditStore, StoredRecord};
use crate::service::util::format_utc;

/// What kind of break the chain shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// A row's content no longer matches its hash (or a checkpoint's).
    Modified,
    /// Rows that are not part of the chain were added.
    Inserted,
    /// Rows are missing.
    Deleted,
    /// Rows were moved.
    Reordered,
    /// The chain ends before the last checkpoint.
    Truncated,
}

impl BreakKind {
    /// The word `verify` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Modified => "modified",
            Self::Inserted => "inserted",
            Self::Deleted => "deleted",
            Self::Reordered => "reordered",
            Self::Truncated => "truncated",
        }
    }
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The first bad position.
    pub position: i64,
    /// The kind.
    pub kind: BreakKind,
    /// An explanation.
    pub detail: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Rows checked.
    pub records: u64,
    /// Blobs checked.
    pub blobs: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// Whether signatures were checked (a public key was given).
    pub signatures_checked: bool,
    /// Checkpoints whose signature is invalid (only counted with a public key).
    pub invalid_signatures: u64,
    /// Whether the trail is complete (a database or a full export).
    pub complete: bool,
    /// The last row (position, hash).
    pub head: Option<(i64, String)>,
    /// The first break, if any.
    pub first_break: Option<Break>,
    /// Sequence gaps, one line each.
    pub gaps: Vec<String>,
    /// Other problems (blobs, signatures, the access log), one line each.
    pub problems: Vec<String>,
    /// Access-log entries held against the store (`--access-log`).
    pub access_log_entries: Option<u64>,
    /// Access-log entries whose record a signed prune removed.
    pub access_log_pruned: u64,
    /// What retention removed, as printed (only from prunes whose signature verified).
    pub pruned: Option<String>,
    /// The sequence numbers signed prunes removed.
    pub pruned_seqs: PrunedSeqs,
}

impl Report {
    /// Whether nothing was found.
    pub fn intact(&self) -> bool {
        self.first_break.is_none() && self.gaps.is_empty() && self.problems.is_empty()
    }

    /// The report as printed: one line per finding, then a summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(b) = &self.first_break {
            let _ = writeln!(out, "FAIL position {}: {} — {}", b.position, b.kind.as_str(), b.detail);
        }
        for line in self.gaps.iter().chain(&self.problems) {
            let _ = writeln!(out, "FAIL {line}");
        }
        if let Some(pruned) = &self.pruned {
            let _ = writeln!(out, "pruned: {pruned}");
        }
        let head = match &self.head {
            Some((position, hash)) => format!("head position {position} hash {hash}"),
            None => "empty".to_string(),
        };
        // The summary claims only the checks made.
        let signatures = match (self.checkpoints, self.signatures_checked, self.invalid_signatures) {
            (0, _, _) => "none to check: nothing is signed".to_string(),
            (_, false, _) => "signatures NOT checked (no --public-key)".to_string(),
            (_, true, 0) => "signatures verified".to_string(),
            (n, true, bad) => format!("{} of {n} signatures valid, {bad} invalid", n - bad),
        };
        let scope = if self.complete { "" } else { "; partial export: no gap or truncation checks" };
        let scope = match self.access_log_entries {
            Some(n) if self.access_log_pruned > 0 => format!(
                "{scope}; {n} access-log entries checked ({} of them pruned under retention)",
                self.access_log_pruned
            ),
            Some(n) => format!("{scope}; {n} access-log entries checked"),
            None => scope.to_string(),
        };
        let verdict = if self.intact() { "OK" } else { "TAMPERING OR LOSS FOUND" };
        let _ = writeln!(
            out,
            "{verdict}: {} records, {} blobs, {} checkpoints ({signatures}); {head}{scope}",
            self.records, self.blobs, self.checkpoints
        );
        out
    }
}

/// A trail to verify: a database or an export file.
pub trait Trail {
    /// Whether the trail holds every row (no filter).
    fn complete(&self) -> bool;
    /// Visits the rows in position order.
    fn records(&self, visit: &mut dyn FnMut(StoredRecord) -> Result<(), AuditError>) -> Result<(), AuditError>;
    /// Visits the blobs.
    fn blobs(&self, visit: &mut dyn FnMut(String, String) -> Result<(), AuditError>) -> Result<(), AuditError>;
    /// The checkpoints.
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError>;
    /// The prune statements (retention).
    fn prunes(&self) -> Result<Vec<Prune>, AuditError>;
}

impl Trail for SqliteAuditStore {
    fn complete(&self) -> bool {
        true
    }
    fn records(&self, visit: &mut dyn FnMut(StoredRecord) -> Result<(), AuditError>) -> Result<(), AuditError> {
        self.for_each_record(&RecordFilter::default(), visit)
    }
    fn blobs(&self, visit: &mut dyn FnMut(String, String) -> Result<(), AuditError>) -> Result<(), AuditError> {
        self.for_each_blob(visit)
    }
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        AuditStore::checkpoints(self)
    }
    fn prunes(&self) -> Result<Vec<Prune>, AuditError> {
        AuditStore::prunes(self)
    }
}

/// One line of an export (`warden audit export`).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExportLine {
    /// The first line.
    Export {
        /// Format version (1).
        version: u32,
        /// Whether every row is included.
        complete: bool,
    },
    /// A row.
    Record {
        /// Position.
        position: i64,
        /// Source.
        source: String,
        /// Sequence number.
        seq: i64,
        /// Time, ms.
        time: i64,
        /// Session.
        session_id: Option<String>,
        /// The stored record text.
        record: String,
        /// Previous hash.
        prev_hash: String,
        /// Hash.
        hash: String,
    },
    /// A blob.
    Blob {
        /// Name.
        name: String,
        /// Content.
        content: String,
    },
    /// A checkpoint.
    Checkpoint {
        /// Position.
        position: i64,
        /// Hash.
        hash: String,
        /// Time, ms.
        time: i64,
        /// Signature.
        signature: String,
    },
    /// A signed prune statement (retention; see [`Prune`]).
    Prune {
        /// The last removed position.
        position: i64,
        /// The chain hash there.
        hash: String,
        /// When, ms.
        time: i64,
        /// The cut, ms.
        before: i64,
        /// Records removed.
        records: i64,
        /// Blobs removed.
        blobs: i64,
        /// The removed sequence ranges (canonical JSON text).
        removed: String,
        /// Signature.
        signature: String,
    },
}

/// An export file as a [`Trail`].
pub struct ExportFile {
    path: PathBuf,
    complete: bool,
}

impl ExportFile {
    /// Opens `path`, reading its header line.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let mut complete = None;
        Self::each_line(path, &mut |line| {
            if let ExportLine::Export { version, complete: c } = line {
                if version != 1 {
                    return Err(AuditError::Database(format!("export format version {version} is not supported")));
                }
                complete = Some(c);
            }
            Ok(())
        })?;
        let complete = complete.ok_or_else(|| AuditError::Database("the export has no header line".to_string()))?;
        Ok(Self { path: path.to_path_buf(), complete })
    }

    fn each_line(path: &Path, visit: &mut dyn FnMut(ExportLine) -> Result<(), AuditError>) -> Result<(), AuditError> {
        let file = std::fs::File::open(path)
            .map_err(|e| AuditError::Database(format!("cannot read {}: {e}", path.display())))?;
        for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| AuditError::Database(format!("cannot read {}: {e}", path.display())))?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed: ExportLine = serde_json::from_str(&line)
                .map_err(|e| AuditError::Database(format!("{} line {}: {e}", path.display(), index + 1)))?;
            visit(parsed)?;
        }
        Ok(())
    }
}

impl Trail for ExportFile {
    fn complete(&self) -> bool {
        self.complete
    }
    fn records(&self, visit: &mut dyn FnMut(StoredRecord) -> Result<(), AuditError>) -> Result<(), AuditError> {
        Self::each_line(&self.path, &mut |line| match line {
            ExportLine::Record { position, source, seq, time, session_id, record, prev_hash, hash } => {
                visit(StoredRecord { position, source, seq, time, session_id, record, prev_hash, hash })
            }
            _ => Ok(()),
        })
    }
    fn blobs(&self, visit: &mut dyn FnMut(String, String) -> Result<(), AuditError>) -> Result<(), AuditError> {
        Self::each_line(&self.path, &mut |line| match line {
            ExportLine::Blob { name, content } => visit(name, content),
            _ => Ok(()),
        })
    }
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        let mut found = Vec::new();
        Self::each_line(&self.path, &mut |line| {
            if let ExportLine::Checkpoint { position, hash, time, signature } = line {
                found.push(Checkpoint { position, hash, time, signature });
            }
            Ok(())
        })?;
        Ok(found)
    }
    fn prunes(&self) -> Result<Vec<Prune>, AuditError> {
        let mut found = Vec::new();
        Self::each_line(&self.path, &mut |line| {
            if let ExportLine::Prune { position, hash, time, before, records, blobs, removed, signature } = line {
                found.push(Prune { position, hash, time, before, records, blobs, removed, signature });
            }
            Ok(())
        })?;
        Ok(found)
    }
}

fn prefix(hash: &str) -> Option<u64> {
    hash.get(..16).and_then(|p| u64::from_str_radix(p, 16).ok())
}

/// Whether `signature` (standard base64) signs `checkpoint` under `key`.
pub fn checkpoint_signature_valid(checkpoint: &Checkpoint, key: &[u8; 32]) -> bool {
    let Ok(bytes) = Base64::decode_to_vec(&checkpoint.signature, None) else { return false };
    let Ok(signature) = ed25519_compact::Signature::from_slice(&bytes) else { return false };
    let payload = checkpoint_payload(checkpoint.position, &checkpoint.hash, checkpoint.time);
    ed25519_compact::PublicKey::new(*key).verify(payload, &signature).is_ok()
}

/// The state of the chain walk.
struct Walk {
    complete: bool,
    /// The first row's link is not checked: it is a leftover of an interrupted prune, at or
    /// below the anchor (whose hash is checked against the row at its position instead).
    unanchored_start: bool,
    index: HashMap<u64, i64>,
    last: Option<(i64, String)>,
    found: Option<Break>,
}

impl Walk {
    fn link_break(&self, row: &StoredRecord) -> Option<Break> {
        let (last_position, last_hash) = match &self.last {
            Some((p, h)) => (*p, h.as_str()),
            None if self.unanchored_start => return None,
            None if self.complete => (0, GENESIS),
            None => return None,
        };
        if row.position <= last_position {
            return Some(Break {
                position: row.position,
                kind: BreakKind::Reordered,
                detail: format!("it comes after position {last_position} (positions out of order or repeated)"),
            });
        }
        if row.position != last_position + 1 {
            if !self.complete {
                return None;
            }
            let missing = if row.position == last_position + 2 {
                format!("position {} is missing", last_position + 1)
            } else {
                format!("positions {}–{} are missing", last_position + 1, row.position - 1)
            };
            return Some(Break { position: last_position + 1, kind: BreakKind::Deleted, detail: missing });
        }
        if row.prev_hash == last_hash {
            return None;
        }
        let linked = prefix(&row.prev_hash).and_then(|p| self.index.get(&p)).copied();
        Some(match linked {
            Some(r) if r < last_position => Break {
                position: r + 1,
                kind: BreakKind::Inserted,
                detail: if r + 1 == last_position {
                    format!("the record at position {last_position} is not in the chain (position {} links to position {r})", row.position)
                } else {
                    format!("the records at positions {}–{last_position} are not in the chain (position {} links to position {r})", r + 1, row.position)
                },
            },
            Some(r) => Break {
                position: row.position,
                kind: BreakKind::Reordered,
                detail: format!("it links to the record now at position {r}, not to position {last_position}"),
            },
            None => Break {
                position: row.position,
                kind: BreakKind::Deleted,
                detail: "the record it followed in the chain is missing (or its link was altered)".to_string(),
            },
        })
    }
}

/// Verifies `trail`; `key` is the service's public key (standard base64 of 32 bytes decoded).
pub fn verify(trail: &dyn Trail, key: Option<&[u8; 32]>) -> Result<Report, AuditError> {
    let complete = trail.complete();
    let checkpoints = trail.checkpoints()?;
    let mut checkpoint_positions: HashSet<i64> = checkpoints.iter().map(|c| c.position).collect();

    let mut index = HashMap::new();
    let mut first_position = None;
    trail.records(&mut |row| {
        first_position.get_or_insert(row.position);
        if let Some(p) = prefix(&row.hash) {
            index.entry(p).or_insert(row.position);
        }
        Ok(())
    })?;

    let mut report = Report { complete, signatures_checked: key.is_some(), ..Report::default() };
    let prunes = trusted_prunes(trail.prunes()?, key, &mut report);
    let anchor = prunes.iter().max_by_key(|p| p.position).filter(|_| complete);
    let mut walk = Walk { complete, unanchored_start: false, index, last: None, found: None };
    match anchor {
        Some(a) if first_position.is_some_and(|f| f <= a.position) => walk.unanchored_start = true,
        Some(a) => walk.last = Some((a.position, a.hash.clone())),
        None => {}
    }
    checkpoint_positions.extend(anchor.map(|a| a.position));
    let mut seqs: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut referenced: BTreeMap<String, i64> = BTreeMap::new();
    let mut hash_at: HashMap<i64, String> = HashMap::new();
    let mut content_breaks: Option<Break> = None;
    trail.records(&mut |row| {
        report.records += 1;
        seqs.entry(row.source.clone()).or_default().push(row.seq);
        if let Ok(value) = serde_json::from_str::<Value>(&row.record) {
            for name in referenced_blobs(&value) {
                referenced.entry(name).or_insert(row.position);
            }
        }
        if walk.found.is_none() {
            walk.found = walk.link_break(&row);
        }
        if content_breaks.is_none() && chain_hash(&row.prev_hash, row.record.as_bytes()) != row.hash {
            content_breaks = Some(Break {
                position: row.position,
                kind: BreakKind::Modified,
                detail: "its stored hash does not match its content".to_string(),
            });
        }
        if checkpoint_positions.contains(&row.position) {
            hash_at.insert(row.position, row.hash.clone());
        }
        walk.last = Some((row.position, row.hash));
        Ok(())
    })?;
    let mut breaks: Vec<Break> = walk.found.into_iter().chain(content_breaks).collect();

    let last_position = walk.last.as_ref().map_or(0, |(p, _)| *p);
    for checkpoint in &checkpoints {
        report.checkpoints += 1;
        if let Some(key) = key {
            if !checkpoint_signature_valid(checkpoint, key) {
                report.invalid_signatures += 1;
                report
                    .problems
                    .push(format!("checkpoint at position {}: the signature is invalid", checkpoint.position));
                continue;
            }
        }
        match hash_at.get(&checkpoint.position) {
            Some(hash) if *hash != checkpoint.hash => breaks.push(Break {
                position: checkpoint.position,
                kind: BreakKind::Modified,
                detail: format!(
                    "the signed checkpoint at position {} names a different hash (the chain was rewritten at or before it)",
                    checkpoint.position
                ),
            }),
            _ => {}
        }
    }
    if complete {
        if let Some(last_checkpoint) = checkpoints.iter().map(|c| c.position).max().filter(|p| *p > last_position) {
            breaks.push(Break {
                position: last_position + 1,
                kind: BreakKind::Truncated,
                detail: format!(
                    "the chain ends at position {last_position} but a signed checkpoint covers position {last_checkpoint}"
                ),
            });
        }
    }
    if let Some(a) = anchor {
        if hash_at.get(&a.position).is_some_and(|hash| *hash != a.hash) {
            breaks.push(Break {
                position: a.position,
                kind: BreakKind::Modified,
                detail: format!("the signed prune at position {} names a different hash", a.position),
            });
        }
        report.pruned = Some(describe_prunes(&prunes, a));
    }
    report.first_break = breaks.into_iter().min_by_key(|b| b.position);
    report.head = walk.last;

    let mut present = HashSet::new();
    trail.blobs(&mut |name, content| {
        report.blobs += 1;
        if blob_name(&content) != name {
            report.problems.push(format!("blob {name}: modified (its content does not hash to its name)"));
        }
        present.insert(name);
        Ok(())
    })?;
    for (name, position) in &referenced {
        if !present.contains(name) {
            report.problems.push(format!("blob {name} referenced by position {position} is missing"));
        }
    }
    if complete {
        report.pruned_seqs = PrunedSeqs::from_prunes(&prunes);
        for (source, mut numbers) in seqs {
            numbers.sort_unstable();
            report.gaps.extend(sequence_gaps(&source, &numbers, report.pruned_seqs.of(&source)));
        }
    }
    Ok(report)
}

/// The prune statements signed by `key`; each one that is not — or all of them, without a key —
/// is a problem, and the positions it claims are then checked as if never pruned (deleted).
fn trusted_prunes(prunes: Vec<Prune>, key: Option<&[u8; 32]>, report: &mut Report) -> Vec<Prune> {
    let Some(key) = key else {
        if let Some(last) = prunes.iter().map(|p| p.position).max() {
            report.problems.push(format!(
                "{} prune statement(s) claim positions 1–{last} were removed under retention, but without --public-key their signatures cannot be checked",
                prunes.len()
            ));
        }
        return Vec::new();
    };
    let (valid, forged): (Vec<Prune>, Vec<Prune>) = prunes.into_iter().partition(|p| p.signature_valid(key));
    for p in &forged {
        report.problems.push(format!(
            "prune statement at position {}: the signature is invalid (not a prune this service signed); its positions count as deleted",
            p.position
        ));
    }
    valid
}

/// `records 1–N pruned under retention …` for the report.
fn describe_prunes(prunes: &[Prune], anchor: &Prune) -> String {
    let count = prunes.len();
    let times = if count == 1 { "once".to_string() } else { format!("{count} times") };
    format!(
        "records 1–{} removed under retention ({times}; the last prune on {} removed records stored before {}); the chain is verified from the prune signed at position {}",
        anchor.position,
        format_utc(anchor.time.div_euclid(1000)),
        format_utc(anchor.before.div_euclid(1000)),
        anchor.position
    )
}

/// Gaps in a sorted list of one source's sequence numbers (expected 1, 2, 3, …), counting the
/// ranges signed prunes removed as present.
fn sequence_gaps(source: &str, numbers: &[i64], pruned: &[(i64, i64)]) -> Vec<String> {
    let mut spans: Vec<(i64, i64, bool)> = numbers.iter().map(|&n| (n, n, false)).collect();
    spans.extend(pruned.iter().map(|&(first, last)| (first, last, true)));
    spans.sort_unstable();
    let mut gaps = Vec::new();
    let mut expected = 1;
    for (first, last, is_pruned) in spans {
        if first > expected {
            gaps.push(if first == expected + 1 {
                format!("source {source}: seq {expected} missing")
            } else {
                format!("source {source}: seq {expected}–{} missing", first - 1)
            });
        } else if first < expected && !is_pruned && !pruned.iter().any(|(a, b)| (*a..=*b).contains(&first)) {
            // A row inside a pruned range is a leftover of an interrupted prune, not a duplicate.
            gaps.push(format!("source {source}: seq {first} appears more than once"));
        }
        expected = expected.max(last.saturating_add(1));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::super::store::tests::{memory_store, record};
    use super::*;

    #[test]
    fn the_summary_never_claims_a_check_it_did_not_make() {
        let empty = Report { signatures_checked: true, ..Report::default() };
        assert!(empty.render().contains("0 checkpoints (none to check: nothing is signed)"), "{}", empty.render());
        assert!(!empty.render().contains("verified"));
        let unchecked = Report { checkpoints: 2, ..Report::default() };
        assert!(unchecked.render().contains("2 checkpoints (signatures NOT checked"));
        let bad = Report { checkpoints: 2, signatures_checked: true, invalid_signatures: 1, ..Report::default() };
        assert!(bad.render().contains("2 checkpoints (1 of 2 signatures valid, 1 invalid)"), "{}", bad.render());
        let good = Report { checkpoints: 2, signatures_checked: true, ..Report::default() };
        assert!(good.render().contains("2 checkpoints (signatures verified)"));
    }

    #[test]
    fn sequence_gaps_name_single_numbers_and_ranges() {
        assert!(sequence_gaps("gw", &[1, 2, 3], &[]).is_empty());
        assert_eq!(
            sequence_gaps("gw", &[1, 3, 7], &[]),
            vec!["source gw: seq 2 missing", "source gw: seq 4–6 missing"]
        );
        assert_eq!(sequence_gaps("gw", &[2], &[]), vec!["source gw: seq 1 missing"]);
        assert!(sequence_gaps("gw", &[5, 6], &[(1, 4)]).is_empty(), "pruned sequences are not gaps");
        assert_eq!(sequence_gaps("gw", &[7], &[(1, 4)]), vec!["source gw: seq 5–6 missing"]);
    }

    fn row(position: i64, prev_hash: &str, record: &str) -> StoredRecord {
        StoredRecord {
            position,
            source: "gw".into(),
            seq: position,
            time: 0,
            session_id: None,
            record: record.into(),
            prev_hash: prev_hash.into(),
            hash: chain_hash(prev_hash, record.as_bytes()),
        }
    }

    struct Rows(Vec<StoredRecord>, Vec<Checkpoint>);

    impl Trail for Rows {
        fn complete(&self) -> bool {
            true
        }
        fn records(&self, visit: &mut dyn FnMut(StoredRecord) -> Result<(), AuditError>) -> Result<(), AuditError> {
            self.0.iter().cloned().try_for_each(visit)
        }
        fn blobs(&self, _: &mut dyn FnMut(String, String) -> Result<(), AuditError>) -> Result<(), AuditError> {
            Ok(())
        }
        fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
            Ok(self.1.clone())
        }
        fn prunes(&self) -> Result<Vec<Prune>, AuditError> {
            Ok(Vec::new())
        }
    }

    fn chain(n: i64) -> Vec<StoredRecord> {
        let mut rows: Vec<StoredRecord> = Vec::new();
        for position in 1..=n {
            let prev = rows.last().map_or(GENESIS.to_string(), |r| r.hash.clone());
            rows.push(row(position, &prev, &format!("{{\"n\":{position}}}")));
        }
        rows
    }

    fn first_break(rows: Vec<StoredRecord>, checkpoints: Vec<Checkpoint>) -> Option<(i64, BreakKind)> {
        verify(&Rows(rows, checkpoints), None).unwrap().first_break.map(|b| (b.position, b.kind))
    }

    #[test]
    fn each_kind_of_break_is_classified_at_its_first_position() {
        assert_eq!(first_break(chain(5), vec![]), None);
        let mut inserted = chain(5);
        let forged = row(3, &inserted[1].hash.clone(), "{\"forged\":1}");
        inserted.insert(2, forged);
        for (index, r) in inserted.iter_mut().enumerate() {
            r.position = i64::try_from(index).unwrap() + 1;
        }
        assert_eq!(first_break(inserted, vec![]), Some((3, BreakKind::Inserted)));
        let mut swapped = chain(5);
        swapped.swap(1, 3);
        swapped[1].position = 2;
        swapped[3].position = 4;
        assert_eq!(first_break(swapped, vec![]), Some((2, BreakKind::Reordered)));
        let mut renumbered = chain(5);
        renumbered.remove(2);
        for (index, r) in renumbered.iter_mut().enumerate() {
            r.position = i64::try_from(index).unwrap() + 1;
        }
        assert_eq!(first_break(renumbered, vec![]), Some((3, BreakKind::Deleted)));
        let mut repeated = chain(3);
        repeated[2].position = 2;
        assert_eq!(first_break(repeated, vec![]), Some((2, BreakKind::Reordered)));
        let rows = chain(5);
        let checkpoint = Checkpoint { position: 7, hash: "x".into(), time: 0, signature: String::new() };
        assert_eq!(first_break(rows, vec![checkpoint]), Some((6, BreakKind::Truncated)));
    }

    #[test]
    fn an_intact_store_verifies_and_an_edited_row_is_named() {
        let mut store = memory_store();
        store.append(&[record("gw", 1, "a"), record("gw", 2, "b"), record("gw", 3, "c")]).unwrap();
        let report = verify(&store, None).unwrap();
        assert!(report.intact(), "{}", report.render());
        assert_eq!(report.records, 3);
        store.connection_for_tests().execute("UPDATE audit_records SET record = '{}' WHERE position = 2", []).unwrap();
        let report = verify(&store, None).unwrap();
        let found = report.first_break.unwrap();
        assert_eq!((found.position, found.kind), (2, BreakKind::Modified));
    }
}
