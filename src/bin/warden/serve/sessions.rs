//! The audit trail's pages in `warden serve`: `/sessions` (sessions listed with filters) and
//! `/sessions/{id}` (the transcript, rendered as `warden audit replay` prints it).
//!
//! Any approver may view them (the same sign-in as `/reviews`: the session cookie or a bearer
//! token of a member of any approver group). Server-rendered HTML with stable element ids:
//! `id="sessions"` (the list), rows `id="session-<id>"`, `id="transcript"`, turns `class="turn"`
//! with `id="turn-<position>"`. Filters (query string): `user`, `job`, `role`, `since` (ms since
//! the epoch), `decision` (`refused`: sessions with a refused request; `allowed`: none refused).
//!
//! Limits: the listing shows the [`MAX_SESSIONS`] most recently active sessions; records without
//! a session id are not listed (see `warden audit export`).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::audit::AuditState;
use super::page::{authenticate, error_page, escape, layout, safe_return_path, unauthenticated, Page, PageAuth};
use super::util::format_utc;
use crate::audit::store::SessionFilter;

/// Most sessions one listing shows.
pub const MAX_SESSIONS: u32 = 500;

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
    State(state): State<Arc<AuditState>>,
    headers: HeaderMap,
    Query(query): Query<SessionsQuery>,
) -> Response {
    let service = &state.service;
    let (approver, source) = match authenticate(service, &headers).await {
        PageAuth::Approver(approver, source) => (approver, source),
        other => return unauthenticated(service, other, "/sessions", query.again.is_some()),
    };
    let who = Some((&approver, source));
    if let Err(e) = service.ensure_approver(&approver) {
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
    let ledger = Arc::clone(&state.ledger);
    let listed = tokio::task::spawn_blocking(move || ledger.sessions(&filter, MAX_SESSIONS)).await;
    let found = match listed {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            super::util::log_event(&format!("audit: listing sessions failed: {e}"));
            return error_page(StatusCode::INTERNAL_SERVER_ERROR, who, "the audit store failed (see the log)");
        }
        Err(_) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, who, "the audit store failed"),
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
    State(state): State<Arc<AuditState>>,
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
    if let Err(e) = service.ensure_approver(&approver) {
        return error_page(StatusCode::FORBIDDEN, who, e.message());
    }
    let ledger = Arc::clone(&state.ledger);
    let session = id.clone();
    let turns = match tokio::task::spawn_blocking(move || ledger.transcript(&session)).await {
        Ok(Ok(turns)) => turns,
        Ok(Err(e)) => {
            super::util::log_event(&format!("audit: reading a transcript failed: {e}"));
            return error_page(StatusCode::INTERNAL_SERVER_ERROR, who, "the audit store failed (see the log)");
        }
        Err(_) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, who, "the audit store failed"),
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

    #[test]
    fn session_ids_are_percent_encoded_in_links() {
        assert_eq!(encode_segment("5f0c-ab_1.2:3"), "5f0c-ab_1.2:3");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
