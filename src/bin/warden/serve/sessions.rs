//! The audit trail's pages in `warden serve`: `/sessions` (sessions listed with filters) and
//! `/sessions/{id}` (the transcript, rendered as `warden audit replay` prints it).
//!
//! Reading them is a permission of its own: the viewer signs in as on `/reviews` (the session
//! cookie or a bearer token with the approvers' audience) and must be in an `approvals.auditors`
//! group — deciding reviews does not let anyone read what other users sent Claude.
//!
//! Page queries never hold up ingest: they run on their own read-only SQLite connection (WAL:
//! readers do not block the writer), on tokio's blocking pool, at most [`PAGE_QUERIES`] at a time;
//! a view that waits longer than [`PAGE_WAIT`] for its turn is answered 503.
//!
//! Server-rendered HTML with stable element ids:
//! `id="sessions"` (the list), rows `id="session-<id>"`, `id="transcript"`, turns `class="turn"`
//! with `id="turn-<position>"`. Filters (query string): `user`, `job`, `role`, `since` (ms since
//! the epoch), `decision` (`refused`: sessions with a refused request; `allowed`: none refused).
//!
//! Limits: the listing shows the [`MAX_SESSIONS`] most recently active sessions; records without
//! a session id are not listed (see `warden audit export`).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::auth::Approver;
use super::page::{
    authenticate, error_page, escape, layout, safe_return_path, unauthenticated, Page, PageAuth, Source,
};
use super::service::Service;
use super::util::format_utc;
use crate::audit::store::{AuditError, AuditStore, SessionFilter, SessionSummary, SqliteAuditStore};

/// Most sessions one listing shows.
pub const MAX_SESSIONS: u32 = 500;
/// Page queries running at once (each holds a blocking thread and the pages' connection).
pub const PAGE_QUERIES: usize = 1;
/// Longest a page view waits for its turn before it is answered 503.
pub const PAGE_WAIT: Duration = Duration::from_secs(10);

/// What the pages need: the service (sign-in, auditor rule) and their own reader.
pub struct SessionPages {
    /// The approval service.
    pub service: Arc<Service>,
    reader: PageReader,
}

impl SessionPages {
    /// Opens the pages' read-only connection to the (already migrated) database at `db`.
    pub fn open(service: Arc<Service>, db: &std::path::Path) -> Result<Self, AuditError> {
        Ok(Self { service, reader: PageReader::open(db, PAGE_WAIT)? })
    }

    /// Runs `query` on the pages' read-only connection, in turn (see the module comment).
    pub(super) async fn query<T: Send + 'static>(
        &self,
        query: impl FnOnce(&SqliteAuditStore) -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, PageQueryError> {
        self.reader.query(query).await
    }
}

/// The pages' own read-only connection, used by at most [`PAGE_QUERIES`] queries at a time.
struct PageReader {
    store: Arc<Mutex<SqliteAuditStore>>,
    permits: tokio::sync::Semaphore,
    wait: Duration,
}

impl PageReader {
    fn open(db: &std::path::Path, wait: Duration) -> Result<Self, AuditError> {
        let store = SqliteAuditStore::open_read_only(db)?;
        Ok(Self { store: Arc::new(Mutex::new(store)), permits: tokio::sync::Semaphore::new(PAGE_QUERIES), wait })
    }

    /// Runs `query` on the pages' connection, on the blocking pool, once a permit is free.
    async fn query<T: Send + 'static>(
        &self,
        query: impl FnOnce(&SqliteAuditStore) -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, PageQueryError> {
        let permit = tokio::time::timeout(self.wait, self.permits.acquire()).await;
        let Ok(Ok(_permit)) = permit else { return Err(PageQueryError::Busy) };
        let reader = Arc::clone(&self.store);
        let result = tokio::task::spawn_blocking(move || {
            let store = reader.lock().map_err(|_| AuditError::Database("the pages' reader is poisoned".into()))?;
            query(&store)
        })
        .await;
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(PageQueryError::Store(e.to_string())),
            Err(_) => Err(PageQueryError::Store("the query task failed".to_string())),
        }
    }
}

