//! The approval service's state in one SQLite file: reviews, approvers' votes, grants and the
//! verdicts issued as evidence.
//!
//! State machine of a review (all transitions happen inside one SQLite transaction):
//!
//! ```text
//!             approve (one approver, or the 2nd distinct one when two_person)
//!  pending ──────────────────────────────────────────────────────────────► approved ─► grant
//!     │  deny (any approver, any time)                                               (uses, ttl)
//!     ├──────────────────────────────────────────────────────────────────► denied
//!     │  nobody decided before expires_at
//!     └──────────────────────────────────────────────────────────────────► expired
//! ```
//!
//! Identities are issuer + subject everywhere: a review and its grant belong to the requester's
//! (issuer, subject), a vote to the approver's, so the same `sub` from another issuer is another
//! person — for grants, for "not one's own request" and for the two-person rule.
//!
//! A hold ([`Store::hold_step`]) looks, for its (fingerprint, issuer, subject), first for an unexpired
//! grant with uses left (and consumes one), then a pending unexpired review (to wait on), then a
//! denied review that has not expired (the answer stays "denied" until then), and otherwise
//! creates a review. Looking and creating share one transaction, so two identical holds arriving
//! together attach to one review.
//!
//! An approval may also create a session grant in the same transaction (table `session_grants`,
//! [`super::approvals::grants`]): refused for two-person reviews, reviews without reasons and requests that
//! name no agent session.
//!
//! Expiry is lazy (every hold and decision first expires what is due, see [`Store::expire_due`])
//! and the service also sweeps periodically so the expiry is logged promptly.
//!
//! Schema versions are tracked with `PRAGMA user_version`; [`MIGRATIONS`] are applied in order
//! in one transaction at open. The database runs in WAL mode with `synchronous=FULL` (decisions
//! are evidence; their volume is tiny). One connection behind a mutex serves the process: every
//! statement is short, so waiting holds never keep it.
//!
//! Limits: times are whole seconds; a review's context (the excerpt and request facts) is kept as
//! JSON text as received (bounded by the hold endpoint's validation).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

/// Schema migrations; index + 1 is the `user_version` after applying the entry.
const MIGRATIONS: &[&str] = &[
    // 1: reviews, votes, grants, issued verdicts.
    "CREATE TABLE reviews (
        id          TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        subject     TEXT NOT NULL,
        role        TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
        two_person  INTEGER NOT NULL,
        grant_uses  INTEGER NOT NULL,
        context     TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        decided_at  INTEGER
    );
    CREATE INDEX reviews_by_request ON reviews (fingerprint, subject, status);
    CREATE INDEX reviews_by_status ON reviews (status, created_at);
    CREATE TABLE votes (
        review_id  TEXT NOT NULL REFERENCES reviews (id),
        reviewer   TEXT NOT NULL,
        approve    INTEGER NOT NULL,
        comment    TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (review_id, reviewer)
    );
    CREATE TABLE grants (
        review_id   TEXT PRIMARY KEY REFERENCES reviews (id),
        fingerprint TEXT NOT NULL,
        subject     TEXT NOT NULL,
        uses_left   INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    );
    CREATE INDEX grants_by_request ON grants (fingerprint, subject);
    CREATE TABLE verdicts (
        id        INTEGER PRIMARY KEY,
        review_id TEXT NOT NULL REFERENCES reviews (id),
        decision  TEXT NOT NULL,
        token     TEXT NOT NULL,
        issued_at INTEGER NOT NULL
    );
    CREATE INDEX verdicts_by_review ON verdicts (review_id);",
    // 2: the audit trail (docs/audit.md, "Storage").
    super::schema::AUDIT_RECORDS,
    // 3: identities are issuer + subject: the requester's issuer on reviews and grants, the
    // approver's on votes (a vote's key becomes review, issuer, subject).
    "ALTER TABLE reviews ADD COLUMN issuer TEXT NOT NULL DEFAULT '';
    UPDATE reviews SET issuer = coalesce(json_extract(context, '$.issuer'), '');
    DROP INDEX reviews_by_request;
    CREATE INDEX reviews_by_request ON reviews (fingerprint, issuer, subject, status);
    ALTER TABLE grants ADD COLUMN issuer TEXT NOT NULL DEFAULT '';
    UPDATE grants SET issuer = coalesce((SELECT issuer FROM reviews WHERE reviews.id = grants.review_id), '');
    DROP INDEX grants_by_request;
    CREATE INDEX grants_by_request ON grants (fingerprint, issuer, subject);
    CREATE TABLE votes_by_identity (
        review_id       TEXT NOT NULL REFERENCES reviews (id),
        reviewer_issuer TEXT NOT NULL,
        reviewer        TEXT NOT NULL,
        approve         INTEGER NOT NULL,
        comment         TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        PRIMARY KEY (review_id, reviewer_issuer, reviewer)
    );
    INSERT INTO votes_by_identity (review_id, reviewer_issuer, reviewer, approve, comment, created_at)
        SELECT review_id, '', reviewer, approve, comment, created_at FROM votes ORDER BY created_at, rowid;
    DROP TABLE votes;
    ALTER TABLE votes_by_identity RENAME TO votes;",
    // 4: the console's session pages read a session in request order, and the listing the last
    // activity per session, from one index (docs/audit.md, "Pages").
    super::schema::AUDIT_SESSION_TIME_INDEX,
    // 5: audit retention: signed prune statements (docs/audit.md, "Retention").
    super::schema::AUDIT_PRUNES,
    // 6: usage per record, filled by triggers at ingest (`warden usage`, the usage page).
    super::usage::aggregate::SCHEMA,
    // 7: the budget ledger: windows and the gateway instances' leases (docs/budgets.md).
    super::schema::BUDGET_LEASES,
    // 8: SAML sign-in: AuthnRequests issued and assertion ids accepted (docs/identity.md, "SAML").
    super::schema::SAML_REQUESTS,
    // 9: the kill switch: revocations and the list version (docs/identity.md).
    super::schema::REVOCATIONS,
    // 10: people's sign-ins at the token service and their rotating refresh tokens
    // (docs/identity.md, "Signing in").
    super::schema::TOKEN_SIGN_INS,
    // 11: session grants: approvals that cover later holds of one agent session (docs/approvals.md,
    // "Session grants").
    SESSION_GRANTS_SCHEMA,
];

