//! The audit trail's ingest side in `warden serve`: `POST /v1/audit/records` and the signed
//! checkpoints (docs/audit.md, "Ingest API").
//!
//! The gateway presents the same bearer token as on `/v1/holds` and sends NDJSON: one version 1
//! record per line (blank lines ignored). Each line is judged on its own: a line that is not a
//! valid record ([`super::chain::parse_record`]) or whose `(source, seq)` is already
//! stored with other bytes is refused and named, and never costs the other lines, which are
//! stored in one transaction ([`super::store::AuditStore::append`]). The answer (200) is
//! `{"stored", "duplicates", "refused": [{"line", "id", "error"}], "head": {"position",
//! "hash"}}`; `stored + duplicates + refused` accounts for every line, which is what the
//! gateway checks before it counts a batch as judged. A body with no line at all is a 400.
//!
//! Checkpoints: after a batch, the row at every multiple of `checkpoint_every` the batch reached
//! (positions N, 2N, …) is signed with the service's Ed25519 key (the verdict key); at shutdown
//! the head is signed if anything was stored since the last checkpoint. Storage work runs on tokio's blocking pool.
//!
//! Retention ([`retain`], with `--audit-retention AGE`): at start and every
//! [`RETENTION_PERIOD`], records older than the age are pruned under a signed statement
//! ([`super::retention`]), on the blocking pool with a connection of its own; each
//! removal chunk is a short transaction, so ingest keeps going.
//!
//! Limits: one batch at a time (SQLite writer lock); batches up to [`MAX_AUDIT_BODY_BYTES`].

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::service::approvals::http::{check_gateway, json_body, ApiError};
use crate::service::approvals::service::{Service, ServiceError};
use crate::service::approvals::signer::VerdictSigner;
use crate::service::util::{log_event, unix_now_millis};
use super::chain::{checkpoint_payload, parse_record};
use super::store::{Appended, AuditError, AuditStore, Checkpoint, SqliteAuditStore};

/// How often `warden serve` applies its retention.
pub const RETENTION_PERIOD: std::time::Duration = std::time::Duration::from_secs(3600);

/// Prunes the audit store at `db` every `period` (the first time at once): the records older
/// than `age_ms`, signed with `signer`. Each outcome or failure is logged; a failure (a chain
/// that does not verify where it would cut) leaves everything in place and is retried next time.
pub async fn retain(db: std::path::PathBuf, signer: VerdictSigner, age_ms: i64, period: std::time::Duration) {
    let signer = Arc::new(signer);
    let mut interval = tokio::time::interval(period);
    loop {
        interval.tick().await;
        let (db, signer) = (db.clone(), Arc::clone(&signer));
        let done = tokio::task::spawn_blocking(move || {
            let now = unix_now_millis();
            let store = SqliteAuditStore::open(&db).map_err(|e| e.to_string())?;
            super::retention::prune(&store, now.saturating_sub(age_ms), now, signer.as_ref(), false)
                .map_err(|e| e.to_string())
        })
        .await;
        match done {
            Ok(Ok(pruned)) if pruned.positions.is_some() => log_event(&format!("audit retention: {pruned}")),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => log_event(&format!("audit retention: {e}")),
            Err(e) => log_event(&format!("audit retention: the prune task failed: {e}")),
        }
    }
}

/// Largest ingest body.
pub const MAX_AUDIT_BODY_BYTES: usize = 64 << 20;

/// Why a batch was refused.
#[derive(Debug)]
pub enum IngestError {
    /// No record in the body.
    Empty,
    /// Storage refused or failed.
    Store(AuditError),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("the body holds no record (NDJSON, one record per line)"),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

/// A line the service refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 1-based number among the batch's non-blank lines.
    pub line: usize,
    /// The record's id, when the line names one.
    pub id: Option<String>,
    /// Why.
    pub error: String,
}

/// What one batch did.
#[derive(Debug)]
pub struct Ingested {
    /// The lines stored.
    pub appended: Appended,
    /// The lines refused.
    pub refused: Vec<Refused>,
}

