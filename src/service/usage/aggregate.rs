//! Spend from the audit trail: who used how many tokens and how much money, grouped by subject,
//! role, CI job, model, day or hour over a time window (`warden usage`, the `/usage` page).
//!
//! Storage ([`SCHEMA`], one migration step of the service's database): `audit_usage` holds one
//! narrow row per stored record — its position and time, subject, role, job, model, the token
//! counts of the record's `usage` (input, output, cache read, cache creation, web search
//! requests) and its top-level `cost_nanos` (billionths of the policy's currency; `NULL` when the
//! record carries none). Triggers on `audit_records` keep it derived from the records whatever
//! happens to them: a row is written (or replaced) when a record is inserted, rewritten when the
//! record row is updated (never in normal operation), removed when the record is pruned; the
//! migration backfills the records stored before it. The usage table can therefore never refuse
//! a record the chain accepts. Queries read this small indexed table, never the record JSON.
//!
//! Hostile numbers: a count that is not a JSON number counts 0 (a cost: unpriced); negative
//! numbers count 0; fractions are truncated; anything above 9×10¹⁸ (just under `i64::MAX`) is
//! stored as 9×10¹⁸. Sums are computed in SQL as two exact 32-bit halves
//! (`sum(x >> 32)`, `sum(x & 0xFFFFFFFF)`, which cannot overflow below 2³¹ rows) and joined
//! here into a `u64` that saturates at `u64::MAX` instead of failing.
//!
//! A record "unpriced" is one that used tokens but carries no `cost_nanos`: its tokens are
//! counted, its cost is not, and every total says how many such requests it holds.
//!
//! Limits: day and hour buckets use one fixed UTC offset for the whole window (no daylight-saving
//! change inside it); groups are sorted and cut to the requested number here, after SQL grouped
//! them (one row per distinct key in the window).

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection};

use crate::service::audit::store::AuditError;

/// `CAST(…)` of the number at `$path` of `$record`, clamped to `0..=9×10¹⁸`; `NULL` when it is
/// not a JSON number.
#[rustfmt::skip]
macro_rules! stored_number {
    ($record:literal, $path:literal) => {
        concat!(
            "(CASE WHEN json_type(", $record, ", '", $path, "') IN ('integer', 'real') ",
            "THEN CAST(max(0, min(json_extract(", $record, ", '", $path, "'), 9.0e18)) AS INTEGER) END)"
        )
    };
}

/// `coalesce(…, 0), `: a token count at `$path` of `$record`, 0 when absent.
#[rustfmt::skip]
macro_rules! token_count {
    ($record:literal, $path:literal) => { concat!("coalesce(", stored_number!($record, $path), ", 0), ") };
}

/// The columns of an `audit_usage` row computed from the record text in `$record`.
#[rustfmt::skip]
macro_rules! usage_values {
    ($record:literal) => {
        concat!(
            "CASE WHEN json_type(", $record, ", '$.model') = 'text' THEN json_extract(", $record, ", '$.model') END, ",
            token_count!($record, "$.usage.input_tokens"),
            token_count!($record, "$.usage.output_tokens"),
            token_count!($record, "$.usage.cache_read_input_tokens"),
            token_count!($record, "$.usage.cache_creation_input_tokens"),
            "coalesce(", stored_number!($record, "$.usage.web_search_requests"), ", ",
            stored_number!($record, "$.usage.server_tool_use.web_search_requests"), ", 0), ",
            stored_number!($record, "$.cost_nanos")
        )
    };
}

/// The statement of a trigger that writes (or replaces) the usage row of the record row `NEW`,
/// reading the record through `$record` (an expression over `NEW.record` or the column `j`).
macro_rules! mirror_new_record {
    ($record:literal, $from:literal) => {
        concat!(
            "INSERT OR REPLACE INTO audit_usage SELECT NEW.position, NEW.time, NEW.subject, NEW.role, NEW.job_id, ",
            usage_values!($record),
            $from,
            ";"
        )
    };
}

