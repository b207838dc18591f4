//! The budget ledger of `warden serve`: the leases gateway instances hold on shared budgets
//! (docs/budgets.md, "Many instances"; the rule itself is [`crate::core::budget::lease`]).
//!
//! `POST /v1/budget/leases` (the gateway's bearer token, as on `/v1/audit/records`) takes a
//! [`LeaseRequest`] — an instance and up to [`lease::MAX_ASKS_PER_CALL`] asks, one per budget
//! key — checks it ([`LeaseRequest::validate`]), and answers a [`LeaseAnswer`]: one grant per
//! ask, in ask order. All asks of a call are served in **one** SQLite transaction begun with
//! `BEGIN IMMEDIATE` (the write lock is taken before anything is read), so two gateways calling
//! at once are serialised and never both granted the same room. For each ask: load the key's
//! window row and this instance's lease row, run [`lease::renew`] (the only place the grant
//! arithmetic lives), store both back — the lease's `first_ms` when first heard of, its
//! `renewed_ms` now.
//!
//! Tables (migration 7 in [`super::store`]): `budget_windows` — one row per (key, window start):
//! the budget's name, the window's end, the lowest limits reported (`NULL`: not limited) and
//! everything granted in the window — and `budget_leases` — one row per (key, window start,
//! instance): what the instance was granted and the most it reported committed, when it was
//! first heard of and last renewed.
//!
//! SQLite integers are signed 64-bit: amounts above `i64::MAX` (9.2 × 10¹⁸ tokens, or 9.2
//! billion currency units in nanos) are stored as `i64::MAX` ([`to_sql`]) — saturated, never
//! wrapped — and a negative stored value (only a hand-edited database has one) reads as 0
//! ([`from_sql`]). A limit that large does not limit anything real.
//!
//! Expiry: a lease is *live* while renewed within the TTL (`--lease-ttl`, default
//! [`DEFAULT_TTL_SECONDS`]; gateways heartbeat every 5 s), else *expired*. Expiry changes no
//! figure: grants are never taken back (an instance that stopped renewing may have spent all it
//! was granted), so it is what the listing shows, not a refund. Rows of windows that ended more
//! than [`KEEP_ENDED_FOR_SECONDS`] ago are pruned ([`LeaseLedger::prune`]) at start-up and every
//! [`PRUNE_PERIOD`] ([`maintain`]).
//!
//! Seeing it: `GET /v1/budget/leases?limit=N` (an approver's bearer token, as on `/v1/reviews`)
//! and `warden budget leases` ([`format`]) list the windows, newest end first, with
//! their leases ([`listing_json`]); the usage page shows the windows overlapping its dates
//! ([`page_section`]).
//!
//! Limits: nothing from a request body is logged (only counts). A gateway holding the token can
//! create rows for any key and window (it is trusted with the budgets anyway); the body is at
//! most [`MAX_LEASE_BODY_BYTES`], so one call writes at most 1024 pairs of rows. Unknown fields
//! are refused at the request's top level ([`LeaseRequest`]) and ignored inside an ask (the
//! core's types). Calls are served one at a time (SQLite's writer lock; a call waits up to 10 s
//! for it behind an audit batch, then fails with 500 and changes nothing).

pub mod format;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior};
use serde::Deserialize;
use serde_json::{json, Value};
use crate::core::budget::lease::{self, Grant, InstanceLease, LeaseAnswer, LeaseRequest, WindowLedger, Windowed};

use super::approvals::http::{approver, check_gateway, json_body, ApiError};
use super::approvals::service::{Service, ServiceError};
use super::store::StoreError;
use super::util::{log_event, unix_now_millis};

pub use crate::service::schema::BUDGET_LEASES as SCHEMA;

/// Largest lease request body (1024 asks of a few hundred bytes each fit).
pub const MAX_LEASE_BODY_BYTES: usize = 1 << 20;
/// Default time after its last renewal that a lease is shown as expired.
pub const DEFAULT_TTL_SECONDS: u64 = 30;
/// How long the rows of a window are kept after it ended.
pub const KEEP_ENDED_FOR_SECONDS: i64 = 7 * 86_400;
/// How often ended windows are pruned (the first time at start-up).
pub const PRUNE_PERIOD: Duration = Duration::from_secs(3600);
/// Windows a listing returns when not told (`GET /v1/budget/leases`).
pub const DEFAULT_LIST_LIMIT: usize = 200;
/// Most windows one listing returns.
pub const MAX_LIST_LIMIT: usize = 5000;
/// How long a call waits for SQLite's write lock held by another connection (audit ingest).
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// An amount as SQLite stores it: saturated at `i64::MAX`.
pub fn to_sql(amount: u64) -> i64 {
    i64::try_from(amount).unwrap_or(i64::MAX)
}

/// A stored amount: negative (never written by the service) reads as 0.
pub fn from_sql(stored: i64) -> u64 {
    u64::try_from(stored).unwrap_or(0)
}

/// A grant's three amounts as stored: tokens, nanos, requests.
fn grant_to_sql(grant: Grant) -> [i64; 3] {
    [to_sql(grant.tokens), to_sql(grant.nanos), to_sql(grant.requests)]
}

fn grant_at(row: &Row<'_>, first: usize) -> rusqlite::Result<Grant> {
    Ok(Grant {
        tokens: from_sql(row.get(first)?),
        nanos: from_sql(row.get(first + 1)?),
        requests: from_sql(row.get(first + 2)?),
    })
}

