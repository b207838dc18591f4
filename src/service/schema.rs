//! The database's tables, one constant per migration step that a feature adds, so the store that
//! applies them ([`super::store`]) depends on no feature above it. Each feature re-exports its own
//! step (e.g. `leases::SCHEMA`) and owns the queries over its tables. One step stays with its
//! feature: the usage table's (`usage::aggregate::SCHEMA`), built by that module's macros from the
//! record fields it reads; the usage module depends on nothing that uses the store.

/// The audit tables (one migration step).
pub const AUDIT_RECORDS: &str = "CREATE TABLE audit_records (
        position   INTEGER PRIMARY KEY,
        source     TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        id         TEXT NOT NULL,
        session_id TEXT,
        job_id     TEXT,
        subject    TEXT,
        role       TEXT,
        time       INTEGER NOT NULL,
        outcome    TEXT,
        record     TEXT NOT NULL,
        prev_hash  TEXT NOT NULL,
        hash       TEXT NOT NULL,
        UNIQUE (source, seq)
    );
    CREATE INDEX audit_records_by_session ON audit_records (session_id, position);
    CREATE INDEX audit_records_by_time ON audit_records (time);
    CREATE TABLE audit_blobs (
        name    TEXT PRIMARY KEY,
        content TEXT NOT NULL
    );
    CREATE TABLE audit_checkpoints (
        position  INTEGER PRIMARY KEY,
        hash      TEXT NOT NULL,
        time      INTEGER NOT NULL,
        signature TEXT NOT NULL
    );";

/// The index the console's pages read sessions through, applied by the approval store as its own
/// migration: request order within a session (`session_id, time, position`), and the columns the
/// session listing counts (`subject, role, job_id, outcome`), so that listing even a session of
/// hundreds of thousands of requests reads the index alone, never a record.
pub const AUDIT_SESSION_TIME_INDEX: &str = "CREATE INDEX IF NOT EXISTS audit_records_by_session_time
    ON audit_records (session_id, time, position, subject, role, job_id, outcome);";

/// The retention tables (one migration step): prune statements and, per session, how many of
/// its records were pruned (so replay can say so).
pub const AUDIT_PRUNES: &str = "CREATE TABLE audit_prunes (
        position  INTEGER PRIMARY KEY,
        hash      TEXT NOT NULL,
        time      INTEGER NOT NULL,
        before    INTEGER NOT NULL,
        records   INTEGER NOT NULL,
        blobs     INTEGER NOT NULL,
        removed   TEXT NOT NULL,
        signature TEXT NOT NULL
    );
    CREATE TABLE audit_pruned_sessions (
        session_id TEXT PRIMARY KEY,
        records    INTEGER NOT NULL,
        time       INTEGER NOT NULL
    );";

/// The tables (migration 7 of [`super::store`]).
pub const BUDGET_LEASES: &str = "CREATE TABLE budget_windows (
        key              TEXT NOT NULL,
        window_start     INTEGER NOT NULL,
        window_end       INTEGER NOT NULL,
        budget           TEXT NOT NULL,
        limit_tokens     INTEGER,
        limit_nanos      INTEGER,
        limit_requests   INTEGER,
        granted_tokens   INTEGER NOT NULL,
        granted_nanos    INTEGER NOT NULL,
        granted_requests INTEGER NOT NULL,
        PRIMARY KEY (key, window_start)
    );
    CREATE INDEX budget_windows_by_end ON budget_windows (window_end);
    CREATE TABLE budget_leases (
        key                TEXT NOT NULL,
        window_start       INTEGER NOT NULL,
        instance           TEXT NOT NULL,
        granted_tokens     INTEGER NOT NULL,
        granted_nanos      INTEGER NOT NULL,
        granted_requests   INTEGER NOT NULL,
        committed_tokens   INTEGER NOT NULL,
        committed_nanos    INTEGER NOT NULL,
        committed_requests INTEGER NOT NULL,
        first_ms           INTEGER NOT NULL,
        renewed_ms         INTEGER NOT NULL,
        PRIMARY KEY (key, window_start, instance)
    );";

/// The tables (a migration step of [`super::store`]).
pub const SAML_REQUESTS: &str = "CREATE TABLE saml_requests (
        id          TEXT PRIMARY KEY,
        provider    TEXT NOT NULL,
        login_id    TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        answered_at INTEGER
    );
    CREATE INDEX saml_requests_by_expiry ON saml_requests (expires_at);
    CREATE TABLE saml_assertions (
        provider       TEXT NOT NULL,
        assertion_id   TEXT NOT NULL,
        accepted_at    INTEGER NOT NULL,
        remember_until INTEGER NOT NULL,
        PRIMARY KEY (provider, assertion_id)
    );
    CREATE INDEX saml_assertions_by_expiry ON saml_assertions (remember_until);";

/// The tables (migration 8 of [`super::store`]).
pub const REVOCATIONS: &str = "CREATE TABLE revocations (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL CHECK (kind IN ('subject', 'group', 'job', 'token')),
        value       TEXT NOT NULL,
        reason      TEXT NOT NULL,
        revoked_by  TEXT NOT NULL,
        revoked_at  INTEGER NOT NULL,
        expires_at  INTEGER,
        lifted_by   TEXT,
        lifted_at   INTEGER,
        changed_in  INTEGER NOT NULL
    );
    CREATE INDEX revocations_active ON revocations (lifted_at, expires_at);
    CREATE TABLE revocation_version (
        one     INTEGER PRIMARY KEY CHECK (one = 1),
        version INTEGER NOT NULL
    );
    INSERT INTO revocation_version (one, version) VALUES (1, 0);";

/// The migration creating the tables.
pub const TOKEN_SIGN_INS: &str = "CREATE TABLE token_sign_ins (
        id         TEXT PRIMARY KEY,
        subject    TEXT NOT NULL,
        source     TEXT NOT NULL,
        method     TEXT NOT NULL,
        groups     TEXT NOT NULL,
        claims     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE INDEX token_sign_ins_by_end ON token_sign_ins (expires_at);
    CREATE TABLE refresh_tokens (
        digest     TEXT PRIMARY KEY,
        sign_in_id TEXT NOT NULL REFERENCES token_sign_ins (id),
        created_at INTEGER NOT NULL,
        used_at    INTEGER
    );
    CREATE INDEX refresh_tokens_by_sign_in ON refresh_tokens (sign_in_id);";
