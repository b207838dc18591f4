//! What SAML sign-in remembers in SQLite: the AuthnRequests this service issued (so a response
//! must answer one of them, once, within [`REQUEST_LIFETIME_SECONDS`]) and the ids of the
//! assertions it accepted (so none is accepted twice, however often it is replayed).
//!
//! Tables (a migration in [`crate::service::store`]): `saml_requests` — request id, provider name,
//! the sign-in (login id) it belongs to, expiry, when it was answered; `saml_assertions` —
//! (provider, assertion id) and until when it is remembered (the assertion's own expiry plus the
//! clock skew: after that [`super::verify`] refuses the assertion as expired anyway).
//!
//! [`SamlStore::accept`] answers a request and records the assertion id in one immediate
//! transaction, so two workers (or two racing posts of the same response) cannot both succeed.
//! Rows past their time are deleted whenever a request is remembered; at most
//! [`MAX_OPEN_REQUESTS`] requests wait for an answer at once. Connection of its own on
//! the service's database, like the lease ledger.

use std::fmt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::service::store::StoreError;

/// How long an AuthnRequest may be answered, seconds.
pub const REQUEST_LIFETIME_SECONDS: i64 = 600;

/// Most sign-in requests waiting for an answer at once (all providers): a flood of login links
/// cannot grow the database without bound.
pub const MAX_OPEN_REQUESTS: i64 = 10_000;

pub use crate::service::schema::SAML_REQUESTS as SCHEMA;

/// Why a verified response cannot be accepted.
#[derive(Debug)]
pub enum AcceptError {
    /// `InResponseTo` names no request this service issued for this provider.
    UnknownRequest,
    /// The request was already answered.
    RequestAnswered,
    /// The request is older than [`REQUEST_LIFETIME_SECONDS`].
    RequestExpired,
    /// The assertion id was accepted before (a replay).
    Replayed,
    /// The database failed.
    Store(StoreError),
}

impl fmt::Display for AcceptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownRequest => {
                f.write_str("the response answers no sign-in request this service made (InResponseTo)")
            }
            Self::RequestAnswered => f.write_str("the sign-in request was already answered; start again"),
            Self::RequestExpired => f.write_str("the sign-in request has expired; start again"),
            Self::Replayed => f.write_str("this assertion was already used (replayed)"),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<rusqlite::Error> for AcceptError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(e.into())
    }
}

/// The SAML tables on a connection of their own.
pub struct SamlStore {
    connection: Mutex<Connection>,
}

impl fmt::Debug for SamlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SamlStore")
    }
}

