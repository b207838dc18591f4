//! The audit trail's ingest side in `warden serve`: `POST /v1/audit/records` and the signed
//! checkpoints (docs/audit.md, "Ingest API").
//!
//! The gateway presents the same bearer token as on `/v1/holds` and sends NDJSON: one version 1
//! record per line (blank lines ignored). Every line is parsed and checked first
//! ([`crate::audit::chain::parse_record`]: a malformed line refuses the whole batch with 400
//! naming the line); the batch is then stored in one transaction
//! ([`crate::audit::store::AuditStore::append`]; a `(source, seq)` already stored with other
//! bytes refuses it with 409). The answer is `{"stored", "duplicates", "head": {"position",
//! "hash"}}`.
//!
//! Checkpoints: after a batch, the row at every multiple of `checkpoint_every` the batch reached
//! (positions N, 2N, …) is signed with the service's Ed25519 key (the verdict key); at shutdown
//! the head is signed if anything was stored since the last checkpoint. Storage work runs on tokio's blocking pool.
//!
//! Limits: one batch at a time (SQLite writer lock); batches up to [`MAX_AUDIT_BODY_BYTES`].

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::{check_gateway, json_body, ApiError};
use super::service::{Service, ServiceError};
use super::signer::VerdictSigner;
use super::util::{log_event, unix_now_millis};
use crate::audit::chain::{checkpoint_payload, parse_record};
use crate::audit::store::{Appended, AuditError, AuditStore, Checkpoint, SqliteAuditStore};

/// Largest ingest body.
pub const MAX_AUDIT_BODY_BYTES: usize = 64 << 20;

