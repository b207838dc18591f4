//! Retention: removing the oldest records of the audit trail, and the blobs no remaining record
//! references, while what remains still verifies (docs/audit.md, "Retention").
//!
//! A hash chain can only lose a **prefix**: removing rows from the middle would break every
//! later link. A prune therefore removes positions `1..=N` (the records before a date, up to the
//! first record stored at or after it) and leaves a **signed prune statement** at `N` — the
//! anchor: `{"kind":"audit_prune","position":N,"hash":<the chain hash at N>,"time":T,
//! "before":B,"records":K,"removed_sha256":<hex SHA-256 of the removed ranges>}` (canonical
//! JSON), signed with the service's Ed25519 key. The removed ranges (`{"<source>": [[first seq,
//! last seq], …]}`) let `verify` count the removed sequence numbers as pruned rather than missing,
//! and tell a pruned record named by Envoy's access log from a deleted one.
//!
//! Why a statement of its own, not the checkpoint at `N`: someone who can write the database
//! could delete the oldest rows exactly up to a genuine checkpoint; only a signature over a
//! *prune* says that the service removed them. The statement's payload carries a `kind`, so no
//! checkpoint signature (three members) can pass for one.
//!
//! Algorithm ([`prune`]):
//! 1. **Plan** (one read transaction — a WAL snapshot, never blocking ingest): load the prune
//!    statements and keep those signed by the service's key (an unsigned or forged one makes
//!    the prune refuse: it would otherwise launder a deletion). When the first row is new enough,
//!    stop: nothing is due (the usual hourly case). Else walk the rows in position order:
//!    the rows whose time is before the cut are removed — each must link to its predecessor
//!    (the anchor's hash, or [`GENESIS`]), hash to its stored hash and agree with every
//!    checkpoint at its position, else the prune refuses (it must not erase the evidence of
//!    tampering); the first row kept must link to the last removed. The removed rows' blob
//!    names are candidates; every remaining row's text is scanned for blob names, and a
//!    candidate any remaining row names is kept.
//! 2. **Anchor**: the statement (and the per-session counts replay shows) is written in one
//!    short transaction.
//! 3. **Remove** the rows in chunks of [`CHUNK`] positions, then the candidate blobs in chunks,
//!    each chunk its own short immediate transaction followed by a pause as long as it took, so
//!    ingest waits about one chunk at most (docs/audit.md has the measurement). Before
//!    each blob chunk, the rows stored since the last scan are scanned too, inside the same
//!    transaction, so a record stored while the prune runs keeps the blobs it names.
//!
//! A prune interrupted after step 2 leaves rows at or below the anchor: `verify` accepts them
//! (the anchor's hash must match the row at its position) and the next prune removes them.
//!
//! Limits: records are cut by storage position, so a record stored after a newer one (a slow
//! gateway worker) is kept until everything stored before it is old enough. A per-role
//! retention is not offered: it would need rows removed from the middle of the chain. A
//! gateway worker names a stored text without carrying it for up to an hour, so cuts are at
//! least a day old ([`MIN_CUT_AGE_MS`]; `warden audit prune --allow-recent` overrides it, and a
//! record still on its way may then name a blob no longer stored, which `verify` reports).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{json, Value};

use super::chain::{canonical, chain_hash, is_blob_name, referenced_blobs, BLOB_PREFIX, GENESIS};
use super::prunes::latest_anchor;
pub use super::prunes::{load_prunes, Prune, PrunedSeqs, PrunedSession, SCHEMA};
use super::store::{stored_record, AuditError, SqliteAuditStore, StoredRecord, RECORD_COLUMNS};
use crate::service::util::format_utc;

/// Rows (positions) or blobs removed per transaction.
pub const CHUNK: i64 = 500;

/// The least pause between two removal chunks.
const MIN_PAUSE: Duration = Duration::from_millis(20);

/// After a chunk that took `since` until now, when `more` chunks follow: sleeps as long as the
/// chunk took (at least [`MIN_PAUSE`]). SQLite's busy handler is not fair — a writer waiting for
/// the lock sleeps and retries, and back-to-back chunks would let it lose every retry — so the
/// prune holds the write lock at most about half the time.
fn yield_to_writers(since: Instant, more: bool) {
    if more {
        std::thread::sleep(since.elapsed().max(MIN_PAUSE));
    }
}

