//! Audit storage: the [`AuditStore`] trait (what the service and `warden audit` need from a
//! backend) and its SQLite implementation over the approval service's database.
//!
//! Schema ([`SCHEMA`], applied as migration 2 by the approval store's `PRAGMA user_version`
//! mechanism): `audit_records` (one row per record, `position` = storage order from 1, with the
//! chain fields `prev_hash` and `hash`, `UNIQUE(source, seq)`), `audit_blobs` (content-addressed
//! message texts) and `audit_checkpoints` (signed chain heads).
//!
//! [`AuditStore::append`] stores a batch in one immediate transaction: it reads the head, then
//! per record stores its blobs (`INSERT OR IGNORE`: content-addressed), looks up `(source, seq)`
//! — identical bytes are a duplicate (acknowledged, no row), different bytes a conflict (the
//! whole batch is refused) — and otherwise appends the row chained to the head. The chain
//! therefore follows storage order, not sequence order.
//!
//! Limits: one writer at a time (SQLite); reads for verification stream rows in position order.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::chain::{chain_hash, IncomingRecord, GENESIS};
pub use super::error::AuditError;
use super::prunes::{latest_anchor, load_prunes, pruned_session, Prune, PrunedSession};

pub use crate::service::schema::AUDIT_RECORDS as SCHEMA;

pub use crate::service::schema::AUDIT_SESSION_TIME_INDEX as SESSION_TIME_INDEX;

/// The last row of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Its position (0 for an empty chain).
    pub position: i64,
    /// Its hash ([`GENESIS`] for an empty chain).
    pub hash: String,
}

/// What a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// New rows.
    pub stored: usize,
    /// Records already stored with identical bytes.
    pub duplicates: usize,
    /// Records whose `(source, seq)` is stored with other bytes (0-based index in the batch):
    /// not stored; the rest of the batch is.
    pub conflicts: Vec<usize>,
    /// The chain head afterwards.
    pub head: Head,
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Storage position (1, 2, …).
    pub position: i64,
    /// The gateway instance.
    pub source: String,
    /// Its sequence number.
    pub seq: i64,
    /// Record time, ms.
    pub time: i64,
    /// The session, if any.
    pub session_id: Option<String>,
    /// The canonical record text.
    pub record: String,
    /// The previous row's hash.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// A signed chain head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Position of the head.
    pub position: i64,
    /// Its hash.
    pub hash: String,
    /// Signing time, ms.
    pub time: i64,
    /// Standard base64 of the Ed25519 signature of the checkpoint payload.
    pub signature: String,
}

/// Which rows to read.
#[derive(Debug, Clone, Default)]
pub struct RecordFilter {
    /// Only records with `time ≥ since` (ms).
    pub since: Option<i64>,
    /// Only records with `time < until` (ms).
    pub until: Option<i64>,
    /// Only this session's records.
    pub session: Option<String>,
}

impl RecordFilter {
    /// Whether the filter selects every row.
    pub fn is_everything(&self) -> bool {
        self.since.is_none() && self.until.is_none() && self.session.is_none()
    }
}

/// Which sessions to list.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Only sessions with a record of this subject.
    pub subject: Option<String>,
    /// … of this CI job.
    pub job: Option<String>,
    /// … under this role.
    pub role: Option<String>,
    /// … with a record at or after this time (ms).
    pub since: Option<i64>,
    /// … with a record before this time (ms).
    pub until: Option<i64>,
    /// `refused`: sessions with at least one refused request; `allowed`: sessions with none.
    pub decision: Option<String>,
}

/// Where a page of the session listing starts, relative to a session shown on another page
/// (keyset pagination on the listing's order: last activity, newest first, then id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SessionCursor {
    /// The newest sessions.
    #[default]
    Newest,
    /// Sessions listed after (older than) this one.
    Older(SessionKey),
    /// Sessions listed before (newer than) this one.
    Newer(SessionKey),
}

/// A session's place in the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    /// Its last record's time (ms), within the filter.
    pub last: i64,
    /// Its id.
    pub id: String,
}

