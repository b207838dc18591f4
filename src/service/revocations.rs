//! The kill switch's service side (docs/identity.md, "The kill switch"): the revocations
//! `warden serve` keeps, the list gateways refresh, and the people who revoke and lift.
//!
//! | route | who | answer |
//! |---|---|---|
//! | `GET /v1/revocations[?since=V]` | gateway token, or a revoker | `{"version", "revocations": […]}` — the active list; `304` (no body) when `since` (or `If-None-Match: "V"`) is the current version |
//! | `POST /v1/revocations` `{"kind", "value" \| "claims", "reason", "expires_in"}` | revoker, or the gateway token | `201 {"version", "revocation"}` |
//! | `POST /v1/revocations/{id}/lift` | revoker, or the gateway token | `{"version", "revocation"}`; 404 unknown, 409 already lifted |
//! | `/v1/authz/…` (any method) | anyone (Envoy's ext_authz, `render_envoy.py --revocation-ext-authz`) | 200, or 401 `revoked` for a revoked verified payload ([`authz`]; the measured alternative to the list) |
//! | `GET /revocations`, `POST /revocations`, `POST /revocations/{id}/lift` | revoker (the console's sign-in) | the page: active and recently lifted revocations, a form to revoke, a lift button per entry (CSRF as the review pages) |
//!
//! A **revoker** is an approver (a token with the approvers' audience, verified as for reviews,
//! [`super::auth`]) with a group in the policy's `identity.revocation.revokers`; without that
//! list, only the holder of the gateway token revokes (`warden revoke --gateway-token-file`),
//! recorded as `gateway-token`. Every revoke and lift is logged (who, what, why; never a token).
//!
//! Table (migration 8 in [`super::store`]): `revocations` — kind, value (a subject, group or
//! `jti`; for a job, its claims as canonical JSON, keys sorted), reason, who and when, optional
//! expiry, who lifted it and when, and `changed_in`: the list version in which the row last
//! changed — and `revocation_version`: one row holding the **list version**, raised by one in the
//! same transaction as every revoke and lift, so it only ever grows (a gateway's `since` from
//! before a restart of the service stays comparable). Expiry does not raise it: gateways drop an
//! expired entry by its `expires_at` themselves, and the service leaves it out of later lists.
//!
//! Limits: at most [`crate::core::revocation::MAX_ENTRIES`] active revocations (a revoke
//! beyond is refused 409, so the list gateways accept is never exceeded); values and claims are
//! bounded as the filter bounds them; a reason is at most [`MAX_REASON_CHARS`] characters;
//! `expires_in` is 1 s to [`MAX_EXPIRES_IN_SECONDS`].
//!
//! [`RevocationStore::covers`] answers whether an identity is revoked, for the token service,
//! which must refuse to mint or refresh for it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Form, Router};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde::Deserialize;
use serde_json::{json, Value};
use crate::core::revocation::{Presented, Revocation, RevocationList, Target, MAX_ENTRIES, MAX_VALUE_BYTES};

use super::approvals::http::{json_body, ApiError};
use super::auth::{bearer, Approver};
use super::console::{self, escape, Section};
use super::approvals::page::{self, PageAuth, PageQuery};
use super::approvals::service::{Service, ServiceError};
use super::store::StoreError;
use super::util::{format_duration, log_event, unix_now};

pub use crate::service::schema::REVOCATIONS as SCHEMA;

/// Longest reason, in characters.
pub const MAX_REASON_CHARS: usize = 200;
/// Longest `expires_in`: a year.
pub const MAX_EXPIRES_IN_SECONDS: i64 = 366 * 86_400;
/// Who a revocation made with the gateway token is recorded as.
pub const GATEWAY_TOKEN_ACTOR: &str = "gateway-token";
/// Lifted revocations the page shows under the active ones.
const RECENTLY_LIFTED: usize = 50;
/// Largest API body (a revocation is a few hundred bytes).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// One revocation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRow {
    /// Its id (`#7`).
    pub id: i64,
    /// What it stops.
    pub target: Target,
    /// Why.
    pub reason: String,
    /// Who revoked (an approver's subject, or [`GATEWAY_TOKEN_ACTOR`]).
    pub revoked_by: String,
    /// When (epoch seconds).
    pub revoked_at: i64,
    /// When it lapses (epoch seconds); `None`: until lifted.
    pub expires_at: Option<i64>,
    /// Who lifted it, and when.
    pub lifted: Option<(String, i64)>,
}

impl RevocationRow {
    /// The entry as the gateway reads it (extra fields are for people).
    pub fn to_json(&self) -> Value {
        let mut entry = serde_json::Map::new();
        entry.insert("id".into(), json!(self.id));
        entry.insert("kind".into(), json!(self.target.kind()));
        match &self.target {
            Target::Job(claims) => entry.insert("claims".into(), json!(claims)),
            Target::Subject(value) | Target::Group(value) | Target::Token(value) => {
                entry.insert("value".into(), json!(value))
            }
        };
        entry.insert("reason".into(), json!(self.reason));
        entry.insert("expires_at".into(), json!(self.expires_at));
        entry.insert("revoked_by".into(), json!(self.revoked_by));
        entry.insert("revoked_at".into(), json!(self.revoked_at));
        if let Some((by, at)) = &self.lifted {
            entry.insert("lifted_by".into(), json!(by));
            entry.insert("lifted_at".into(), json!(at));
        }
        Value::Object(entry)
    }

    fn to_core(&self) -> Revocation {
        Revocation {
            id: u64::try_from(self.id).unwrap_or(0),
            target: self.target.clone(),
            reason: self.reason.clone(),
            expires_at: self.expires_at,
        }
    }
}

/// The target's value in words: the value, or a job's `claim=value` pairs.
pub fn describe(target: &Target) -> String {
    match target {
        Target::Job(claims) => claims.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
        Target::Subject(value) | Target::Group(value) | Target::Token(value) => value.clone(),
    }
}

/// A revocation asked for (API body; the page's form is turned into one).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRevocation {
    /// `subject`, `group`, `job` or `token`.
    pub kind: String,
    /// The subject, group or `jti` (not for `job`).
    #[serde(default)]
    pub value: Option<String>,
    /// A job's claims (only for `job`).
    #[serde(default)]
    pub claims: Option<BTreeMap<String, String>>,
    /// Why (shown to the refused caller).
    #[serde(default)]
    pub reason: String,
    /// Seconds until it lapses; absent: until lifted.
    #[serde(default)]
    pub expires_in: Option<i64>,
}