/// The session grants' table (migration 11; read by [`super::approvals::grants`]).
pub const SESSION_GRANTS_SCHEMA: &str = "CREATE TABLE session_grants (
        id            TEXT PRIMARY KEY,
        review_id     TEXT NOT NULL REFERENCES reviews (id),
        session_id    TEXT NOT NULL,
        issuer        TEXT NOT NULL,
        subject       TEXT NOT NULL,
        role          TEXT NOT NULL,
        reasons       TEXT NOT NULL,
        granted_by    TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER NOT NULL,
        ended_by      TEXT,
        ended_at      INTEGER,
        holds_covered INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX session_grants_by_scope ON session_grants (session_id, issuer, subject);
    CREATE INDEX session_grants_by_review ON session_grants (review_id);";

/// A storage failure (SQLite error or unreadable stored data).
#[derive(Debug)]
pub struct StoreError(String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "database error: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    /// An error outside SQLite (for example while building a row to insert).
    pub fn other(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
    }
}

/// Where a review is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for approvers.
    Pending,
    /// Approved; a grant was created.
    Approved,
    /// Denied by an approver.
    Denied,
    /// Nobody decided in time.
    Expired,
}

impl Status {
    /// The stored (and API) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "pending" => Ok(Self::Pending),
            "approved" => Ok(Self::Approved),
            "denied" => Ok(Self::Denied),
            "expired" => Ok(Self::Expired),
            other => Err(StoreError(format!("unknown review status {other:?}"))),
        }
    }
}

/// What the approver sees about the held request (stored as JSON with the review).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewContext {
    /// The gateway's request id of the first attempt.
    pub request_id: String,
    /// The requester's token issuer.
    pub issuer: String,
    /// The requester's groups.
    pub groups: Vec<String>,
    /// The requester's job claims (CI runs).
    pub job: BTreeMap<String, String>,
    /// Reason codes of the triggers that fired.
    pub reasons: Vec<String>,
    /// The model asked for.
    pub model: String,
    /// Declared tools.
    pub tools: Vec<String>,
    /// `max_tokens`, when present.
    pub max_tokens: Option<u64>,
    /// Request body size in bytes.
    pub body_bytes: u64,
    /// Whether the request lists MCP servers.
    pub mcp_servers: bool,
    /// The MCP servers' URLs, masked by the gateway.
    #[serde(default)]
    pub mcp_server_urls: Vec<String>,
    /// How many messages the conversation has (the approval covers all of them).
    #[serde(default)]
    pub messages: u64,
    /// The newest user turn, masked by the gateway.
    pub excerpt: String,
    /// The system prompt, masked by the gateway.
    #[serde(default)]
    pub system_excerpt: String,
    /// The assistant prefill, masked by the gateway (empty without one).
    #[serde(default)]
    pub prefill_excerpt: String,
    /// The agent session the request belongs to; a session grant needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The agent that sent the request (Claude Code's subagent headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentContext>,
    /// The proposed tool call held in the answer, for a tool-call hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call: Option<ToolCallContext>,
}

/// The agent that sent a held request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentContext {
    /// `x-claude-code-agent-id`.
    #[serde(default)]
    pub id: Option<String>,
    /// `x-claude-code-parent-agent-id`.
    #[serde(default)]
    pub parent: Option<String>,
}

/// A proposed tool call as the approver sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallContext {
    /// The block's id (`toolu_…`).
    pub id: String,
    /// `tool_use`, `server_tool_use` or `mcp_tool_use`.
    pub kind: String,
    /// The tool's name.
    pub name: String,
    /// The MCP server of an `mcp_tool_use` block.
    #[serde(default)]
    pub server_name: Option<String>,
    /// The full input as JSON text, masked by the gateway.
    pub input: String,
    /// The rule that asked for approval (its id).
    pub rule: String,
    /// The rule's reason, in words.
    pub reason: String,
}

/// A review to create.
#[derive(Debug, Clone)]
pub struct NewReview {
    /// `rev_…` id.
    pub id: String,
    /// Request fingerprint.
    pub fingerprint: String,
    /// The requester's subject.
    pub subject: String,
    /// The requester's role.
    pub role: String,
    /// Whether two approvers must approve.
    pub two_person: bool,
    /// Requests the grant lets through once approved.
    pub grant_uses: u32,
    /// Request facts for the approver.
    pub context: ReviewContext,
    /// Creation time.
    pub created_at: i64,
    /// When the review expires if nobody decides (for a denial: until when it stands).
    pub expires_at: i64,
}

