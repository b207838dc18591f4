//! The audit store's error ([`AuditError`]): a storage failure or a refused batch. Its own module
//! so that the store and the prune records it reads ([`super::prunes`]) both depend on it and
//! not on each other.

use std::fmt;

/// A storage failure, or a refused batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditError {
    /// The database failed or holds unreadable data.
    Database(String),
    /// `(source, seq)` is already stored with different bytes.
    Conflict {
        /// The record's source.
        source: String,
        /// Its sequence number.
        seq: i64,
    },
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Database(e) => write!(f, "audit database error: {e}"),
            Self::Conflict { source, seq } => {
                write!(f, "record {source} seq {seq} is already stored with different content")
            }
        }
    }
}

impl std::error::Error for AuditError {}

impl From<rusqlite::Error> for AuditError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(e.to_string())
    }
}
