//! Refresh tokens of people's sign-ins, in SQLite (RFC 6749 §6, RFC 6819 §5.2.2.3).
//!
//! A browser sign-in (authorization code or device flow) starts a *sign-in* row: the
//! [`SignedIn`] identity (subject, source, method, groups, claims) and the sign-in's end,
//! `token_service.session_lifetime` after it began. It hands out one refresh token: 32 random
//! bytes, base64url; only its SHA-256 digest is stored. Each use **rotates** it: in one
//! `BEGIN IMMEDIATE` transaction the presented token is marked used and a new one is stored for
//! the same sign-in, which keeps its identity and its end (refreshing never extends a sign-in).
//! Presenting a token that was already used means two parties hold it — the legitimate client
//! rotated it, so someone copied it — and revokes the whole sign-in: every token of it stops
//! working and the person signs in again.
//!
//! Tables (a migration in [`super::super::store`]): `token_sign_ins` and `refresh_tokens`.
//! Sign-ins that ended more than a day ago are deleted with their tokens when a new one starts.
//!
//! Limits: the identity is the one proven at sign-in; group changes at the provider show at the
//! next sign-in (revocation is the kill switch's). A revoked sign-in's access tokens stay valid
//! until they expire (`token_service.lifetime`).

use super::{SignInMethod, SignedIn};
use crate::service::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

pub use crate::service::schema::TOKEN_SIGN_INS as SCHEMA;

/// How long ended sign-ins are kept before being deleted.
const KEEP_ENDED_SECONDS: i64 = 86_400;
/// How long a refresh waits for SQLite's write lock.
const BUSY_WAIT: Duration = Duration::from_secs(10);

/// Why a refresh token was refused.
#[derive(Debug)]
pub enum RefreshError {
    /// Unknown token, or its sign-in ended or was revoked.
    Invalid(&'static str),
    /// The token was already used: the sign-in is now revoked.
    Reused,
    /// The database failed.
    Store(StoreError),
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(why) => f.write_str(why),
            Self::Reused => f.write_str(
                "the refresh token was already used, so someone else may hold it: the sign-in is revoked; sign in again",
            ),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<rusqlite::Error> for RefreshError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::from(e))
    }
}

/// A refresh token handed out (a secret) with the identity it stands for.
pub struct Refreshed {
    /// The identity of the sign-in.
    pub who: SignedIn,
    /// The new refresh token.
    pub refresh_token: String,
    /// The sign-in's id.
    pub sign_in_id: String,
}

impl fmt::Debug for Refreshed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refreshed").field("sign_in_id", &self.sign_in_id).finish_non_exhaustive()
    }
}

/// The refresh-token tables on a connection of their own.
pub struct RefreshStore {
    connection: Mutex<Connection>,
}

impl fmt::Debug for RefreshStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshStore")
    }
}

fn method_from(text: &str) -> Result<SignInMethod, RefreshError> {
    [SignInMethod::Oidc, SignInMethod::Saml, SignInMethod::GithubActions, SignInMethod::Kubernetes]
        .into_iter()
        .find(|m| m.as_str() == text)
        .ok_or(RefreshError::Invalid("the stored sign-in has an unknown method"))
}

