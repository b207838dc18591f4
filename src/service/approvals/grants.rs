//! Session grants: "approve for this session for N minutes" (docs/approvals.md, "Session grants").
//!
//! An approver who approves a review of a request that names an agent session (Claude Code's
//! `x-claude-code-session-id`, else the session inside `metadata.user_id`) may ask for a session
//! grant of N minutes (1 to `approvals.max_session_grant`). The grant is created in the same
//! transaction as the approval ([`crate::service::store`]'s decision inserts it) and covers a later
//! hold when, at the time the hold is answered, all of these are true ([`SessionGrant::covers`]):
//!
//! - the hold names the same session id (exact bytes);
//! - the same caller: issuer **and** subject (another caller who sends the same session id — a
//!   guessed or copied one — is not covered);
//! - the same role;
//! - its reasons are non-empty and every one is among the grant's reasons (for a tool call the
//!   reason is the id of the rule that asked for approval), so a new kind of trigger asks again;
//! - the grant has not expired and nobody ended it;
//! - the caller is not revoked by the kill switch (checked on every answer).
//!
//! A covered hold is answered at once with a fresh verdict signed for that hold's own fingerprint
//! (a verdict is never reused), naming the review that created the grant, its approver and the
//! grant's scope (`grant: {id, session_id, expires_at, reasons}`); the filter writes that scope
//! into the record. Each answer is kept with the review's verdicts and counted on the grant.
//!
//! Two-person roles get no session grants: a second approver would have to agree to an open-ended
//! scope they never saw being used, so such a request is approved one at a time (the page disables
//! the button; the API answers 409).
//!
//! Ending a grant ([`Store::end_session_grant`]) is immediate: every hold answered after the end
//! is judged without it. A hold that was answered from the grant a moment before keeps its answer.
//!
//! This module is the grants' data and storage; the service's matching and ending are in
//! [`super::service`], the JSON routes in [`super::api`] and the page's section and End form in
//! [`super::page`], which all build on it.
//!
//! Limits: a grant is matched by scanning the caller's live grants for the session (a handful);
//! times are whole seconds.

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use serde_json::{json, Value};

use crate::service::store::{Store, StoreError};

/// Longest session id accepted (the filter bounds it to 128 printable ASCII characters).
pub const MAX_SESSION_ID_CHARS: usize = 128;
/// Most grants one listing returns.
const MAX_LISTED: i64 = 500;

/// A session grant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGrant {
    /// `grt_…` id.
    pub id: String,
    /// The review whose approval created it.
    pub review_id: String,
    /// The agent session it covers.
    pub session_id: String,
    /// The caller's token issuer.
    pub issuer: String,
    /// The caller's subject.
    pub subject: String,
    /// The caller's role.
    pub role: String,
    /// The trigger reasons it covers.
    pub reasons: Vec<String>,
    /// Who approved it (subject).
    pub granted_by: String,
    /// When it was granted.
    pub created_at: i64,
    /// When it ends by itself.
    pub expires_at: i64,
    /// Who ended it early, and when.
    pub ended: Option<(String, i64)>,
    /// Holds it answered.
    pub holds_covered: i64,
}

/// What a hold asks a grant to cover.
#[derive(Debug, Clone, Copy)]
pub struct GrantScope<'a> {
    /// The hold's session id.
    pub session_id: &'a str,
    /// The caller's issuer.
    pub issuer: &'a str,
    /// The caller's subject.
    pub subject: &'a str,
    /// The caller's role.
    pub role: &'a str,
    /// The hold's reasons.
    pub reasons: &'a [String],
}

impl SessionGrant {
    /// Whether the grant still counts at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.ended.is_none() && self.expires_at > now
    }

    /// Whether the grant covers a hold with `scope` at `now` (see the module comment).
    pub fn covers(&self, scope: &GrantScope<'_>, now: i64) -> bool {
        self.is_live(now)
            && self.session_id == scope.session_id
            && self.issuer == scope.issuer
            && self.subject == scope.subject
            && self.role == scope.role
            && !scope.reasons.is_empty()
            && scope.reasons.iter().all(|reason| self.reasons.contains(reason))
    }

    /// `grant G (bob, for session S until T)`, as pages show it.
    pub fn describe(&self) -> String {
        format!(
            "grant {} ({}, for session {} until {})",
            self.id,
            self.granted_by,
            self.session_id,
            crate::service::util::format_utc(self.expires_at)
        )
    }
}