/// One window of one budget key, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowRow {
    /// The ledger key (budget, scope and hashed subject).
    pub key: String,
    /// The budget's name.
    pub budget: String,
    /// The window's start (epoch seconds).
    pub window_start: i64,
    /// The window's end (epoch seconds).
    pub window_end: i64,
    /// The lowest limits reported and the total granted.
    pub ledger: WindowLedger,
    /// The instances' leases, first heard of first.
    pub leases: Vec<LeaseRow>,
}

/// One instance's lease on a window, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// The gateway instance.
    pub instance: String,
    /// Granted and committed.
    pub lease: InstanceLease,
    /// When the service first heard of the instance in this window (epoch ms).
    pub first_ms: i64,
    /// Its last renewal (epoch ms).
    pub renewed_ms: i64,
}

/// The lease tables on a connection of their own.
pub struct LeaseLedger {
    connection: Mutex<Connection>,
}

impl LeaseLedger {
    /// Opens the (already migrated: [`super::store::Store::open`]) database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::checked(Connection::open(path)?)
    }

    /// Opens the database at `path` read-only (`warden budget leases`).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::other(format!("{} does not exist", path.display())));
        }
        Self::checked(Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?)
    }

    fn checked(connection: Connection) -> Result<Self, StoreError> {
        connection.busy_timeout(BUSY_WAIT)?;
        let tables: i64 = connection.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('budget_windows', 'budget_leases')",
            [],
            |row| row.get(0),
        )?;
        if tables != 2 {
            return Err(StoreError::other(
                "the database has no budget ledger (written by a `warden serve` older than leases)",
            ));
        }
        Ok(Self { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.connection.lock().map_err(|_| StoreError::other("the lease ledger lock is poisoned"))
    }

    /// Serves a (validated) request at `now_ms`: every ask renewed in one immediate transaction.
    pub fn renew(&self, request: &LeaseRequest, now_ms: i64) -> Result<LeaseAnswer, StoreError> {
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut grants = Vec::with_capacity(request.asks.len());
        for ask in &request.asks {
            let window = load_window(&tx, &ask.key, ask.window_start)?;
            let held = load_lease(&tx, &ask.key, ask.window_start, &request.instance)?;
            let (window, held) = lease::renew(window, held, ask);
            store_window(&tx, ask, &window)?;
            store_lease(&tx, ask, &request.instance, &held, now_ms)?;
            grants.push(lease::Granted {
                window_start: ask.window_start,
                granted: held.granted,
                exhausted: window.exhausted(),
            });
        }
        tx.commit()?;
        Ok(LeaseAnswer { grants })
    }

    /// Removes the rows of windows that ended more than [`KEEP_ENDED_FOR_SECONDS`] before
    /// `now_ms`; returns how many windows went.
    pub fn prune(&self, now_ms: i64) -> Result<usize, StoreError> {
        let cutoff = now_ms.div_euclid(1000).saturating_sub(KEEP_ENDED_FOR_SECONDS);
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "DELETE FROM budget_leases WHERE (key, window_start) IN
                 (SELECT key, window_start FROM budget_windows WHERE window_end < ?1)",
            [cutoff],
        )?;
        let windows = tx.execute("DELETE FROM budget_windows WHERE window_end < ?1", [cutoff])?;
        tx.commit()?;
        Ok(windows)
    }

    /// The `limit` windows ending last (then by budget and key), each with its leases.
    pub fn windows(&self, limit: usize) -> Result<Vec<WindowRow>, StoreError> {
        let connection = self.lock()?;
        Ok(windows_on(&connection, None, limit)?)
    }
}

