//! The audit trail's pages in the console: `/sessions` (sessions listed with filters, page by page)
//! and `/sessions/{id}` (a session's turns as readable cards, [`super::cards`], page by page).
//!
//! Reading them is a permission of its own: the viewer signs in as on `/reviews` (the session
//! cookie or a bearer token with the approvers' audience) and must be in an `approvals.auditors`
//! group — deciding reviews does not let anyone read what other users sent Claude.
//!
//! Page queries never hold up ingest: they run on their own read-only SQLite connection (WAL:
//! readers do not block the writer), on tokio's blocking pool, at most [`PAGE_QUERIES`] at a time;
//! a view that waits longer than [`PAGE_WAIT`] for its turn is answered 503.
//!
//! `/sessions` query: `user`, `job`, `role`, `since`/`until` (a session is listed when it has a
//! request in `[since, until)`; [`crate::service::dates`]' forms — the form's `datetime-local` inputs are
//! sent by the console's script as instants with the viewer's offset, or read as UTC without it),
//! `decision` (`refused`: sessions with a refused request; `allowed`: none refused), `limit`
//! (1–[`MAX_PAGE`], default [`DEFAULT_PAGE`]), and a keyset cursor `older` or `newer`
//! (`<last activity ms>:<session id>` of the session the previous page ended or started with).
//! Order: last activity, newest first, then id.
//!
//! `/sessions/{id}` query: `after` or `before` (`<time ms>.<position>` of a record), or `at=last`,
//! and `limit`. Order: request order (record time, then storage position). Each page reads only
//! its own records (through the `(session_id, time, position)` index) plus the one before it, whose
//! messages count as shown, whatever the session's length; only counting the session's index
//! entries (for "Requests 51–100 of N") grows with it — and the agents' walk: when the session
//! has subagents, `id="agents"` shows the tree of agents (main agent → subagents by parent id,
//! each with its requests; [`crate::service::audit::agents`]), and every card's tool results are joined to
//! the calls they answer; both come from one light pass over the page's records and the
//! [`crate::service::audit::agents::PAGE_WINDOW`] before it (their `agent`, `tool_calls` and answered
//! `tool_use` ids, not their blobs), so a page's cost stays bounded.
//!
//! Stable element ids: `id="sessions"` (the list), rows `id="session-<id>"`, filters
//! `id="session-filters"` (`filter-user`, `filter-job`, `filter-role`, `filter-since`,
//! `filter-until`, `filter-decision`, `filter-submit`), the pager `id="sessions-pager"` with
//! `sessions-newest`, `sessions-newer`, `sessions-older`; `id="transcript"`, `id="turn-range"`,
//! turns `class="turn card"` with `id="turn-<position>"`, pagers `transcript-pager-top` and
//! `transcript-pager` with links of class `first`, `earlier`, `later`, `last`.
//!
//! Limits: records without a session id are not listed (see `warden audit export`); a page that
//! starts mid-session may show again a message last shown more than one request earlier and
//! re-sent in another form (the whole-session `warden audit replay` shows it once).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use crate::service::auth::Approver;
use super::cards::{card, time_html};
use crate::service::console::{self, Section};
use crate::service::approvals::page::{authenticate, error_page, escape, safe_return_path, unauthenticated, PageAuth, Source};
use crate::service::approvals::service::Service;
use crate::service::audit::store::{
    AuditError, AuditStore, RecordKey, SessionCursor, SessionFilter, SessionKey, SessionSummary, SqliteAuditStore,
    TurnCursor,
};

/// Sessions or turns one page shows unless `limit` says otherwise.
pub const DEFAULT_PAGE: u32 = 50;
/// Most sessions or turns one page shows (`limit`).
pub const MAX_PAGE: u32 = 200;
/// Page queries running at once (each holds a blocking thread and the pages' connection).
pub const PAGE_QUERIES: usize = 1;
/// Longest a page view waits for its turn before it is answered 503.
pub const PAGE_WAIT: Duration = Duration::from_secs(10);

/// What the pages need: the service (sign-in, auditor rule) and their own reader.
pub struct SessionPages {
    /// The approval service.
    pub service: Arc<Service>,
    /// Seconds after its last renewal that a budget lease shows as expired (the usage page).
    pub lease_ttl_seconds: u64,
    reader: PageReader,
}

