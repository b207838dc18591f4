//! The retention records of the audit store ([`super::retention`] writes them): the signed
//! prune statements ([`Prune`]: the anchor a pruned chain verifies from, and the sequence ranges
//! it removed) and, per session, how many records were pruned ([`PrunedSession`]).
//!
//! Kept apart from the prune algorithm so the store (and its benchmark) read them without the
//! service's signer.

use std::collections::BTreeMap;

use ct_codecs::{Base64, Decoder};
use rusqlite::{Connection, OptionalExtension};
use serde_json::json;

use super::chain::canonical;
use super::error::AuditError;
use crate::core::hex::hex;

pub use crate::service::schema::AUDIT_PRUNES as SCHEMA;

/// A signed prune statement: positions up to `position` were removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prune {
    /// The last removed position (the anchor).
    pub position: i64,
    /// The chain hash at `position`: the next row's `prev_hash`.
    pub hash: String,
    /// When the prune ran, ms since the epoch.
    pub time: i64,
    /// The cut: records stored before the first one at or after this time (ms) were removed.
    pub before: i64,
    /// Records this prune removed.
    pub records: i64,
    /// Blobs this prune removed (not signed: counted after the statement was written).
    pub blobs: i64,
    /// The removed sequence ranges, canonical JSON `{"<source>": [[first, last], …]}`.
    pub removed: String,
    /// Standard base64 of the Ed25519 signature of [`Prune::payload`].
    pub signature: String,
}

impl Prune {
    /// The bytes the signature covers.
    pub fn payload(&self) -> Vec<u8> {
        canonical(&json!({
            "kind": "audit_prune", "position": self.position, "hash": self.hash, "time": self.time,
            "before": self.before, "records": self.records,
            "removed_sha256": hex(&hmac_sha256::Hash::hash(self.removed.as_bytes())),
        }))
    }

    /// Whether `key` signed this statement.
    pub fn signature_valid(&self, key: &[u8; 32]) -> bool {
        let Ok(bytes) = Base64::decode_to_vec(&self.signature, None) else { return false };
        let Ok(signature) = ed25519_compact::Signature::from_slice(&bytes) else { return false };
        ed25519_compact::PublicKey::new(*key).verify(self.payload(), &signature).is_ok()
    }

    /// The removed sequence ranges (empty when the text is unreadable: the signature check
    /// covers it, so an unreadable text never comes from the service).
    pub fn ranges(&self) -> BTreeMap<String, Vec<(i64, i64)>> {
        serde_json::from_str(&self.removed).unwrap_or_default()
    }
}

/// How many of a session's records were pruned, and when last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrunedSession {
    /// Records removed.
    pub records: i64,
    /// The last prune that removed some, ms.
    pub time: i64,
}

/// Sequence numbers that signed prunes removed, per source.
#[derive(Debug, Clone, Default)]
pub struct PrunedSeqs(BTreeMap<String, Vec<(i64, i64)>>);

impl PrunedSeqs {
    /// The union of the statements' ranges.
    pub fn from_prunes<'a>(prunes: impl IntoIterator<Item = &'a Prune>) -> Self {
        let mut all: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
        for prune in prunes {
            for (source, ranges) in prune.ranges() {
                all.entry(source).or_default().extend(ranges);
            }
        }
        Self(all)
    }

    /// Whether `seq` of `source` was pruned.
    pub fn contains(&self, source: &str, seq: i64) -> bool {
        self.0.get(source).is_some_and(|ranges| ranges.iter().any(|(first, last)| (*first..=*last).contains(&seq)))
    }

    /// The ranges of one source.
    pub fn of(&self, source: &str) -> &[(i64, i64)] {
        self.0.get(source).map_or(&[], Vec::as_slice)
    }
}

/// Whether the database has the table `name` (a database older than retention lacks these).
fn table_exists(connection: &Connection, name: &str) -> Result<bool, rusqlite::Error> {
    connection.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |row| {
        row.get::<_, i64>(0).map(|n| n > 0)
    })
}

/// Every prune statement, by position (none in a database older than retention).
pub fn load_prunes(connection: &Connection) -> Result<Vec<Prune>, AuditError> {
    if !table_exists(connection, "audit_prunes")? {
        return Ok(Vec::new());
    }
    let mut statement = connection.prepare(
        "SELECT position, hash, time, before, records, blobs, removed, signature FROM audit_prunes ORDER BY position",
    )?;
    let rows = statement.query_map([], |row| {
        Ok(Prune {
            position: row.get(0)?,
            hash: row.get(1)?,
            time: row.get(2)?,
            before: row.get(3)?,
            records: row.get(4)?,
            blobs: row.get(5)?,
            removed: row.get(6)?,
            signature: row.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The latest anchor (position, hash) — the head of a chain whose rows were all pruned.
pub fn latest_anchor(connection: &Connection) -> Result<Option<(i64, String)>, AuditError> {
    if !table_exists(connection, "audit_prunes")? {
        return Ok(None);
    }
    Ok(connection
        .query_row("SELECT position, hash FROM audit_prunes ORDER BY position DESC LIMIT 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?)
}

/// How many of `session`'s records were pruned.
pub fn pruned_session(connection: &Connection, session: &str) -> Result<Option<PrunedSession>, AuditError> {
    if !table_exists(connection, "audit_pruned_sessions")? {
        return Ok(None);
    }
    Ok(connection
        .query_row("SELECT records, time FROM audit_pruned_sessions WHERE session_id = ?1", [session], |row| {
            Ok(PrunedSession { records: row.get(0)?, time: row.get(1)? })
        })
        .optional()?)
}