/// The usage table, its triggers and the backfill (one migration step).
pub const SCHEMA: &str = concat!(
    "CREATE TABLE audit_usage (
        position              INTEGER PRIMARY KEY,
        time                  INTEGER NOT NULL,
        subject               TEXT,
        role                  TEXT,
        job_id                TEXT,
        model                 TEXT,
        input_tokens          INTEGER NOT NULL,
        output_tokens         INTEGER NOT NULL,
        cache_read_tokens     INTEGER NOT NULL,
        cache_creation_tokens INTEGER NOT NULL,
        web_search_requests   INTEGER NOT NULL,
        cost_nanos            INTEGER
    );
    CREATE INDEX audit_usage_by_time ON audit_usage (time);
    CREATE TRIGGER audit_usage_on_insert AFTER INSERT ON audit_records BEGIN
        ",
    // At ingest the record is parsed once (to SQLite's binary JSON) for all its fields.
    mirror_new_record!("j", " FROM (SELECT jsonb(NEW.record) AS j)"),
    "
    END;
    CREATE TRIGGER audit_usage_on_update AFTER UPDATE OF position, time, subject, role, job_id, record
    ON audit_records BEGIN
        DELETE FROM audit_usage WHERE position = OLD.position;
        ",
    // Text functions here: this runs only when rows are edited by hand, perhaps with an older
    // sqlite3 that has no binary JSON.
    mirror_new_record!("NEW.record", ""),
    "
    END;
    CREATE TRIGGER audit_usage_on_delete AFTER DELETE ON audit_records BEGIN
        DELETE FROM audit_usage WHERE position = OLD.position;
    END;
    INSERT INTO audit_usage SELECT position, time, subject, role, job_id, ",
    usage_values!("record"),
    " FROM audit_records;"
);

/// What usage is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// The token subject.
    Subject,
    /// The role the request ran under.
    Role,
    /// The CI job.
    Job,
    /// The model asked for.
    Model,
    /// The calendar day (at the query's UTC offset).
    Day,
    /// The hour (at the query's UTC offset).
    Hour,
}

impl Dimension {
    /// Every dimension, in the order the CLI lists them.
    pub const ALL: [Self; 6] = [Self::Subject, Self::Role, Self::Job, Self::Model, Self::Day, Self::Hour];

    /// Its name on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::Role => "role",
            Self::Job => "job",
            Self::Model => "model",
            Self::Day => "day",
            Self::Hour => "hour",
        }
    }

    /// The dimension called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Length of a period dimension's bucket in ms.
    fn period_ms(self) -> Option<i64> {
        match self {
            Self::Day => Some(86_400_000),
            Self::Hour => Some(3_600_000),
            _ => None,
        }
    }

    /// Its SQL expression (`?1` is the UTC offset in ms).
    fn sql(self) -> &'static str {
        match self {
            Self::Subject => "subject",
            Self::Role => "role",
            Self::Job => "job_id",
            Self::Model => "model",
            Self::Day => "((time + ?1) / 86400000)",
            Self::Hour => "((time + ?1) / 3600000)",
        }
    }
}

/// A usage query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageQuery {
    /// Only records with `time ≥ since` (ms since the epoch).
    pub since: Option<i64>,
    /// Only records with `time < until` (ms since the epoch).
    pub until: Option<i64>,
    /// Group by these, in this order (none: one total row).
    pub by: Vec<Dimension>,
    /// Offset of the day and hour buckets from UTC, in minutes (east positive).
    pub utc_offset_minutes: i32,
}

/// Summed usage of a group of records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    /// Records (requests, refused ones included).
    pub requests: u64,
    /// Input tokens billed at the normal rate.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the prompt cache.
    pub cache_creation_tokens: u64,
    /// Server-side web search requests.
    pub web_search_requests: u64,
    /// Cost of the priced records, in billionths of the policy's currency.
    pub cost_nanos: u64,
    /// Records that used tokens but carry no cost (not included in `cost_nanos`).
    pub unpriced_requests: u64,
}