impl SessionPages {
    /// Opens the pages' read-only connection to the (already migrated) database at `db`.
    pub fn open(service: Arc<Service>, db: &std::path::Path) -> Result<Self, AuditError> {
        let lease_ttl_seconds = crate::service::leases::DEFAULT_TTL_SECONDS;
        Ok(Self { service, lease_ttl_seconds, reader: PageReader::open(db, PAGE_WAIT)? })
    }

    /// Runs `query` on the pages' read-only connection, in turn (see the module comment).
    pub(crate) async fn query<T: Send + 'static>(
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
pub(crate) enum PageQueryError {
    /// Every permit stayed taken for [`PAGE_WAIT`].
    Busy,
    /// The store failed (details for the log).
    Store(String),
}

pub(crate) fn query_failed(who: Option<(&Approver, Source)>, what: &str, error: PageQueryError) -> Response {
    match error {
        PageQueryError::Busy => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            who,
            "the audit pages are busy with other views; reload in a moment",
        ),
        PageQueryError::Store(e) => {
            crate::service::util::log_event(&format!("audit: {what} failed: {e}"));
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
    until: Option<String>,
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    older: Option<String>,
    #[serde(default)]
    newer: Option<String>,
    #[serde(default)]
    limit: Option<String>,
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

/// A query string from `(name, value)` pairs (values percent-encoded; empty ones left out).
pub(crate) fn query_string(pairs: &[(&str, String)]) -> String {
    let encoded: Vec<String> = pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| {
            let value: String = value
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                        char::from(b).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            format!("{name}={value}")
        })
        .collect();
    if encoded.is_empty() {
        String::new()
    } else {
        format!("?{}", encoded.join("&"))
    }
}

/// A page size from the query: [`DEFAULT_PAGE`] when absent, else 1–[`MAX_PAGE`].
fn page_size(value: &Option<String>) -> Result<u32, &'static str> {
    match non_empty(value) {
        None => Ok(DEFAULT_PAGE),
        Some(text) => text.parse::<u32>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or("limit must be 1–200"),
    }
}

/// A date filter: `name` is the field for messages; the value takes [`crate::service::dates`]' forms.
fn instant(name: &str, value: &Option<String>) -> Result<Option<i64>, String> {
    non_empty(value).map(|text| crate::service::dates::parse_instant(&text).map_err(|e| format!("{name}: {e}"))).transpose()
}

/// `2026-12-07T14:30` (UTC) for a `datetime-local` input's value.
fn local_input_value(ms: i64) -> String {
    crate::service::util::format_utc(ms.div_euclid(1000)).get(..16).unwrap_or_default().to_string()
}

/// A listing cursor `<ms>:<id>`.
fn session_key(text: &str) -> Option<SessionKey> {
    let (last, id) = text.split_once(':')?;
    Some(SessionKey { last: last.parse().ok()?, id: id.to_string() })
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
    let (since, until) = match (instant("since", &query.since), instant("until", &query.until)) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(e), _) | (_, Err(e)) => return error_page(StatusCode::BAD_REQUEST, who, &e),
    };
    let decision = non_empty(&query.decision);
    if decision.as_deref().is_some_and(|d| d != "refused" && d != "allowed") {
        return error_page(StatusCode::BAD_REQUEST, who, "decision must be refused or allowed");
    }
    let limit = match page_size(&query.limit) {
        Ok(limit) => limit,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, who, e),
    };
    let cursor = match (non_empty(&query.older), non_empty(&query.newer)) {
        (None, None) => SessionCursor::Newest,
        (Some(key), None) => match session_key(&key) {
            Some(key) => SessionCursor::Older(key),
            None => return error_page(StatusCode::BAD_REQUEST, who, "older must be <ms>:<session id>"),
        },
        (None, Some(key)) => match session_key(&key) {
            Some(key) => SessionCursor::Newer(key),
            None => return error_page(StatusCode::BAD_REQUEST, who, "newer must be <ms>:<session id>"),
        },
        (Some(_), Some(_)) => return error_page(StatusCode::BAD_REQUEST, who, "give older or newer, not both"),
    };
    let filter = SessionFilter {
        subject: non_empty(&query.user),
        job: non_empty(&query.job),
        role: non_empty(&query.role),
        since,
        until,
        decision,
    };
    let listed_cursor = cursor.clone();
    let listed = state.query(move |store| store.sessions(&filter, &listed_cursor, limit.saturating_add(1))).await;
    let mut found: Vec<SessionSummary> = match listed {
        Ok(found) => found,
        Err(e) => return query_failed(who, "listing sessions", e),
    };
    // One more than a page was asked for: it tells whether a further page exists.
    let further = found.len() > limit as usize;
    if further {
        if matches!(cursor, SessionCursor::Newer(_)) {
            found.remove(0);
        } else {
            found.truncate(limit as usize);
        }
    }
    let (has_newer, has_older) = match cursor {
        SessionCursor::Newest => (false, further),
        SessionCursor::Older(_) => (true, further),
        SessionCursor::Newer(_) => (further, true),
    };
    let value = |v: &Option<String>| escape(v.as_deref().unwrap_or_default());
    let selected = |d: &str| if query.decision.as_deref() == Some(d) { " selected" } else { "" };
    let date_input = |name: &str, label: &str, at: Option<i64>| {
        format!(
            r#"<label>{label} <input type="datetime-local" name="{name}" id="filter-{name}" value="{value}" data-instant="{ms}"></label>"#,
            value = at.map(local_input_value).unwrap_or_default(),
            ms = at.map(|ms| ms.to_string()).unwrap_or_default(),
        )
    };
    let mut content = format!(
        r#"<section id="sessions"><h2>Sessions</h2>
<form method="get" action="/sessions" id="session-filters" class="filters">
<label>User <input name="user" id="filter-user" value="{user}"></label>
<label>Job <input name="job" id="filter-job" value="{job}"></label>
<label>Role <input name="role" id="filter-role" value="{role}"></label>
{since}{until}
<label>Decision <select name="decision" id="filter-decision"><option value="">any</option><option value="refused"{r}>with refusals</option><option value="allowed"{a}>none refused</option></select></label>
<button type="submit" id="filter-submit">Filter</button> <a class="button" href="/sessions" id="filter-clear">Clear</a></form>
<p class="note">Active from/until are in <span id="time-zone">UTC</span>; the list shows sessions with a request in that window, most recently active first.</p>"#,
        user = value(&query.user),
        job = value(&query.job),
        role = value(&query.role),
        since = date_input("since", "Active from", since),
        until = date_input("until", "until", until),
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
                time_html(s.first),
                time_html(s.last),
                id = escape(&s.id),
                link = encode_segment(&s.id),
            );
        }
        content.push_str("</tbody></table>");
    }
    let filters = |cursor: (&str, String)| {
        let mut pairs = vec![
            ("user", non_empty(&query.user).unwrap_or_default()),
            ("job", non_empty(&query.job).unwrap_or_default()),
            ("role", non_empty(&query.role).unwrap_or_default()),
            ("since", non_empty(&query.since).unwrap_or_default()),
            ("until", non_empty(&query.until).unwrap_or_default()),
            ("decision", non_empty(&query.decision).unwrap_or_default()),
            ("limit", non_empty(&query.limit).unwrap_or_default()),
        ];
        pairs.push(cursor);
        escape(&format!("/sessions{}", query_string(&pairs)))
    };
    content.push_str(r#"<nav class="pager" id="sessions-pager">"#);
    if cursor != SessionCursor::Newest {
        let _ = write!(content, r#"<a href="{}" id="sessions-newest">« Newest</a>"#, filters(("older", String::new())));
    }
    if let (true, Some(first)) = (has_newer, found.first()) {
        let _ = write!(
            content,
            r#"<a href="{}" id="sessions-newer">‹ Newer</a>"#,
            filters(("newer", format!("{}:{}", first.last, first.id)))
        );
    }
    if let (true, Some(last)) = (has_older, found.last()) {
        let _ = write!(
            content,
            r#"<a href="{}" id="sessions-older">Older ›</a>"#,
            filters(("older", format!("{}:{}", last.last, last.id)))
        );
    }
    content.push_str("</nav></section>");
    console::respond(StatusCode::OK, console::page("Sessions", Some(Section::Sessions), who, &content))
}

/// Query of `/sessions/{id}`: a cursor (`after` or `before` a record, `<ms>.<position>`; or
/// `at=last`) and a page size.
#[derive(Debug, Default, Deserialize)]
pub struct TranscriptQuery {
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    again: Option<String>,
}

/// A transcript cursor `<ms>.<position>`.
fn record_key(text: &str) -> Option<RecordKey> {
    let (time, position) = text.split_once('.')?;
    Some(RecordKey { time: time.parse().ok()?, position: position.parse().ok()? })
}

fn transcript_cursor(query: &TranscriptQuery) -> Result<TurnCursor, &'static str> {
    let key = |text: String| record_key(&text).ok_or("after and before must be <ms>.<position>");
    match (non_empty(&query.after), non_empty(&query.before), non_empty(&query.at).as_deref()) {
        (None, None, None) => Ok(TurnCursor::First),
        (None, None, Some("last")) => Ok(TurnCursor::Last),
        (Some(after), None, None) => key(after).map(TurnCursor::After),
        (None, Some(before), None) => key(before).map(TurnCursor::Before),
        _ => Err("give one of after, before or at=last"),
    }
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
    let (cursor, limit) = match (transcript_cursor(&query), page_size(&query.limit)) {
        (Ok(cursor), Ok(limit)) => (cursor, limit),
        (Err(e), _) | (_, Err(e)) => return error_page(StatusCode::BAD_REQUEST, who, e),
    };
    let session = id.clone();
    let read = state
        .query(move |store| {
            Ok((crate::service::audit::replay::page(store, &session, cursor, limit)?, store.pruned_session(&session)?))
        })
        .await;
    let (page, pruned) = match read {
        Ok(read) => read,
        Err(e) => return query_failed(who, "reading a transcript", e),
    };
    let pruned_note = pruned.map(|pruned| {
        let note = crate::service::audit::retention::session_note(&pruned);
        format!(r#"<p class="pruned" id="pruned-note">{}</p>"#, escape(&note))
    });
    let Some((first, last)) = page.bounds else {
        return match pruned_note {
            Some(note) => {
                let content = format!(
                    r#"<section id="transcript"><h2>Session <code>{}</code></h2>{note}</section>"#,
                    escape(&id)
                );
                console::respond(StatusCode::OK, console::page("Session", Some(Section::Sessions), who, &content))
            }
            None => error_page(StatusCode::NOT_FOUND, who, "no records on this page of the session"),
        };
    };
    let shown = i64::try_from(page.turns.len()).unwrap_or(i64::MAX);
    let mut content = format!(
        r#"<section id="transcript"><h2>Session <code>{}</code></h2><p class="note" id="turn-range">Requests {}–{} of {}</p>"#,
        escape(&id),
        page.before.saturating_add(1),
        page.before.saturating_add(shown),
        page.total
    );
    if let Some(note) = &pruned_note {
        content.push_str(note);
    }
    let link = |pairs: &[(&str, String)]| {
        let mut pairs = pairs.to_vec();
        pairs.push(("limit", non_empty(&query.limit).unwrap_or_default()));
        escape(&format!("/sessions/{}{}", encode_segment(&id), query_string(&pairs)))
    };
    let mut pager = String::from(r#"<nav class="pager">"#);
    if page.before > 0 {
        let _ = write!(
            pager,
            r#"<a href="{}" class="first">« First</a><a href="{}" class="earlier">‹ Earlier</a>"#,
            link(&[]),
            link(&[("before", format!("{}.{}", first.time, first.position))])
        );
    }
    if page.before.saturating_add(shown) < page.total {
        let _ = write!(
            pager,
            r#"<a href="{}" class="later">Later ›</a><a href="{}" class="last">Last »</a>"#,
            link(&[("after", format!("{}.{}", last.time, last.position))]),
            link(&[("at", "last".to_string())])
        );
    }
    pager.push_str("</nav>");
    if page.agents.has_subagents() {
        content.push_str(&agent_tree_html(&page));
    }
    content.push_str(&pager.replacen(r#"<nav class="pager">"#, r#"<nav class="pager" id="transcript-pager-top">"#, 1));
    for (ordinal, turn) in (page.before.saturating_add(1)..).zip(&page.turns) {
        content.push_str(&card(turn, ordinal));
    }
    content.push_str(&pager.replacen(r#"<nav class="pager">"#, r#"<nav class="pager" id="transcript-pager">"#, 1));
    content.push_str(r#"</section><p><a href="/sessions">All sessions</a></p>"#);
    console::respond(StatusCode::OK, console::page("Session", Some(Section::Sessions), who, &content))
}

/// Most request ids listed under one agent of the tree.
const MAX_LISTED_REQUESTS: usize = 50;

/// The session's tree of agents (`<section id="agents">`): nested lists, each agent with its
/// request count and ids (links to their cards when on this page).
fn agent_tree_html(page: &crate::service::audit::replay::TurnPage) -> String {
    let tree = &page.agents;
    let records = &page.index.records;
    let on_page: std::collections::HashSet<i64> = page.turns.iter().map(|t| t.position).collect();
    let mut html = String::from(r#"<section id="agents"><h3>Agents</h3><ul class="agent-tree">"#);
    // Depth-first without recursion: (node, whether its children's list is being closed).
    let mut stack = vec![(0usize, false)];
    while let Some((at, closing)) = stack.pop() {
        let Some(node) = tree.nodes.get(at) else { continue };
        if closing {
            html.push_str("</ul></li>");
            continue;
        }
        let count = node.records.len();
        let _ = write!(
            html,
            r#"<li class="agent-node"><b>{}</b> <span class="meta">{count} request{}</span>"#,
            escape(&node.label()),
            if count == 1 { "" } else { "s" }
        );
        let ids: Vec<String> = node
            .records
            .iter()
            .take(MAX_LISTED_REQUESTS)
            .filter_map(|&i| records.get(i))
            .map(|(id, key, _)| match on_page.contains(&key.position) {
                true => format!(r##"<a href="#turn-{}"><code>{}</code></a>"##, key.position, escape(id)),
                false => format!("<code>{}</code>", escape(id)),
            })
            .collect();
        if !ids.is_empty() {
            let more = if count > MAX_LISTED_REQUESTS { " …" } else { "" };
            let _ = write!(html, r#" <span class="agent-requests">{}{more}</span>"#, ids.join(" "));
        }
        html.push_str("<ul>");
        stack.push((at, true));
        stack.extend(node.children.iter().rev().map(|&child| (child, false)));
    }
    html.push_str("</ul>");
    if page.index.truncated {
        let note = format!(
            "The tree covers this page and the {} requests before it; tool results answering older calls show as unrecorded.",
            crate::service::audit::agents::PAGE_WINDOW
        );
        let _ = write!(html, r#"<p class="note">{}</p>"#, escape(&note));
    }
    html.push_str("</section>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::service::audit::ingest::Ledger;
    use crate::service::approvals::signer::VerdictSigner;
    use crate::service::store::Store;

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

    #[test]
    fn the_agent_tree_nests_subagents_under_their_parent_and_escapes_ids() {
        use crate::service::audit::agents::SessionIndex;
        use crate::service::audit::store::RecordKey;
        let mut index = SessionIndex::default();
        let records = [
            serde_json::json!({"id": "gw-1"}),
            serde_json::json!({"id": "gw-2", "agent": {"id": "a<7>", "parent": null}}),
            serde_json::json!({"id": "gw-3", "agent": {"id": "b9", "parent": "a<7>"}}),
        ];
        for (position, record) in (1..).zip(&records) {
            index.add(record, RecordKey { time: position * 10, position });
        }
        let page = crate::service::audit::replay::TurnPage {
            turns: Vec::new(),
            bounds: None,
            before: 0,
            total: 3,
            agents: index.tree(),
            index,
        };
        let html = agent_tree_html(&page);
        let main = html.find("main agent").unwrap();
        let sub = html.find("subagent a&lt;7&gt;").unwrap();
        let nested = html.find("subagent b9").unwrap();
        assert!(main < sub && sub < nested, "{html}");
        assert!(!html.contains("a<7>"), "{html}");
        assert_eq!(html.matches("<ul").count(), html.matches("</ul>").count(), "{html}");
        assert_eq!(html.matches("<li").count(), html.matches("</li>").count(), "{html}");
        // b9's item sits inside a7's list.
        let a7_list_closes = html[sub..].find("</ul></li>").unwrap() + sub;
        assert!(nested < a7_list_closes, "{html}");
        assert!(html.contains("<code>gw-3</code>"), "{html}");
    }
}