/// Where a page of one session's records starts (keyset pagination on request order: record
/// time, then storage position).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TurnCursor {
    /// The session's first records.
    #[default]
    First,
    /// The records right after this one.
    After(RecordKey),
    /// The records right before this one.
    Before(RecordKey),
    /// The session's last records.
    Last,
}

/// A record's place in request order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordKey {
    /// The record's time (ms).
    pub time: i64,
    /// Its storage position.
    pub position: i64,
}

/// One session in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// The session id.
    pub id: String,
    /// Distinct subjects, comma-separated.
    pub subjects: String,
    /// Distinct roles, comma-separated.
    pub roles: String,
    /// Distinct CI jobs, comma-separated.
    pub jobs: String,
    /// Records (requests).
    pub records: i64,
    /// Refused requests.
    pub refused: i64,
    /// First record time, ms.
    pub first: i64,
    /// Last record time, ms.
    pub last: i64,
}

/// What the audit trail needs from a storage backend.
pub trait AuditStore {
    /// Stores a batch, all or nothing (see the module comment).
    fn append(&mut self, batch: &[IncomingRecord]) -> Result<Appended, AuditError>;
    /// The chain head.
    fn head(&self) -> Result<Head, AuditError>;
    /// The hash of the row at `position`.
    fn hash_at(&self, position: i64) -> Result<Option<String>, AuditError>;
    /// Stores a checkpoint (a second one at the same position is ignored).
    fn add_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), AuditError>;
    /// All checkpoints by position.
    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError>;
    /// Visits the selected rows in position order.
    fn for_each_record(
        &self,
        filter: &RecordFilter,
        visit: &mut dyn FnMut(StoredRecord) -> Result<(), AuditError>,
    ) -> Result<(), AuditError>;
    /// A blob's content.
    fn blob(&self, name: &str) -> Result<Option<String>, AuditError>;
    /// Visits every blob (name, content).
    fn for_each_blob(&self, visit: &mut dyn FnMut(String, String) -> Result<(), AuditError>) -> Result<(), AuditError>;
    /// Up to `limit` of the sessions `filter` selects from `cursor` on, most recent activity
    /// first (then by id).
    fn sessions(
        &self,
        filter: &SessionFilter,
        cursor: &SessionCursor,
        limit: u32,
    ) -> Result<Vec<SessionSummary>, AuditError>;
    /// Up to `limit` of the session's records from `cursor` on, in request order.
    fn session_records(&self, session: &str, cursor: TurnCursor, limit: u32) -> Result<Vec<StoredRecord>, AuditError>;
    /// How many of the session's records come before `key` in request order (all of them
    /// without a key).
    fn session_record_count(&self, session: &str, before: Option<RecordKey>) -> Result<i64, AuditError>;
    /// The prune statements (retention), by position.
    fn prunes(&self) -> Result<Vec<Prune>, AuditError>;
    /// How many of `session`'s records retention removed.
    fn pruned_session(&self, session: &str) -> Result<Option<PrunedSession>, AuditError>;
}

/// [`AuditStore`] over a SQLite connection.
pub struct SqliteAuditStore {
    connection: Connection,
}

impl SqliteAuditStore {
    /// Opens the database at `path` for writing (its schema must already include the audit
    /// tables: the approval store migrates it).
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        let _mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        connection.execute_batch("PRAGMA synchronous = FULL;")?;
        Self::from_connection(connection)
    }

    /// Opens the database at `path` read-only (verification, export, replay).
    pub fn open_read_only(path: &Path) -> Result<Self, AuditError> {
        if !path.exists() {
            return Err(AuditError::Database(format!("{} does not exist", path.display())));
        }
        let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::from_connection(connection)
    }

    /// Uses `connection`, checking that the audit tables exist.
    pub fn from_connection(connection: Connection) -> Result<Self, AuditError> {
        let tables: i64 = connection.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'
             AND name IN ('audit_records', 'audit_blobs', 'audit_checkpoints')",
            [],
            |row| row.get(0),
        )?;
        if tables != 3 {
            return Err(AuditError::Database(
                "the database has no audit tables (not a `warden serve` database, or one older than the audit trail)"
                    .to_string(),
            ));
        }
        Ok(Self { connection })
    }

    /// The connection, for queries of other audit modules (usage, retention's chunked transactions).
    pub fn connection(&self) -> &Connection {
        &self.connection
    }
}