/// One approver's decision on a review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vote {
    /// The approver's subject.
    pub reviewer: String,
    /// The approver's token issuer (with the subject, the approver's identity).
    pub reviewer_issuer: String,
    /// `true` approve, `false` deny.
    pub approve: bool,
    /// The approver's comment (the reason, for a denial).
    pub comment: String,
    /// When.
    pub at: i64,
}

/// A review as stored, with its votes in the order cast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// `rev_…` id.
    pub id: String,
    /// Request fingerprint.
    pub fingerprint: String,
    /// The requester's subject.
    pub subject: String,
    /// The requester's role.
    pub role: String,
    /// Where the review is.
    pub status: Status,
    /// Whether two approvers must approve.
    pub two_person: bool,
    /// Requests the grant lets through.
    pub grant_uses: u32,
    /// Request facts.
    pub context: ReviewContext,
    /// Creation time.
    pub created_at: i64,
    /// Expiry time.
    pub expires_at: i64,
    /// Decision time (approved or denied).
    pub decided_at: Option<i64>,
    /// Votes in the order cast.
    pub votes: Vec<Vote>,
}

impl Review {
    /// Approvals needed for the review to be approved.
    pub fn approvals_needed(&self) -> usize {
        if self.two_person {
            2
        } else {
            1
        }
    }

    /// The subjects that approved, in order.
    pub fn approvers(&self) -> impl Iterator<Item = &Vote> {
        self.votes.iter().filter(|v| v.approve)
    }

    /// The vote that denied, if any.
    pub fn denial(&self) -> Option<&Vote> {
        self.votes.iter().find(|v| !v.approve)
    }
}

/// What a hold should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldStep {
    /// A grant had uses left; one was consumed. The review that approved it.
    Granted(Review),
    /// The request was denied and the denial stands.
    Denied(Review),
    /// A review for this request is pending: wait on it.
    Waiting(Review),
    /// No review existed: this one was created; wait on it.
    Created(Review),
    /// No review existed, and the requester already opened the most reviews the rate allows.
    RateLimited,
}

/// How many reviews one requester may open per sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewRate {
    /// Reviews per window.
    pub reviews: u32,
    /// The window, in seconds.
    pub per_seconds: i64,
}

/// Which reviews to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Pending reviews only.
    Pending,
    /// Everything no longer pending: approved, denied, expired.
    Decided,
    /// All reviews.
    All,
}

/// An approver's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Let the request through.
    Approve,
    /// Refuse it.
    Deny,
}

/// One approver's decision to record.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// Review id.
    pub review_id: &'a str,
    /// The approver's token issuer.
    pub reviewer_issuer: &'a str,
    /// The approver's subject (already checked against the role's approver groups).
    pub reviewer: &'a str,
    /// Approve or deny.
    pub choice: Choice,
    /// The comment (required by the caller for a denial).
    pub comment: &'a str,
    /// Decision time.
    pub now: i64,
    /// Lifetime of the grant an approval creates, from `now`.
    pub grant_ttl_seconds: i64,
    /// "Approve for this session": the session grant to create with the approval.
    pub session: Option<SessionAsk>,
}

/// What an approver asks for with "approve for this session".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionAsk {
    /// The new grant's id (`grt_…`).
    pub grant_id: String,
    /// How long it lasts from the decision, in seconds (already bounded by the policy).
    pub seconds: i64,
}

/// The result of a recorded decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// The review is approved and its grant created.
    Approved(Review),
    /// The review is denied.
    Denied(Review),
    /// The approval was recorded; a second approver is still needed.
    AwaitingSecondApprover(Review),
}

/// Why a decision was refused.
#[derive(Debug)]
pub enum DecideError {
    /// No review with that id.
    NotFound,
    /// The approver is the requester.
    OwnRequest,
    /// The review is no longer pending.
    NotPending(Status),
    /// This approver already approved (two-person rule: the second must be someone else).
    AlreadyApproved,
    /// A session grant was asked for a request that names no agent session.
    NoSession,
    /// A session grant was asked for a two-person review (refused: see docs/approvals.md).
    SessionTwoPerson,
    /// A session grant was asked for a review without reasons (it would have no scope).
    SessionWithoutReasons,
    /// Storage failed.
    Store(StoreError),
}

impl From<StoreError> for DecideError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<rusqlite::Error> for DecideError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

impl fmt::Display for DecideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such review"),
            Self::OwnRequest => f.write_str("you cannot approve your own request; another approver must decide"),
            Self::NotPending(Status::Expired) => {
                f.write_str("the review has expired; the requester must send the request again")
            }
            Self::NotPending(status) => write!(f, "the review was already decided ({})", status.as_str()),
            Self::AlreadyApproved => {
                f.write_str("you already approved this review; the two-person rule needs a different second approver")
            }
            Self::NoSession => f.write_str(
                "this request names no agent session (x-claude-code-session-id or metadata.user_id), so it cannot \
                 be approved for a session; approve it alone",
            ),
            Self::SessionTwoPerson => f.write_str(
                "this role needs two approvers, and session grants are refused for two-person roles; approve \
                 this request alone",
            ),
            Self::SessionWithoutReasons => {
                f.write_str("this review has no trigger reasons to scope a session grant; approve it alone")
            }
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

