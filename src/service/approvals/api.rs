//! The JSON API: the gateway's hold endpoint, the reviews API for `warden reviews`, `/healthz`.
//!
//! | route | who | answer |
//! |---|---|---|
//! | `POST /v1/holds` | gateway (`Authorization: Bearer <gateway token>`) | `200 {"verdict": "<JWS>"}` |
//! | `GET /v1/reviews?status=pending\|decided\|all&limit=N` | approver (Bearer OIDC token) | `{"reviews": […]}` |
//! | `GET /v1/reviews/{id}` | approver | `{"review": {…, "grant_uses_left", "verdicts"}}` |
//! | `POST /v1/reviews/{id}/approve` `{"comment": "…", "session_minutes": N}` (N optional: approve for the session, [`super::grants`]) | approver | `{"outcome": …, "review": {…}}` |
//! | `POST /v1/reviews/{id}/deny` `{"comment": "…"}` (required) | approver | `{"outcome": …, "review": {…}}` |
//! | `GET /v1/grants[?all=1]` | approver | `{"grants": […]}`: live session grants of the roles they decide (`all`: ended and expired too) |
//! | `POST /v1/grants/{id}/end` | approver | `{"grant": {…}}`; 404 unknown, 409 already ended |
//! | `POST /v1/audit/records` (NDJSON) | gateway | `{"stored", "duplicates", "head"}` ([`crate::service::audit::ingest`]) |
//! | `POST /v1/budget/leases` (JSON) | gateway | `{"grants": […]}` ([`crate::service::leases`]) |
//! | `GET /v1/budget/leases?limit=N` | approver | `{"ttl_seconds", "now_ms", "windows": […]}` |
//! | `GET /v1/revocations`, `POST /v1/revocations`, `POST /v1/revocations/{id}/lift` | gateway or revoker | the kill switch ([`crate::service::revocations`]) |
//! | `GET /healthz` | anyone | `{"status": "ok"}` |
//!
//! Errors are Anthropic-style JSON, `{"type":"error","error":{"type":…,"message":…}}`: 400
//! `invalid_request_error`, 401 `authentication_error` (with `WWW-Authenticate: Bearer`), 403
//! `permission_error`, 404 `not_found_error`, 409 `conflict_error`, 500 `api_error`. The API
//! accepts only bearer tokens, never the page's cookie, so it needs no CSRF protection.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{approver, check_gateway, json_body, ApiError};
use super::grants::grant_json;
use crate::service::util::unix_now;
use super::service::{HoldRequest, Service, ServiceError};
use crate::service::store::{Choice, Decided, Listing, Review};

/// Largest number of reviews one listing returns.
const MAX_LIST_LIMIT: u32 = 1000;
/// Default number of reviews a listing returns.
const DEFAULT_LIST_LIMIT: u32 = 200;

/// `GET /healthz`.
pub async fn healthz() -> impl IntoResponse {
    json_body(&json!({"status": "ok"}))
}

/// Unknown routes.
pub async fn not_found() -> ApiError {
    ApiError(ServiceError::NotFound("no such endpoint".to_string()))
}

/// `POST /v1/holds`.
pub async fn hold(State(service): State<Arc<Service>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    check_gateway(&service, &headers)?;
    let request: HoldRequest = serde_json::from_slice(&body)
        .map_err(|e| ServiceError::BadRequest(format!("the hold request is not valid JSON for protocol 1: {e}")))?;
    let verdict = service.hold(request).await?;
    Ok(json_body(&json!({ "verdict": verdict })).into_response())
}

/// Query of `GET /v1/reviews`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// `pending` (default), `decided` or `all`.
    status: Option<String>,
    /// Most reviews to return (default 200, at most 1000).
    limit: Option<u32>,
}

/// Parses a listing name.
pub fn parse_listing(status: Option<&str>) -> Result<Listing, ServiceError> {
    match status.unwrap_or("pending") {
        "pending" => Ok(Listing::Pending),
        "decided" => Ok(Listing::Decided),
        "all" => Ok(Listing::All),
        other => Err(ServiceError::BadRequest(format!("status must be pending, decided or all (not {other:?})"))),
    }
}

/// `GET /v1/reviews`.
pub async fn list_reviews(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let approver = approver(&service, &headers).await?;
    let listing = parse_listing(query.status.as_deref())?;
    let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT).clamp(1, MAX_LIST_LIMIT);
    service.expire()?;
    let reviews = service.list_for(&approver, listing, limit)?;
    let reviews: Vec<Value> = reviews.iter().map(|r| review_json(&service, r)).collect();
    Ok(json_body(&json!({ "reviews": reviews })).into_response())
}

/// `GET /v1/reviews/{id}`.
pub async fn get_review(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let approver = approver(&service, &headers).await?;
    service.expire()?;
    let review = service.review_for(&approver, &id)?;
    let mut body = review_json(&service, &review);
    let verdicts: Vec<Value> = service
        .store
        .verdicts(&review.id)?
        .into_iter()
        .map(|(decision, token, issued_at)| json!({"decision": decision, "issued_at": issued_at, "token": token}))
        .collect();
    if let Some(object) = body.as_object_mut() {
        object.insert("grant_uses_left".to_string(), json!(service.store.grant_uses_left(&review.id)?));
        object.insert("verdicts".to_string(), Value::Array(verdicts));
    }
    Ok(json_body(&json!({ "review": body })).into_response())
}