/// The `id` of a line the parser refused, found without parsing it whole (its depth is what may
/// have failed): the first `"id":"…"` at the line's top level, printable and at most 300 bytes.
fn line_id(line: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(line).ok()?;
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (at, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth = depth.saturating_sub(1),
            '"' if depth == 1 && text.get(at..)?.starts_with("\"id\":\"") => {
                let rest = text.get(at + 6..)?;
                let id: String = rest.chars().take_while(|c| *c != '"' && *c != '\\').take(300).collect();
                return id.chars().all(|c| c.is_ascii_graphic()).then_some(id);
            }
            '"' => in_string = true,
            _ => {}
        }
    }
    None
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

    /// Parses and stores an NDJSON batch, judging each line on its own; signs a checkpoint when
    /// one is due.
    pub fn ingest(&self, body: &[u8]) -> Result<Ingested, IngestError> {
        let now = unix_now_millis();
        let mut batch = Vec::new();
        let mut lines = Vec::new();
        let mut refused = Vec::new();
        let mut count = 0;
        for line in body.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            count += 1;
            match parse_record(line, now) {
                Ok(record) => {
                    batch.push(record);
                    lines.push(count);
                }
                Err(e) => refused.push(Refused { line: count, id: line_id(line), error: e.to_string() }),
            }
        }
        if count == 0 {
            return Err(IngestError::Empty);
        }
        let mut inner = self.lock().map_err(IngestError::Store)?;
        let appended = inner.store.append(&batch).map_err(IngestError::Store)?;
        for index in &appended.conflicts {
            if let (Some(record), Some(line)) = (batch.get(*index), lines.get(*index)) {
                let error = AuditError::Conflict { source: record.source.clone(), seq: record.seq }.to_string();
                refused.push(Refused { line: *line, id: Some(record.id.clone()), error });
            }
        }
        refused.sort_by_key(|r| r.line);
        for r in &refused {
            log_event(&format!(
                "audit: record refused (line {}, id {}): {}",
                r.line,
                r.id.as_deref().unwrap_or("?"),
                r.error
            ));
        }
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
        Ok(Ingested { appended, refused })
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
        Ok(Ingested { appended, refused }) => Ok(json_body(&json!({
            "stored": appended.stored,
            "duplicates": appended.duplicates,
            "refused": refused.iter().map(|r| json!({"line": r.line, "id": r.id, "error": r.error})).collect::<Vec<_>>(),
            "head": {"position": appended.head.position, "hash": appended.head.hash},
        }))
        .into_response()),
        Err(e @ IngestError::Empty) => Err(ServiceError::BadRequest(e.to_string()).into()),
        Err(IngestError::Store(e)) => {
            log_event(&format!("audit: batch failed: {e}"));
            Err(ServiceError::Internal.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(name: &str, every: u64) -> (Ledger, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("warden-ledger-{name}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        drop(crate::service::store::Store::open(&path).unwrap());
        (Ledger::open(&path, VerdictSigner::generate().unwrap(), every).unwrap(), path)
    }

    fn line(seq: i64) -> String {
        format!("{{\"version\":1,\"source\":\"gw\",\"seq\":{seq},\"id\":\"gw-{seq}\"}}\n")
    }

    #[test]
    fn a_bad_line_is_refused_alone_and_named_and_the_others_are_stored() {
        let (ledger, path) = ledger("bad", 10);
        let deep = format!(
            r#"{{"version":1,"source":"gw","seq":3,"id":"gw-3","request":{{"params":{{"p":{}1{}}}}}}}"#,
            "[".repeat(130),
            "]".repeat(130)
        );
        let body = format!("{}\n{}not json\n{deep}\n{}", line(1), line(2), line(4));
        let ingested = ledger.ingest(body.as_bytes()).unwrap();
        assert_eq!(ingested.appended.stored, 3);
        let refused: Vec<(usize, Option<&str>)> = ingested.refused.iter().map(|r| (r.line, r.id.as_deref())).collect();
        assert_eq!(refused, vec![(3, None), (4, Some("gw-3"))], "numbered among non-blank lines");
        assert!(ingested.refused[1].error.contains("recursion limit"), "{:?}", ingested.refused);
        assert_eq!(ledger.lock().unwrap().store.head().unwrap().position, 3);
        let conflict = ledger.ingest(line(1).replace("\"id\":\"gw-1\"", "\"id\":\"gw-1\",\"x\":1").as_bytes()).unwrap();
        assert_eq!(
            (conflict.appended.stored, conflict.refused[0].line, conflict.refused[0].id.as_deref()),
            (0, 1, Some("gw-1"))
        );
        assert!(matches!(ledger.ingest(b"\n\n"), Err(IngestError::Empty)));
        let _ = std::fs::remove_file(path);
    }

    /// A hostile request body: a top-level field nested `depth` levels (arrays and objects
    /// mixed), a long string, odd unicode, many fields, and a finding in a parameter.
    fn hostile_body(depth: usize, long: usize, fields: usize, odd: &str, objects: bool) -> String {
        let mut deep = String::new();
        for level in 0..depth {
            deep.push_str(if objects && level % 2 == 0 { r#"{"k":"# } else { "[" });
        }
        deep.push_str(&serde_json::to_string(odd).unwrap());
        for level in (0..depth).rev() {
            deep.push(if objects && level % 2 == 0 { '}' } else { ']' });
        }
        let mut body = format!(
            r#"{{"model":"claude-sonnet-4-6","max_tokens":100,"deep":{deep},"long":"{}","metadata":{{"note":"mail mallory.secret@evil-corp.io","authorization_token":"opaque"}},"messages":[{{"role":"user","content":{}}}]"#,
            "y".repeat(long),
            serde_json::to_string(odd).unwrap()
        );
        for field in 0..fields {
            body.push_str(&format!(r#","f{field}":{}"#, serde_json::to_string(odd).unwrap()));
        }
        body.push('}');
        body
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]
        /// Whatever body the filter's exchange takes (or refuses), the record it makes is stored
        /// by the service's real ingest, whole (no stand-in), with no credential or finding.
        #[test]
        fn any_body_the_filter_accepts_yields_a_record_the_service_stores(
            depth in 1usize..140,
            long in 0usize..200_000,
            fields in 0usize..400,
            odd in "[\u{0}-\u{1f}\u{7f}-\u{9f}\u{200b}-\u{200f}\u{2028}\u{2029}\u{fe0f}\u{10ffff}😀é\"\\\\a-z]{0,40}",
            objects in proptest::bool::ANY,
        ) {
            use crate::core::audit::outbox::{Outbox, BATCH_RECORDS};
            use crate::core::audit::trail::Ending;
            use crate::core::exchange::{Exchange, Gateway, RequestHead};
            use crate::core::identity::{TokenStatus, VerifiedClaims};
            use crate::core::policy::config::AuditMode;
            let gateway = Gateway::new(include_str!("../../../envoy/policy.yaml"), |name| {
                Some(if name == "WARDEN_APPROVALS_VERDICT_KEY" { "A".repeat(43) } else { "sk-ant-test".to_string() })
            })
            .unwrap();
            let headers = vec![("content-type".to_string(), "application/json".to_string())];
            let token = TokenStatus::Verified(VerifiedClaims {
                subject: Some("alice".into()),
                issuer: Some("warden-demo".into()),
                issued_at: Some(1_800_000_000.0),
                expires_at: Some(1_800_000_900.0),
                groups: vec!["eng".into()],
                job: vec![],
                claims: vec![],
                token_id: None,
                audiences: vec![],
            });
            let head = RequestHead { method: "POST", path: "/v1/messages", headers: &headers, token, now: 1_800_000_100.0 };
            let (mut exchange, _) = Exchange::start(&gateway, &head);
            let body = hostile_body(depth, long, fields, &odd, objects);
            exchange.on_body_complete(&gateway, body.as_bytes());
            exchange.on_response_headers(&gateway, &[(":status".to_string(), "200".to_string())]);
            let answer = format!(
                r#"{{"content":[{{"type":"tool_use","id":"t","name":"Bash","input":{}}}],"usage":{{"output_tokens":2}}}}"#,
                hostile_body(depth.min(120), 10, 2, &odd, objects)
            );
            exchange.on_delivered(answer.as_bytes(), 1_800_000_100_300);
            let ending = Ending { at_ms: 1_800_000_100_400, response_complete: true, client_gone: false };
            let record = exchange.finish_record(&gateway, ending).unwrap();
            let mut outbox = Outbox::new("gw-p", 10, 1 << 30, AuditMode::FailClosed, 60);
            let receipt = outbox.push(&record, 0, &mut || Some(1)).unwrap();
            let batch = outbox.next_batch(0, true).unwrap();
            proptest::prop_assert!(BATCH_RECORDS >= 1);

            let (ledger, path) = ledger(&format!("prop-{depth}-{long}-{fields}"), 1000);
            let ingested = ledger.ingest(&batch);
            let _ = std::fs::remove_file(&path);
            let ingested = ingested.unwrap();
            proptest::prop_assert!(ingested.refused.is_empty(), "{:?}", ingested.refused);
            proptest::prop_assert_eq!(ingested.appended.stored, 1);
            let stored = String::from_utf8_lossy(&batch).into_owned();
            proptest::prop_assert!(!stored.contains("\"stand_in\""), "stored whole, not as a stand-in");
            proptest::prop_assert!(!stored.contains("mallory.secret"), "no finding anywhere in the record");
            let line: serde_json::Value = serde_json::from_slice(batch.strip_suffix(b"\n").unwrap()).unwrap();
            let request = line["request"].to_string();
            proptest::prop_assert!(!request.contains("opaque"), "no credential in the request: {}", request);
            proptest::prop_assert_eq!(receipt.id, "gw-p-1");
        }
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
        assert!(crate::service::audit::verify::checkpoint_signature_valid(&last, &key));
        let _ = std::fs::remove_file(path);
    }
}