/// On `connection`, the `limit` windows ending last (then by budget and key) — only those
/// overlapping `overlapping` (epoch seconds, start included, end excluded) when given — each
/// with its leases, first heard of first.
pub fn windows_on(
    connection: &Connection,
    overlapping: Option<(i64, i64)>,
    limit: usize,
) -> rusqlite::Result<Vec<WindowRow>> {
    let mut statement = connection.prepare(
        "SELECT key, budget, window_start, window_end, limit_tokens, limit_nanos, limit_requests,
                granted_tokens, granted_nanos, granted_requests
         FROM budget_windows WHERE ?1 IS NULL OR (window_end > ?1 AND window_start < ?2)
         ORDER BY window_end DESC, budget, key LIMIT ?3",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let (since, until) = overlapping.map_or((None, None), |(since, until)| (Some(since), Some(until)));
    let mut windows: Vec<WindowRow> = statement
        .query_map(params![since, until, limit], |row| {
            let limit = |at: usize| row.get::<_, Option<i64>>(at).map(|value| value.map(from_sql));
            Ok(WindowRow {
                key: row.get(0)?,
                budget: row.get(1)?,
                window_start: row.get(2)?,
                window_end: row.get(3)?,
                ledger: WindowLedger {
                    limits: Windowed { tokens: limit(4)?, nanos: limit(5)?, requests: limit(6)? },
                    granted: grant_at(row, 7)?,
                },
                leases: Vec::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut leases = connection.prepare(
        "SELECT instance, granted_tokens, granted_nanos, granted_requests,
                committed_tokens, committed_nanos, committed_requests, first_ms, renewed_ms
         FROM budget_leases WHERE key = ?1 AND window_start = ?2 ORDER BY first_ms, instance",
    )?;
    for window in &mut windows {
        window.leases = leases
            .query_map(params![window.key, window.window_start], |row| {
                Ok(LeaseRow {
                    instance: row.get(0)?,
                    lease: InstanceLease { granted: grant_at(row, 1)?, committed: grant_at(row, 4)? },
                    first_ms: row.get(7)?,
                    renewed_ms: row.get(8)?,
                })
            })?
            .collect::<Result<_, _>>()?;
    }
    Ok(windows)
}

fn load_window(tx: &Transaction<'_>, key: &str, window_start: i64) -> Result<Option<WindowLedger>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT limit_tokens, limit_nanos, limit_requests, granted_tokens, granted_nanos, granted_requests
             FROM budget_windows WHERE key = ?1 AND window_start = ?2",
        )?
        .query_row(params![key, window_start], |row| {
            let limit = |at: usize| row.get::<_, Option<i64>>(at).map(|value| value.map(from_sql));
            Ok(WindowLedger {
                limits: Windowed { tokens: limit(0)?, nanos: limit(1)?, requests: limit(2)? },
                granted: grant_at(row, 3)?,
            })
        })
        .optional()?)
}

fn load_lease(
    tx: &Transaction<'_>,
    key: &str,
    window_start: i64,
    instance: &str,
) -> Result<Option<InstanceLease>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT granted_tokens, granted_nanos, granted_requests, committed_tokens, committed_nanos, committed_requests
             FROM budget_leases WHERE key = ?1 AND window_start = ?2 AND instance = ?3",
        )?
        .query_row(
            params![key, window_start, instance],
            |row| Ok(InstanceLease { granted: grant_at(row, 0)?, committed: grant_at(row, 3)? }),
        )
        .optional()?)
}

/// Writes the window's record; its end is the latest any instance reported (so pruning never
/// comes early), its budget name the latest.
fn store_window(tx: &Transaction<'_>, ask: &lease::LeaseAsk, window: &WindowLedger) -> Result<(), StoreError> {
    let granted = grant_to_sql(window.granted);
    tx.prepare_cached(
        "INSERT INTO budget_windows (key, window_start, window_end, budget, limit_tokens, limit_nanos, limit_requests,
                                     granted_tokens, granted_nanos, granted_requests)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (key, window_start) DO UPDATE SET
             window_end = max(window_end, excluded.window_end), budget = excluded.budget,
             limit_tokens = excluded.limit_tokens, limit_nanos = excluded.limit_nanos,
             limit_requests = excluded.limit_requests, granted_tokens = excluded.granted_tokens,
             granted_nanos = excluded.granted_nanos, granted_requests = excluded.granted_requests",
    )?
    .execute(params![
        ask.key,
        ask.window_start,
        ask.window_end,
        ask.budget,
        window.limits.tokens.map(to_sql),
        window.limits.nanos.map(to_sql),
        window.limits.requests.map(to_sql),
        granted[0],
        granted[1],
        granted[2],
    ])?;
    Ok(())
}

/// Writes the instance's lease: `first_ms` set on insert only, `renewed_ms` every time.
fn store_lease(
    tx: &Transaction<'_>,
    ask: &lease::LeaseAsk,
    instance: &str,
    held: &InstanceLease,
    now_ms: i64,
) -> Result<(), StoreError> {
    let [granted, committed] = [grant_to_sql(held.granted), grant_to_sql(held.committed)];
    tx.prepare_cached(
        "INSERT INTO budget_leases (key, window_start, instance, granted_tokens, granted_nanos, granted_requests,
                                    committed_tokens, committed_nanos, committed_requests, first_ms, renewed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
         ON CONFLICT (key, window_start, instance) DO UPDATE SET
             granted_tokens = excluded.granted_tokens, granted_nanos = excluded.granted_nanos,
             granted_requests = excluded.granted_requests, committed_tokens = excluded.committed_tokens,
             committed_nanos = excluded.committed_nanos, committed_requests = excluded.committed_requests,
             renewed_ms = excluded.renewed_ms",
    )?
    .execute(params![
        ask.key,
        ask.window_start,
        instance,
        granted[0],
        granted[1],
        granted[2],
        committed[0],
        committed[1],
        committed[2],
        now_ms
    ])?;
    Ok(())
}

/// Whether a lease last renewed at `renewed_ms` is live at `now_ms` with a TTL of `ttl_ms`.
pub fn is_live(renewed_ms: i64, now_ms: i64, ttl_ms: i64) -> bool {
    now_ms.saturating_sub(renewed_ms) <= ttl_ms
}

fn grant_json(grant: Grant) -> Value {
    json!({"tokens": grant.tokens, "nanos": grant.nanos, "requests": grant.requests})
}