/// The sentence replay and the session page show for a session retention shortened.
pub fn session_note(pruned: &PrunedSession) -> String {
    format!(
        "{} earlier record{} of this session {} pruned under retention (last on {})",
        pruned.records,
        if pruned.records == 1 { "" } else { "s" },
        if pruned.records == 1 { "was" } else { "were" },
        format_utc(pruned.time.div_euclid(1000))
    )
}

/// Why a prune did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneError {
    /// The database failed.
    Database(String),
    /// The chain does not verify where the prune would cut: removing it would hide tampering.
    Broken(String),
}

impl fmt::Display for PruneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Database(e) => write!(f, "audit database error: {e}"),
            Self::Broken(e) => write!(f, "nothing pruned: {e} (run `warden audit verify`)"),
        }
    }
}

impl std::error::Error for PruneError {}

impl From<rusqlite::Error> for PruneError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(e.to_string())
    }
}

impl From<AuditError> for PruneError {
    fn from(e: AuditError) -> Self {
        Self::Database(e.to_string())
    }
}

/// What signs prune statements: the service's verdict key.
pub trait PruneSigner {
    /// The public key prune statements are checked against.
    fn public_key(&self) -> [u8; 32];
    /// Standard base64 of the Ed25519 signature of `payload`.
    fn sign(&self, payload: &[u8]) -> String;
}

impl PruneSigner for crate::service::approvals::signer::VerdictSigner {
    fn public_key(&self) -> [u8; 32] {
        crate::service::approvals::signer::VerdictSigner::public_key(self)
    }
    fn sign(&self, payload: &[u8]) -> String {
        self.sign_detached(payload)
    }
}

/// What a prune did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    /// Positions removed (`first..=last`), or `None` when nothing was due.
    pub positions: Option<(i64, i64)>,
    /// Records removed.
    pub records: i64,
    /// Blobs removed.
    pub blobs: i64,
    /// Whether this was a dry run (nothing changed).
    pub dry_run: bool,
}

impl fmt::Display for Pruned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run { "would remove" } else { "removed" };
        match self.positions {
            None => f.write_str("nothing to prune"),
            Some((first, last)) => write!(
                f,
                "{verb} {} records (positions {first}–{last}) and {} blobs no remaining record references",
                self.records, self.blobs
            ),
        }
    }
}

/// Every blob name (`sha256:` + 64 hex) in `text`, without parsing it.
fn blob_names_in(text: &str) -> impl Iterator<Item = &str> {
    memchr::memmem::find_iter(text.as_bytes(), BLOB_PREFIX.as_bytes())
        .filter_map(move |at| text.get(at..at + BLOB_PREFIX.len() + 64))
        .filter(|name| is_blob_name(name))
}

/// What step 1 found.
#[derive(Default)]
struct Plan {
    /// The first and last positions to remove.
    positions: Option<(i64, i64)>,
    /// The new anchor, when the prune goes past the current one.
    statement: Option<(i64, String)>,
    /// The anchor the plan started from (position), 0 for none.
    anchor_position: i64,
    /// Records newly pruned (rows at or below the current anchor are leftovers, counted before).
    records: i64,
    ranges: BTreeMap<String, Vec<(i64, i64)>>,
    sessions: BTreeMap<String, i64>,
    candidates: HashSet<String>,
    /// The last position whose text was scanned for blob names.
    scanned_through: i64,
}

fn add_to_ranges(ranges: &mut BTreeMap<String, Vec<(i64, i64)>>, source: &str, seq: i64) {
    let list = ranges.entry(source.to_string()).or_default();
    match list.last_mut() {
        Some((_, last)) if seq == last.saturating_add(1) => *last = seq,
        _ => list.push((seq, seq)),
    }
}

fn normalise(ranges: &mut BTreeMap<String, Vec<(i64, i64)>>) {
    for list in ranges.values_mut() {
        list.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(list.len());
        for &(first, last) in list.iter() {
            match merged.last_mut() {
                Some((_, top)) if first <= top.saturating_add(1) => *top = (*top).max(last),
                _ => merged.push((first, last)),
            }
        }
        *list = merged;
    }
}