impl Totals {
    /// Every token of every kind.
    pub fn tokens(&self) -> u64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_creation_tokens)
    }

    /// Adds `other` (saturating).
    pub fn add(&mut self, other: &Totals) {
        for (sum, value) in [
            (&mut self.requests, other.requests),
            (&mut self.input_tokens, other.input_tokens),
            (&mut self.output_tokens, other.output_tokens),
            (&mut self.cache_read_tokens, other.cache_read_tokens),
            (&mut self.cache_creation_tokens, other.cache_creation_tokens),
            (&mut self.web_search_requests, other.web_search_requests),
            (&mut self.cost_nanos, other.cost_nanos),
            (&mut self.unpriced_requests, other.unpriced_requests),
        ] {
            *sum = sum.saturating_add(value);
        }
    }

    /// The sum of `rows` (saturating): the total of a query, from its groups.
    pub fn of(rows: &[UsageRow]) -> Totals {
        rows.iter().fold(Totals::default(), |mut total, row| {
            total.add(&row.totals);
            total
        })
    }
}

/// One group's key in one dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// A label (subject, role, job, model); `None` when the records have none.
    Label(Option<String>),
    /// A day or hour bucket: its start in ms since the epoch (UTC) and its label in the query's
    /// offset (`2026-12-07`, `2026-12-07T13:00`).
    Period {
        /// Start of the bucket, ms since the epoch.
        start_ms: i64,
        /// The bucket as people read it.
        label: String,
    },
}

impl Key {
    /// The key as text (`None` for a missing label).
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Label(label) => label.as_deref(),
            Self::Period { label, .. } => Some(label),
        }
    }
}

/// One group: its keys (one per dimension of the query) and totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    /// Keys in the order of [`UsageQuery::by`].
    pub keys: Vec<Key>,
    /// What the group used.
    pub totals: Totals,
}

/// The summed columns, in result order after the keys and the two counts.
const SUMMED: [&str; 6] = [
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "web_search_requests",
    "cost_nanos",
];

/// The SQL of `query` (keys, `count(*)`, unpriced count, then two halves per summed column).
fn statement(query: &UsageQuery) -> String {
    let keys: Vec<&str> = query.by.iter().map(|d| d.sql()).collect();
    let mut columns: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    columns.push("count(*)".to_string());
    columns.push(
        "sum(cost_nanos IS NULL AND input_tokens + output_tokens + cache_read_tokens + cache_creation_tokens > 0)"
            .to_string(),
    );
    for column in SUMMED {
        columns.push(format!("coalesce(sum({column} >> 32), 0)"));
        columns.push(format!("coalesce(sum({column} & 4294967295), 0)"));
    }
    let mut sql = format!(
        "SELECT {} FROM audit_usage WHERE (?2 IS NULL OR time >= ?2) AND (?3 IS NULL OR time < ?3) AND ?1 IS NOT NULL",
        columns.join(", ")
    );
    if !keys.is_empty() {
        sql.push_str(&format!(" GROUP BY {}", keys.join(", ")));
    }
    sql
}

/// Joins two 32-bit-half sums into a saturating `u64`.
fn join_halves(high: i64, low: i64) -> u64 {
    let high = u128::try_from(high).unwrap_or(0);
    let low = u128::try_from(low).unwrap_or(0);
    u64::try_from((high << 32).saturating_add(low)).unwrap_or(u64::MAX)
}

/// `YYYY-MM-DD` (day) or `YYYY-MM-DDTHH:00` (hour) of the bucket `index` shifted by `offset_ms`.
fn period_label(dimension: Dimension, start_local_ms: i64) -> String {
    let text = crate::service::util::format_utc(start_local_ms.div_euclid(1000));
    match dimension {
        Dimension::Hour => format!("{}:00", text.get(..13).unwrap_or(&text)),
        _ => text.get(..10).unwrap_or(&text).to_string(),
    }
}

fn key_of(dimension: Dimension, value: SqlValue, offset_ms: i64) -> Key {
    match (dimension.period_ms(), value) {
        (Some(period), SqlValue::Integer(index)) => {
            let local = index.saturating_mul(period);
            Key::Period { start_ms: local.saturating_sub(offset_ms), label: period_label(dimension, local) }
        }
        (_, SqlValue::Text(text)) => Key::Label(Some(text)),
        (_, SqlValue::Integer(n)) => Key::Label(Some(n.to_string())),
        _ => Key::Label(None),
    }
}