/// The listing as JSON (`GET /v1/budget/leases`, `warden budget leases --json`): `{"ttl_seconds",
/// "now_ms", "windows": [{"key", "budget", "window_start", "window_end", "limits", "granted",
/// "exhausted", "leases": [{"instance", "granted", "committed", "first_ms", "renewed_ms",
/// "live"}]}]}` — amounts in tokens, nanos and requests; a limit `null` is not limited.
pub fn listing_json(windows: &[WindowRow], now_ms: i64, ttl_seconds: u64) -> Value {
    let ttl_ms = i64::try_from(ttl_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let windows: Vec<Value> = windows
        .iter()
        .map(|window| {
            let limits = window.ledger.limits;
            let leases: Vec<Value> = window
                .leases
                .iter()
                .map(|held| {
                    json!({
                        "instance": held.instance,
                        "granted": grant_json(held.lease.granted),
                        "committed": grant_json(held.lease.committed),
                        "first_ms": held.first_ms,
                        "renewed_ms": held.renewed_ms,
                        "live": is_live(held.renewed_ms, now_ms, ttl_ms),
                    })
                })
                .collect();
            json!({
                "key": window.key,
                "budget": window.budget,
                "window_start": window.window_start,
                "window_end": window.window_end,
                "limits": {"tokens": limits.tokens, "nanos": limits.nanos, "requests": limits.requests},
                "granted": grant_json(window.ledger.granted),
                "exhausted": exhausted_names(window.ledger.exhausted()),
                "leases": leases,
            })
        })
        .collect();
    json!({"ttl_seconds": ttl_seconds, "now_ms": now_ms, "windows": windows})
}

/// The names of a set of dimensions (`["tokens", "requests"]`).
pub fn exhausted_names(set: u8) -> Vec<&'static str> {
    [(lease::TOKENS, "tokens"), (lease::NANOS, "cost"), (lease::REQUESTS, "requests")]
        .into_iter()
        .filter(|(dimension, _)| set & dimension != 0)
        .map(|(_, name)| name)
        .collect()
}

/// Most windows the usage page's "Budgets across gateways" table shows.
pub const PAGE_WINDOWS: usize = 50;