fn for_each_row(
    connection: &Connection,
    after: i64,
    visit: &mut dyn FnMut(StoredRecord) -> Result<(), PruneError>,
) -> Result<(), PruneError> {
    let mut statement = connection
        .prepare(&format!("SELECT {RECORD_COLUMNS} FROM audit_records WHERE position > ?1 ORDER BY position"))?;
    let mut rows = statement.query([after])?;
    while let Some(row) = rows.next()? {
        visit(stored_record(row)?)?;
    }
    Ok(())
}

fn plan(connection: &Connection, before: i64, key: &[u8; 32]) -> Result<Plan, PruneError> {
    let snapshot = Transaction::new_unchecked(connection, TransactionBehavior::Deferred)?;
    let prunes = load_prunes(&snapshot)?;
    if let Some(forged) = prunes.iter().find(|p| !p.signature_valid(key)) {
        return Err(PruneError::Broken(format!(
            "the prune statement at position {} is not signed by this service's key",
            forged.position
        )));
    }
    let anchor = prunes.iter().max_by_key(|p| p.position).map(|p| (p.position, p.hash.clone()));
    let anchor_position = anchor.as_ref().map_or(0, |(p, _)| *p);
    let checkpoints: BTreeMap<i64, String> = snapshot
        .prepare("SELECT position, hash FROM audit_checkpoints")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;

    let mut plan = Plan { anchor_position, ..Plan::default() };
    // Nothing due (the usual hourly case): the first row is new enough and no leftover waits.
    let first: Option<(i64, i64)> = snapshot
        .query_row("SELECT position, time FROM audit_records ORDER BY position LIMIT 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    if first.is_none_or(|(position, time)| position > anchor_position && time >= before) {
        return Ok(plan);
    }
    // The link the next row must make; `None` while leftovers of an interrupted prune (rows at or
    // below the anchor) are walked, whose first link cannot be checked.
    let mut expected: Option<(i64, String)> = None;
    let mut at_first_row = true;
    let mut cutting = true;
    for_each_row(&snapshot, 0, &mut |row| {
        if at_first_row {
            at_first_row = false;
            expected = match &anchor {
                Some((position, _)) if row.position <= *position => None,
                Some(anchor) => Some(anchor.clone()),
                None => Some((0, GENESIS.to_string())),
            };
        }
        plan.scanned_through = row.position;
        if !cutting {
            for name in blob_names_in(&row.record) {
                plan.candidates.remove(name);
            }
            return Ok(());
        }
        if let Some((position, hash)) = &expected {
            let next = position.saturating_add(1);
            if row.position != next {
                let missing = if row.position == next.saturating_add(1) {
                    format!("position {next} is missing")
                } else {
                    format!("positions {next}–{} are missing", row.position.saturating_sub(1))
                };
                return Err(PruneError::Broken(format!("{missing} and no signed prune accounts for it")));
            }
            if row.prev_hash != *hash {
                return Err(PruneError::Broken(format!(
                    "position {} does not link to position {position}",
                    row.position
                )));
            }
        }
        if chain_hash(&row.prev_hash, row.record.as_bytes()) != row.hash {
            return Err(PruneError::Broken(format!("position {} does not match its hash", row.position)));
        }
        let signed = checkpoints.get(&row.position).or(anchor.as_ref().filter(|a| a.0 == row.position).map(|a| &a.1));
        if signed.is_some_and(|hash| *hash != row.hash) {
            return Err(PruneError::Broken(format!("position {} differs from its signed checkpoint", row.position)));
        }
        expected = Some((row.position, row.hash.clone()));
        let leftover = row.position <= anchor_position;
        if !leftover && row.time >= before {
            cutting = false;
            for name in blob_names_in(&row.record) {
                plan.candidates.remove(name);
            }
            return Ok(());
        }
        let first_position = plan.positions.map_or(row.position, |(first, _)| first);
        plan.positions = Some((first_position, row.position));
        if let Ok(value) = serde_json::from_str::<Value>(&row.record) {
            plan.candidates.extend(referenced_blobs(&value));
        }
        if !leftover {
            plan.records += 1;
            plan.statement = Some((row.position, row.hash));
            add_to_ranges(&mut plan.ranges, &row.source, row.seq);
            if let Some(session) = row.session_id {
                *plan.sessions.entry(session).or_default() += 1;
            }
        }
        Ok(())
    })?;
    normalise(&mut plan.ranges);
    Ok(plan)
}