const COLUMNS: &str = "id, review_id, session_id, issuer, subject, role, reasons, granted_by, created_at, \
                       expires_at, ended_by, ended_at, holds_covered";

fn from_row(row: &Row<'_>) -> rusqlite::Result<SessionGrant> {
    let reasons: String = row.get(6)?;
    let ended_by: Option<String> = row.get(10)?;
    let ended_at: Option<i64> = row.get(11)?;
    Ok(SessionGrant {
        id: row.get(0)?,
        review_id: row.get(1)?,
        session_id: row.get(2)?,
        issuer: row.get(3)?,
        subject: row.get(4)?,
        role: row.get(5)?,
        // Written by the store's decision from a Vec<String>; unreadable text covers nothing.
        reasons: serde_json::from_str(&reasons).unwrap_or_default(),
        granted_by: row.get(7)?,
        created_at: row.get(8)?,
        expires_at: row.get(9)?,
        ended: ended_by.zip(ended_at),
        holds_covered: row.get(12)?,
    })
}

fn one(connection: &Connection, condition: &str, value: &str) -> Result<Option<SessionGrant>, StoreError> {
    Ok(connection
        .query_row(&format!("SELECT {COLUMNS} FROM session_grants WHERE {condition} = ?1"), [value], from_row)
        .optional()?)
}

/// Why a grant could not be ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndRefused {
    /// No grant with that id.
    NotFound,
    /// It had ended already (by someone, or by expiring).
    NotLive,
}

impl Store {
    /// The live grant covering `scope` at `now`, if any; counts the hold on it. Looking and
    /// counting share one transaction.
    pub fn session_grant_covering(&self, scope: &GrantScope<'_>, now: i64) -> Result<Option<SessionGrant>, StoreError> {
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let candidates: Vec<SessionGrant> = tx
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM session_grants
                 WHERE session_id = ?1 AND issuer = ?2 AND subject = ?3 AND ended_at IS NULL AND expires_at > ?4
                 ORDER BY expires_at DESC, id"
            ))?
            .query_map(params![scope.session_id, scope.issuer, scope.subject, now], from_row)?
            .collect::<Result<_, _>>()?;
        let Some(mut grant) = candidates.into_iter().find(|grant| grant.covers(scope, now)) else {
            return Ok(None);
        };
        tx.execute("UPDATE session_grants SET holds_covered = holds_covered + 1 WHERE id = ?1", [&grant.id])?;
        tx.commit()?;
        grant.holds_covered = grant.holds_covered.saturating_add(1);
        Ok(Some(grant))
    }

    /// The grant created with review `review_id`'s approval, if any.
    pub fn session_grant_of_review(&self, review_id: &str) -> Result<Option<SessionGrant>, StoreError> {
        one(&*self.lock()?, "review_id", review_id)
    }

    /// Grant `id`.
    pub fn session_grant(&self, id: &str) -> Result<Option<SessionGrant>, StoreError> {
        one(&*self.lock()?, "id", id)
    }

    /// Grants, newest first: only those live at `live_at` when given, else all (at most 500).
    pub fn session_grants(&self, live_at: Option<i64>) -> Result<Vec<SessionGrant>, StoreError> {
        let connection = self.lock()?;
        let filter = if live_at.is_some() { "WHERE ended_at IS NULL AND expires_at > ?1" } else { "WHERE ?1 IS NULL" };
        let grants = connection
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM session_grants {filter} ORDER BY created_at DESC, id LIMIT {MAX_LISTED}"
            ))?
            .query_map([live_at], from_row)?
            .collect::<Result<_, _>>()?;
        Ok(grants)
    }

    /// Ends grant `id` now (by `who`).
    pub fn end_session_grant(
        &self,
        id: &str,
        who: &str,
        now: i64,
    ) -> Result<Result<SessionGrant, EndRefused>, StoreError> {
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(grant) = one(&tx, "id", id)? else { return Ok(Err(EndRefused::NotFound)) };
        if !grant.is_live(now) {
            return Ok(Err(EndRefused::NotLive));
        }
        tx.execute("UPDATE session_grants SET ended_by = ?1, ended_at = ?2 WHERE id = ?3", params![who, now, id])?;
        tx.commit()?;
        Ok(Ok(SessionGrant { ended: Some((who.to_string(), now)), ..grant }))
    }
}