impl SamlStore {
    /// Opens the (already migrated: [`crate::service::store::Store::open`]) database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(Duration::from_secs(5))?;
        Ok(Self { connection: Mutex::new(connection) })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.connection.lock().map_err(|_| StoreError::other("the SAML store lock is poisoned"))
    }

    /// Remembers request `id` to `provider` for sign-in `login_id`, issued at `now`; forgets
    /// requests and assertion ids past their time. Refused while [`MAX_OPEN_REQUESTS`] wait.
    pub fn remember_request(&self, id: &str, provider: &str, login_id: &str, now: i64) -> Result<(), StoreError> {
        let connection = self.lock()?;
        connection.execute("DELETE FROM saml_requests WHERE expires_at < ?1", params![now])?;
        connection.execute("DELETE FROM saml_assertions WHERE remember_until < ?1", params![now])?;
        let open: i64 =
            connection
                .query_row("SELECT count(*) FROM saml_requests WHERE answered_at IS NULL", [], |row| row.get(0))?;
        if open >= MAX_OPEN_REQUESTS {
            return Err(StoreError::other(format!("{open} SAML sign-ins are already in progress; try again later")));
        }
        connection.execute(
            "INSERT INTO saml_requests (id, provider, login_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, provider, login_id, now, now.saturating_add(REQUEST_LIFETIME_SECONDS)],
        )?;
        Ok(())
    }

    /// Marks request `in_response_to` of `provider` answered and records `assertion_id` until
    /// `remember_until`, atomically; returns the request's login id.
    pub fn accept(
        &self,
        provider: &str,
        in_response_to: &str,
        assertion_id: &str,
        remember_until: i64,
        now: i64,
    ) -> Result<String, AcceptError> {
        let mut connection = self.lock().map_err(AcceptError::Store)?;
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let request: Option<(String, i64, Option<i64>)> = transaction
            .query_row(
                "SELECT login_id, expires_at, answered_at FROM saml_requests WHERE id = ?1 AND provider = ?2",
                params![in_response_to, provider],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()?;
        let login_id = match request {
            None => return Err(AcceptError::UnknownRequest),
            Some((_, _, Some(_))) => return Err(AcceptError::RequestAnswered),
            Some((_, expires_at, None)) if now >= expires_at => return Err(AcceptError::RequestExpired),
            Some((login_id, _, None)) => login_id,
        };
        let seen: Option<i64> = transaction
            .query_row(
                "SELECT 1 FROM saml_assertions WHERE provider = ?1 AND assertion_id = ?2",
                params![provider, assertion_id],
                |row| row.get(0),
            )
            .optional()?;
        if seen.is_some() {
            return Err(AcceptError::Replayed);
        }
        transaction.execute(
            "INSERT INTO saml_assertions (provider, assertion_id, accepted_at, remember_until) VALUES (?1, ?2, ?3, ?4)",
            params![provider, assertion_id, now, remember_until],
        )?;
        transaction.execute("UPDATE saml_requests SET answered_at = ?1 WHERE id = ?2", params![now, in_response_to])?;
        transaction.commit()?;
        Ok(login_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> SamlStore {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(SCHEMA).unwrap();
        SamlStore { connection: Mutex::new(connection) }
    }

    #[test]
    fn a_request_is_answered_once_by_one_assertion() {
        let store = store();
        store.remember_request("_r1", "corp", "login-1", 1000).unwrap();
        assert_eq!(store.accept("corp", "_r1", "_a1", 2000, 1001).unwrap(), "login-1");
        assert!(matches!(store.accept("corp", "_r1", "_a2", 2000, 1002), Err(AcceptError::RequestAnswered)));
        store.remember_request("_r2", "corp", "login-2", 1003).unwrap();
        assert!(matches!(store.accept("corp", "_r2", "_a1", 2000, 1004), Err(AcceptError::Replayed)));
        assert_eq!(store.accept("corp", "_r2", "_a3", 2000, 1005).unwrap(), "login-2");
    }

    #[test]
    fn unknown_other_providers_and_expired_requests_are_refused() {
        let store = store();
        store.remember_request("_r1", "corp", "login-1", 1000).unwrap();
        assert!(matches!(store.accept("corp", "_nope", "_a1", 2000, 1001), Err(AcceptError::UnknownRequest)));
        assert!(matches!(store.accept("other", "_r1", "_a1", 2000, 1001), Err(AcceptError::UnknownRequest)));
        assert!(matches!(
            store.accept("corp", "_r1", "_a1", 2000, 1000 + REQUEST_LIFETIME_SECONDS),
            Err(AcceptError::RequestExpired)
        ));
    }

    #[test]
    fn requests_in_progress_are_bounded() {
        let store = store();
        {
            let connection = store.lock().unwrap();
            connection
                .execute(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                     INSERT INTO saml_requests (id, provider, login_id, created_at, expires_at)
                     SELECT 'r' || i, 'corp', 'l', 1000, 2000 FROM n",
                    params![MAX_OPEN_REQUESTS],
                )
                .unwrap();
        }
        assert!(store.remember_request("_one-more", "corp", "l", 1001).is_err());
        store.accept("corp", "r1", "_a1", 2000, 1001).unwrap();
        assert!(store.remember_request("_one-more", "corp", "l", 1001).is_ok(), "an answered request frees a place");
        assert!(store.remember_request("_later", "corp", "l", 2001).is_ok(), "expired requests are forgotten");
    }

    #[test]
    fn old_rows_are_forgotten_when_a_request_is_remembered() {
        let store = store();
        store.remember_request("_r1", "corp", "l", 1000).unwrap();
        store.accept("corp", "_r1", "_a1", 1100, 1001).unwrap();
        store.remember_request("_r2", "corp", "l", 5000).unwrap();
        let connection = store.lock().unwrap();
        let count = |table: &str| -> i64 {
            connection.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0)).unwrap()
        };
        assert_eq!((count("saml_requests"), count("saml_assertions")), (1, 0));
    }
}