/// Removes the records stored before the first one whose time is at or after `before` (ms),
/// and the blobs no remaining record references; signs the cut with `signer`. With `dry_run`,
/// only reports what it would remove. Safe while `warden serve` ingests (see the module
/// comment); a prune with nothing due is a no-op.
pub fn prune(
    store: &SqliteAuditStore,
    before: i64,
    now: i64,
    signer: &dyn PruneSigner,
    dry_run: bool,
) -> Result<Pruned, PruneError> {
    let connection = store.connection();
    let plan = plan(connection, before, &signer.public_key())?;
    if dry_run {
        let blobs = i64::try_from(plan.candidates.len()).unwrap_or(i64::MAX);
        return Ok(Pruned { positions: plan.positions, records: plan.records, blobs, dry_run });
    }
    apply(connection, plan, before, now, signer)
}

/// Steps 2 and 3: the anchor, then the rows and blobs in chunks.
fn apply(
    connection: &Connection,
    mut plan: Plan,
    before: i64,
    now: i64,
    signer: &dyn PruneSigner,
) -> Result<Pruned, PruneError> {
    let mut outcome = Pruned { positions: plan.positions, records: plan.records, blobs: 0, dry_run: false };
    let Some((first, last)) = plan.positions else { return Ok(outcome) };

    if let Some((position, hash)) = plan.statement.take() {
        let removed =
            String::from_utf8(canonical(&json!(plan.ranges))).map_err(|e| PruneError::Database(e.to_string()))?;
        let mut statement = Prune {
            position,
            hash,
            time: now,
            before,
            records: plan.records,
            blobs: 0,
            removed,
            signature: String::new(),
        };
        statement.signature = signer.sign(&statement.payload());
        let tx = Transaction::new_unchecked(connection, TransactionBehavior::Immediate)?;
        if latest_anchor(&tx)?.map_or(0, |(p, _)| p) != plan.anchor_position {
            return Err(PruneError::Broken("another prune ran meanwhile".to_string()));
        }
        tx.execute(
            "INSERT INTO audit_prunes (position, hash, time, before, records, blobs, removed, signature)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
            params![
                statement.position,
                statement.hash,
                statement.time,
                statement.before,
                statement.records,
                statement.removed,
                statement.signature
            ],
        )?;
        for (session, records) in &plan.sessions {
            tx.execute(
                "INSERT INTO audit_pruned_sessions (session_id, records, time) VALUES (?1, ?2, ?3)
                 ON CONFLICT (session_id) DO UPDATE SET records = records + excluded.records, time = excluded.time",
                params![session, records, now],
            )?;
        }
        tx.commit()?;
    }

    let mut from = first;
    while from <= last {
        let to = from.saturating_add(CHUNK - 1).min(last);
        let started = Instant::now();
        connection.execute("DELETE FROM audit_records WHERE position BETWEEN ?1 AND ?2", params![from, to])?;
        let more = to < last || !plan.candidates.is_empty();
        from = to.saturating_add(1);
        yield_to_writers(started, more);
    }

    let mut candidates: Vec<String> = plan.candidates.into_iter().collect();
    candidates.sort_unstable();
    let mut scanned_through = plan.scanned_through;
    let mut removed_blobs = 0;
    let chunks = candidates.chunks(usize::try_from(CHUNK).unwrap_or(500));
    let count = chunks.len();
    for (index, chunk) in chunks.enumerate() {
        let started = Instant::now();
        let tx = Transaction::new_unchecked(connection, TransactionBehavior::Immediate)?;
        let mut named_since = HashSet::new();
        for_each_row(&tx, scanned_through, &mut |row| {
            scanned_through = row.position;
            named_since.extend(blob_names_in(&row.record).map(str::to_string));
            Ok(())
        })?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM audit_blobs WHERE name = ?1")?;
            for name in chunk.iter().filter(|name| !named_since.contains(*name)) {
                removed_blobs += i64::try_from(delete.execute([name])?).unwrap_or(0);
            }
        }
        tx.commit()?;
        yield_to_writers(started, index + 1 < count);
    }
    if let Some(position) = outcome.positions.map(|(_, last)| last) {
        connection.execute(
            "UPDATE audit_prunes SET blobs = blobs + ?1 WHERE position = ?2",
            params![removed_blobs, position],
        )?;
    }
    outcome.blobs = removed_blobs;
    Ok(outcome)
}