/// The SQLite-backed store.
pub struct Store {
    connection: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        Self::setup(connection)
    }

    /// An in-memory database (tests).
    #[cfg(test)]
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut connection: Connection) -> Result<Self, StoreError> {
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        // `journal_mode` answers with the resulting mode (`memory` for in-memory databases).
        let _mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        connection.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
        migrate(&mut connection)?;
        Ok(Self { connection: Mutex::new(connection) })
    }

    pub(super) fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.connection.lock().map_err(|_| StoreError("the connection lock is poisoned".to_string()))
    }

    /// Marks pending reviews whose time ran out as expired; returns them.
    pub fn expire_due(&self, now: i64) -> Result<Vec<Review>, StoreError> {
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let expired = expire_due(&tx, now)?;
        tx.commit()?;
        Ok(expired)
    }

    /// Decides what a hold for (`fingerprint`, the requester `(issuer, subject)`) does now;
    /// creates the review from `new_review` when there is nothing to attach to. See the module
    /// comment for the order.
    /// `rate` bounds the reviews one requester opens (counted from the reviews table, so it holds
    /// across restarts).
    pub fn hold_step(
        &self,
        fingerprint: &str,
        (issuer, subject): (&str, &str),
        now: i64,
        rate: ReviewRate,
        new_review: impl FnOnce() -> Result<NewReview, StoreError>,
    ) -> Result<HoldStep, StoreError> {
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        expire_due(&tx, now)?;
        let granted: Option<String> = tx
            .query_row(
                "UPDATE grants SET uses_left = uses_left - 1
                 WHERE review_id = (SELECT review_id FROM grants
                                    WHERE fingerprint = ?1 AND subject = ?2 AND issuer = ?4
                                      AND uses_left > 0 AND expires_at > ?3
                                    ORDER BY expires_at LIMIT 1)
                 RETURNING review_id",
                params![fingerprint, subject, now, issuer],
                |row| row.get(0),
            )
            .optional()?;
        let step = if let Some(review_id) = granted {
            HoldStep::Granted(load_review(&tx, &review_id)?.ok_or_else(|| missing(&review_id))?)
        } else if let Some(review) = find_review(&tx, fingerprint, (issuer, subject), Status::Pending, now)? {
            HoldStep::Waiting(review)
        } else if let Some(review) = find_review(&tx, fingerprint, (issuer, subject), Status::Denied, now)? {
            HoldStep::Denied(review)
        } else {
            let opened: i64 = tx.query_row(
                "SELECT count(*) FROM reviews WHERE issuer = ?1 AND subject = ?2 AND created_at > ?3",
                params![issuer, subject, now.saturating_sub(rate.per_seconds)],
                |row| row.get(0),
            )?;
            if opened >= i64::from(rate.reviews) {
                HoldStep::RateLimited
            } else {
                let review = new_review()?;
                insert_review(&tx, &review)?;
                HoldStep::Created(load_review(&tx, &review.id)?.ok_or_else(|| missing(&review.id))?)
            }
        };
        tx.commit()?;
        Ok(step)
    }

    /// Records an approver's decision and moves the review on (see the module comment).
    /// Approver-group membership is the caller's check; this one refuses deciding on one's own
    /// request (approving it, that is: a requester may withdraw by denying), a second approval by
    /// the same approver, and anything but a pending, unexpired review.
    pub fn decide(&self, decision: &Decision<'_>) -> Result<Decided, DecideError> {
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Expire first (and commit that even when the decision is refused).
        expire_due(&tx, decision.now)?;
        let result = decide_in(&tx, decision);
        tx.commit()?;
        result
    }

    /// One review by id.
    pub fn review(&self, id: &str) -> Result<Option<Review>, StoreError> {
        let connection = self.lock()?;
        load_review(&connection, id)
    }

    /// Reviews, newest first, at most `limit`.
    pub fn list(&self, listing: Listing, limit: u32) -> Result<Vec<Review>, StoreError> {
        let connection = self.lock()?;
        let filter = match listing {
            Listing::Pending => "WHERE status = 'pending'",
            Listing::Decided => "WHERE status <> 'pending'",
            Listing::All => "",
        };
        let order = match listing {
            Listing::Decided => "ORDER BY COALESCE(decided_at, expires_at) DESC, id",
            _ => "ORDER BY created_at DESC, id",
        };
        let ids: Vec<String> = {
            let mut statement = connection.prepare(&format!("SELECT id FROM reviews {filter} {order} LIMIT ?1"))?;
            let rows = statement.query_map([limit], |row| row.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        ids.iter().filter_map(|id| load_review(&connection, id).transpose()).collect()
    }

    /// Keeps an issued verdict (a signed approved or denied answer) as evidence.
    pub fn record_verdict(&self, review_id: &str, decision: &str, token: &str, now: i64) -> Result<(), StoreError> {
        let connection = self.lock()?;
        connection.execute(
            "INSERT INTO verdicts (review_id, decision, token, issued_at) VALUES (?1, ?2, ?3, ?4)",
            params![review_id, decision, token, now],
        )?;
        Ok(())
    }

    /// The verdicts issued for a review, oldest first, as (decision, token, issued_at).
    pub fn verdicts(&self, review_id: &str) -> Result<Vec<(String, String, i64)>, StoreError> {
        let connection = self.lock()?;
        let mut statement =
            connection.prepare("SELECT decision, token, issued_at FROM verdicts WHERE review_id = ?1 ORDER BY id")?;
        let rows = statement.query_map([review_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Uses left on the grant of a review (`None`: no grant).
    pub fn grant_uses_left(&self, review_id: &str) -> Result<Option<u32>, StoreError> {
        let connection = self.lock()?;
        Ok(connection
            .query_row("SELECT uses_left FROM grants WHERE review_id = ?1", [review_id], |row| row.get(0))
            .optional()?)
    }
}

fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let version = usize::try_from(version).map_err(|_| StoreError(format!("invalid schema version {version}")))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError(format!(
            "the database schema is version {version}, newer than this warden ({}); use a newer warden",
            MIGRATIONS.len()
        )));
    }
    let tx = connection.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(migration)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
    }
    tx.commit()?;
    Ok(())
}