/// Runs `query` over the usage table of `connection`. Rows come sorted: by their keys when the
/// first dimension is a period (a time series), otherwise by cost, then tokens, most first.
pub fn aggregate(connection: &Connection, query: &UsageQuery) -> Result<Vec<UsageRow>, AuditError> {
    let offset_ms = i64::from(query.utc_offset_minutes).saturating_mul(60_000);
    let mut statement = connection.prepare(&statement(query))?;
    let parameters = [SqlValue::Integer(offset_ms), optional(query.since), optional(query.until)];
    let mut rows = statement.query(params_from_iter(parameters))?;
    let width = query.by.len();
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        let mut keys = Vec::with_capacity(width);
        for (index, dimension) in query.by.iter().enumerate() {
            keys.push(key_of(*dimension, row.get::<_, SqlValue>(index)?, offset_ms));
        }
        let count = |at: usize| -> Result<u64, AuditError> {
            Ok(u64::try_from(row.get::<_, Option<i64>>(width + at)?.unwrap_or(0)).unwrap_or(0))
        };
        let half = |at: usize| -> Result<i64, AuditError> { Ok(row.get::<_, i64>(width + 2 + at)?) };
        let mut sums = [0u64; SUMMED.len()];
        for (index, sum) in sums.iter_mut().enumerate() {
            *sum = join_halves(half(index * 2)?, half(index * 2 + 1)?);
        }
        let [input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, web_search_requests, cost_nanos] =
            sums;
        found.push(UsageRow {
            keys,
            totals: Totals {
                requests: count(0)?,
                unpriced_requests: count(1)?,
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_creation_tokens,
                web_search_requests,
                cost_nanos,
            },
        });
    }
    if query.by.first().is_some_and(|d| d.period_ms().is_some()) {
        found.sort_by(|a, b| order_keys(&a.keys, &b.keys));
    } else {
        sort_by_spend(&mut found);
    }
    Ok(found)
}

/// Sorts `rows` most expensive first (then most tokens, most requests, keys).
pub fn sort_by_spend(rows: &mut [UsageRow]) {
    rows.sort_by(|a, b| {
        (b.totals.cost_nanos, b.totals.tokens(), b.totals.requests)
            .cmp(&(a.totals.cost_nanos, a.totals.tokens(), a.totals.requests))
            .then_with(|| order_keys(&a.keys, &b.keys))
    });
}

fn optional(value: Option<i64>) -> SqlValue {
    value.map_or(SqlValue::Null, SqlValue::Integer)
}

fn order_keys(a: &[Key], b: &[Key]) -> std::cmp::Ordering {
    let rank = |k: &Key| match k {
        Key::Period { start_ms, .. } => (Some(*start_ms), None),
        Key::Label(label) => (None, label.clone()),
    };
    a.iter().map(rank).cmp(b.iter().map(rank))
}