/// Why a page query gave no answer.
#[derive(Debug)]
pub(super) enum PageQueryError {
    /// Every permit stayed taken for [`PAGE_WAIT`].
    Busy,
    /// The store failed (details for the log).
    Store(String),
}

pub(super) fn query_failed(who: Option<(&Approver, Source)>, what: &str, error: PageQueryError) -> Response {
    match error {
        PageQueryError::Busy => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            who,
            "the audit pages are busy with other views; reload in a moment",
        ),
        PageQueryError::Store(e) => {
            super::util::log_event(&format!("audit: {what} failed: {e}"));
            error_page(StatusCode::INTERNAL_SERVER_ERROR, who, "the audit store failed (see the log)")
        }
    }
}

/// Query of `/sessions`.
#[derive(Debug, Default, Deserialize)]
pub struct SessionsQuery {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    job: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    again: Option<String>,
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
}

/// Percent-encodes a path segment.
fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn when(ms: i64) -> String {
    format_utc(ms.div_euclid(1000))
}

/// `GET /sessions`.
pub async fn sessions(
    State(state): State<Arc<SessionPages>>,
    headers: HeaderMap,
    Query(query): Query<SessionsQuery>,
) -> Response {
    let service = &state.service;
    let (approver, source) = match authenticate(service, &headers).await {
        PageAuth::Approver(approver, source) => (approver, source),
        other => return unauthenticated(service, other, "/sessions", query.again.is_some()),
    };
    let who = Some((&approver, source));
    if let Err(e) = service.ensure_auditor(&approver) {
        return error_page(StatusCode::FORBIDDEN, who, e.message());
    }
    let since = match non_empty(&query.since).map(|s| s.parse::<i64>()) {
        None => None,
        Some(Ok(ms)) => Some(ms),
        Some(Err(_)) => return error_page(StatusCode::BAD_REQUEST, who, "since must be milliseconds since the epoch"),
    };
    let decision = non_empty(&query.decision);
    if decision.as_deref().is_some_and(|d| d != "refused" && d != "allowed") {
        return error_page(StatusCode::BAD_REQUEST, who, "decision must be refused or allowed");
    }
    let filter = SessionFilter {
        subject: non_empty(&query.user),
        job: non_empty(&query.job),
        role: non_empty(&query.role),
        since,
        decision,
    };
    let listed = state.query(move |store| store.sessions(&filter, MAX_SESSIONS)).await;
    let found: Vec<SessionSummary> = match listed {
        Ok(found) => found,
        Err(e) => return query_failed(who, "listing sessions", e),
    };
    let value = |v: &Option<String>| escape(v.as_deref().unwrap_or_default());
    let selected = |d: &str| if query.decision.as_deref() == Some(d) { " selected" } else { "" };
    let mut content = format!(
        r#"<section id="sessions"><h2>Sessions ({count})</h2>
<form method="get" action="/sessions" id="session-filters">
<label>User <input name="user" id="filter-user" value="{user}"></label>
<label>Job <input name="job" id="filter-job" value="{job}"></label>
<label>Role <input name="role" id="filter-role" value="{role}"></label>
<label>Since (ms) <input name="since" id="filter-since" value="{since}"></label>
<label>Decision <select name="decision" id="filter-decision"><option value="">any</option><option value="refused"{r}>with refusals</option><option value="allowed"{a}>none refused</option></select></label>
<button type="submit">Filter</button></form>"#,
        count = found.len(),
        user = value(&query.user),
        job = value(&query.job),
        role = value(&query.role),
        since = value(&query.since),
        r = selected("refused"),
        a = selected("allowed"),
    );
    if found.is_empty() {
        content.push_str(r#"<p class="note" id="no-sessions">No session matches.</p>"#);
    } else {
        content.push_str(
            "<table><thead><tr><th>Session</th><th>User</th><th>Role</th><th>Job</th><th>Requests</th>\
             <th>Refused</th><th>First</th><th>Last</th></tr></thead><tbody>",
        );
        for s in &found {
            let _ = write!(
                content,
                r#"<tr id="session-{id}"><td><a href="/sessions/{link}">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                escape(&s.subjects),
                escape(&s.roles),
                escape(&s.jobs),
                s.records,
                s.refused,
                when(s.first),
                when(s.last),
                id = escape(&s.id),
                link = encode_segment(&s.id),
            );
        }
        content.push_str("</tbody></table>");
    }
    content.push_str("</section>");
    Page { status: StatusCode::OK, html: layout("Sessions", who, None, &content), cookies: Vec::new() }.into_response()
}

/// Query of `/sessions/{id}`.
#[derive(Debug, Default, Deserialize)]
pub struct TranscriptQuery {
    #[serde(default)]
    again: Option<String>,
}

/// `GET /sessions/{id}`.
pub async fn session(
    State(state): State<Arc<SessionPages>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<TranscriptQuery>,
) -> Response {
    let service = &state.service;
    let (approver, source) = match authenticate(service, &headers).await {
        PageAuth::Approver(approver, source) => (approver, source),
        other => {
            let path = format!("/sessions/{}", encode_segment(&id));
            let path = safe_return_path(&path).unwrap_or("/sessions");
            return unauthenticated(service, other, path, query.again.is_some());
        }
    };
    let who = Some((&approver, source));
    if let Err(e) = service.ensure_auditor(&approver) {
        return error_page(StatusCode::FORBIDDEN, who, e.message());
    }
    let session = id.clone();
    let read = state
        .query(move |store| {
            let mut turns = Vec::new();
            crate::audit::replay::turns(store, &session, &mut |position, _, text| {
                turns.push((position, text));
                Ok(())
            })?;
            Ok(turns)
        })
        .await;
    let turns: Vec<(i64, String)> = match read {
        Ok(turns) => turns,
        Err(e) => return query_failed(who, "reading a transcript", e),
    };
    if turns.is_empty() {
        return error_page(StatusCode::NOT_FOUND, who, "no records for this session");
    }
    let mut content = format!(r#"<section id="transcript"><h2>Session {}</h2>"#, escape(&id));
    for (position, text) in &turns {
        let _ = write!(content, r#"<article class="turn" id="turn-{position}"><pre>{}</pre></article>"#, escape(text));
    }
    content.push_str(r#"</section><p><a href="/sessions">All sessions</a></p>"#);
    Page { status: StatusCode::OK, html: layout("Session", who, None, &content), cookies: Vec::new() }.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::serve::audit::Ledger;
    use crate::serve::signer::VerdictSigner;
    use crate::serve::store::Store;

    fn record(seq: u64) -> String {
        serde_json::json!({"version": 1, "source": "gw", "seq": seq, "id": format!("r{seq}"), "session_id": "s"})
            .to_string()
    }

    #[tokio::test]
    async fn ingest_proceeds_while_a_page_query_holds_the_pages_connection() {
        let dir = std::env::temp_dir().join(format!("warden-pages-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("approvals.db");
        drop(Store::open(&db).unwrap());
        let ledger = Ledger::open(&db, VerdictSigner::generate().unwrap(), 1000).unwrap();
        let reader = PageReader::open(&db, Duration::ZERO).unwrap();
        // A page query in the middle of a read transaction (a long transcript).
        {
            let held = reader.store.lock().unwrap();
            held.connection_for_tests().execute_batch("BEGIN; SELECT count(*) FROM audit_records;").unwrap();
            // Ingest has its own connection and lock: it is not queued behind the page.
            let stored = std::thread::spawn(move || ledger.ingest(record(1).as_bytes()).map(|_| ())).join().unwrap();
            assert!(stored.is_ok(), "{:?}", stored.err().map(|e| e.to_string()));
            held.connection_for_tests().execute_batch("COMMIT").unwrap();
        }
        // Another page view that finds no free turn is told so (here at once: wait zero).
        let _permit = reader.permits.try_acquire().unwrap();
        assert!(matches!(reader.query(|_| Ok(())).await, Err(PageQueryError::Busy)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn session_ids_are_percent_encoded_in_links() {
        assert_eq!(encode_segment("5f0c-ab_1.2:3"), "5f0c-ab_1.2:3");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