impl NewRevocation {
    /// The target, checked as the gateway checks it.
    pub fn target(&self) -> Result<Target, String> {
        let value = || -> Result<String, String> {
            let value = self.value.as_deref().map(str::trim).unwrap_or_default();
            check_value("value", value)?;
            Ok(value.to_string())
        };
        let target = match self.kind.as_str() {
            "subject" => Target::Subject(value()?),
            "group" => Target::Group(value()?),
            "token" => Target::Token(value()?),
            "job" => {
                let claims = self.claims.clone().unwrap_or_default();
                crate::core::revocation::check_claims(&claims).map_err(|why| format!("claims: {why}"))?;
                if claims.iter().flat_map(|(k, v)| [k, v]).any(|text| text.chars().any(char::is_control)) {
                    return Err("claims: must not contain control characters".to_string());
                }
                Target::Job(claims)
            }
            other => return Err(format!("kind must be subject, group, job or token (not {other:?})")),
        };
        if matches!(target, Target::Job(_)) == self.value.is_some() {
            return Err("a job takes `claims`; the other kinds take `value`".to_string());
        }
        if !matches!(target, Target::Job(_)) && self.claims.is_some() {
            return Err("only a job takes `claims`".to_string());
        }
        Ok(target)
    }
}

fn check_value(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_VALUE_BYTES {
        return Err(format!("{field}: must be 1 to {MAX_VALUE_BYTES} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{field}: must not contain control characters"));
    }
    Ok(())
}

/// Parses a job written `claim=value, claim=value` (the page's form).
pub fn parse_job(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut claims = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (claim, value) = pair.split_once('=').ok_or_else(|| format!("{pair:?} is not claim=value"))?;
        claims.insert(claim.trim().to_string(), value.trim().to_string());
    }
    Ok(claims)
}

/// The revocation tables on a connection of their own.
pub struct RevocationStore {
    connection: Mutex<Connection>,
}

impl std::fmt::Debug for RevocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RevocationStore")
    }
}

fn row_to_revocation(row: &Row<'_>) -> rusqlite::Result<RevocationRow> {
    let kind: String = row.get(1)?;
    let value: String = row.get(2)?;
    let target = match kind.as_str() {
        "subject" => Target::Subject(value),
        "group" => Target::Group(value),
        "token" => Target::Token(value),
        _ => Target::Job(serde_json::from_str(&value).unwrap_or_default()),
    };
    let lifted_by: Option<String> = row.get(7)?;
    let lifted_at: Option<i64> = row.get(8)?;
    Ok(RevocationRow {
        id: row.get(0)?,
        target,
        reason: row.get(3)?,
        revoked_by: row.get(4)?,
        revoked_at: row.get(5)?,
        expires_at: row.get(6)?,
        lifted: lifted_by.zip(lifted_at),
    })
}

const COLUMNS: &str = "id, kind, value, reason, revoked_by, revoked_at, expires_at, lifted_by, lifted_at";

impl RevocationStore {
    /// Opens the (already migrated: [`super::store::Store::open`]) database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(Self { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.connection.lock().map_err(|_| StoreError::other("the revocation store's lock is poisoned"))
    }

    /// The list version.
    pub fn version(&self) -> Result<u64, StoreError> {
        let connection = self.lock()?;
        Ok(version_on(&connection)?)
    }

    /// The list version and the revocations active at `now`, oldest first.
    pub fn active(&self, now: i64) -> Result<(u64, Vec<RevocationRow>), StoreError> {
        let connection = self.lock()?;
        let version = version_on(&connection)?;
        let rows = connection
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM revocations
                 WHERE lifted_at IS NULL AND (expires_at IS NULL OR expires_at > ?1) ORDER BY id"
            ))?
            .query_map([now], row_to_revocation)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((version, rows))
    }

    /// The `limit` revocations lifted last.
    pub fn recently_lifted(&self, limit: usize) -> Result<Vec<RevocationRow>, StoreError> {
        let connection = self.lock()?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = connection
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM revocations WHERE lifted_at IS NOT NULL ORDER BY lifted_at DESC, id DESC LIMIT ?1"
            ))?
            .query_map([limit], row_to_revocation)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Records a revocation of `target` by `who` at `now`; returns it and the new list version.
    /// Refused (`Conflict`) when [`MAX_ENTRIES`] revocations are active already.
    pub fn revoke(
        &self,
        target: &Target,
        reason: &str,
        expires_at: Option<i64>,
        who: &str,
        now: i64,
    ) -> Result<(RevocationRow, u64), ServiceError> {
        let value = match target {
            Target::Job(claims) => serde_json::to_string(claims).map_err(|_| ServiceError::Internal)?,
            Target::Subject(value) | Target::Group(value) | Target::Token(value) => value.clone(),
        };
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::from)?;
        let active: i64 = tx
            .query_row(
                "SELECT count(*) FROM revocations WHERE lifted_at IS NULL AND (expires_at IS NULL OR expires_at > ?1)",
                [now],
                |row| row.get(0),
            )
            .map_err(StoreError::from)?;
        if usize::try_from(active).unwrap_or(usize::MAX) >= MAX_ENTRIES {
            return Err(ServiceError::Conflict(format!(
                "{MAX_ENTRIES} revocations are active already (the most gateways accept); lift some first"
            )));
        }
        let version = bump(&tx)?;
        tx.execute(
            "INSERT INTO revocations (kind, value, reason, revoked_by, revoked_at, expires_at, changed_in)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![target.kind(), value, reason, who, now, expires_at, to_sql(version)],
        )
        .map_err(StoreError::from)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(StoreError::from)?;
        let row = RevocationRow {
            id,
            target: target.clone(),
            reason: reason.to_string(),
            revoked_by: who.to_string(),
            revoked_at: now,
            expires_at,
            lifted: None,
        };
        Ok((row, version))
    }

    /// Lifts revocation `id` (by `who`, at `now`); returns it and the new list version.
    pub fn lift(&self, id: i64, who: &str, now: i64) -> Result<(RevocationRow, u64), ServiceError> {
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::from)?;
        let row = tx
            .query_row(&format!("SELECT {COLUMNS} FROM revocations WHERE id = ?1"), [id], row_to_revocation)
            .optional()
            .map_err(StoreError::from)?
            .ok_or_else(|| ServiceError::NotFound(format!("no revocation #{id}")))?;
        if let Some((by, at)) = &row.lifted {
            return Err(ServiceError::Conflict(format!("revocation #{id} was lifted already by {by} at {at}")));
        }
        let version = bump(&tx)?;
        tx.execute(
            "UPDATE revocations SET lifted_by = ?1, lifted_at = ?2, changed_in = ?3 WHERE id = ?4",
            params![who, now, to_sql(version), id],
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        Ok((RevocationRow { lifted: Some((who.to_string(), now)), ..row }, version))
    }

    /// The first active revocation (at `now`) that covers an identity: its subject, any of its
    /// groups, its token id, or a job whose every claim is among `claims`. The token service
    /// calls this before it mints or refreshes a token.
    pub fn covers(
        &self,
        subject: &str,
        groups: &[String],
        claims: &BTreeMap<String, String>,
        jti: Option<&str>,
        now: i64,
    ) -> Result<Option<Revocation>, StoreError> {
        let (version, rows) = self.active(now)?;
        let list = RevocationList::new(version, rows.iter().map(RevocationRow::to_core));
        let job: Vec<(String, String)> = claims.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let who = Presented { subject, groups, job: &job, token_id: jti };
        Ok(list.find(&who, now).cloned())
    }
}