#[cfg(test)]
impl SqliteAuditStore {
    /// The connection, for tests that tamper with the database.
    pub fn connection_for_tests(&self) -> &Connection {
        &self.connection
    }
}

/// The columns [`stored_record`] reads, in its order.
pub(super) const RECORD_COLUMNS: &str = "position, source, seq, time, session_id, record, prev_hash, hash";

/// A row selected with [`RECORD_COLUMNS`].
pub(super) fn stored_record(row: &rusqlite::Row<'_>) -> Result<StoredRecord, rusqlite::Error> {
    Ok(StoredRecord {
        position: row.get(0)?,
        source: row.get(1)?,
        seq: row.get(2)?,
        time: row.get(3)?,
        session_id: row.get(4)?,
        record: row.get(5)?,
        prev_hash: row.get(6)?,
        hash: row.get(7)?,
    })
}

fn head_of(connection: &Connection) -> Result<Head, AuditError> {
    let head = connection
        .query_row("SELECT position, hash FROM audit_records ORDER BY position DESC LIMIT 1", [], |row| {
            Ok(Head { position: row.get(0)?, hash: row.get(1)? })
        })
        .optional()?;
    if let Some(head) = head {
        return Ok(head);
    }
    // Every row was pruned: the chain continues from the last prune's anchor.
    Ok(match latest_anchor(connection)? {
        Some((position, hash)) => Head { position, hash },
        None => Head { position: 0, hash: GENESIS.to_string() },
    })
}

impl AuditStore for SqliteAuditStore {
    fn append(&mut self, batch: &[IncomingRecord]) -> Result<Appended, AuditError> {
        let tx = self.connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut head = head_of(&tx)?;
        let (mut stored, mut duplicates, mut conflicts) = (0, 0, Vec::new());
        {
            let mut add_blob =
                tx.prepare_cached("INSERT OR IGNORE INTO audit_blobs (name, content) VALUES (?1, ?2)")?;
            let mut find = tx.prepare_cached("SELECT record FROM audit_records WHERE source = ?1 AND seq = ?2")?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO audit_records (position, source, seq, id, session_id, job_id, subject, role, time,
                                            outcome, record, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for (index, record) in batch.iter().enumerate() {
                let existing: Option<String> =
                    find.query_row(params![record.source, record.seq], |row| row.get(0)).optional()?;
                if let Some(existing) = existing {
                    if existing == record.record {
                        duplicates += 1;
                    } else {
                        conflicts.push(index);
                    }
                    continue;
                }
                for (name, content) in &record.blobs {
                    add_blob.execute(params![name, content])?;
                }
                let position = head.position + 1;
                let hash = chain_hash(&head.hash, record.record.as_bytes());
                insert.execute(params![
                    position,
                    record.source,
                    record.seq,
                    record.id,
                    record.session_id,
                    record.job_id,
                    record.subject,
                    record.role,
                    record.time,
                    record.outcome,
                    record.record,
                    head.hash,
                    hash
                ])?;
                head = Head { position, hash };
                stored += 1;
            }
        }
        tx.commit()?;
        Ok(Appended { stored, duplicates, conflicts, head })
    }

    fn head(&self) -> Result<Head, AuditError> {
        head_of(&self.connection)
    }

    fn hash_at(&self, position: i64) -> Result<Option<String>, AuditError> {
        Ok(self
            .connection
            .query_row("SELECT hash FROM audit_records WHERE position = ?1", [position], |row| row.get(0))
            .optional()?)
    }

    fn add_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), AuditError> {
        self.connection.execute(
            "INSERT OR IGNORE INTO audit_checkpoints (position, hash, time, signature) VALUES (?1, ?2, ?3, ?4)",
            params![checkpoint.position, checkpoint.hash, checkpoint.time, checkpoint.signature],
        )?;
        Ok(())
    }