/// Body of approve and deny.
#[derive(Debug, Default, Deserialize)]
struct DecisionBody {
    /// The approver's comment; required to deny.
    #[serde(default, alias = "reason")]
    comment: String,
    /// Approve for the request's agent session for this many minutes (approve only).
    #[serde(default)]
    session_minutes: Option<i64>,
}

/// `POST /v1/reviews/{id}/approve`.
pub async fn approve(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    decide(&service, &headers, &id, Choice::Approve, &body).await
}

/// `POST /v1/reviews/{id}/deny`.
pub async fn deny(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    decide(&service, &headers, &id, Choice::Deny, &body).await
}

async fn decide(
    service: &Service,
    headers: &HeaderMap,
    id: &str,
    choice: Choice,
    body: &[u8],
) -> Result<Response, ApiError> {
    let approver = approver(service, headers).await?;
    let body: DecisionBody = if body.iter().all(u8::is_ascii_whitespace) {
        DecisionBody::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ServiceError::BadRequest(format!("the body must be {{\"comment\": \"…\"}}: {e}")))?
    };
    let decided = match (choice, body.session_minutes) {
        (Choice::Approve, Some(minutes)) => service.decide_for_session(&approver, id, &body.comment, minutes)?,
        (Choice::Deny, Some(_)) => {
            return Err(ServiceError::BadRequest("session_minutes goes with an approval, not a denial".into()).into())
        }
        (_, None) => service.decide(&approver, id, choice, &body.comment)?,
    };
    let (outcome, review) = match &decided {
        Decided::Approved(r) => ("approved", r),
        Decided::Denied(r) => ("denied", r),
        Decided::AwaitingSecondApprover(r) => ("awaiting_second_approver", r),
    };
    Ok(json_body(&json!({ "outcome": outcome, "review": review_json(service, review) })).into_response())
}

/// The API view of a review.
pub fn review_json(service: &Service, review: &Review) -> Value {
    let context = &review.context;
    let votes: Vec<Value> = review
        .votes
        .iter()
        .map(|v| {
            json!({"reviewer": v.reviewer, "reviewer_issuer": v.reviewer_issuer,
                   "decision": if v.approve { "approve" } else { "deny" }, "comment": v.comment, "at": v.at})
        })
        .collect();
    json!({
        "id": review.id,
        "status": review.status.as_str(),
        "url": service.review_url(&review.id),
        "role": review.role,
        "fingerprint": review.fingerprint,
        "requester": {
            "subject": review.subject,
            "issuer": context.issuer,
            "groups": context.groups,
            "job": context.job,
        },
        "request_id": context.request_id,
        "reasons": context.reasons,
        "model": context.model,
        "tools": context.tools,
        "max_tokens": context.max_tokens,
        "body_bytes": context.body_bytes,
        "mcp_servers": context.mcp_servers,
        "mcp_server_urls": context.mcp_server_urls,
        "messages": context.messages,
        "excerpt": context.excerpt,
        "system_excerpt": context.system_excerpt,
        "prefill_excerpt": context.prefill_excerpt,
        "session_id": context.session_id,
        "agent": context.agent,
        "tool_call": context.tool_call,
        "session_grant": service.store.session_grant_of_review(&review.id).ok().flatten()
            .map(|grant| grant_json(&grant, crate::service::util::unix_now())),
        "two_person": review.two_person,
        "approvals_needed": review.approvals_needed(),
        "approvals": review.approvers().count(),
        "grant_uses": review.grant_uses,
        "votes": votes,
        "created_at": review.created_at,
        "expires_at": review.expires_at,
        "decided_at": review.decided_at,
    })
}

/// `GET /v1/grants?all=1`: the live grants (all with `all`) the approver may see.
pub async fn list_grants(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Query(query): Query<GrantListQuery>,
) -> Result<Response, ApiError> {
    let approver = approver(&service, &headers).await?;
    let now = unix_now();
    let grants = service.grants_for(&approver, query.all.is_none())?;
    let grants: Vec<Value> = grants.iter().map(|grant| grant_json(grant, now)).collect();
    Ok(json_body(&json!({ "grants": grants })).into_response())
}

/// Query of `GET /v1/grants`.
#[derive(Debug, Deserialize)]
pub struct GrantListQuery {
    /// Present: ended and expired grants too.
    all: Option<String>,
}

/// `POST /v1/grants/{id}/end`.
pub async fn end_grant(
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    _body: Bytes,
) -> Result<Response, ApiError> {
    let approver = approver(&service, &headers).await?;
    let grant = service.end_grant(&approver, &id)?;
    Ok(json_body(&json!({ "grant": grant_json(&grant, unix_now()) })).into_response())
}