fn version_on(connection: &Connection) -> rusqlite::Result<u64> {
    let version: i64 =
        connection.query_row("SELECT version FROM revocation_version WHERE one = 1", [], |row| row.get(0))?;
    Ok(u64::try_from(version).unwrap_or(0))
}

/// Raises the list version by one inside `tx`; returns the new version.
fn bump(tx: &rusqlite::Transaction<'_>) -> Result<u64, StoreError> {
    tx.execute("UPDATE revocation_version SET version = version + 1 WHERE one = 1", [])?;
    Ok(version_on(tx)?)
}

fn to_sql(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

/// State of the revocation routes.
pub struct RevocationState {
    /// The approval service (gateway token, approvers' tokens, CSRF).
    pub service: Arc<Service>,
    /// The revocations.
    pub store: Arc<RevocationStore>,
    /// Groups whose approvers may revoke and lift (`identity.revocation.revokers`).
    pub revokers: Vec<String>,
    /// Path of the groups claim (`identity.groups_claim`), for `/v1/authz`.
    pub groups_claim: Vec<String>,
    /// The active list as `/v1/authz` checks it, rebuilt when the version moves.
    authz_list: Mutex<Option<Arc<RevocationList>>>,
}

impl RevocationState {
    /// The state of the routes.
    pub fn new(
        service: Arc<Service>,
        store: Arc<RevocationStore>,
        revokers: Vec<String>,
        groups_claim: Vec<String>,
    ) -> Self {
        Self { service, store, revokers, groups_claim, authz_list: Mutex::new(None) }
    }

    /// The active list at `now`, rebuilt only when the version moved.
    fn current_list(&self, now: i64) -> Result<Arc<RevocationList>, StoreError> {
        let version = self.store.version()?;
        let mut cached = self.authz_list.lock().map_err(|_| StoreError::other("the authz cache lock is poisoned"))?;
        if let Some(list) = cached.as_ref().filter(|list| list.version() == version) {
            return Ok(Arc::clone(list));
        }
        let (version, rows) = self.store.active(now)?;
        let list = Arc::new(RevocationList::new(version, rows.iter().map(RevocationRow::to_core)));
        *cached = Some(Arc::clone(&list));
        Ok(list)
    }

    /// Whether `approver` may revoke and lift.
    fn is_revoker(&self, approver: &Approver) -> bool {
        approver.groups.iter().any(|group| self.revokers.contains(group))
    }

    fn forbidden(&self, approver: &Approver) -> ServiceError {
        ServiceError::Forbidden(format!(
            "{} is not a revoker: none of their groups is in identity.revocation.revokers{}",
            approver.subject,
            if self.revokers.is_empty() { " (empty: only the gateway token revokes)" } else { "" }
        ))
    }

    /// Who is calling the API: the gateway token, or a revoker (by subject).
    async fn actor(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let token = bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
            .ok_or_else(|| ServiceError::Unauthorized("a bearer token is required".to_string()))?;
        if self.service.gateway_token.matches(token) {
            return Ok(GATEWAY_TOKEN_ACTOR.to_string());
        }
        let approver = self.service.verifier.verify(token).await?;
        if !self.is_revoker(&approver) {
            return Err(self.forbidden(&approver).into());
        }
        Ok(approver.subject)
    }

    /// Records a revocation asked for by `who`, and logs it.
    fn revoke(&self, asked: &NewRevocation, who: &str) -> Result<(RevocationRow, u64), ServiceError> {
        let target = asked.target().map_err(ServiceError::BadRequest)?;
        let reason = asked.reason.trim();
        if reason.chars().count() > MAX_REASON_CHARS || reason.chars().any(char::is_control) {
            return Err(ServiceError::BadRequest(format!(
                "reason: at most {MAX_REASON_CHARS} characters, without control characters"
            )));
        }
        let now = unix_now();
        let expires_at = match asked.expires_in {
            None => None,
            Some(seconds) if (1..=MAX_EXPIRES_IN_SECONDS).contains(&seconds) => Some(now.saturating_add(seconds)),
            Some(_) => {
                return Err(ServiceError::BadRequest(format!(
                    "expires_in: 1 to {MAX_EXPIRES_IN_SECONDS} seconds (or absent: until lifted)"
                )))
            }
        };
        let (row, version) = self.store.revoke(&target, reason, expires_at, who, now)?;
        log_event(&format!(
            "revocation #{}: {who} revoked {} {:?} ({}){}; list version {version}",
            row.id,
            target.kind(),
            describe(&target),
            if reason.is_empty() { "no reason given" } else { reason },
            expires_at.map_or(String::new(), |at| format!(" for {}", format_duration(at.saturating_sub(now))))
        ));
        Ok((row, version))
    }

    /// Lifts revocation `id` for `who`, and logs it.
    fn lift(&self, id: i64, who: &str) -> Result<(RevocationRow, u64), ServiceError> {
        let (row, version) = self.store.lift(id, who, unix_now())?;
        log_event(&format!(
            "revocation #{id}: {who} lifted the revocation of {} {:?}; list version {version}",
            row.target.kind(),
            describe(&row.target)
        ));
        Ok((row, version))
    }
}

/// The routes: the API and the page.
pub fn routes(state: Arc<RevocationState>) -> Router {
    Router::new()
        .route("/v1/revocations", get(list).post(create))
        .route("/v1/revocations/{id}/lift", post(lift))
        .route("/revocations", get(page_list).post(page_revoke))
        .route("/revocations/{id}/lift", post(page_lift))
        .route("/v1/authz", any(authz))
        .route("/v1/authz/{*path}", any(authz))
        .with_state(state)
}

/// The header `--revocation-ext-authz` has jwt_authn forward the verified payload in.
pub const PAYLOAD_HEADER: &str = "x-warden-jwt-payload";

/// `/v1/authz/…`: Envoy's HTTP ext_authz asking about one request (the design measured against
/// the filter's list: `scripts/render_envoy.py --revocation-ext-authz`). The verified payload
/// (base64url JSON, forwarded by jwt_authn) is checked against the active list: a revoked
/// identity gets 401 `revoked` in Anthropic's error format, which Envoy sends to the client;
/// anything else 200 (a request without a verified payload is the filter's to refuse). The
/// answer says only whether an identity is revoked, so the route takes no credential.
pub async fn authz(State(state): State<Arc<RevocationState>>, headers: HeaderMap) -> Response {
    let claims = headers
        .get(PAYLOAD_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| {
            <ct_codecs::Base64UrlSafeNoPadding as ct_codecs::Decoder>::decode_to_vec(text.trim_end_matches('='), None)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes).ok());
    let Some(claims) = claims else { return StatusCode::OK.into_response() };
    let now = unix_now();
    let list = match state.current_list(now) {
        Ok(list) => list,
        Err(e) => {
            log_event(&format!("revocations: /v1/authz could not read the list: {e}"));
            return ApiError(ServiceError::Internal).into_response();
        }
    };
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    let groups = super::jwt::groups_at(&claims, &state.groups_claim);
    let job: Vec<(String, String)> =
        claims.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect();
    let who = Presented { subject: text("sub").unwrap_or(""), groups: &groups, job: &job, token_id: text("jti") };
    match list.find(&who, now) {
        None => StatusCode::OK.into_response(),
        Some(revocation) => {
            let reply = revocation.denial().to_reply("");
            let mut response = (StatusCode::UNAUTHORIZED, reply.body).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response.headers_mut().insert("x-should-retry", HeaderValue::from_static("false"));
            response
        }
    }
}

/// Query of `GET /v1/revocations`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// The version the caller holds: `304` when it is current.
    since: Option<u64>,
}