/// The API view of a grant.
pub fn grant_json(grant: &SessionGrant, now: i64) -> Value {
    json!({
        "id": grant.id,
        "review": grant.review_id,
        "session_id": grant.session_id,
        "caller": {"issuer": grant.issuer, "subject": grant.subject},
        "role": grant.role,
        "reasons": grant.reasons,
        "granted_by": grant.granted_by,
        "created_at": grant.created_at,
        "expires_at": grant.expires_at,
        "live": grant.is_live(now),
        "ended_by": grant.ended.as_ref().map(|(who, _)| who),
        "ended_at": grant.ended.as_ref().map(|(_, at)| at),
        "holds_covered": grant.holds_covered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> SessionGrant {
        SessionGrant {
            id: "grt_1".into(),
            review_id: "rev_1".into(),
            session_id: "sess-1".into(),
            issuer: "idp".into(),
            subject: "alice".into(),
            role: "developer".into(),
            reasons: vec!["git-push-force".into(), "opus_model".into()],
            granted_by: "bob".into(),
            created_at: 1000,
            expires_at: 2000,
            ended: None,
            holds_covered: 0,
        }
    }

    fn scope<'a>(reasons: &'a [String]) -> GrantScope<'a> {
        GrantScope { session_id: "sess-1", issuer: "idp", subject: "alice", role: "developer", reasons }
    }

    #[test]
    fn a_grant_covers_the_same_session_caller_and_role_for_reasons_it_names() {
        let grant = grant();
        let one = vec!["git-push-force".to_string()];
        let both = vec!["opus_model".to_string(), "git-push-force".to_string()];
        assert!(grant.covers(&scope(&one), 1500));
        assert!(grant.covers(&scope(&both), 1500));
        let other = vec!["git-push-force".to_string(), "rm-rf".to_string()];
        assert!(!grant.covers(&scope(&other), 1500), "a reason outside the grant asks again");
        assert!(!grant.covers(&scope(&[]), 1500), "a hold without reasons is not covered");
    }

    #[test]
    fn another_caller_session_or_role_is_not_covered() {
        let grant = grant();
        let reasons = vec!["opus_model".to_string()];
        let base = scope(&reasons);
        assert!(!grant.covers(&GrantScope { subject: "mallory", ..base }, 1500), "same session id, other subject");
        assert!(!grant.covers(&GrantScope { issuer: "other-idp", ..base }, 1500), "same subject, other issuer");
        assert!(!grant.covers(&GrantScope { session_id: "sess-2", ..base }, 1500));
        assert!(!grant.covers(&GrantScope { session_id: "SESS-1", ..base }, 1500), "ids compare exactly");
        assert!(!grant.covers(&GrantScope { role: "admin", ..base }, 1500));
    }

    #[test]
    fn an_expired_or_ended_grant_covers_nothing() {
        let reasons = vec!["opus_model".to_string()];
        assert!(!grant().covers(&scope(&reasons), 2000), "expiry is exclusive");
        let ended = SessionGrant { ended: Some(("carol".into(), 1200)), ..grant() };
        assert!(!ended.covers(&scope(&reasons), 1500));
    }

    #[test]
    fn the_description_names_grant_approver_session_and_end() {
        assert_eq!(grant().describe(), "grant grt_1 (bob, for session sess-1 until 1970-01-01T00:33:20Z)");
    }
}
