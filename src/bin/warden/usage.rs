//! `warden usage`: spend per subject, role, CI job, model, day or hour over a time window, read
//! from the database of `warden serve` (read-only) — a table for people, `--json` for scripts.
//!
//! The figures come from the audit trail: each stored record's `usage` (tokens as Anthropic
//! reported them) and `cost_nanos` (the gateway's price of them, in billionths of the policy's
//! `pricing.currency`). Grouping runs in SQL over the indexed `audit_usage` table
//! ([`warden::service::usage::aggregate`]); a record that used tokens but carries no cost is counted as
//! *unpriced*: its tokens are in the totals, its cost is not, and the output says how many.
//!
//! Times (`--since`, `--until`) are parsed by [`parse_time`]: epoch milliseconds, plain dates
//! (`2026-12-07`: midnight; as `--until`, the end of that day) and ISO 8601 date-times with or
//! without seconds, fraction and zone (`Z`, `+02:00`); without a zone they are read at
//! `--utc-offset` (UTC by default), which also places the day and hour buckets.
//!
//! Exit codes: 0 success, 2 usage or I/O error.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{json, Map, Value};

use warden::service::audit::store::SqliteAuditStore;
use warden::service::usage::aggregate::{aggregate, has_usage_table, Dimension, Key, Totals, UsageQuery, UsageRow};
use warden::service::usage::format::{clean_label, parse_time, parse_utc_offset, Edge};
pub use warden::service::usage::format::{exact_cost, format_cost};
use crate::util::format_utc;

/// Arguments of `warden usage`.
#[derive(clap::Args, Debug)]
pub struct UsageArgs {
    /// The `warden serve` database.
    #[arg(long, alias = "store", value_name = "FILE")]
    pub db: PathBuf,
    /// Only records at or after this time (epoch ms, `2026-12-01`, `2026-12-01T09:00`,
    /// `2026-12-01T09:00:00+01:00`).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only records before this time (same forms; a plain date includes that whole day).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    /// Group by these, comma-separated or repeated: subject, role, job, model, day, hour.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "subject")]
    pub by: Vec<String>,
    /// The zone of times without one and of day/hour buckets, as an offset from UTC (`+02:00`,
    /// `-05:30`, `Z`).
    #[arg(long, value_name = "±HH:MM", default_value = "Z", allow_hyphen_values = true)]
    pub utc_offset: String,
    /// Show only the first N groups (most expensive first; time series: earliest first).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `warden usage`.
pub fn run(args: &UsageArgs) -> ExitCode {
    match report(args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("warden usage: {message}");
            ExitCode::from(2)
        }
    }
}

/// A window and its grouping, parsed from the arguments.
fn query_of(args: &UsageArgs) -> Result<(UsageQuery, Option<usize>), String> {
    let offset = parse_utc_offset(&args.utc_offset).ok_or_else(|| {
        format!("--utc-offset: {:?} is not an offset like +02:00, -05:30 or Z (at most ±14:00)", args.utc_offset)
    })?;
    let time = |flag: &str, text: &Option<String>, edge| {
        text.as_deref().map(|t| parse_time(t, offset, edge).map_err(|e| format!("{flag}: {e}"))).transpose()
    };
    let since = time("--since", &args.since, Edge::Start)?;
    let until = time("--until", &args.until, Edge::End)?;
    if let (Some(since), Some(until)) = (since, until) {
        if until <= since {
            return Err("--until must be after --since".to_string());
        }
    }
    let mut by = Vec::new();
    for name in args.by.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let dimension = Dimension::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Dimension::ALL.iter().map(|d| d.name()).collect();
            format!("--by: unknown dimension {name:?} (one of {})", known.join(", "))
        })?;
        if by.contains(&dimension) {
            return Err(format!("--by: {name} is named twice"));
        }
        by.push(dimension);
    }
    Ok((UsageQuery { since, until, by, utc_offset_minutes: offset }, args.limit))
}