fn missing(id: &str) -> StoreError {
    StoreError(format!("review {id} vanished inside its transaction"))
}

fn expire_due(tx: &Transaction<'_>, now: i64) -> Result<Vec<Review>, StoreError> {
    let ids: Vec<String> = {
        let mut statement = tx.prepare(
            "UPDATE reviews SET status = 'expired' WHERE status = 'pending' AND expires_at <= ?1 RETURNING id",
        )?;
        let rows = statement.query_map([now], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    ids.iter().filter_map(|id| load_review(tx, id).transpose()).collect()
}

fn decide_in(tx: &Transaction<'_>, decision: &Decision<'_>) -> Result<Decided, DecideError> {
    let review = load_review(tx, decision.review_id)?.ok_or(DecideError::NotFound)?;
    if review.status != Status::Pending {
        return Err(DecideError::NotPending(review.status));
    }
    // Identities are issuer + subject: the same `sub` from another issuer is another person.
    let own = decision.reviewer == review.subject && decision.reviewer_issuer == review.context.issuer;
    if decision.choice == Choice::Approve && own {
        return Err(DecideError::OwnRequest);
    }
    if review.votes.iter().any(|v| v.reviewer == decision.reviewer && v.reviewer_issuer == decision.reviewer_issuer) {
        return Err(DecideError::AlreadyApproved);
    }
    if decision.session.is_some() {
        if review.two_person {
            return Err(DecideError::SessionTwoPerson);
        }
        if review.context.session_id.is_none() {
            return Err(DecideError::NoSession);
        }
        if review.context.reasons.is_empty() {
            return Err(DecideError::SessionWithoutReasons);
        }
    }
    let approve = decision.choice == Choice::Approve;
    tx.execute(
        "INSERT INTO votes (review_id, reviewer_issuer, reviewer, approve, comment, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![review.id, decision.reviewer_issuer, decision.reviewer, approve, decision.comment, decision.now],
    )?;
    let approvals = review.approvers().count() + usize::from(approve);
    let outcome = if !approve {
        Some(Status::Denied)
    } else if approvals >= review.approvals_needed() {
        Some(Status::Approved)
    } else {
        None
    };
    if let Some(status) = outcome {
        tx.execute(
            "UPDATE reviews SET status = ?2, decided_at = ?3 WHERE id = ?1",
            params![review.id, status.as_str(), decision.now],
        )?;
    }
    if outcome == Some(Status::Approved) {
        tx.execute(
            "INSERT INTO grants (review_id, fingerprint, issuer, subject, uses_left, expires_at)
             VALUES (?1, ?2, ?6, ?3, ?4, ?5)",
            params![
                review.id,
                review.fingerprint,
                review.subject,
                review.grant_uses,
                decision.now.saturating_add(decision.grant_ttl_seconds),
                review.context.issuer
            ],
        )?;
        if let (Some(ask), Some(session_id)) = (&decision.session, &review.context.session_id) {
            insert_session_grant(tx, &review, session_id, ask, decision)?;
        }
    }
    let review = load_review(tx, &review.id)?.ok_or_else(|| missing(&review.id))?;
    Ok(match outcome {
        Some(Status::Approved) => Decided::Approved(review),
        Some(_) => Decided::Denied(review),
        None => Decided::AwaitingSecondApprover(review),
    })
}

fn find_review(
    tx: &Transaction<'_>,
    fingerprint: &str,
    (issuer, subject): (&str, &str),
    status: Status,
    now: i64,
) -> Result<Option<Review>, StoreError> {
    let id: Option<String> = tx
        .query_row(
            "SELECT id FROM reviews WHERE fingerprint = ?1 AND subject = ?2 AND issuer = ?5 AND status = ?3
               AND expires_at > ?4
             ORDER BY created_at DESC LIMIT 1",
            params![fingerprint, subject, status.as_str(), now, issuer],
            |row| row.get(0),
        )
        .optional()?;
    match id {
        Some(id) => load_review(tx, &id),
        None => Ok(None),
    }
}

fn insert_review(tx: &Transaction<'_>, review: &NewReview) -> Result<(), StoreError> {
    let context = serde_json::to_string(&review.context).map_err(|e| StoreError(e.to_string()))?;
    tx.execute(
        "INSERT INTO reviews (id, fingerprint, subject, role, status, two_person, grant_uses, context, created_at,
                              expires_at, issuer)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            review.id,
            review.fingerprint,
            review.subject,
            review.role,
            review.two_person,
            review.grant_uses,
            context,
            review.created_at,
            review.expires_at,
            review.context.issuer
        ],
    )?;
    Ok(())
}

/// Columns of `reviews` as [`review_from_row`] reads them.
const REVIEW_COLUMNS: &str =
    "id, fingerprint, subject, role, status, two_person, grant_uses, context, created_at, expires_at, decided_at";