    fn checkpoints(&self) -> Result<Vec<Checkpoint>, AuditError> {
        let mut statement = self
            .connection
            .prepare("SELECT position, hash, time, signature FROM audit_checkpoints ORDER BY position")?;
        let rows = statement.query_map([], |row| {
            Ok(Checkpoint { position: row.get(0)?, hash: row.get(1)?, time: row.get(2)?, signature: row.get(3)? })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn for_each_record(
        &self,
        filter: &RecordFilter,
        visit: &mut dyn FnMut(StoredRecord) -> Result<(), AuditError>,
    ) -> Result<(), AuditError> {
        let mut statement = self.connection.prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM audit_records
             WHERE (?1 IS NULL OR time >= ?1) AND (?2 IS NULL OR session_id = ?2) AND (?3 IS NULL OR time < ?3)
             ORDER BY position"
        ))?;
        let mut rows = statement.query(params![filter.since, filter.session, filter.until])?;
        while let Some(row) = rows.next()? {
            visit(stored_record(row)?)?;
        }
        Ok(())
    }

    fn blob(&self, name: &str) -> Result<Option<String>, AuditError> {
        Ok(self
            .connection
            .prepare_cached("SELECT content FROM audit_blobs WHERE name = ?1")?
            .query_row([name], |row| row.get(0))
            .optional()?)
    }

    fn sessions(
        &self,
        filter: &SessionFilter,
        cursor: &SessionCursor,
        limit: u32,
    ) -> Result<Vec<SessionSummary>, AuditError> {
        // Phase 1: the page's session ids; phase 2: their figures. Both read only the
        // [`SESSION_TIME_INDEX`] (it holds every column they use); refusals are counted from the
        // `outcome` column (the gateway sets it to `refused` exactly when the decision refused
        // the request), never from the record's JSON.
        const WHERE: &str = "session_id IS NOT NULL AND (?1 IS NULL OR subject = ?1) AND (?2 IS NULL OR job_id = ?2)
               AND (?3 IS NULL OR role = ?3) AND (?4 IS NULL OR time >= ?4) AND (?5 IS NULL OR time < ?5)";
        let refused = "sum(outcome IS 'refused')";
        let decision = match filter.decision.as_deref() {
            Some("refused") => format!("{refused} > 0"),
            Some("allowed") => format!("{refused} = 0"),
            _ => "1".to_string(),
        };
        let (keyset, order) = match cursor {
            SessionCursor::Newest => ("1", "last DESC, session_id ASC"),
            SessionCursor::Older(_) => ("(last < ?6 OR (last = ?6 AND session_id > ?7))", "last DESC, session_id ASC"),
            SessionCursor::Newer(_) => ("(last > ?6 OR (last = ?6 AND session_id < ?7))", "last ASC, session_id DESC"),
        };
        let (key_last, key_id) = match cursor {
            SessionCursor::Newest => (None, None),
            SessionCursor::Older(key) | SessionCursor::Newer(key) => (Some(key.last), Some(key.id.as_str())),
        };
        let mut page = self.connection.prepare_cached(&format!(
            "SELECT session_id, max(time) AS last FROM audit_records WHERE {WHERE}
             GROUP BY session_id HAVING {decision} AND {keyset} ORDER BY {order} LIMIT ?8"
        ))?;
        let filters =
            params![filter.subject, filter.job, filter.role, filter.since, filter.until, key_last, key_id, limit];
        let mut ids = page.query_map(filters, |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
        if matches!(cursor, SessionCursor::Newer(_)) {
            ids.reverse();
        }
        // Phase 2: each listed session's figures (its records through the session index).
        let mut summary = self.connection.prepare_cached(&format!(
            "SELECT group_concat(DISTINCT subject), group_concat(DISTINCT role), group_concat(DISTINCT job_id),
                    count(*), {refused}, min(time), max(time)
             FROM audit_records WHERE session_id = ?6 AND {WHERE}"
        ))?;
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let row = params![filter.subject, filter.job, filter.role, filter.since, filter.until, id];
            found.push(summary.query_row(row, |row| {
                Ok(SessionSummary {
                    subjects: row.get::<_, Option<String>>(0)?.unwrap_or_default(),
                    roles: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    jobs: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    records: row.get(3)?,
                    refused: row.get(4)?,
                    first: row.get(5)?,
                    last: row.get(6)?,
                    id: id.clone(),
                })
            })?);
        }
        Ok(found)
    }

    fn session_records(&self, session: &str, cursor: TurnCursor, limit: u32) -> Result<Vec<StoredRecord>, AuditError> {
        let (range, order) = match cursor {
            TurnCursor::First => ("1", "ASC"),
            TurnCursor::After(_) => ("(time, position) > (?2, ?3)", "ASC"),
            TurnCursor::Before(_) => ("(time, position) < (?2, ?3)", "DESC"),
            TurnCursor::Last => ("1", "DESC"),
        };
        let key = match cursor {
            TurnCursor::After(key) | TurnCursor::Before(key) => Some(key),
            TurnCursor::First | TurnCursor::Last => None,
        };
        let mut statement = self.connection.prepare_cached(&format!(
            "SELECT position, source, seq, time, session_id, record, prev_hash, hash FROM audit_records
             WHERE session_id = ?1 AND {range} ORDER BY time {order}, position {order} LIMIT ?4"
        ))?;
        let rows = statement
            .query_map(params![session, key.map(|k| k.time), key.map(|k| k.position), limit], stored_record)?;
        let mut records = rows.collect::<Result<Vec<_>, _>>()?;
        if order == "DESC" {
            records.reverse();
        }
        Ok(records)
    }

    fn session_record_count(&self, session: &str, before: Option<RecordKey>) -> Result<i64, AuditError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT count(*) FROM audit_records
             WHERE session_id = ?1 AND (?2 IS NULL OR (time, position) < (?2, ?3))",
        )?;
        Ok(statement
            .query_row(params![session, before.map(|k| k.time), before.map(|k| k.position)], |row| row.get(0))?)
    }

    fn for_each_blob(&self, visit: &mut dyn FnMut(String, String) -> Result<(), AuditError>) -> Result<(), AuditError> {
        let mut statement = self.connection.prepare("SELECT name, content FROM audit_blobs ORDER BY name")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            visit(row.get(0)?, row.get(1)?)?;
        }
        Ok(())
    }

    fn prunes(&self) -> Result<Vec<Prune>, AuditError> {
        load_prunes(&self.connection)
    }

    fn pruned_session(&self, session: &str) -> Result<Option<PrunedSession>, AuditError> {
        pruned_session(&self.connection, session)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::chain::{blob_name, parse_record};
    use super::*;
    use serde_json::json;

    /// An in-memory store with the audit schema.
    pub(crate) fn memory_store() -> SqliteAuditStore {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(SCHEMA).unwrap();
        connection.execute_batch(SESSION_TIME_INDEX).unwrap();
        connection.execute_batch(super::super::prunes::SCHEMA).unwrap();
        SqliteAuditStore::from_connection(connection).unwrap()
    }

    pub(crate) fn record(source: &str, seq: i64, text: &str) -> IncomingRecord {
        let line = json!({"version": 1, "source": source, "seq": seq, "id": format!("{source}-{seq}"),
                          "session_id": "s1", "outcome": "completed", "note": text,
                          "blobs": {blob_name(text): text}});
        parse_record(line.to_string().as_bytes(), 1000).unwrap()
    }

    #[test]
    fn appended_rows_are_chained_in_storage_order_from_genesis() {
        let mut store = memory_store();
        let appended = store.append(&[record("gw", 1, "a"), record("gw", 2, "b")]).unwrap();
        assert_eq!((appended.stored, appended.duplicates, appended.head.position), (2, 0, 2));
        let mut rows = Vec::new();
        store
            .for_each_record(&RecordFilter::default(), &mut |r| {
                rows.push(r);
                Ok(())
            })
            .unwrap();
        assert_eq!(rows[0].prev_hash, GENESIS);
        assert_eq!(rows[0].hash, chain_hash(GENESIS, rows[0].record.as_bytes()));
        assert_eq!(rows[1].prev_hash, rows[0].hash);
        assert_eq!(store.head().unwrap().hash, rows[1].hash);
        assert_eq!(store.blob(&blob_name("a")).unwrap().as_deref(), Some("a"));
    }

    #[test]
    fn identical_resends_are_duplicates_and_a_conflicting_one_costs_only_itself() {
        let mut store = memory_store();
        store.append(&[record("gw", 1, "a")]).unwrap();
        let again = store.append(&[record("gw", 1, "a"), record("gw", 2, "b")]).unwrap();
        assert_eq!((again.stored, again.duplicates, again.head.position), (1, 1, 2));
        let mut changed = record("gw", 1, "changed");
        changed.record = changed.record.replace("gw-1", "gw-1-changed");
        let conflict = store.append(&[record("gw", 3, "c"), changed]).unwrap();
        assert_eq!((conflict.stored, conflict.conflicts.clone(), conflict.head.position), (1, vec![1], 3));
        assert_eq!(store.blob(&blob_name("changed")).unwrap(), None, "a conflicting record's blobs are not kept");
        assert_eq!(store.blob(&blob_name("c")).unwrap().as_deref(), Some("c"));
    }

    #[test]
    fn sessions_are_listed_with_their_people_and_refusals_and_filtered() {
        let mut store = memory_store();
        let mut refused = record("gw", 2, "b");
        refused.record = refused.record.replace(r#""outcome":"completed""#, r#""outcome":"refused""#);
        refused.outcome = Some("refused".into());
        refused.session_id = Some("s2".into());
        refused.subject = Some("bob".into());
        store.append(&[record("gw", 1, "a"), refused]).unwrap();
        let newest = SessionCursor::Newest;
        let all = store.sessions(&SessionFilter::default(), &newest, 10).unwrap();
        assert_eq!(all.iter().map(|s| (s.id.as_str(), s.refused)).collect::<Vec<_>>(), vec![("s1", 0), ("s2", 1)]);
        let refusing = SessionFilter { decision: Some("refused".into()), ..SessionFilter::default() };
        assert_eq!(store.sessions(&refusing, &newest, 10).unwrap()[0].subjects, "bob");
        let bob = SessionFilter { subject: Some("bob".into()), ..SessionFilter::default() };
        assert_eq!(store.sessions(&bob, &newest, 10).unwrap().len(), 1);
        let allowed = SessionFilter { decision: Some("allowed".into()), ..SessionFilter::default() };
        assert_eq!(store.sessions(&allowed, &newest, 10).unwrap()[0].id, "s1");
    }

    /// Record `seq` of `session` at `time` ms.
    fn timed(seq: i64, session: &str, time: i64) -> IncomingRecord {
        let mut r = record("gw", seq, &format!("m{seq}"));
        r.session_id = Some(session.into());
        r.time = time;
        r
    }

    #[test]
    fn the_session_listing_pages_by_last_activity_and_ties_break_by_id() {
        let mut store = memory_store();
        // Sessions s0..s6, last active at 100, 200, 300, 300, 500, 600, 700 (s2 and s3 tie).
        let lasts = [100, 200, 300, 300, 500, 600, 700];
        let batch: Vec<_> = lasts.iter().enumerate().map(|(i, &t)| timed(i as i64 + 1, &format!("s{i}"), t)).collect();
        store.append(&batch).unwrap();
        let filter = SessionFilter::default();
        let ids = |page: &[SessionSummary]| page.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        let first = store.sessions(&filter, &SessionCursor::Newest, 3).unwrap();
        assert_eq!(ids(&first), ["s6", "s5", "s4"]);
        let key = |s: &SessionSummary| SessionKey { last: s.last, id: s.id.clone() };
        let second = store.sessions(&filter, &SessionCursor::Older(key(&first[2])), 3).unwrap();
        assert_eq!(ids(&second), ["s2", "s3", "s1"]);
        let third = store.sessions(&filter, &SessionCursor::Older(key(&second[2])), 3).unwrap();
        assert_eq!(ids(&third), ["s0"]);
        let back = store.sessions(&filter, &SessionCursor::Newer(key(&third[0])), 3).unwrap();
        assert_eq!(ids(&back), ids(&second), "newer from the next page is this page again");
        let window = SessionFilter { since: Some(300), until: Some(600), ..SessionFilter::default() };
        assert_eq!(ids(&store.sessions(&window, &SessionCursor::Newest, 10).unwrap()), ["s4", "s2", "s3"]);
    }

    #[test]
    fn a_sessions_records_page_in_request_order_from_any_cursor() {
        let mut store = memory_store();
        // Stored out of request order (two workers): positions 1..=5 at times 50, 10, 30, 30, 20.
        let times = [50, 10, 30, 30, 20];
        let batch: Vec<_> = times.iter().enumerate().map(|(i, &t)| timed(i as i64 + 1, "s", t)).collect();
        store.append(&batch).unwrap();
        store.append(&[timed(9, "other", 15)]).unwrap();
        let positions = |rows: Vec<StoredRecord>| rows.iter().map(|r| r.position).collect::<Vec<_>>();
        let first = store.session_records("s", TurnCursor::First, 2).unwrap();
        assert_eq!(positions(first.clone()), [2, 5]);
        let after = RecordKey { time: first[1].time, position: first[1].position };
        assert_eq!(positions(store.session_records("s", TurnCursor::After(after), 2).unwrap()), [3, 4]);
        let at_4 = RecordKey { time: 30, position: 4 };
        assert_eq!(positions(store.session_records("s", TurnCursor::Before(at_4), 2).unwrap()), [5, 3]);
        assert_eq!(positions(store.session_records("s", TurnCursor::Last, 2).unwrap()), [4, 1]);
        assert_eq!(store.session_record_count("s", None).unwrap(), 5);
        assert_eq!(store.session_record_count("s", Some(at_4)).unwrap(), 3);
    }

    #[test]
    fn page_queries_read_through_the_session_time_index() {
        let store = memory_store();
        let plan = |sql: &str| -> String {
            let mut statement = store.connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = statement.query_map([], |row| row.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
        };
        let page = plan(
            "SELECT position FROM audit_records WHERE session_id = 's' AND (time, position) > (1, 2)
             ORDER BY time, position LIMIT 50",
        );
        assert!(page.contains("audit_records_by_session_time") && !page.contains("TEMP B-TREE"), "{page}");
        let listing = plan(
            "SELECT session_id, max(time) AS last FROM audit_records WHERE session_id IS NOT NULL
             GROUP BY session_id ORDER BY last DESC LIMIT 50",
        );
        assert!(listing.contains("COVERING INDEX audit_records_by_session_time"), "{listing}");
        let figures = plan(
            "SELECT group_concat(DISTINCT subject), group_concat(DISTINCT role), group_concat(DISTINCT job_id),
                    count(*), sum(outcome IS 'refused'), min(time), max(time)
             FROM audit_records WHERE session_id = 's' AND ('u' IS NULL OR subject = 'u')",
        );
        assert!(figures.contains("COVERING INDEX audit_records_by_session_time"), "{figures}");
    }

    #[test]
    fn checkpoints_are_kept_once_per_position() {
        let mut store = memory_store();
        let checkpoint = Checkpoint { position: 1, hash: "h".into(), time: 5, signature: "s".into() };
        store.add_checkpoint(&checkpoint).unwrap();
        store.add_checkpoint(&Checkpoint { time: 6, ..checkpoint.clone() }).unwrap();
        assert_eq!(store.checkpoints().unwrap(), vec![checkpoint]);
    }
}