fn report(args: &UsageArgs) -> Result<String, String> {
    let (query, limit) = query_of(args)?;
    let store = SqliteAuditStore::open_read_only(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    let connection = store.connection();
    if !has_usage_table(connection).map_err(|e| e.to_string())? {
        return Err(format!(
            "{}: the database has no usage table yet: start this version of `warden serve` on it once (it migrates)",
            args.db.display()
        ));
    }
    let mut rows = aggregate(connection, &query).map_err(|e| e.to_string())?;
    let total = Totals::of(&rows);
    let groups = rows.len();
    if let Some(limit) = limit {
        rows.truncate(limit);
    }
    Ok(if args.json { to_json(&query, &rows, groups, &total) } else { to_table(&query, &rows, groups, &total) })
}

/// How a window end reads in output (`null` in JSON when open).
fn window_end(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(format_utc(ms.div_euclid(1000))))
}

fn totals_json(totals: &Totals, into: &mut Map<String, Value>) {
    if let Ok(Value::Object(fields)) = serde_json::to_value(totals) {
        into.extend(fields);
    }
    into.insert("cost".to_string(), Value::String(exact_cost(totals.cost_nanos)));
}

fn to_json(query: &UsageQuery, rows: &[UsageRow], groups: usize, total: &Totals) -> String {
    let by: Vec<&str> = query.by.iter().map(|d| d.name()).collect();
    let listed: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut fields = Map::new();
            for (dimension, key) in query.by.iter().zip(&row.keys) {
                fields.insert(dimension.name().to_string(), key.text().map_or(Value::Null, |t| json!(t)));
                if let Key::Period { start_ms, .. } = key {
                    fields.insert(format!("{}_start_ms", dimension.name()), json!(start_ms));
                }
            }
            totals_json(&row.totals, &mut fields);
            Value::Object(fields)
        })
        .collect();
    let mut total_fields = Map::new();
    totals_json(total, &mut total_fields);
    let document = json!({
        "since": window_end(query.since),
        "until": window_end(query.until),
        "utc_offset_minutes": query.utc_offset_minutes,
        "by": by,
        "groups": groups,
        "rows": listed,
        "total": total_fields,
    });
    format!("{document}\n")
}