/// Whether `connection` has the usage table (databases of services older than it have not).
pub fn has_usage_table(connection: &Connection) -> Result<bool, AuditError> {
    let found: i64 = connection.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_usage'",
        [],
        |row| row.get(0),
    )?;
    Ok(found == 1)
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::service::audit::chain::parse_record;
    use crate::service::audit::store::tests::memory_store;
    use crate::service::audit::store::{AuditStore, SqliteAuditStore, SCHEMA as AUDIT_SCHEMA};
    use super::*;
    use serde_json::{json, Value};

    /// An in-memory store with the audit and usage tables.
    pub(crate) fn usage_store() -> SqliteAuditStore {
        let store = memory_store();
        store.connection().execute_batch(SCHEMA).unwrap();
        store
    }

    /// A record at `time` ms by `subject` under `role` with `usage` and `cost`.
    pub(crate) fn usage_record(seq: i64, time: i64, subject: &str, role: &str, usage: Value, cost: Value) -> Value {
        json!({"version": 1, "source": "gw", "seq": seq, "id": format!("r{seq}"), "model": "claude-sonnet-4-6",
               "identity": {"subject": subject, "role": role}, "job_id": null, "session_id": "s",
               "timings": {"start": time, "end": time}, "usage": usage, "cost_nanos": cost})
    }

    fn store_with(records: &[Value]) -> SqliteAuditStore {
        let mut store = usage_store();
        let batch: Vec<_> = records.iter().map(|r| parse_record(r.to_string().as_bytes(), 0).unwrap()).collect();
        assert_eq!(store.append(&batch).unwrap().stored, records.len());
        store
    }

    fn query(by: &[Dimension]) -> UsageQuery {
        UsageQuery { since: None, until: None, by: by.to_vec(), utc_offset_minutes: 0 }
    }

    fn label(text: &str) -> Key {
        Key::Label(Some(text.to_string()))
    }

    /// Largest count or cost stored per record (the `9.0e18` of [`stored_number`]).
    const MAX_STORED: i64 = 9_000_000_000_000_000_000;
    const DAY: i64 = 86_400_000;
    /// 2026-12-07T00:00:00Z.
    const DEC_7: i64 = 1_796_601_600_000;

    #[test]
    fn usage_is_summed_per_subject_most_expensive_first() {
        let store = store_with(&[
            usage_record(1, DEC_7, "alice", "developer", json!({"input_tokens": 10, "output_tokens": 5}), json!(300)),
            usage_record(2, DEC_7 + 1, "bob", "analyst", json!({"input_tokens": 1, "output_tokens": 1}), json!(900)),
            usage_record(
                3,
                DEC_7 + 2,
                "alice",
                "developer",
                json!({"input_tokens": 2, "cache_read_input_tokens": 7, "cache_creation_input_tokens": 3,
                       "server_tool_use": {"web_search_requests": 2}}),
                json!(100),
            ),
        ]);
        let rows = aggregate(store.connection(), &query(&[Dimension::Subject])).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.keys.clone()).collect::<Vec<_>>(),
            vec![vec![label("bob")], vec![label("alice")]]
        );
        let alice = rows[1].totals;
        assert_eq!(
            alice,
            Totals {
                requests: 2,
                input_tokens: 12,
                output_tokens: 5,
                cache_read_tokens: 7,
                cache_creation_tokens: 3,
                web_search_requests: 2,
                cost_nanos: 400,
                unpriced_requests: 0
            }
        );
        let total = aggregate(store.connection(), &query(&[])).unwrap();
        assert_eq!((total.len(), total[0].totals.cost_nanos, total[0].totals.requests), (1, 1300, 3));
        assert_eq!(Totals::of(&rows), total[0].totals, "the groups add up to the total");
    }

    #[test]
    fn dimensions_combine_and_a_missing_label_is_its_own_group() {
        let mut anonymous = usage_record(3, DEC_7, "x", "x", json!({"input_tokens": 1}), json!(1));
        anonymous.as_object_mut().unwrap().remove("identity");
        anonymous["model"] = json!(null);
        let store = store_with(&[
            usage_record(1, DEC_7, "alice", "developer", json!({"input_tokens": 1}), json!(5)),
            usage_record(2, DEC_7, "alice", "analyst", json!({"input_tokens": 1}), json!(7)),
            anonymous,
        ]);
        let rows = aggregate(store.connection(), &query(&[Dimension::Subject, Dimension::Role])).unwrap();
        let keys: Vec<Vec<Key>> = rows.iter().map(|r| r.keys.clone()).collect();
        assert_eq!(
            keys,
            vec![
                vec![label("alice"), label("analyst")],
                vec![label("alice"), label("developer")],
                vec![Key::Label(None), Key::Label(None)]
            ]
        );
        let models = aggregate(store.connection(), &query(&[Dimension::Model])).unwrap();
        assert_eq!(models.iter().map(|r| r.keys[0].text()).collect::<Vec<_>>(), vec![Some("claude-sonnet-4-6"), None]);
    }

    #[test]
    fn the_window_includes_its_start_and_excludes_its_end() {
        let store = store_with(&[
            usage_record(1, DEC_7 - 1, "a", "r", json!({"input_tokens": 1}), json!(1)),
            usage_record(2, DEC_7, "a", "r", json!({"input_tokens": 1}), json!(10)),
            usage_record(3, DEC_7 + DAY - 1, "a", "r", json!({"input_tokens": 1}), json!(100)),
            usage_record(4, DEC_7 + DAY, "a", "r", json!({"input_tokens": 1}), json!(1000)),
        ]);
        let window = UsageQuery { since: Some(DEC_7), until: Some(DEC_7 + DAY), ..query(&[]) };
        assert_eq!(aggregate(store.connection(), &window).unwrap()[0].totals.cost_nanos, 110);
        let open_end = UsageQuery { since: Some(DEC_7 + 1), ..query(&[]) };
        assert_eq!(aggregate(store.connection(), &open_end).unwrap()[0].totals.cost_nanos, 1100);
    }

    #[test]
    fn days_and_hours_are_buckets_at_the_queries_offset_in_time_order() {
        let store = store_with(&[
            usage_record(1, DEC_7 + 23 * 3_600_000, "a", "r", json!({"input_tokens": 1}), json!(1)),
            usage_record(2, DEC_7 + 1, "a", "r", json!({"input_tokens": 1}), json!(10)),
            usage_record(3, DEC_7 - 1, "a", "r", json!({"input_tokens": 1}), json!(100)),
        ]);
        let utc = aggregate(store.connection(), &query(&[Dimension::Day])).unwrap();
        let days: Vec<_> = utc.iter().map(|r| (r.keys[0].text().unwrap().to_string(), r.totals.cost_nanos)).collect();
        assert_eq!(days, vec![("2026-12-06".to_string(), 100), ("2026-12-07".to_string(), 11)]);
        assert_eq!(utc[1].keys[0], Key::Period { start_ms: DEC_7, label: "2026-12-07".into() });
        // At UTC+02:00, 23:00Z on the 7th is already the 8th.
        let east = UsageQuery { utc_offset_minutes: 120, ..query(&[Dimension::Day]) };
        let days: Vec<_> =
            aggregate(store.connection(), &east).unwrap().into_iter().map(|r| r.keys[0].clone()).collect();
        assert_eq!(
            days,
            vec![
                Key::Period { start_ms: DEC_7 - 2 * 3_600_000, label: "2026-12-07".into() },
                Key::Period { start_ms: DEC_7 + DAY - 2 * 3_600_000, label: "2026-12-08".into() }
            ]
        );
        let hours = aggregate(store.connection(), &query(&[Dimension::Hour, Dimension::Role])).unwrap();
        assert_eq!(
            hours.iter().map(|r| r.keys[0].text().unwrap()).collect::<Vec<_>>(),
            vec!["2026-12-06T23:00", "2026-12-07T00:00", "2026-12-07T23:00"]
        );
    }

    #[test]
    fn a_record_without_a_cost_counts_its_tokens_and_is_flagged_unpriced() {
        let mut no_field = usage_record(1, DEC_7, "a", "r", json!({"input_tokens": 40, "output_tokens": 2}), json!(0));
        no_field.as_object_mut().unwrap().remove("cost_nanos");
        let store = store_with(&[
            no_field,
            usage_record(2, DEC_7, "a", "r", json!({"output_tokens": 3}), json!(null)),
            usage_record(3, DEC_7, "a", "r", json!({"input_tokens": 1}), json!(25)),
            // A refusal used nothing: no cost, and nothing to price either.
            usage_record(4, DEC_7, "a", "r", json!({}), json!(null)),
        ]);
        let total = aggregate(store.connection(), &query(&[])).unwrap()[0].totals;
        assert_eq!((total.requests, total.unpriced_requests, total.cost_nanos), (4, 2, 25));
        assert_eq!((total.input_tokens, total.output_tokens), (41, 5));
    }

    #[test]
    fn hostile_numbers_count_nothing_or_saturate_and_never_fail_the_query() {
        let store = store_with(&[
            usage_record(
                1,
                DEC_7,
                "a",
                "r",
                json!({"input_tokens": -5, "output_tokens": "12", "cache_read_input_tokens": 2.9,
                       "cache_creation_input_tokens": {"n": 1}}),
                json!(-100),
            ),
            usage_record(2, DEC_7, "a", "r", json!({"input_tokens": u64::MAX}), json!(u64::MAX)),
            usage_record(3, DEC_7, "a", "r", json!({"input_tokens": i64::MAX}), json!(i64::MAX)),
            usage_record(4, DEC_7, "a", "r", json!({"input_tokens": 1e300}), json!(1e300)),
        ]);
        let rows: Vec<(i64, i64, i64, Option<i64>)> = store
            .connection()
            .prepare(
                "SELECT input_tokens, output_tokens, cache_read_tokens, cost_nanos FROM audit_usage ORDER BY position",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows[0], (0, 0, 2, Some(0)), "negative → 0, a string → 0, a fraction truncated");
        assert_eq!(rows[1], (MAX_STORED, 0, 0, Some(MAX_STORED)));
        assert_eq!(rows[2], (MAX_STORED, 0, 0, Some(MAX_STORED)));
        assert_eq!(rows[3], (MAX_STORED, 0, 0, Some(MAX_STORED)));
        // Two values near i64::MAX sum past it exactly (in two halves); three pass u64::MAX and
        // saturate.
        let total = aggregate(store.connection(), &query(&[])).unwrap()[0].totals;
        assert_eq!(total.cost_nanos, u64::MAX);
        assert_eq!(total.input_tokens, u64::MAX);
        store.connection().execute("DELETE FROM audit_records WHERE position NOT IN (2, 3)", []).unwrap();
        let total = aggregate(store.connection(), &query(&[])).unwrap()[0].totals;
        assert_eq!(total.cost_nanos, 18_000_000_000_000_000_000);
        assert_eq!(join_halves(i64::MAX, i64::MAX), u64::MAX);
        let rows = aggregate(store.connection(), &query(&[Dimension::Subject, Dimension::Model])).unwrap();
        assert_eq!(Totals::of(&[rows[0].clone(), rows[0].clone()]).cost_nanos, u64::MAX, "adding saturates too");
    }

    #[test]
    fn the_usage_table_mirrors_records_backfilled_pruned_moved_or_rewritten() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(AUDIT_SCHEMA).unwrap();
        let mut store = SqliteAuditStore::from_connection(connection).unwrap();
        let before = usage_record(1, DEC_7, "a", "r", json!({"output_tokens": 9}), json!(90));
        store.append(&[parse_record(before.to_string().as_bytes(), 0).unwrap()]).unwrap();
        assert!(!has_usage_table(store.connection()).unwrap());
        store.connection().execute_batch(SCHEMA).unwrap();
        assert!(has_usage_table(store.connection()).unwrap());
        let after = usage_record(2, DEC_7, "a", "r", json!({"output_tokens": 1}), json!(10));
        store.append(&[parse_record(after.to_string().as_bytes(), 0).unwrap()]).unwrap();
        let total = |store: &SqliteAuditStore| aggregate(store.connection(), &query(&[])).unwrap()[0].totals;
        assert_eq!((total(&store).output_tokens, total(&store).cost_nanos), (10, 100));
        store.connection().execute("DELETE FROM audit_records WHERE position = 1", []).unwrap();
        assert_eq!((total(&store).requests, total(&store).cost_nanos), (1, 10));
        // Rows moved or rewritten in place (by hand: the service never does) stay mirrored, and
        // a later insert at a freed position is not refused.
        store
            .connection()
            .execute_batch(
                "UPDATE audit_records SET position = 1 WHERE position = 2;
                 UPDATE audit_records SET record = replace(record, '\"cost_nanos\":10', '\"cost_nanos\":12');",
            )
            .unwrap();
        let positions: Vec<(i64, Option<i64>)> = store
            .connection()
            .prepare("SELECT position, cost_nanos FROM audit_usage")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(positions, vec![(1, Some(12))]);
        let again = usage_record(3, DEC_7, "a", "r", json!({"output_tokens": 1}), json!(1));
        assert_eq!(store.append(&[parse_record(again.to_string().as_bytes(), 0).unwrap()]).unwrap().stored, 1);
        assert_eq!(total(&store).cost_nanos, 13);
    }
}