/// Parses an age: a positive whole number followed by `d` (days), `h` (hours) or `m`
/// (minutes) — `90d`, `36h` — into milliseconds.
pub fn parse_age(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let unit = match text.chars().last() {
        Some('d') => 86_400_000,
        Some('h') => 3_600_000,
        Some('m') => 60_000,
        _ => return Err(format!("{text:?} is not an age (a number followed by d, h or m: `90d`)")),
    };
    let digits = text.get(..text.len().saturating_sub(1)).unwrap_or_default();
    let count: i64 = digits
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{text:?} is not an age (a positive whole number followed by d, h or m: `90d`)"))?;
    count.checked_mul(unit).ok_or_else(|| format!("{text:?} is too long an age"))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The youngest cut a retention takes, and `warden audit prune` takes without
/// `--allow-recent` (a day): well beyond the hour a gateway worker names a stored text without
/// carrying it again (`BLOB_MEMO_MAX_AGE_MS` in the filter's record module), so no record still
/// on its way can name a blob a prune removed.
pub const MIN_CUT_AGE_MS: i64 = 86_400_000;

/// Parses `--audit-retention`: an age ([`parse_age`]) of at least a day ([`MIN_CUT_AGE_MS`]).
pub fn parse_retention(text: &str) -> Result<i64, String> {
    let age = parse_age(text)?;
    if age < MIN_CUT_AGE_MS {
        return Err(format!("{text:?} is shorter than the shortest retention, a day (`1d`)"));
    }
    Ok(age)
}

/// Parses `--before`: a UTC date (`2026-09-01`, midnight UTC), a UTC time
/// (`2026-09-01T12:00:00Z`), an age (`90d`: that long before `now`, ms) or milliseconds since
/// the epoch. Returns ms.
pub fn parse_before(text: &str, now: i64) -> Result<i64, String> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| format!("{text:?} is too large a time in ms"));
    }
    if text.ends_with(['d', 'h', 'm']) {
        return parse_age(text).map(|age| now.saturating_sub(age));
    }
    let bad = || format!("{text:?} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC) or an age (`90d`)");
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time.strip_suffix('Z').ok_or_else(bad)?)),
        None => (text, None),
    };
    let number = |part: Option<&str>, len: usize, range: std::ops::RangeInclusive<i64>| {
        part.filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|p| p.parse::<i64>().ok())
            .filter(|n| range.contains(n))
            .ok_or_else(bad)
    };
    let mut parts = date.split('-');
    let (year, month, day) =
        (number(parts.next(), 4, 1970..=9999)?, number(parts.next(), 2, 1..=12)?, number(parts.next(), 2, 1..=31)?);
    let next_month = days_from_civil(year + i64::from(month == 12), month % 12 + 1, 1);
    let days = days_from_civil(year, month, day);
    if parts.next().is_some() || days >= next_month {
        return Err(bad());
    }
    let seconds = match time {
        None => 0,
        Some(time) => {
            let mut parts = time.split(':');
            let (h, m, s) =
                (number(parts.next(), 2, 0..=23)?, number(parts.next(), 2, 0..=59)?, number(parts.next(), 2, 0..=59)?);
            if parts.next().is_some() {
                return Err(bad());
            }
            h * 3600 + m * 60 + s
        }
    };
    Ok((days * 86_400 + seconds) * 1000)
}

#[cfg(test)]
mod tests {
    use super::super::chain::{blob_name, parse_record, IncomingRecord};
    use super::super::store::tests::memory_store;
    use super::super::store::AuditStore;
    use super::super::verify::verify;
    use super::*;
    use crate::service::approvals::signer::VerdictSigner;

    /// A record of session `session` at `time` naming the blobs `texts` (carried along).
    fn record_at(seq: i64, time: i64, session: &str, texts: &[&str]) -> IncomingRecord {
        let names: Vec<String> = texts.iter().map(|t| blob_name(t)).collect();
        let blobs: serde_json::Map<String, Value> =
            texts.iter().map(|t| (blob_name(t), Value::String((*t).to_string()))).collect();
        let line = json!({"version": 1, "source": "gw", "seq": seq, "id": format!("gw-{seq}"),
                          "session_id": session, "timings": {"start": time},
                          "request": {"messages": names}, "blobs": blobs});
        parse_record(line.to_string().as_bytes(), 0).unwrap()
    }