fn review_from_row(row: &Row<'_>) -> rusqlite::Result<(Review, String, String)> {
    let review = Review {
        id: row.get(0)?,
        fingerprint: row.get(1)?,
        subject: row.get(2)?,
        role: row.get(3)?,
        status: Status::Pending,
        two_person: row.get(5)?,
        grant_uses: row.get(6)?,
        context: ReviewContext::default(),
        created_at: row.get(8)?,
        expires_at: row.get(9)?,
        decided_at: row.get(10)?,
        votes: Vec::new(),
    };
    Ok((review, row.get(4)?, row.get(7)?))
}

fn load_review(connection: &Connection, id: &str) -> Result<Option<Review>, StoreError> {
    let found = connection
        .query_row(&format!("SELECT {REVIEW_COLUMNS} FROM reviews WHERE id = ?1"), [id], review_from_row)
        .optional()?;
    let Some((mut review, status, context)) = found else { return Ok(None) };
    review.status = Status::parse(&status)?;
    review.context = serde_json::from_str(&context)
        .map_err(|e| StoreError(format!("review {id}: unreadable stored context: {e}")))?;
    let mut statement = connection.prepare(
        "SELECT reviewer, approve, comment, created_at, reviewer_issuer FROM votes WHERE review_id = ?1
         ORDER BY created_at, rowid",
    )?;
    let votes = statement.query_map([id], |row| {
        Ok(Vote {
            reviewer: row.get(0)?,
            approve: row.get(1)?,
            comment: row.get(2)?,
            at: row.get(3)?,
            reviewer_issuer: row.get(4)?,
        })
    })?;
    review.votes = votes.collect::<Result<_, _>>()?;
    Ok(Some(review))
}