/// `GET /v1/revocations`.
pub async fn list(
    State(state): State<Arc<RevocationState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    state.actor(&headers).await?;
    let store = Arc::clone(&state.store);
    let held = query.since.or_else(|| {
        let tag = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
        tag.trim().trim_start_matches("W/").trim_matches('"').parse().ok()
    });
    let now = unix_now();
    let answer = tokio::task::spawn_blocking(move || -> Result<Option<(u64, Vec<RevocationRow>)>, StoreError> {
        if held.is_some_and(|held| store.version().is_ok_and(|version| version == held)) {
            return Ok(None);
        }
        store.active(now).map(Some)
    })
    .await
    .map_err(|_| ServiceError::Internal)??;
    let Some((version, rows)) = answer else {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    };
    let entries: Vec<Value> = rows.iter().map(RevocationRow::to_json).collect();
    let mut response = json_body(&json!({"version": version, "revocations": entries})).into_response();
    if let Ok(tag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    Ok(response)
}

/// `POST /v1/revocations`.
pub async fn create(
    State(state): State<Arc<RevocationState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let who = state.actor(&headers).await?;
    if body.len() > MAX_BODY_BYTES {
        return Err(ServiceError::BadRequest(format!("the body is larger than {MAX_BODY_BYTES} bytes")).into());
    }
    let asked: NewRevocation = serde_json::from_slice(&body)
        .map_err(|e| ServiceError::BadRequest(format!("the revocation is not valid JSON for this API: {e}")))?;
    let (row, version) = blocking(&state, move |state| state.revoke(&asked, &who)).await?;
    let body = json!({"version": version, "revocation": row.to_json()});
    Ok((StatusCode::CREATED, json_body(&body)).into_response())
}

/// `POST /v1/revocations/{id}/lift`.
pub async fn lift(
    State(state): State<Arc<RevocationState>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    let who = state.actor(&headers).await?;
    let id = parse_id(&id)?;
    let (row, version) = blocking(&state, move |state| state.lift(id, &who)).await?;
    Ok(json_body(&json!({"version": version, "revocation": row.to_json()})).into_response())
}

fn parse_id(text: &str) -> Result<i64, ServiceError> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ServiceError::NotFound(format!("{text:?} is not a revocation id")))
}

/// Runs `work` (SQLite) off the async threads.
async fn blocking<T: Send + 'static>(
    state: &Arc<RevocationState>,
    work: impl FnOnce(&RevocationState) -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || work(&state)).await.map_err(|_| ServiceError::Internal)?
}

/// The signed-in revoker of a page request, or the response to send instead.
async fn page_revoker(
    state: &RevocationState,
    headers: &HeaderMap,
    again: bool,
) -> Result<(Approver, page::Source), Response> {
    match page::authenticate(&state.service, headers).await {
        PageAuth::Approver(approver, source) if state.is_revoker(&approver) => Ok((approver, source)),
        PageAuth::Approver(approver, source) => Err(page::error_page(
            StatusCode::FORBIDDEN,
            Some((&approver, source)),
            state.forbidden(&approver).message(),
        )),
        other => Err(page::unauthenticated(&state.service, other, "/revocations", again)),
    }
}