impl RefreshStore {
    /// Opens the database at `path`, migrating it first ([`crate::service::store::Store::open`]):
    /// the token service may be the only part `warden serve` runs.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        drop(crate::service::store::Store::open(path)?);
        let connection = Connection::open(path)?;
        connection.busy_timeout(BUSY_WAIT)?;
        Ok(Self { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.connection.lock().map_err(|_| StoreError::other("the refresh token store's lock is poisoned"))
    }

    /// Starts a sign-in for `who` at `now`, ending at `now + lifetime` seconds; its first
    /// refresh token.
    pub fn start(&self, who: &SignedIn, now: i64, lifetime: i64) -> Result<Refreshed, StoreError> {
        let sign_in_id = super::sign_in::new_secret().map_err(|e| StoreError::other(e.to_string()))?;
        let refresh_token = super::sign_in::new_secret().map_err(|e| StoreError::other(e.to_string()))?;
        let groups = serde_json::to_string(&who.groups).map_err(|e| StoreError::other(e.to_string()))?;
        let claims = serde_json::to_string(&who.claims).map_err(|e| StoreError::other(e.to_string()))?;
        let mut connection = self.lock()?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ended = now.saturating_sub(KEEP_ENDED_SECONDS);
        tx.execute(
            "DELETE FROM refresh_tokens WHERE sign_in_id IN (SELECT id FROM token_sign_ins WHERE expires_at < ?1)",
            [ended],
        )?;
        tx.execute("DELETE FROM token_sign_ins WHERE expires_at < ?1", [ended])?;
        tx.execute(
            "INSERT INTO token_sign_ins (id, subject, source, method, groups, claims, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                sign_in_id,
                who.subject,
                who.source,
                who.method.as_str(),
                groups,
                claims,
                now,
                now.saturating_add(lifetime)
            ],
        )?;
        tx.execute(
            "INSERT INTO refresh_tokens (digest, sign_in_id, created_at) VALUES (?1, ?2, ?3)",
            params![super::sign_in::digest(&refresh_token), sign_in_id, now],
        )?;
        tx.commit()?;
        Ok(Refreshed { who: who.clone(), refresh_token, sign_in_id })
    }

    /// Rotates `refresh_token` at `now`: the identity and a new refresh token, or why not
    /// (a reused token revokes its sign-in, committed before the error is returned).
    pub fn rotate(&self, refresh_token: &str, now: i64) -> Result<Refreshed, RefreshError> {
        let next = super::sign_in::new_secret().map_err(|e| RefreshError::Store(StoreError::other(e.to_string())))?;
        let mut connection = self.lock().map_err(RefreshError::Store)?;
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let digest = super::sign_in::digest(refresh_token);
        let found: Option<(String, Option<i64>)> = tx
            .query_row("SELECT sign_in_id, used_at FROM refresh_tokens WHERE digest = ?1", [&digest], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        let Some((sign_in_id, used_at)) = found else {
            return Err(RefreshError::Invalid("the refresh token is unknown; sign in again"));
        };
        if used_at.is_some() {
            tx.execute(
                "UPDATE token_sign_ins SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                params![sign_in_id, now],
            )?;
            tx.commit()?;
            return Err(RefreshError::Reused);
        }
        type Row = (String, String, String, String, String, i64, Option<i64>);
        let row: Row = tx.query_row(
            "SELECT subject, source, method, groups, claims, expires_at, revoked_at FROM token_sign_ins WHERE id = ?1",
            [&sign_in_id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?)),
        )?;
        let (subject, source, method, groups, claims, expires_at, revoked_at) = row;
        if revoked_at.is_some() {
            return Err(RefreshError::Invalid("the sign-in was revoked; sign in again"));
        }
        if expires_at <= now {
            return Err(RefreshError::Invalid("the sign-in ended (token_service.session_lifetime); sign in again"));
        }
        let groups: Vec<String> =
            serde_json::from_str(&groups).map_err(|_| RefreshError::Invalid("the stored sign-in is unreadable"))?;
        let claims: BTreeMap<String, String> =
            serde_json::from_str(&claims).map_err(|_| RefreshError::Invalid("the stored sign-in is unreadable"))?;
        let who = SignedIn { subject, source, method: method_from(&method)?, groups, claims };
        tx.execute("UPDATE refresh_tokens SET used_at = ?2 WHERE digest = ?1", params![digest, now])?;
        tx.execute(
            "INSERT INTO refresh_tokens (digest, sign_in_id, created_at) VALUES (?1, ?2, ?3)",
            params![super::sign_in::digest(&next), sign_in_id, now],
        )?;
        tx.commit()?;
        Ok(Refreshed { who, refresh_token: next, sign_in_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    struct Db(std::path::PathBuf);

    impl Db {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!("warden-refresh-{name}-{}.db", std::process::id()));
            let _ = std::fs::remove_file(&path);
            drop(crate::service::store::Store::open(&path).unwrap());
            Self(path)
        }

        fn store(&self) -> RefreshStore {
            RefreshStore::open(&self.0).unwrap()
        }
    }

    impl Drop for Db {
        fn drop(&mut self) {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
            }
        }
    }