/// Creates the grant `ask` asks for, inside the approval's transaction (the decision calls
/// this once the review is approved).
fn insert_session_grant(
    tx: &Transaction<'_>,
    review: &Review,
    session_id: &str,
    ask: &SessionAsk,
    decision: &Decision<'_>,
) -> Result<(), StoreError> {
    let reasons = serde_json::to_string(&review.context.reasons).map_err(|e| StoreError::other(e.to_string()))?;
    tx.execute(
        "INSERT INTO session_grants (id, review_id, session_id, issuer, subject, role, reasons, granted_by,
                                     created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            ask.grant_id,
            review.id,
            session_id,
            review.context.issuer,
            review.subject,
            review.role,
            reasons,
            decision.reviewer,
            decision.now,
            decision.now.saturating_add(ask.seconds)
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_800_000_000;
    const FP: &str = "f00d";
    const RATE: ReviewRate = ReviewRate { reviews: 100, per_seconds: 3600 };

    fn new_review(id: &str, subject: &str, two_person: bool, grant_uses: u32) -> NewReview {
        NewReview {
            id: id.to_string(),
            fingerprint: FP.to_string(),
            subject: subject.to_string(),
            role: "developer".to_string(),
            two_person,
            grant_uses,
            context: ReviewContext {
                reasons: vec!["opus_model".into()],
                issuer: "idp".into(),
                ..ReviewContext::default()
            },
            created_at: T0,
            expires_at: T0 + 3600,
        }
    }

    fn hold(store: &Store, subject: &str, now: i64, review: NewReview) -> HoldStep {
        store.hold_step(FP, ("idp", subject), now, RATE, || Ok(review)).unwrap()
    }

    fn decide(store: &Store, id: &str, reviewer: &str, choice: Choice, now: i64) -> Result<Decided, DecideError> {
        decide_as(store, id, ("idp", reviewer), choice, now)
    }

    fn decide_as(
        store: &Store,
        id: &str,
        (reviewer_issuer, reviewer): (&str, &str),
        choice: Choice,
        now: i64,
    ) -> Result<Decided, DecideError> {
        store.decide(&Decision {
            review_id: id,
            reviewer_issuer,
            reviewer,
            choice,
            comment: "looked at it",
            now,
            grant_ttl_seconds: 900,
            session: None,
        })
    }

    fn created_id(step: HoldStep) -> String {
        match step {
            HoldStep::Created(review) => review.id,
            other => panic!("expected a new review, got {other:?}"),
        }
    }

    #[test]
    fn a_first_hold_creates_a_review_and_a_second_attaches_to_it() {
        let store = Store::open_in_memory().unwrap();
        let id = created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", false, 1)));
        assert_eq!(id, "rev_1");
        match hold(&store, "alice", T0 + 5, new_review("rev_2", "alice", false, 1)) {
            HoldStep::Waiting(review) => assert_eq!(review.id, "rev_1"),
            other => panic!("{other:?}"),
        }
        // Another caller with the same fingerprint gets their own review.
        assert_eq!(created_id(hold(&store, "carol", T0, new_review("rev_3", "carol", false, 1))), "rev_3");
    }

    #[test]
    fn an_approval_grants_exactly_the_configured_number_of_uses() {
        let store = Store::open_in_memory().unwrap();
        created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", false, 2)));
        assert!(matches!(decide(&store, "rev_1", "bob", Choice::Approve, T0 + 10), Ok(Decided::Approved(_))));
        for _ in 0..2 {
            assert!(
                matches!(hold(&store, "alice", T0 + 20, new_review("rev_x", "alice", false, 2)), HoldStep::Granted(r) if r.id == "rev_1")
            );
        }
        assert_eq!(store.grant_uses_left("rev_1").unwrap(), Some(0));
        // Uses exhausted: the next identical request needs a new review.
        assert_eq!(created_id(hold(&store, "alice", T0 + 30, new_review("rev_2", "alice", false, 2))), "rev_2");
    }

    #[test]
    fn a_single_use_grant_lets_one_request_through() {
        let store = Store::open_in_memory().unwrap();
        created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", false, 1)));
        decide(&store, "rev_1", "bob", Choice::Approve, T0 + 10).unwrap();
        assert!(matches!(hold(&store, "alice", T0 + 11, new_review("rev_x", "alice", false, 1)), HoldStep::Granted(_)));
        assert_eq!(created_id(hold(&store, "alice", T0 + 12, new_review("rev_2", "alice", false, 1))), "rev_2");
    }

    #[test]
    fn grants_expire_after_their_ttl_and_belong_to_the_requester_only() {
        let store = Store::open_in_memory().unwrap();
        created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", false, 5)));
        decide(&store, "rev_1", "bob", Choice::Approve, T0 + 10).unwrap();
        // Same fingerprint, other subject: no grant.
        assert_eq!(created_id(hold(&store, "mallory", T0 + 11, new_review("rev_m", "mallory", false, 1))), "rev_m");
        // Grant TTL is 900 s from the decision.
        assert!(matches!(hold(&store, "alice", T0 + 909, new_review("x", "alice", false, 1)), HoldStep::Granted(_)));
        assert_eq!(created_id(hold(&store, "alice", T0 + 910, new_review("rev_2", "alice", false, 1))), "rev_2");
    }

    #[test]
    fn undecided_reviews_expire_and_cannot_be_decided_afterwards() {
        let store = Store::open_in_memory().unwrap();
        created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", false, 1)));
        assert!(store.expire_due(T0 + 3599).unwrap().is_empty());
        let expired = store.expire_due(T0 + 3600).unwrap();
        assert_eq!(expired.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["rev_1"]);
        assert!(matches!(
            decide(&store, "rev_1", "bob", Choice::Approve, T0 + 3601),
            Err(DecideError::NotPending(Status::Expired))
        ));
        // A retry after expiry opens a new review.
        assert_eq!(created_id(hold(&store, "alice", T0 + 3602, new_review("rev_2", "alice", false, 1))), "rev_2");
    }

    #[test]
    fn deciding_lazily_expires_a_review_past_its_time() {
        let store = Store::open_in_memory().unwrap();
        created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", false, 1)));
        assert!(matches!(
            decide(&store, "rev_1", "bob", Choice::Approve, T0 + 4000),
            Err(DecideError::NotPending(Status::Expired))
        ));
        assert_eq!(store.review("rev_1").unwrap().unwrap().status, Status::Expired);
    }

    #[test]
    fn an_approver_cannot_approve_their_own_request_but_may_withdraw_it() {
        let store = Store::open_in_memory().unwrap();
        created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", false, 1)));
        let refused = decide(&store, "rev_1", "alice", Choice::Approve, T0 + 1).unwrap_err();
        assert!(matches!(refused, DecideError::OwnRequest));
        assert!(refused.to_string().contains("your own request"));
        assert!(matches!(decide(&store, "rev_1", "alice", Choice::Deny, T0 + 2), Ok(Decided::Denied(_))));
    }

    #[test]
    fn a_requester_opens_at_most_the_rate_of_reviews_per_window() {
        let store = Store::open_in_memory().unwrap();
        let rate = ReviewRate { reviews: 2, per_seconds: 600 };
        let open = |fp: &str, subject: &str, id: &str, now: i64| {
            let mut review = new_review(id, subject, false, 1);
            review.fingerprint = fp.to_string();
            store.hold_step(fp, ("idp", subject), now, rate, || Ok(review)).unwrap()
        };
        assert!(matches!(open("a", "alice", "rev_1", T0), HoldStep::Created(_)));
        assert!(matches!(open("b", "alice", "rev_2", T0 + 1), HoldStep::Created(_)));
        assert_eq!(open("c", "alice", "rev_3", T0 + 2), HoldStep::RateLimited);
        // Attaching to a pending review is not opening one; other requesters have their own.
        assert!(matches!(open("a", "alice", "rev_4", T0 + 3), HoldStep::Waiting(_)));
        assert!(matches!(open("c", "bob", "rev_5", T0 + 4), HoldStep::Created(_)));
        // The window slides.
        assert!(matches!(open("c", "alice", "rev_6", T0 + 601), HoldStep::Created(_)));
    }

    #[test]
    fn identities_are_issuer_and_subject() {
        let store = Store::open_in_memory().unwrap();
        let id = created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", true, 1)));
        // The same subject from another issuer is another person: not alice's own request...
        assert!(matches!(
            decide_as(&store, &id, ("other-idp", "alice"), Choice::Approve, T0 + 1),
            Ok(Decided::AwaitingSecondApprover(_))
        ));
        // ...and another approver under the two-person rule.
        assert!(matches!(decide_as(&store, &id, ("idp", "bob"), Choice::Approve, T0 + 2), Ok(Decided::Approved(_))));
        // The grant is alice@idp's only: alice from another issuer opens her own review.
        let mut theirs = new_review("rev_2", "alice", false, 1);
        theirs.context.issuer = "other-idp".into();
        let other = store.hold_step(FP, ("other-idp", "alice"), T0 + 3, RATE, || Ok(theirs)).unwrap();
        assert!(matches!(other, HoldStep::Created(_)), "{other:?}");
        assert!(matches!(hold(&store, "alice", T0 + 4, new_review("rev_3", "alice", false, 1)), HoldStep::Granted(_)));
        let votes = store.review(&id).unwrap().unwrap().votes;
        let who: Vec<(&str, &str)> = votes.iter().map(|v| (v.reviewer_issuer.as_str(), v.reviewer.as_str())).collect();
        assert_eq!(who, [("other-idp", "alice"), ("idp", "bob")]);
    }

    #[test]
    fn two_person_reviews_need_two_different_approvers() {
        let store = Store::open_in_memory().unwrap();
        created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", true, 1)));
        match decide(&store, "rev_1", "bob", Choice::Approve, T0 + 1).unwrap() {
            Decided::AwaitingSecondApprover(review) => {
                assert_eq!(review.status, Status::Pending);
                assert_eq!(review.approvers().count(), 1);
            }
            other => panic!("{other:?}"),
        }
        // Still pending for the holder; no grant yet.
        assert!(matches!(hold(&store, "alice", T0 + 2, new_review("x", "alice", true, 1)), HoldStep::Waiting(_)));
        assert!(matches!(decide(&store, "rev_1", "bob", Choice::Approve, T0 + 3), Err(DecideError::AlreadyApproved)));
        match decide(&store, "rev_1", "carol", Choice::Approve, T0 + 4).unwrap() {
            Decided::Approved(review) => {
                let reviewers: Vec<_> = review.approvers().map(|v| v.reviewer.as_str()).collect();
                assert_eq!(reviewers, ["bob", "carol"]);
                assert_eq!(review.decided_at, Some(T0 + 4));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(hold(&store, "alice", T0 + 5, new_review("x", "alice", true, 1)), HoldStep::Granted(_)));
    }

    #[test]
    fn under_the_two_person_rule_any_denial_denies() {
        let store = Store::open_in_memory().unwrap();
        created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", true, 1)));
        decide(&store, "rev_1", "bob", Choice::Approve, T0 + 1).unwrap();
        assert!(matches!(decide(&store, "rev_1", "carol", Choice::Deny, T0 + 2), Ok(Decided::Denied(_))));
        assert_eq!(store.grant_uses_left("rev_1").unwrap(), None);
        assert!(matches!(
            decide(&store, "rev_1", "dave", Choice::Approve, T0 + 3),
            Err(DecideError::NotPending(Status::Denied))
        ));
    }

    #[test]
    fn a_denial_stands_for_retries_until_the_review_would_have_expired() {
        let store = Store::open_in_memory().unwrap();
        created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", false, 1)));
        decide(&store, "rev_1", "bob", Choice::Deny, T0 + 10).unwrap();
        match hold(&store, "alice", T0 + 20, new_review("x", "alice", false, 1)) {
            HoldStep::Denied(review) => {
                let denial = review.denial().unwrap();
                assert_eq!((denial.reviewer.as_str(), denial.comment.as_str()), ("bob", "looked at it"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(created_id(hold(&store, "alice", T0 + 3600, new_review("rev_2", "alice", false, 1))), "rev_2");
    }

    #[test]
    fn deciding_twice_or_an_unknown_review_is_refused() {
        let store = Store::open_in_memory().unwrap();
        created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", false, 1)));
        decide(&store, "rev_1", "bob", Choice::Approve, T0 + 1).unwrap();
        assert!(matches!(
            decide(&store, "rev_1", "carol", Choice::Deny, T0 + 2),
            Err(DecideError::NotPending(Status::Approved))
        ));
        assert!(matches!(decide(&store, "rev_nope", "bob", Choice::Approve, T0), Err(DecideError::NotFound)));
    }

    #[test]
    fn listings_separate_pending_from_decided_reviews() {
        let store = Store::open_in_memory().unwrap();
        created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", false, 1)));
        created_id(hold(&store, "carol", T0 + 1, new_review("rev_2", "carol", false, 1)));
        decide(&store, "rev_1", "bob", Choice::Deny, T0 + 2).unwrap();
        let ids = |listing| store.list(listing, 10).unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(Listing::Pending), ["rev_2"]);
        assert_eq!(ids(Listing::Decided), ["rev_1"]);
        assert_eq!(ids(Listing::All).len(), 2);
    }

    #[test]
    fn reviews_grants_and_verdicts_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("warden-store-{}-{}", std::process::id(), T0));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("approvals.db");
        {
            let store = Store::open(&path).unwrap();
            created_id(hold(&store, "alice", T0, new_review("rev_1", "alice", false, 2)));
            created_id(hold(&store, "carol", T0, new_review("rev_2", "carol", false, 1)));
            decide(&store, "rev_1", "bob", Choice::Approve, T0 + 1).unwrap();
            store.record_verdict("rev_1", "approved", "a.b.c", T0 + 1).unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert!(
            matches!(hold(&store, "carol", T0 + 2, new_review("x", "carol", false, 1)), HoldStep::Waiting(r) if r.id == "rev_2")
        );
        assert!(matches!(hold(&store, "alice", T0 + 2, new_review("x", "alice", false, 1)), HoldStep::Granted(_)));
        assert_eq!(store.grant_uses_left("rev_1").unwrap(), Some(1));
        assert_eq!(store.verdicts("rev_1").unwrap(), [("approved".to_string(), "a.b.c".to_string(), T0 + 1)]);
        drop(store);
        // Reopening an up-to-date database applies no migration again.
        Store::open(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_database_from_a_newer_warden_is_refused() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("PRAGMA user_version = 99").unwrap();
        let error = Store::setup(connection).err().unwrap().to_string();
        assert!(error.contains("newer than this warden"), "{error}");
    }
}