/// The signed-in revoker (by subject) posting a form with a valid CSRF token, or the response
/// to send instead.
async fn form_revoker(state: &RevocationState, headers: &HeaderMap, csrf: &str) -> Result<String, Response> {
    let (approver, source) = page_revoker(state, headers, true).await?;
    if !state.service.csrf.check(&page::approver_binding(&approver), csrf, unix_now()) {
        return Err(page::stale_form(Some((&approver, source))));
    }
    Ok(approver.subject)
}

/// `GET /revocations`.
pub async fn page_list(
    State(state): State<Arc<RevocationState>>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    let (approver, source) = match page_revoker(&state, &headers, query.again.is_some()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let now = unix_now();
    let store = Arc::clone(&state.store);
    let listed = tokio::task::spawn_blocking(move || {
        Ok::<_, StoreError>((store.active(now)?, store.recently_lifted(RECENTLY_LIFTED)?))
    })
    .await;
    let ((version, active), lifted) = match listed {
        Ok(Ok(lists)) => lists,
        Ok(Err(e)) => {
            log_event(&format!("revocations: listing failed: {e}"));
            return page::error_page(StatusCode::INTERNAL_SERVER_ERROR, Some((&approver, source)), "listing failed");
        }
        Err(_) => {
            return page::error_page(StatusCode::INTERNAL_SERVER_ERROR, Some((&approver, source)), "listing failed")
        }
    };
    let csrf = state.service.csrf.issue(&page::approver_binding(&approver), now);
    let content = page_body(&csrf, version, &active, &lifted, now);
    let (flash, cookies) = page::take_flash(&state.service, &headers);
    page::Page {
        status: StatusCode::OK,
        html: console::render(
            "Revocations",
            Some(Section::Revocations),
            Some((&approver, source)),
            flash.as_ref(),
            &content,
        ),
        cookies,
    }
    .into_response()
}

fn page_body(csrf: &str, version: u64, active: &[RevocationRow], lifted: &[RevocationRow], now: i64) -> String {
    let csrf = escape(csrf);
    let mut html = format!(
        r#"<section id="revoke" class="card"><h2>Revoke</h2>
<p class="note">Every gateway refuses the identity within seconds (list version {version}); live answers are ended when the policy says so. A job is <code>claim=value, claim=value</code>, all of which must match.</p>
<form method="post" action="/revocations" id="revoke-form" class="filters">
<input type="hidden" name="csrf" value="{csrf}">
<label>Kind <select name="kind" id="revoke-kind"><option value="subject">subject</option><option value="group">group</option><option value="job">job</option><option value="token">token (jti)</option></select></label>
<label>Value <input name="value" id="revoke-value" required maxlength="4096" size="40"></label>
<label>Reason <input name="reason" id="revoke-reason" maxlength="{MAX_REASON_CHARS}" size="40"></label>
<label>For <input name="for" id="revoke-for" placeholder="until lifted" size="10"></label>
<button type="submit" id="revoke-submit" name="revoke">Revoke</button>
</form></section>"#
    );
    let _ = write!(html, r#"<section id="active"><h2>Active ({})</h2>"#, active.len());
    if active.is_empty() {
        html.push_str(r#"<p class="note" id="no-active">Nobody is revoked.</p>"#);
    } else {
        html.push_str("<table><thead><tr><th>#</th><th>Kind</th><th>Value</th><th>Reason</th><th>By</th><th>Since</th><th>Until</th><th></th></tr></thead><tbody>");
        for row in active {
            let until = row.expires_at.map_or("lifted".to_string(), |at| {
                format!("{} (in {})", console::time_element(at), format_duration(at.saturating_sub(now)))
            });
            let _ = write!(
                html,
                r#"<tr id="revocation-{id}"><td>{id}</td><td>{kind}</td><td><code>{value}</code></td><td>{reason}</td><td>{by}</td><td>{since}</td><td>{until}</td><td><form method="post" action="/revocations/{id}/lift" id="lift-{id}"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" name="lift" id="lift-button-{id}">Lift</button></form></td></tr>"#,
                id = row.id,
                kind = row.target.kind(),
                value = escape(&describe(&row.target)),
                reason = escape(&row.reason),
                by = escape(&row.revoked_by),
                since = console::time_element(row.revoked_at),
            );
        }
        html.push_str("</tbody></table>");
    }
    html.push_str("</section>");
    if !lifted.is_empty() {
        html.push_str(r#"<section id="lifted"><h2>Recently lifted</h2><table><thead><tr><th>#</th><th>Kind</th><th>Value</th><th>Reason</th><th>Revoked by</th><th>Lifted by</th><th>Lifted</th></tr></thead><tbody>"#);
        for row in lifted {
            let (by, at) = row.lifted.clone().unwrap_or_default();
            let _ = write!(
                html,
                r#"<tr id="lifted-{id}"><td>{id}</td><td>{kind}</td><td><code>{value}</code></td><td>{reason}</td><td>{revoked_by}</td><td>{by}</td><td>{at}</td></tr>"#,
                id = row.id,
                kind = row.target.kind(),
                value = escape(&describe(&row.target)),
                reason = escape(&row.reason),
                revoked_by = escape(&row.revoked_by),
                by = escape(&by),
                at = console::time_element(at),
            );
        }
        html.push_str("</tbody></table></section>");
    }
    html
}

/// Form of `POST /revocations`.
#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    reason: String,
    #[serde(default, rename = "for")]
    duration: String,
}

impl RevokeForm {
    fn to_request(&self) -> Result<NewRevocation, String> {
        let expires_in = match self.duration.trim() {
            "" => None,
            text => {
                let seconds = crate::core::policy::units::parse_duration(text).map_err(|e| format!("for: {e}"))?;
                Some(i64::try_from(seconds.0).unwrap_or(i64::MAX))
            }
        };
        let (value, claims) =
            if self.kind == "job" { (None, Some(parse_job(&self.value)?)) } else { (Some(self.value.clone()), None) };
        Ok(NewRevocation { kind: self.kind.clone(), value, claims, reason: self.reason.clone(), expires_in })
    }
}

/// Form of `POST /revocations/{id}/lift`.
#[derive(Debug, Deserialize)]
pub struct LiftForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /revocations`.
pub async fn page_revoke(
    State(state): State<Arc<RevocationState>>,
    headers: HeaderMap,
    Form(form): Form<RevokeForm>,
) -> Response {
    let who = match form_revoker(&state, &headers, &form.csrf).await {
        Ok(who) => who,
        Err(response) => return response,
    };
    let outcome = match form.to_request() {
        Ok(asked) => {
            blocking(&state, move |state| state.revoke(&asked, &who)).await.map_err(|e| e.message().to_string())
        }
        Err(message) => Err(message),
    };
    let flash = match outcome {
        Ok((row, _)) => page::Flash::ok(format!(
            "Revoked {} {} (#{}); gateways refuse it within seconds.",
            row.target.kind(),
            describe(&row.target),
            row.id
        )),
        Err(message) => page::Flash::error(format!("Nothing was revoked: {message}")),
    };
    page::redirect_with(&state.service, "/revocations", &flash, Vec::new())
}

/// `POST /revocations/{id}/lift`.
pub async fn page_lift(
    State(state): State<Arc<RevocationState>>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Form(form): Form<LiftForm>,
) -> Response {
    let who = match form_revoker(&state, &headers, &form.csrf).await {
        Ok(who) => who,
        Err(response) => return response,
    };
    let outcome = match parse_id(&id) {
        Ok(id) => blocking(&state, move |state| state.lift(id, &who)).await,
        Err(e) => Err(e),
    };
    let flash = match outcome {
        Ok((row, _)) => page::Flash::ok(format!(
            "Lifted #{}: {} {} has access again.",
            row.id,
            row.target.kind(),
            describe(&row.target)
        )),
        Err(e) => page::Flash::error(e.message().to_string()),
    };
    page::redirect_with(&state.service, "/revocations", &flash, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::approvals::service::tests::{fixture, Fixture};

    const GATEWAY_TOKEN: &str = "gateway-token-for-tests";

    /// A migrated database file, removed when dropped.
    struct Db(std::path::PathBuf);

    impl Db {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!("warden-revocations-{name}-{}.db", std::process::id()));
            let _ = std::fs::remove_file(&path);
            drop(super::super::store::Store::open(&path).unwrap());
            Self(path)
        }
    }

    impl Drop for Db {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    fn state(name: &str, db: &Db, revokers: &[&str]) -> (Arc<RevocationState>, Fixture) {
        let fixture = fixture(name, false);
        let state = RevocationState::new(
            Arc::clone(&fixture.service),
            Arc::new(RevocationStore::open(&db.0).unwrap()),
            revokers.iter().map(|g| g.to_string()).collect(),
            vec!["groups".to_string()],
        );
        (Arc::new(state), fixture)
    }

    fn headers(token: Option<&str>, extra: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        }
        for (name, value) in extra {
            headers.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    async fn answer(result: Result<Response, ApiError>) -> (StatusCode, Value) {
        let response = result.unwrap_or_else(IntoResponse::into_response);
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn get_list(
        state: &Arc<RevocationState>,
        token: &str,
        since: Option<u64>,
        tag: Option<&str>,
    ) -> (StatusCode, Value) {
        let extra: Vec<(header::HeaderName, &str)> = tag.map(|t| (header::IF_NONE_MATCH, t)).into_iter().collect();
        answer(list(State(Arc::clone(state)), headers(Some(token), &extra), Query(ListQuery { since })).await).await
    }

    async fn post_revocation(state: &Arc<RevocationState>, token: Option<&str>, body: &str) -> (StatusCode, Value) {
        let bytes = Bytes::from(body.to_string());
        answer(create(State(Arc::clone(state)), headers(token, &[]), bytes).await).await
    }

    async fn post_lift(state: &Arc<RevocationState>, token: &str, id: &str) -> (StatusCode, Value) {
        answer(lift(State(Arc::clone(state)), headers(Some(token), &[]), UrlPath(id.to_string())).await).await
    }

    #[tokio::test]
    async fn gateways_get_the_list_and_a_304_while_it_is_unchanged() {
        let db = Db::new("list");
        let (state, _fixture) = state("revocations-list", &db, &[]);
        let (status, empty) = get_list(&state, GATEWAY_TOKEN, None, None).await;
        assert_eq!(
            (status, empty["version"].as_u64(), empty["revocations"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(0), Some(0))
        );

        let (status, created) =
            post_revocation(&state, Some(GATEWAY_TOKEN), r#"{"kind":"subject","value":"alice","reason":"left"}"#).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        assert_eq!(
            (created["version"].as_u64(), created["revocation"]["revoked_by"].as_str()),
            (Some(1), Some("gateway-token"))
        );

        let (status, listed) = get_list(&state, GATEWAY_TOKEN, Some(0), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed["version"], 1);
        assert_eq!(listed["revocations"][0]["value"], "alice");
        // What the gateway reads is what the core accepts.
        let core = RevocationList::parse(listed.to_string().as_bytes()).unwrap();
        assert_eq!((core.version(), core.len()), (1, 1));

        assert_eq!(get_list(&state, GATEWAY_TOKEN, Some(1), None).await.0, StatusCode::NOT_MODIFIED);
        assert_eq!(get_list(&state, GATEWAY_TOKEN, None, Some("\"1\"")).await.0, StatusCode::NOT_MODIFIED);
        assert_eq!(get_list(&state, GATEWAY_TOKEN, None, Some("\"0\"")).await.0, StatusCode::OK);

        let id = created["revocation"]["id"].to_string();
        let (status, lifted) = post_lift(&state, GATEWAY_TOKEN, &id).await;
        assert_eq!((status, lifted["version"].as_u64()), (StatusCode::OK, Some(2)));
        let (status, after) = get_list(&state, GATEWAY_TOKEN, Some(1), None).await;
        assert_eq!((status, after["version"].as_u64()), (StatusCode::OK, Some(2)));
        assert_eq!(after["revocations"], json!([]), "a lifted revocation leaves the list");
    }

    #[tokio::test]
    async fn only_revokers_and_the_gateway_token_may_revoke_or_read() {
        let db = Db::new("auth");
        let (state, fixture) = state("revocations-auth", &db, &["sec-ops"]);
        let body = r#"{"kind":"group","value":"contractors"}"#;
        let (status, refused) = post_revocation(&state, None, body).await;
        assert_eq!(
            (status, refused["error"]["type"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("authentication_error"))
        );
        assert_eq!(
            post_revocation(&state, Some("gateway-token-for-tests-but-wrong"), body).await.0,
            StatusCode::UNAUTHORIZED
        );

        let lead = fixture.issuer.token("bob", &["leads"], "warden-demo", "warden-approvals", 600);
        let (status, refused) = post_revocation(&state, Some(&lead), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(refused["error"]["message"].as_str().unwrap().contains("bob is not a revoker"), "{refused}");
        assert_eq!(get_list(&state, &lead, None, None).await.0, StatusCode::FORBIDDEN);

        let agent = fixture.issuer.token("carol", &["sec-ops"], "warden-demo", "warden", 600);
        assert_eq!(
            post_revocation(&state, Some(&agent), body).await.0,
            StatusCode::UNAUTHORIZED,
            "the gateway's audience"
        );

        let revoker = fixture.issuer.token("carol", &["sec-ops"], "warden-demo", "warden-approvals", 600);
        let (status, created) = post_revocation(&state, Some(&revoker), body).await;
        assert_eq!((status, created["revocation"]["revoked_by"].as_str()), (StatusCode::CREATED, Some("carol")));
        assert_eq!(get_list(&state, &revoker, None, None).await.0, StatusCode::OK);
        assert_eq!(state.store.active(unix_now()).unwrap().1.len(), 1, "refused calls changed nothing");
    }

    #[tokio::test]
    async fn bad_revocations_are_refused_naming_the_field() {
        let db = Db::new("bad");
        let (state, _fixture) = state("revocations-bad", &db, &[]);
        let long_reason = format!(r#"{{"kind":"subject","value":"a","reason":"{}"}}"#, "r".repeat(201));
        let long_value = format!(r#"{{"kind":"subject","value":"{}"}}"#, "v".repeat(MAX_VALUE_BYTES + 1));
        let cases = [
            (r#"{"kind":"device","value":"x"}"#.to_string(), "kind must be"),
            (r#"{"kind":"subject","value":"  "}"#.to_string(), "value: must be 1 to"),
            (r#"{"kind":"subject"}"#.to_string(), "value: must be 1 to"),
            (r#"{"kind":"job","claims":{}}"#.to_string(), "claims: must hold 1 to 16"),
            (r#"{"kind":"job","value":"x","claims":{"a":"b"}}"#.to_string(), "a job takes `claims`"),
            (r#"{"kind":"group","value":"x","claims":{"a":"b"}}"#.to_string(), "only a job takes `claims`"),
            (r#"{"kind":"token","value":"j","expires_in":0}"#.to_string(), "expires_in: 1 to"),
            (r#"{"kind":"token","value":"j","expires_in":1e9}"#.to_string(), "not valid JSON"),
            (r#"{"kind":"subject","value":"a\u0000b"}"#.to_string(), "control characters"),
            (r#"{"kind":"subject","value":"a","who":"me"}"#.to_string(), "unknown field"),
            (long_reason, "reason: at most 200"),
            (long_value, "value: must be 1 to 1024 bytes"),
        ];
        for (body, named) in cases {
            let (status, refused) = post_revocation(&state, Some(GATEWAY_TOKEN), &body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body:.60}: {refused}");
            let message = refused["error"]["message"].as_str().unwrap();
            assert!(message.contains(named), "{message} should name {named}");
        }
        assert_eq!(state.store.version().unwrap(), 0, "no refused revocation moved the version");
    }

    #[tokio::test]
    async fn lifting_an_unknown_or_lifted_revocation_is_refused() {
        let db = Db::new("lift");
        let (state, _fixture) = state("revocations-lift", &db, &[]);
        let (_, created) = post_revocation(&state, Some(GATEWAY_TOKEN), r#"{"kind":"token","value":"jti-1"}"#).await;
        let id = created["revocation"]["id"].to_string();
        assert_eq!(post_lift(&state, GATEWAY_TOKEN, "999").await.0, StatusCode::NOT_FOUND);
        assert_eq!(post_lift(&state, GATEWAY_TOKEN, "-1").await.0, StatusCode::NOT_FOUND);
        assert_eq!(post_lift(&state, GATEWAY_TOKEN, &id).await.0, StatusCode::OK);
        let (status, again) = post_lift(&state, GATEWAY_TOKEN, &id).await;
        assert_eq!(status, StatusCode::CONFLICT, "{again}");
        assert_eq!(state.store.version().unwrap(), 2);
        assert_eq!(state.store.recently_lifted(10).unwrap()[0].lifted.as_ref().unwrap().0, "gateway-token");
    }

    #[test]
    fn expiry_takes_an_entry_out_of_the_list_and_covers_follows_it() {
        let db = Db::new("expiry");
        let store = RevocationStore::open(&db.0).unwrap();
        let now = 1_796_601_600;
        store.revoke(&Target::Token("jti-1".into()), "leaked", Some(now + 600), "carol", now).unwrap();
        let job = BTreeMap::from([
            ("repository".to_string(), "acme/app".to_string()),
            ("run_id".to_string(), "7".to_string()),
        ]);
        store.revoke(&Target::Job(job.clone()), "bad run", None, "carol", now).unwrap();
        store.revoke(&Target::Group("contractors".into()), "", None, "carol", now).unwrap();
        let none = BTreeMap::new();
        assert_eq!(store.covers("x", &[], &none, Some("jti-1"), now).unwrap().unwrap().reason, "leaked");
        assert!(store.covers("x", &[], &none, Some("jti-1"), now + 600).unwrap().is_none(), "lapsed with the token");
        assert_eq!(store.active(now + 600).unwrap().1.len(), 2);
        let mut claims = job.clone();
        claims.insert("workflow".into(), "ci".into());
        assert_eq!(store.covers("ci", &[], &claims, None, now).unwrap().unwrap().reason, "bad run");
        claims.insert("run_id".into(), "8".into());
        assert!(store.covers("ci", &[], &claims, None, now).unwrap().is_none());
        assert!(store.covers("dave", &["contractors".to_string()], &none, None, now).unwrap().is_some());
        assert_eq!(store.version().unwrap(), 3, "expiry does not move the version");
    }

    #[test]
    fn the_version_only_grows_and_survives_a_restart() {
        let db = Db::new("restart");
        let now = 1_796_601_600;
        let (row, _) = RevocationStore::open(&db.0)
            .unwrap()
            .revoke(&Target::Subject("alice".into()), "", None, "carol", now)
            .unwrap();
        let store = RevocationStore::open(&db.0).unwrap();
        assert_eq!(store.version().unwrap(), 1);
        let (_, version) = store.lift(row.id, "carol", now + 1).unwrap();
        assert_eq!(version, 2);
        assert_eq!(RevocationStore::open(&db.0).unwrap().version().unwrap(), 2);
    }

    #[test]
    fn the_active_list_is_bounded_as_gateways_bound_it() {
        let db = Db::new("bounded");
        let store = RevocationStore::open(&db.0).unwrap();
        {
            let mut connection = store.lock().unwrap();
            let tx = connection.transaction().unwrap();
            for i in 0..MAX_ENTRIES {
                tx.execute(
                    "INSERT INTO revocations (kind, value, reason, revoked_by, revoked_at, changed_in)
                     VALUES ('subject', ?1, '', 'x', 0, 0)",
                    [format!("s{i}")],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        let refused = store.revoke(&Target::Subject("one-more".into()), "", None, "carol", 1).unwrap_err();
        assert!(matches!(refused, ServiceError::Conflict(_)), "{refused:?}");
    }

    #[tokio::test]
    async fn ext_authz_answers_401_for_a_revoked_payload_and_200_otherwise() {
        use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
        let db = Db::new("authz");
        let (state, _fixture) = state("revocations-authz", &db, &[]);
        state.store.revoke(&Target::Group("contractors".into()), "contract ended", None, "carol", unix_now()).unwrap();
        let ask = |payload: Option<String>| {
            let state = Arc::clone(&state);
            async move {
                let mut headers = HeaderMap::new();
                if let Some(payload) = payload {
                    headers.insert(PAYLOAD_HEADER, HeaderValue::from_str(&payload).unwrap());
                }
                let response = authz(State(state), headers).await;
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
                (status, String::from_utf8(bytes.to_vec()).unwrap())
            }
        };
        let encode = |claims: Value| Base64UrlSafeNoPadding::encode_to_string(claims.to_string()).unwrap();
        let (status, body) = ask(Some(encode(json!({"sub": "dave", "groups": ["eng", "contractors"]})))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.contains("warden: revoked: access revoked: contract ended"), "{body}");
        assert_eq!(ask(Some(encode(json!({"sub": "erin", "groups": ["eng"]})))).await.0, StatusCode::OK);
        assert_eq!(ask(None).await.0, StatusCode::OK, "no verified payload: the filter refuses it");
        assert_eq!(ask(Some("%%%".into())).await.0, StatusCode::OK);
        state.store.revoke(&Target::Subject("erin".into()), "", None, "carol", unix_now()).unwrap();
        assert_eq!(
            ask(Some(encode(json!({"sub": "erin"})))).await.0,
            StatusCode::UNAUTHORIZED,
            "a new version is seen at once"
        );
    }

    #[test]
    fn the_pages_form_reads_jobs_and_durations() {
        let form = RevokeForm {
            csrf: String::new(),
            kind: "job".into(),
            value: "repository = acme/app, run_id=7".into(),
            reason: "r".into(),
            duration: "1h30m".into(),
        };
        let asked = form.to_request().unwrap();
        assert_eq!(asked.expires_in, Some(5400));
        assert_eq!(asked.target().unwrap(), Target::Job(parse_job("repository=acme/app,run_id=7").unwrap()));
        assert!(parse_job("repository").unwrap_err().contains("not claim=value"));
        let bad = RevokeForm { duration: "soon".into(), ..form };
        assert!(bad.to_request().unwrap_err().starts_with("for:"));
    }

    #[tokio::test]
    async fn the_page_lists_revokes_and_lifts_for_revokers_with_a_valid_form() {
        let db = Db::new("page");
        let (state, fixture) = state("revocations-page", &db, &["sec-ops"]);
        let revoker = fixture.issuer.token("carol", &["sec-ops"], "warden-demo", "warden-approvals", 600);
        let lead = fixture.issuer.token("bob", &["leads"], "warden-demo", "warden-approvals", 600);
        let page = |token: String| {
            let state = Arc::clone(&state);
            async move {
                let response = page_list(State(state), headers(Some(&token), &[]), Query(PageQuery::default())).await;
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
                (status, String::from_utf8(bytes.to_vec()).unwrap())
            }
        };
        let (status, html) = page(lead.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(html.contains("bob is not a revoker"));
        let (status, html) = page(revoker.clone()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(r#"id="nav-revocations" aria-current="page""#), "the navigation marks the page");
        assert!(html.contains(r#"id="no-active""#));

        let form = |csrf: &str, value: &str| RevokeForm {
            csrf: csrf.to_string(),
            kind: "subject".into(),
            value: value.into(),
            reason: "<script>".into(),
            duration: String::new(),
        };
        let stale =
            page_revoke(State(Arc::clone(&state)), headers(Some(&revoker), &[]), Form(form("1.00", "mallory"))).await;
        assert_eq!(stale.status(), StatusCode::FORBIDDEN);
        assert_eq!(state.store.version().unwrap(), 0, "a form without a valid CSRF token revokes nothing");

        let approver = state.service.verifier.verify(&revoker).await.unwrap();
        let csrf = state.service.csrf.issue(&page::approver_binding(&approver), unix_now());
        let done =
            page_revoke(State(Arc::clone(&state)), headers(Some(&revoker), &[]), Form(form(&csrf, "mallory"))).await;
        assert_eq!(done.status(), StatusCode::SEE_OTHER);
        let (_, html) = page(revoker.clone()).await;
        assert!(html.contains(r#"<tr id="revocation-1">"#) && html.contains("mallory"), "{html}");
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"), "the reason is escaped");

        let lifted = page_lift(
            State(Arc::clone(&state)),
            headers(Some(&revoker), &[]),
            UrlPath("1".into()),
            Form(LiftForm { csrf: csrf.clone() }),
        )
        .await;
        assert_eq!(lifted.status(), StatusCode::SEE_OTHER);
        let (_, html) = page(revoker).await;
        assert!(html.contains(r#"<tr id="lifted-1">"#) && html.contains(r#"id="no-active""#), "{html}");
    }
}