    fn alice() -> SignedIn {
        SignedIn {
            groups: vec!["eng".into(), "leads".into()],
            claims: BTreeMap::from([("email".into(), "alice@example.com".into())]),
            ..crate::service::tokens::test_identities::alice()
        }
    }

    #[test]
    fn a_refresh_token_rotates_and_keeps_the_identity() {
        let db = Db::new("rotate");
        let store = db.store();
        let first = store.start(&alice(), NOW, DAY).unwrap();
        let second = store.rotate(&first.refresh_token, NOW + 60).unwrap();
        assert_eq!(second.who, alice());
        assert_eq!(second.sign_in_id, first.sign_in_id);
        assert_ne!(second.refresh_token, first.refresh_token);
        let third = store.rotate(&second.refresh_token, NOW + 120).unwrap();
        assert_eq!(third.who, alice());
    }

    #[test]
    fn reusing_a_rotated_token_revokes_the_whole_sign_in() {
        let db = Db::new("reuse");
        let store = db.store();
        let first = store.start(&alice(), NOW, DAY).unwrap();
        let second = store.rotate(&first.refresh_token, NOW + 60).unwrap();
        assert!(matches!(store.rotate(&first.refresh_token, NOW + 70), Err(RefreshError::Reused)));
        let error = store.rotate(&second.refresh_token, NOW + 80).unwrap_err().to_string();
        assert!(error.contains("revoked"), "{error}");
        let other = store.start(&alice(), NOW, DAY).unwrap();
        assert!(store.rotate(&other.refresh_token, NOW + 90).is_ok(), "another sign-in is untouched");
    }

    #[test]
    fn a_sign_in_ends_after_its_lifetime_however_often_it_was_refreshed() {
        let db = Db::new("end");
        let store = db.store();
        let mut token = store.start(&alice(), NOW, 3600).unwrap().refresh_token;
        for minute in 1..60 {
            token = store.rotate(&token, NOW + minute * 60).unwrap().refresh_token;
        }
        let error = store.rotate(&token, NOW + 3600).unwrap_err().to_string();
        assert!(error.contains("ended"), "{error}");
    }

    #[test]
    fn unknown_tokens_are_refused_and_only_digests_are_stored() {
        let db = Db::new("digest");
        let store = db.store();
        let started = store.start(&alice(), NOW, DAY).unwrap();
        assert!(matches!(store.rotate("not-a-token", NOW), Err(RefreshError::Invalid(_))));
        let connection = Connection::open(&db.0).unwrap();
        let stored: String = connection.query_row("SELECT digest FROM refresh_tokens", [], |r| r.get(0)).unwrap();
        assert_eq!(stored, super::super::sign_in::digest(&started.refresh_token));
        assert_ne!(stored, started.refresh_token);
    }

    #[test]
    fn sign_ins_ended_over_a_day_ago_are_deleted_when_one_starts() {
        let db = Db::new("prune");
        let store = db.store();
        let old = store.start(&alice(), NOW, 3600).unwrap();
        store.start(&alice(), NOW + 3600 + DAY + 1, 3600).unwrap();
        let connection = Connection::open(&db.0).unwrap();
        let count: i64 = connection.query_row("SELECT count(*) FROM token_sign_ins", [], |r| r.get(0)).unwrap();
        assert_eq!(count, 1);
        assert!(matches!(store.rotate(&old.refresh_token, NOW + 10), Err(RefreshError::Invalid(_))));
    }
}