fn to_table(query: &UsageQuery, rows: &[UsageRow], groups: usize, total: &Totals) -> String {
    let mut header: Vec<String> = query.by.iter().map(|d| d.name().to_uppercase()).collect();
    header
        .extend(["REQUESTS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "WEB SEARCH", "COST"].map(str::to_string));
    let numbers = |t: &Totals| {
        let flag = if t.unpriced_requests > 0 { "*" } else { "" };
        [
            t.requests.to_string(),
            t.input_tokens.to_string(),
            t.output_tokens.to_string(),
            t.cache_read_tokens.to_string(),
            t.cache_creation_tokens.to_string(),
            t.web_search_requests.to_string(),
            format!("{}{flag}", format_cost(t.cost_nanos)),
        ]
    };
    let mut lines: Vec<Vec<String>> = vec![header];
    for row in rows {
        let mut line: Vec<String> = row.keys.iter().map(|k| clean_label(k.text().unwrap_or("(none)"))).collect();
        line.extend(numbers(&row.totals));
        lines.push(line);
    }
    let mut last: Vec<String> = query.by.iter().map(|_| String::new()).collect();
    if let Some(first) = last.first_mut() {
        *first = "TOTAL".to_string();
    }
    last.extend(numbers(total));
    lines.push(last);
    let columns = lines.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| lines.iter().filter_map(|l| l.get(c)).map(|cell| cell.chars().count()).max().unwrap_or(0))
        .collect();
    let labels = query.by.len();
    let mut out = format!(
        "Usage from {} to {} (end excluded), {} group{}{}\n",
        window_end(query.since).as_str().unwrap_or("the first record"),
        window_end(query.until).as_str().unwrap_or("now"),
        groups,
        if groups == 1 { "" } else { "s" },
        if rows.len() < groups { format!(", the first {} shown", rows.len()) } else { String::new() },
    );
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, width))| {
                let pad = width.saturating_sub(cell.chars().count());
                if c < labels {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    if total.unpriced_requests > 0 {
        let _ = writeln!(
            out,
            "* {} request(s) used tokens but carry no cost (not priced): their tokens are counted, their cost is not.",
            total.unpriced_requests
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden::service::usage::format::LAST_MS;

    /// 2026-12-07T00:00:00Z.
    const DEC_7: i64 = 1_796_601_600_000;

    #[test]
    fn times_are_read_as_epoch_ms_dates_and_iso_date_times() {
        assert_eq!(parse_time("1796601600000", 120, Edge::Start), Ok(DEC_7), "epoch ms ignore the offset");
        assert_eq!(parse_time("2026-12-07", 0, Edge::Start), Ok(DEC_7));
        assert_eq!(parse_time("2026-12-07", 0, Edge::End), Ok(DEC_7 + 86_400_000), "an end date includes its day");
        assert_eq!(parse_time("2026-12-07", 120, Edge::Start), Ok(DEC_7 - 7_200_000), "midnight at UTC+2");
        assert_eq!(parse_time("2026-12-07T09:30", 0, Edge::Start), Ok(DEC_7 + 34_200_000));
        assert_eq!(parse_time("2026-12-07 09:30:15.25", 0, Edge::End), Ok(DEC_7 + 34_215_250));
        assert_eq!(parse_time("2026-12-07T09:30:00Z", 300, Edge::Start), Ok(DEC_7 + 34_200_000));
        assert_eq!(parse_time("2026-12-07T09:30:00+02:00", 0, Edge::Start), Ok(DEC_7 + 27_000_000));
        assert_eq!(parse_time("2026-12-07T09:30-0530", 0, Edge::Start), Ok(DEC_7 + 54_000_000));
        assert_eq!(parse_time("2024-02-29", 0, Edge::Start), Ok(1_709_164_800_000), "a leap day");
        assert_eq!(parse_time("1970-01-01T00:00:00.123456789Z", 0, Edge::Start), Ok(123));
        assert_eq!(parse_time("253402300799999", 0, Edge::End), Ok(LAST_MS), "the last millisecond of 9999");
    }

    #[test]
    fn malformed_times_are_refused_with_the_forms_accepted() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2025-02-29",
            "2026-12-32",
            "2026-12-07T24:00",
            "2026-12-07T09:60",
            "2026-12-07T09",
            "2026-12-07X09:30",
            "2026-12-07T09:30+15:00",
            "2026-12-07T09:30:00.",
            "2026-12-07T09:30 junk",
            "99999999999999999999",
            "253402300800000",
            "-1",
            "2026-1-07",
            "２０２６-12-07",
        ] {
            let error = parse_time(bad, 0, Edge::Start).unwrap_err();
            assert!(error.contains("is not a time: use epoch ms, a date"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn offsets_are_bounded_and_signed() {
        assert_eq!(parse_utc_offset("Z"), Some(0));
        assert_eq!(parse_utc_offset("+02:00"), Some(120));
        assert_eq!(parse_utc_offset("-05:30"), Some(-330));
        assert_eq!(parse_utc_offset("+0545"), Some(345));
        assert_eq!(parse_utc_offset("+14"), Some(840));
        for bad in ["+14:01", "02:00", "+2", "+02:60", "+02:00:00", "+0:200", "+aa:bb", "", "-"] {
            assert_eq!(parse_utc_offset(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn costs_print_exactly_for_scripts_and_rounded_for_people() {
        assert_eq!(exact_cost(1_234_567_890), "1.234567890");
        assert_eq!(exact_cost(u64::MAX), "18446744073.709551615");
        assert_eq!(format_cost(1_234_567_890), "1.2346");
        assert_eq!(format_cost(49_999), "0.0000");
        assert_eq!(format_cost(50_000), "0.0001");
        assert_eq!(format_cost(u64::MAX), "18446744073.7096");
    }

    #[test]
    fn terminal_control_characters_in_labels_are_neutralised() {
        assert_eq!(clean_label("eve\u{1b}[2Jx\n"), "eve?[2Jx?");
    }
}