/// The usage page's "Budgets across gateways" section (times at `offset` minutes east): per
/// window the budget, the shortened key, the window, limits, the total granted, the gateways
/// live of those holding a lease, and the last renewal. Stable ids for tests: the table
/// `budget-leases`, each row a `tr.budget-window` with `data-budget`, `data-key`,
/// `data-granted-tokens`, `data-instances` and `data-live`; `budget-leases-none` when empty.
pub fn page_section(windows: &[WindowRow], now_ms: i64, ttl_seconds: u64, offset: i32) -> String {
    use super::approvals::page::escape;
    use format::{amounts, format_at, limit_amounts, short_key};
    let mut out = String::from("<h3>Budgets across gateways</h3>");
    if windows.is_empty() {
        out.push_str(
            r#"<p class="note" id="budget-leases-none">No budget is shared across gateways in this window (no gateway leased one).</p>"#,
        );
        return out;
    }
    let ttl_ms = i64::try_from(ttl_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    out.push_str(
        r#"<table id="budget-leases"><thead><tr><th>Budget</th><th>Key</th><th>Window</th><th>Limits</th><th>Granted</th><th class="n">Gateways live</th><th>Last renewal</th></tr></thead><tbody>"#,
    );
    for window in windows {
        let limits = window.ledger.limits;
        let live = window.leases.iter().filter(|held| is_live(held.renewed_ms, now_ms, ttl_ms)).count();
        let last = window.leases.iter().map(|held| held.renewed_ms).max();
        let _ = std::fmt::Write::write_fmt(
            &mut out,
            format_args!(
                r#"<tr class="budget-window" data-budget="{budget}" data-key="{key}" data-granted-tokens="{granted}" data-instances="{instances}" data-live="{live}"><td>{budget}</td><td><code>{short}</code></td><td>{start} → {end}</td><td>{limits}</td><td>{granted_text}</td><td class="n">{live} of {instances}</td><td>{last}</td></tr>"#,
                budget = escape(&window.budget),
                key = escape(&window.key),
                granted = window.ledger.granted.tokens,
                instances = window.leases.len(),
                short = escape(&short_key(&window.key, &window.budget)),
                start = escape(&format_at(window.window_start, offset)),
                end = escape(&format_at(window.window_end, offset)),
                limits = escape(&limit_amounts(limits)),
                granted_text = escape(&amounts(window.ledger.granted, limits)),
                last = last.map_or_else(|| "-".to_string(), |ms| escape(&format_at(ms.div_euclid(1000), offset))),
            ),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// State of the lease routes.
pub struct LeaseState {
    /// The approval service (gateway token, approvers' tokens).
    pub service: Arc<Service>,
    /// The lease tables.
    pub ledger: Arc<LeaseLedger>,
    /// Seconds after its last renewal that a lease shows as expired.
    pub ttl_seconds: u64,
}

/// `POST /v1/budget/leases`.
pub async fn post_leases(
    State(state): State<Arc<LeaseState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_gateway(&state.service, &headers)?;
    let body = axum::body::to_bytes(body, MAX_LEASE_BODY_BYTES).await.map_err(|_| {
        ServiceError::BadRequest(format!("the body is unreadable or larger than {MAX_LEASE_BODY_BYTES} bytes"))
    })?;
    let request: LeaseRequest = serde_json::from_slice(&body)
        .map_err(|e| ServiceError::BadRequest(format!("the lease request is not valid JSON for this protocol: {e}")))?;
    request.validate().map_err(ServiceError::BadRequest)?;
    let ledger = Arc::clone(&state.ledger);
    let asks = request.asks.len();
    let answer = tokio::task::spawn_blocking(move || ledger.renew(&request, unix_now_millis()))
        .await
        .map_err(|_| ServiceError::Internal)?
        .map_err(|e| {
            log_event(&format!("leases: a call of {asks} asks failed: {e}"));
            ServiceError::Internal
        })?;
    let body = serde_json::to_value(&answer).map_err(|_| ServiceError::Internal)?;
    Ok(json_body(&body).into_response())
}

/// Query of `GET /v1/budget/leases`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Most windows to return (default [`DEFAULT_LIST_LIMIT`], at most [`MAX_LIST_LIMIT`]).
    limit: Option<usize>,
}

/// `GET /v1/budget/leases`.
pub async fn list_leases(
    State(state): State<Arc<LeaseState>>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    approver(&state.service, &headers).await?;
    let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT).clamp(1, MAX_LIST_LIMIT);
    let ledger = Arc::clone(&state.ledger);
    let windows =
        tokio::task::spawn_blocking(move || ledger.windows(limit)).await.map_err(|_| ServiceError::Internal)??;
    Ok(json_body(&listing_json(&windows, unix_now_millis(), state.ttl_seconds)).into_response())
}

/// Prunes ended windows every `period`, the first time at once (start-up). Outcomes with
/// something removed, and failures, are logged.
pub async fn maintain(ledger: Arc<LeaseLedger>, period: Duration) {
    let mut interval = tokio::time::interval(period);
    loop {
        interval.tick().await;
        let ledger = Arc::clone(&ledger);
        match tokio::task::spawn_blocking(move || ledger.prune(unix_now_millis())).await {
            Ok(Ok(0)) => {}
            Ok(Ok(windows)) => log_event(&format!("leases: pruned {windows} windows that ended over 7 days ago")),
            Ok(Err(e)) => log_event(&format!("leases: pruning failed: {e}")),
            Err(e) => log_event(&format!("leases: the prune task failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::approvals::service::tests::fixture;
    use axum::http::{header, HeaderValue, StatusCode};
    use crate::core::budget::lease::{LeaseAsk, TOKENS};

    const DAY: (i64, i64) = (1_796_601_600, 1_796_688_000);
    const NOW_MS: i64 = 1_796_644_800_000;
    const GATEWAY_TOKEN: &str = "gateway-token-for-tests";

    /// A migrated database file, removed when dropped.
    struct Db(std::path::PathBuf);

    impl Db {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!("warden-leases-{name}-{}.db", std::process::id()));
            let _ = std::fs::remove_file(&path);
            drop(super::super::store::Store::open(&path).unwrap());
            Self(path)
        }

        fn ledger(&self) -> LeaseLedger {
            LeaseLedger::open(&self.0).unwrap()
        }
    }

    impl Drop for Db {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    fn ask(key: &str, limit: u64, committed: u64) -> LeaseAsk {
        let limits = Windowed { tokens: Some(limit), ..Windowed::default() };
        LeaseAsk {
            key: format!("warden.budget.{key}"),
            budget: "team-daily".into(),
            window_start: DAY.0,
            window_end: DAY.1,
            limits,
            slice: lease::slice(&limits, 10),
            committed: Grant { tokens: committed, ..Grant::default() },
        }
    }

    fn request(instance: &str, asks: Vec<LeaseAsk>) -> LeaseRequest {
        LeaseRequest { instance: instance.into(), asks }
    }

    #[test]
    fn amounts_beyond_sqlites_integers_saturate_instead_of_wrapping() {
        assert_eq!(to_sql(u64::MAX), i64::MAX);
        assert_eq!(to_sql(1 << 63), i64::MAX);
        assert_eq!(to_sql(42), 42);
        assert_eq!((from_sql(-1), from_sql(i64::MAX)), (0, i64::MAX as u64));
        let db = Db::new("saturate");
        let ledger = db.ledger();
        let limits = Windowed { tokens: Some(u64::MAX), ..Windowed::default() };
        let huge = LeaseAsk {
            slice: lease::slice(&limits, lease::MAX_SLICE_PERCENT),
            committed: Grant { tokens: u64::MAX, ..Grant::default() },
            ..ask("huge", u64::MAX, 0)
        };
        let answer = ledger.renew(&request("gw-1", vec![huge]), NOW_MS).unwrap();
        assert_eq!(answer.grants[0].granted.tokens, u64::MAX, "the answer itself is the core's");
        let stored = &ledger.windows(10).unwrap()[0];
        assert_eq!(stored.ledger.limits.tokens, Some(i64::MAX as u64));
        assert_eq!(stored.ledger.granted.tokens, i64::MAX as u64);
        assert_eq!(stored.leases[0].lease.committed.tokens, i64::MAX as u64);
        assert_eq!(stored.ledger.exhausted(), TOKENS, "a saturated total still reads as spent");
    }

    #[test]
    fn a_database_without_the_ledger_tables_is_refused_with_a_clear_message() {
        let path = std::env::temp_dir().join(format!("warden-leases-bare-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        drop(Connection::open(&path).unwrap());
        let error = LeaseLedger::open(&path).err().unwrap().to_string();
        assert!(error.contains("no budget ledger"), "{error}");
        let _ = std::fs::remove_file(&path);
        let missing = LeaseLedger::open_read_only(&path).err().unwrap().to_string();
        assert!(missing.contains("does not exist"), "{missing}");
    }

    #[test]
    fn asks_are_answered_in_order_and_stored_with_the_window_and_the_lease() {
        let db = Db::new("order");
        let ledger = db.ledger();
        let asks = vec![ask("a", 1_000, 60), ask("b", 1_000, 0), ask("a", 1_000, 60)];
        let answer = ledger.renew(&request("gw-1", asks), NOW_MS).unwrap();
        let granted: Vec<u64> = answer.grants.iter().map(|g| g.granted.tokens).collect();
        // a: first slice 100 + one more (60 committed is within half a slice of 100); b: its
        // first slice; a again: 200 granted, 60 committed — nothing more.
        assert_eq!(granted, vec![200, 100, 200]);
        assert!(answer.grants.iter().all(|g| g.window_start == DAY.0 && g.exhausted == 0));
        let windows = ledger.windows(10).unwrap();
        let a = windows.iter().find(|w| w.key == "warden.budget.a").unwrap();
        assert_eq!((a.budget.as_str(), a.window_end, a.ledger.granted.tokens), ("team-daily", DAY.1, 200));
        assert_eq!(a.leases.len(), 1);
        let held = &a.leases[0];
        assert_eq!((held.instance.as_str(), held.first_ms, held.renewed_ms), ("gw-1", NOW_MS, NOW_MS));
        assert_eq!((held.lease.granted.tokens, held.lease.committed.tokens), (200, 60));
        ledger.renew(&request("gw-1", vec![ask("a", 1_000, 170)]), NOW_MS + 5_000).unwrap();
        let a = ledger.windows(10).unwrap().into_iter().find(|w| w.key == "warden.budget.a").unwrap();
        assert_eq!((a.leases[0].first_ms, a.leases[0].renewed_ms), (NOW_MS, NOW_MS + 5_000));
    }

    #[test]
    fn the_ledger_survives_a_restart_and_the_next_renewal_continues_from_it() {
        let db = Db::new("restart");
        let first = db.ledger();
        let (w1, l1) = lease::renew(None, None, &ask("k", 1_000, 60));
        first.renew(&request("gw-1", vec![ask("k", 1_000, 60)]), NOW_MS).unwrap();
        let (w2, l2) = lease::renew(Some(w1), None, &ask("k", 1_000, 0));
        first.renew(&request("gw-2", vec![ask("k", 1_000, 0)]), NOW_MS).unwrap();
        let before = first.windows(10).unwrap();
        drop(first);

        let reopened = db.ledger();
        assert_eq!(reopened.windows(10).unwrap(), before);
        assert_eq!(before[0].ledger, w2);
        let answer = reopened.renew(&request("gw-1", vec![ask("k", 1_000, 190)]), NOW_MS + 1).unwrap();
        let (w3, l3) = lease::renew(Some(w2), Some(l1), &ask("k", 1_000, 190));
        assert_eq!(answer.grants[0].granted, l3.granted);
        assert_eq!((l1.granted.tokens, l2.granted.tokens, l3.granted.tokens), (200, 100, 300));
        assert_eq!(reopened.windows(10).unwrap()[0].ledger, w3, "continued from the stored totals");
    }

    #[test]
    fn windows_that_ended_over_a_week_ago_are_pruned_with_their_leases() {
        let db = Db::new("prune");
        let ledger = db.ledger();
        let old = LeaseAsk { window_start: DAY.0 - 86_400 * 9, window_end: DAY.0 - 86_400 * 8, ..ask("old", 100, 0) };
        let recent =
            LeaseAsk { window_start: DAY.0 - 86_400 * 6, window_end: DAY.0 - 86_400 * 5, ..ask("new", 100, 0) };
        ledger.renew(&request("gw-1", vec![old, recent, ask("today", 100, 0)]), NOW_MS).unwrap();
        assert_eq!(ledger.prune(NOW_MS).unwrap(), 1);
        let keys: Vec<String> = ledger.windows(10).unwrap().into_iter().map(|w| w.key).collect();
        assert_eq!(keys, vec!["warden.budget.today", "warden.budget.new"], "newest end first");
        let leases: i64 =
            ledger.lock().unwrap().query_row("SELECT count(*) FROM budget_leases", [], |row| row.get(0)).unwrap();
        assert_eq!(leases, 2, "the pruned window's lease went with it");
        assert_eq!(ledger.prune(NOW_MS).unwrap(), 0);
    }

    #[test]
    fn the_listing_shows_each_lease_live_or_expired_by_its_last_renewal() {
        let db = Db::new("listing");
        let ledger = db.ledger();
        ledger.renew(&request("gw-old", vec![ask("k", 1_000, 0)]), NOW_MS - 31_000).unwrap();
        ledger.renew(&request("gw-new", vec![ask("k", 1_000, 0)]), NOW_MS - 30_000).unwrap();
        let listing = listing_json(&ledger.windows(10).unwrap(), NOW_MS, 30);
        let window = &listing["windows"][0];
        assert_eq!(window["limits"], json!({"tokens": 1_000, "nanos": null, "requests": null}));
        assert_eq!(window["granted"]["tokens"], 200);
        let live: Vec<(&str, bool)> = window["leases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["instance"].as_str().unwrap(), l["live"].as_bool().unwrap()))
            .collect();
        assert_eq!(live, vec![("gw-old", false), ("gw-new", true)]);
        assert_eq!(exhausted_names(lease::TOKENS | lease::REQUESTS), vec!["tokens", "requests"]);
    }

    #[test]
    fn the_usage_pages_table_shows_windows_overlapping_its_dates_with_hostile_names_as_text() {
        let db = Db::new("page");
        let ledger = db.ledger();
        let evil = LeaseAsk { budget: "<script>alert(1)</script>".into(), ..ask("evil", 1_000, 0) };
        let yesterday = LeaseAsk { window_start: DAY.0 - 86_400, window_end: DAY.0, ..ask("old", 1_000, 0) };
        ledger.renew(&request("gw-1", vec![ask("k", 1_000, 60), evil, yesterday]), NOW_MS - 60_000).unwrap();
        ledger.renew(&request("gw-2", vec![ask("k", 1_000, 0)]), NOW_MS).unwrap();
        let today = windows_on(&ledger.lock().unwrap(), Some(DAY), 10).unwrap();
        let mut keys: Vec<&str> = today.iter().map(|w| w.key.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(keys, vec!["warden.budget.evil", "warden.budget.k"], "yesterday's window ends where today starts");
        let html = page_section(&today, NOW_MS, 30, 60);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(
            html.contains(r#"data-key="warden.budget.k" data-granted-tokens="300" data-instances="2" data-live="1""#),
            "{html}"
        );
        assert!(html.contains("2026-12-07 01:00:00+01:00 → 2026-12-08 01:00:00+01:00"), "{html}");
        assert!(page_section(&[], NOW_MS, 30, 0).contains("budget-leases-none"));
    }

    /// Many instances renewing at once, each on its own connection (as two `warden serve`
    /// processes, or the service and a second writer, would be): the immediate transactions
    /// serialise them, so no grant is lost or given twice.
    #[test]
    fn instances_renewing_at_once_never_share_the_same_room() {
        const INSTANCES: usize = 8;
        const CALLS: usize = 12;
        const LIMIT: u64 = 2_000;
        let db = Db::new("concurrent");
        let slice = lease::slice(&ask("k", LIMIT, 0).limits, 10).tokens;
        let last_answers: Vec<u64> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..INSTANCES)
                .map(|i| {
                    let ledger = db.ledger();
                    scope.spawn(move || {
                        let instance = format!("gw-{i}");
                        let mut granted = 0;
                        for call in 0..CALLS {
                            // Always running low: it has committed all it was granted.
                            let asking = request(&instance, vec![ask("k", LIMIT, granted)]);
                            let answer = ledger.renew(&asking, NOW_MS + call as i64).unwrap();
                            assert!(answer.grants[0].granted.tokens >= granted, "grants only grow");
                            granted = answer.grants[0].granted.tokens;
                        }
                        granted
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let window = &db.ledger().windows(10).unwrap()[0];
        assert_consistent_within_the_bound(window, INSTANCES, LIMIT, slice);
        let mut stored: Vec<u64> = window.leases.iter().map(|l| l.lease.granted.tokens).collect();
        let mut answered = last_answers;
        stored.sort_unstable();
        answered.sort_unstable();
        assert_eq!(stored, answered, "each instance was told what the ledger holds for it");
    }

    /// The window's total is the sum of its `instances` leases (no update lost), at least
    /// `limit` (instances that keep asking use the whole budget) and at most `limit + late ×
    /// slice`: past the limit only the first slices of instances heard of after the total passed
    /// `limit − slice`, each of which holds its first slice and nothing more (every instance
    /// holding exactly one slice is counted as late, which can only loosen the bound).
    fn assert_consistent_within_the_bound(window: &WindowRow, instances: usize, limit: u64, slice: u64) {
        let total = window.ledger.granted.tokens;
        let leased: u64 = window.leases.iter().map(|l| l.lease.granted.tokens).sum();
        assert_eq!(window.leases.len(), instances);
        assert_eq!(total, leased, "the window's total is the sum of its leases: no update lost");
        let late = window.leases.iter().filter(|l| l.lease.granted.tokens == slice).count() as u64;
        assert!(total <= limit + late * slice, "{total} granted, limit {limit}, {late} late × {slice}");
        assert!(total >= limit, "instances that keep asking use the whole budget: {total}");
    }

    /// Gateways calling through the service's real router over HTTP at once: every call is
    /// answered, and the ledger's figures add up and stay within the bound.
    #[test]
    fn gateways_calling_the_served_router_at_once_share_one_consistent_ledger() {
        const GATEWAYS: usize = 6;
        const CALLS: usize = 10;
        const LIMIT: u64 = 1_000;
        let db = Db::new("router");
        let (state, fixture) = state("leases-router", &db);
        let signer = crate::service::approvals::signer::VerdictSigner::generate().unwrap();
        let audit = Arc::new(crate::service::audit::ingest::Ledger::open(&db.0, signer, 1000).unwrap());
        let pages = Arc::new(crate::service::console::sessions::SessionPages::open(Arc::clone(&fixture.service), &db.0).unwrap());
        let app = super::super::router(super::super::Served {
            service: Some(Arc::clone(&fixture.service)),
            approvals: true,
            audit: Some((audit, pages)),
            leases: Some(Arc::clone(&state)),
            tokens: None,
            revocations: None,
        });
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}/v1/budget/leases", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, app).await });
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let call = |token: &str, body: String| {
            let mut response = agent
                .post(&url)
                .header("authorization", &format!("Bearer {token}"))
                .header("content-type", "application/json")
                .send(body.as_str())
                .unwrap();
            let text = response.body_mut().read_to_string().unwrap();
            (response.status().as_u16(), serde_json::from_str::<Value>(&text).unwrap())
        };
        let slice = lease::slice(&ask("k", LIMIT, 0).limits, 10).tokens;
        std::thread::scope(|scope| {
            for i in 0..GATEWAYS {
                let call = &call;
                scope.spawn(move || {
                    let mut granted = 0;
                    for _ in 0..CALLS {
                        let body = serde_json::to_string(&request(&format!("gw-{i}"), vec![ask("k", LIMIT, granted)]));
                        let (status, answer) = call(GATEWAY_TOKEN, body.unwrap());
                        assert_eq!(status, 200, "{answer}");
                        granted = answer["grants"][0]["granted"]["tokens"].as_u64().unwrap();
                    }
                });
            }
        });
        let (status, _) = call("wrong-token-of-sixteen-chars", "{}".to_string());
        assert_eq!(status, 401);
        let listing = agent.get(&url).header("authorization", &format!("Bearer {GATEWAY_TOKEN}")).call().unwrap();
        assert_eq!(listing.status().as_u16(), 401, "the listing is for approvers, not gateways");
        assert_consistent_within_the_bound(&state.ledger.windows(10).unwrap()[0], GATEWAYS, LIMIT, slice);
        runtime.shutdown_background();
    }

    fn headers(token: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        }
        headers
    }

    fn state(name: &str, db: &Db) -> (Arc<LeaseState>, crate::service::approvals::service::tests::Fixture) {
        let fixture = fixture(name, false);
        let state =
            LeaseState { service: Arc::clone(&fixture.service), ledger: Arc::new(db.ledger()), ttl_seconds: 30 };
        (Arc::new(state), fixture)
    }

    async fn post(state: &Arc<LeaseState>, token: Option<&str>, body: impl Into<Body>) -> (StatusCode, Value) {
        let response = match post_leases(State(Arc::clone(state)), headers(token), body.into()).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn the_endpoint_grants_valid_asks_and_refuses_the_rest_by_name() {
        let db = Db::new("endpoint");
        let (state, _fixture) = state("leases-endpoint", &db);
        let valid = serde_json::to_string(&request("gw-1", vec![ask("k", 1_000, 60)])).unwrap();
        let (status, body) = post(&state, Some(GATEWAY_TOKEN), valid.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["grants"][0]["granted"]["tokens"], 200);
        assert_eq!(body["grants"][0]["window_start"], DAY.0);

        let greedy = LeaseAsk { slice: Grant { tokens: 501, ..Grant::default() }, ..ask("k", 1_000, 0) };
        let cases = [
            (serde_json::to_string(&request("gw 1", vec![ask("k", 1_000, 0)])).unwrap(), "instance"),
            (
                serde_json::to_string(&request("gw-1", vec![greedy.clone(), ask("k", 1_000, 0)])).unwrap(),
                "asks[0].slice",
            ),
            (valid.replacen('{', r#"{"extra":1,"#, 1), "unknown field"),
            (valid.replace(r#""window_start":1796601600"#, r#""window_start":-1.5"#), "invalid type"),
            (
                valid.replace(r#""committed":{"tokens":60"#, r#""committed":{"tokens":18446744073709551616"#),
                "expected u64",
            ),
            ("not json".to_string(), "not valid JSON"),
        ];
        for (body, named) in cases {
            let (status, answer) = post(&state, Some(GATEWAY_TOKEN), body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{named}: {answer}");
            assert_eq!(answer["error"]["type"], "invalid_request_error");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(named), "{message} should name {named}");
        }
        let oversize =
            format!("{{\"instance\":\"gw-1\",\"asks\":[],\"pad\":\"{}\"}}", "x".repeat(MAX_LEASE_BODY_BYTES));
        let (status, answer) = post(&state, Some(GATEWAY_TOKEN), oversize).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(answer["error"]["message"].as_str().unwrap().contains("larger than"), "{answer}");

        for token in [None, Some("gateway-token-for-tests-but-wrong")] {
            let (status, answer) = post(&state, token, valid.clone()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(answer["error"]["type"], "authentication_error");
        }
        let window = &state.ledger.windows(10).unwrap()[0];
        assert_eq!(window.ledger.granted.tokens, 200, "refused calls changed nothing");
    }

    #[tokio::test]
    async fn operators_list_the_ledger_with_an_approvers_token_only() {
        let db = Db::new("list");
        let (state, fixture) = state("leases-list", &db);
        state.ledger.renew(&request("gw-1", vec![ask("k", 1_000, 0)]), NOW_MS).unwrap();
        let list = |token: Option<String>| {
            let state = Arc::clone(&state);
            async move {
                let query = Query(ListQuery { limit: None });
                match list_leases(State(state), headers(token.as_deref()), query).await {
                    Ok(response) => response,
                    Err(error) => error.into_response(),
                }
            }
        };
        assert_eq!(list(Some(GATEWAY_TOKEN.to_string())).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(list(None).await.status(), StatusCode::UNAUTHORIZED);
        let token = fixture.issuer.token("bob", &["leads"], "warden-demo", "warden-approvals", 600);
        let response = list(Some(token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let listing: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(listing["ttl_seconds"], 30);
        assert_eq!(listing["windows"][0]["key"], "warden.budget.k");
        assert_eq!(listing["windows"][0]["leases"][0]["instance"], "gw-1");
    }
}