/// Why a batch was refused.
#[derive(Debug)]
pub enum IngestError {
    /// A line is not a valid record (1-based line number).
    BadLine(usize, String),
    /// No record in the body.
    Empty,
    /// Storage refused or failed.
    Store(AuditError),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadLine(line, message) => write!(f, "line {line}: {message}"),
            Self::Empty => f.write_str("the body holds no record (NDJSON, one record per line)"),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

struct Inner {
    store: SqliteAuditStore,
    last_checkpoint: i64,
}

/// The audit store with its checkpoint signer.
pub struct Ledger {
    inner: Mutex<Inner>,
    signer: VerdictSigner,
    every: i64,
}

impl Ledger {
    /// Opens the (already migrated) database at `path`.
    pub fn open(path: &std::path::Path, signer: VerdictSigner, every: u64) -> Result<Self, AuditError> {
        let store = SqliteAuditStore::open(path)?;
        let last_checkpoint = store.checkpoints()?.iter().map(|c| c.position).max().unwrap_or(0);
        let every = i64::try_from(every.max(1)).unwrap_or(i64::MAX);
        Ok(Self { inner: Mutex::new(Inner { store, last_checkpoint }), signer, every })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, AuditError> {
        self.inner.lock().map_err(|_| AuditError::Database("the audit store lock is poisoned".to_string()))
    }

    /// Parses and stores an NDJSON batch; signs a checkpoint when one is due.
    pub fn ingest(&self, body: &[u8]) -> Result<Appended, IngestError> {
        let now = unix_now_millis();
        let mut batch = Vec::new();
        for (index, line) in body.split(|b| *b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            batch.push(parse_record(line, now).map_err(|e| IngestError::BadLine(index + 1, e.to_string()))?);
        }
        if batch.is_empty() {
            return Err(IngestError::Empty);
        }
        let mut inner = self.lock().map_err(IngestError::Store)?;
        let appended = inner.store.append(&batch).map_err(IngestError::Store)?;
        let first_due = inner.last_checkpoint / self.every + 1;
        for multiple in first_due..=appended.head.position / self.every {
            let position = multiple.saturating_mul(self.every);
            let signed = inner.store.hash_at(position).and_then(|hash| match hash {
                Some(hash) => self.checkpoint(&mut inner, &hash, position).map(|_| ()),
                None => Err(AuditError::Database(format!("no row at position {position}"))),
            });
            if let Err(e) = signed {
                log_event(&format!("audit: checkpoint at position {position} failed: {e}"));
            }
        }
        Ok(appended)
    }

    fn checkpoint(&self, inner: &mut Inner, hash: &str, position: i64) -> Result<Checkpoint, AuditError> {
        let time = unix_now_millis();
        let signature = self.signer.sign_detached(&checkpoint_payload(position, hash, time));
        let checkpoint = Checkpoint { position, hash: hash.to_string(), time, signature };
        inner.store.add_checkpoint(&checkpoint)?;
        inner.last_checkpoint = position;
        log_event(&format!("audit: checkpoint signed at position {position}"));
        Ok(checkpoint)
    }

    /// Signs the head if rows were stored since the last checkpoint (shutdown).
    pub fn checkpoint_now(&self) -> Result<Option<Checkpoint>, AuditError> {
        let mut inner = self.lock()?;
        let head = inner.store.head()?;
        if head.position <= inner.last_checkpoint {
            return Ok(None);
        }
        self.checkpoint(&mut inner, &head.hash, head.position).map(Some)
    }
}

/// State of the audit routes.
pub struct AuditState {
    /// The approval service (gateway token).
    pub service: Arc<Service>,
    /// The audit store.
    pub ledger: Arc<Ledger>,
}

/// `POST /v1/audit/records`.
pub async fn ingest(
    State(state): State<Arc<AuditState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_gateway(&state.service, &headers)?;
    let ledger = Arc::clone(&state.ledger);
    let result = tokio::task::spawn_blocking(move || ledger.ingest(&body)).await.map_err(|_| ServiceError::Internal)?;
    match result {
        Ok(appended) => Ok(json_body(&json!({
            "stored": appended.stored,
            "duplicates": appended.duplicates,
            "head": {"position": appended.head.position, "hash": appended.head.hash},
        }))
        .into_response()),
        Err(e @ (IngestError::BadLine(..) | IngestError::Empty)) => Err(ServiceError::BadRequest(e.to_string()).into()),
        Err(IngestError::Store(e @ AuditError::Conflict { .. })) => {
            log_event(&format!("audit: batch refused: {e}"));
            Err(ServiceError::Conflict(e.to_string()).into())
        }
        Err(IngestError::Store(e)) => {
            log_event(&format!("audit: batch failed: {e}"));
            Err(ServiceError::Internal.into())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    fn ledger(name: &str, every: u64) -> (Ledger, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("warden-ledger-{name}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        drop(super::super::store::Store::open(&path).unwrap());
        (Ledger::open(&path, VerdictSigner::generate().unwrap(), every).unwrap(), path)
    }

    fn line(seq: i64) -> String {
        format!("{{\"version\":1,\"source\":\"gw\",\"seq\":{seq},\"id\":\"gw-{seq}\"}}\n")
    }

    #[test]
    fn a_malformed_line_refuses_the_batch_and_names_the_line() {
        let (ledger, path) = ledger("bad", 10);
        let body = format!("{}\n{}not json\n", line(1), line(2));
        let error = ledger.ingest(body.as_bytes()).unwrap_err().to_string();
        assert!(error.starts_with("line 4:"), "{error}");
        assert_eq!(ledger.lock().unwrap().store.head().unwrap().position, 0);
        assert!(matches!(ledger.ingest(b"\n\n"), Err(IngestError::Empty)));
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn checkpoints_are_signed_every_n_rows_and_at_shutdown() {
        let (ledger, path) = ledger("checkpoints", 2);
        let positions =
            || -> Vec<i64> { ledger.lock().unwrap().store.checkpoints().unwrap().iter().map(|c| c.position).collect() };
        ledger.ingest(line(1).as_bytes()).unwrap();
        assert!(positions().is_empty());
        ledger.ingest(format!("{}{}", line(2), line(3)).as_bytes()).unwrap();
        assert_eq!(positions(), vec![2]);
        let last = ledger.checkpoint_now().unwrap().unwrap();
        assert_eq!(last.position, 3);
        assert!(ledger.checkpoint_now().unwrap().is_none());
        ledger.ingest(format!("{}{}{}", line(4), line(5), line(6)).as_bytes()).unwrap();
        assert_eq!(positions(), vec![2, 3, 4, 6]);
        let key = ledger.signer.public_key();
        assert!(crate::audit::verify::checkpoint_signature_valid(&last, &key));
        let _ = std::fs::remove_file(path);
    }
}