    fn store_with(records: &[IncomingRecord]) -> SqliteAuditStore {
        let mut store = memory_store();
        store.append(records).unwrap();
        store
    }

    /// Records 1–3 at times 100, 200, 300, naming blobs `a`, `b`, `c`.
    fn three_records() -> SqliteAuditStore {
        store_with(&[record_at(1, 100, "s", &["a"]), record_at(2, 200, "s", &["b"]), record_at(3, 300, "s", &["c"])])
    }

    fn verified(store: &SqliteAuditStore, signer: &VerdictSigner) -> super::super::verify::Report {
        verify(store, Some(&signer.public_key())).unwrap()
    }

    #[test]
    fn a_prune_removes_old_records_and_unshared_blobs_and_the_rest_verifies_from_its_anchor() {
        let signer = VerdictSigner::generate().unwrap();
        let mut store = store_with(&[
            record_at(1, 100, "old", &["only old"]),
            record_at(2, 200, "both", &["shared"]),
            record_at(3, 300, "both", &["shared", "new"]),
        ]);
        let pruned = prune(&store, 250, 1_000, &signer, false).unwrap();
        assert_eq!((pruned.positions, pruned.records, pruned.blobs), (Some((1, 2)), 2, 1));
        assert_eq!(store.blob(&blob_name("only old")).unwrap(), None);
        assert_eq!(store.blob(&blob_name("shared")).unwrap().as_deref(), Some("shared"), "a kept record names it");
        let report = verified(&store, &signer);
        assert!(report.intact(), "{}", report.render());
        assert!(report.render().contains("pruned: records 1–2 removed under retention"), "{}", report.render());
        assert_eq!(store.pruned_session("both").unwrap().map(|p| p.records), Some(1));
        store.append(&[record_at(4, 400, "both", &["later"])]).unwrap();
        assert!(verified(&store, &signer).intact(), "appending continues the chain");
    }

    #[test]
    fn a_record_stored_while_the_prune_runs_keeps_the_old_blob_it_names() {
        let signer = VerdictSigner::generate().unwrap();
        let mut store = store_with(&[record_at(1, 100, "s", &["old"]), record_at(2, 300, "s", &["new"])]);
        let planned = plan(store.connection(), 200, &signer.public_key()).unwrap();
        assert!(planned.candidates.contains(&blob_name("old")));
        let racing = plan(store.connection(), 200, &signer.public_key()).unwrap();
        // A gateway worker that remembers the blob as stored names it without its content.
        let mut resent = record_at(3, 400, "s", &["old"]);
        resent.blobs.clear();
        store.append(&[resent]).unwrap();
        let pruned = apply(store.connection(), planned, 200, 1_000, &signer).unwrap();
        assert_eq!((pruned.records, pruned.blobs), (1, 0));
        let second = apply(store.connection(), racing, 200, 1_000, &signer).unwrap_err();
        assert!(second.to_string().contains("another prune ran meanwhile"), "{second}");
        assert_eq!(store.blob(&blob_name("old")).unwrap().as_deref(), Some("old"));
        let report = verified(&store, &signer);
        assert!(report.intact(), "{}", report.render());
    }

    #[test]
    fn an_export_of_a_pruned_store_verifies_on_its_own() {
        let signer = VerdictSigner::generate().unwrap();
        let store = store_with(&[record_at(1, 100, "s", &["a"]), record_at(2, 300, "s", &["b"])]);
        prune(&store, 200, 1_000, &signer, false).unwrap();
        let mut bytes = Vec::new();
        super::super::export::export(&store, &super::super::store::RecordFilter::default(), &mut bytes).unwrap();
        let path = std::env::temp_dir().join(format!("warden-pruned-export-{}.jsonl", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let report =
            verify(&super::super::verify::ExportFile::open(&path).unwrap(), Some(&signer.public_key())).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(report.intact(), "{}", report.render());
        assert!(report.pruned.is_some());
    }

    #[test]
    fn a_dry_run_changes_nothing_and_a_prune_with_nothing_due_is_a_no_op() {
        let signer = VerdictSigner::generate().unwrap();
        let empty = memory_store();
        assert_eq!(prune(&empty, 1_000, 1_000, &signer, false).unwrap().positions, None, "an empty store");
        assert!(empty.prunes().unwrap().is_empty());
        let store = store_with(&[record_at(1, 100, "s", &["a"]), record_at(2, 200, "s", &["b"])]);
        let dry = prune(&store, 150, 1_000, &signer, true).unwrap();
        assert_eq!((dry.positions, dry.records, dry.blobs, dry.dry_run), (Some((1, 1)), 1, 1, true));
        assert_eq!(store.head().unwrap().position, 2);
        assert!(store.prunes().unwrap().is_empty());
        assert_eq!(prune(&store, 50, 1_000, &signer, false).unwrap().positions, None, "nothing older");
        prune(&store, 150, 1_000, &signer, false).unwrap();
        let again = prune(&store, 150, 2_000, &signer, false).unwrap();
        assert_eq!((again.positions, again.records), (None, 0), "the range is already pruned");
        assert_eq!(store.prunes().unwrap().len(), 1);
    }

    #[test]
    fn pruning_everything_keeps_the_head_so_the_chain_continues() {
        let signer = VerdictSigner::generate().unwrap();
        let mut store = store_with(&[record_at(1, 100, "s", &["a"]), record_at(2, 200, "s", &["b"])]);
        let head = store.head().unwrap();
        prune(&store, 1_000, 1_000, &signer, false).unwrap();
        assert_eq!(store.head().unwrap(), head);
        assert!(verified(&store, &signer).intact());
        store.append(&[record_at(3, 300, "s", &["c"])]).unwrap();
        let report = verified(&store, &signer);
        assert!(report.intact(), "{}", report.render());
        assert_eq!(report.records, 1);
    }

    #[test]
    fn a_forged_prune_statement_does_not_hide_a_deletion_and_the_service_will_not_prune_over_it() {
        let signer = VerdictSigner::generate().unwrap();
        let forger = VerdictSigner::generate().unwrap();
        let store = three_records();
        // Someone with write access deletes the oldest record and signs a prune with another key.
        prune(&store, 150, 1_000, &forger, false).unwrap();
        let report = verified(&store, &signer);
        assert!(!report.intact());
        assert_eq!(report.first_break.as_ref().map(|b| b.kind), Some(super::super::verify::BreakKind::Deleted));
        assert!(
            report.render().contains("prune statement at position 1: the signature is invalid"),
            "{}",
            report.render()
        );
        assert!(report.pruned.is_none());
        assert!(matches!(prune(&store, 250, 2_000, &signer, false), Err(PruneError::Broken(_))));
        assert_eq!(store.head().unwrap().position, 3, "nothing was removed");
    }

    #[test]
    fn deleting_old_records_without_a_prune_is_still_a_deletion_and_blocks_pruning() {
        let signer = VerdictSigner::generate().unwrap();
        let store = three_records();
        store.connection().execute("DELETE FROM audit_records WHERE position = 1", []).unwrap();
        let report = verified(&store, &signer);
        assert_eq!(
            report.first_break.map(|b| (b.position, b.kind)),
            Some((1, super::super::verify::BreakKind::Deleted))
        );
        let refused = prune(&store, 250, 1_000, &signer, false).unwrap_err();
        assert!(refused.to_string().contains("position 1 is missing and no signed prune"), "{refused}");
    }

    #[test]
    fn a_prune_refuses_to_remove_a_modified_record() {
        let signer = VerdictSigner::generate().unwrap();
        let store = store_with(&[record_at(1, 100, "s", &["a"]), record_at(2, 200, "s", &["b"])]);
        store.connection().execute("UPDATE audit_records SET record = '{}' WHERE position = 1", []).unwrap();
        let refused = prune(&store, 150, 1_000, &signer, false).unwrap_err();
        assert!(refused.to_string().contains("position 1 does not match its hash"), "{refused}");
    }

    #[test]
    fn deleting_past_the_anchor_is_reported_as_a_deletion() {
        let signer = VerdictSigner::generate().unwrap();
        let store = three_records();
        prune(&store, 150, 1_000, &signer, false).unwrap();
        store.connection().execute("DELETE FROM audit_records WHERE position = 2", []).unwrap();
        let report = verified(&store, &signer);
        assert_eq!(
            report.first_break.map(|b| (b.position, b.kind)),
            Some((2, super::super::verify::BreakKind::Deleted))
        );
    }

    #[test]
    fn rows_left_by_an_interrupted_prune_verify_and_the_next_prune_removes_them() {
        let signer = VerdictSigner::generate().unwrap();
        let store = three_records();
        prune(&store, 250, 1_000, &signer, false).unwrap();
        // Put back row 2 as if the prune had stopped after its anchor was written.
        let fresh = store_with(&[record_at(1, 100, "s", &["a"]), record_at(2, 200, "s", &["b"])]);
        let mut row2 = None;
        fresh
            .for_each_record(&super::super::store::RecordFilter::default(), &mut |r| {
                if r.position == 2 {
                    row2 = Some(r);
                }
                Ok(())
            })
            .unwrap();
        let row2 = row2.unwrap();
        store.connection().execute(
            "INSERT INTO audit_records (position, source, seq, id, time, record, prev_hash, hash) VALUES (2, 'gw', 2, 'gw-2', 200, ?1, ?2, ?3)",
            params![row2.record, row2.prev_hash, row2.hash]).unwrap();
        store
            .connection()
            .execute("INSERT INTO audit_blobs (name, content) VALUES (?1, 'b')", [blob_name("b")])
            .unwrap();
        assert!(verified(&store, &signer).intact(), "{}", verified(&store, &signer).render());
        let again = prune(&store, 250, 2_000, &signer, false).unwrap();
        assert_eq!((again.positions, again.records), (Some((2, 2)), 0));
        assert_eq!(store.head().unwrap().position, 3);
        assert!(verified(&store, &signer).intact());
    }

    #[test]
    fn ages_and_dates_parse_to_milliseconds_and_nonsense_is_refused() {
        assert_eq!(parse_age("90d"), Ok(90 * 86_400_000));
        assert_eq!(parse_age("36h"), Ok(36 * 3_600_000));
        assert_eq!(parse_retention("24h"), Ok(MIN_CUT_AGE_MS));
        assert!(parse_retention("23h").unwrap_err().contains("shortest retention"));
        assert_eq!(parse_before("1d", 100 * 86_400_000), Ok(99 * 86_400_000));
        assert_eq!(parse_before("1970-01-02", 0), Ok(86_400_000));
        assert_eq!(parse_before("1800000030000", 0), Ok(1_800_000_030_000));
        assert_eq!(parse_before("2000-02-29T00:00:00Z", 0), Ok(951_782_400_000));
        assert_eq!(parse_before("2026-12-07T11:20:47Z", 0), Ok(1_796_642_447_000));
        for bad in [
            "0d",
            "-3d",
            "d",
            "90x",
            "9999999999999999d",
            "2026-02-30",
            "2025-02-29",
            "2026-13-01",
            "2026-1-01",
            "2026-01-01T25:00:00Z",
            "2026-01-01T10:00:00",
            "2026-01-01T10:00Z",
            "yesterday",
            "",
        ] {
            assert!(parse_before(bad, 0).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn removed_sequences_are_kept_as_merged_ranges() {
        let mut ranges = BTreeMap::new();
        for (source, seq) in [("a", 1), ("a", 2), ("b", 7), ("a", 4), ("a", 3), ("b", 8)] {
            add_to_ranges(&mut ranges, source, seq);
        }
        normalise(&mut ranges);
        assert_eq!(ranges["a"], vec![(1, 4)]);
        assert_eq!(ranges["b"], vec![(7, 8)]);
        let prune = Prune {
            position: 1,
            hash: String::new(),
            time: 0,
            before: 0,
            records: 6,
            blobs: 0,
            removed: String::from_utf8(canonical(&json!(ranges))).unwrap(),
            signature: String::new(),
        };
        let pruned = PrunedSeqs::from_prunes([&prune]);
        assert!(pruned.contains("a", 3) && pruned.contains("b", 8));
        assert!(!pruned.contains("a", 5) && !pruned.contains("c", 1));
    }

    #[test]
    fn blob_names_are_found_in_record_text_without_parsing_it() {
        let name = format!("sha256:{}", "ab".repeat(32));
        let text = format!(r#"{{"request":{{"messages":["{name}","sha256:short"]}}}}"#);
        assert_eq!(blob_names_in(&text).collect::<Vec<_>>(), vec![name.as_str()]);
    }
}
