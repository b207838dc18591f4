//! `warden budget leases`: the budget ledger `warden serve` keeps for gateway instances that
//! share budgets (docs/budgets.md, "Many instances"), read from its database (read-only) — a
//! table for people, `--json` for scripts (the same JSON as `GET /v1/budget/leases`).
//!
//! Per window of a budget key (newest end first): the budget, the key shortened to its scope and
//! the first hex digits of its hashed subject, the window's start and end at `--utc-offset`, the
//! lowest limits reported, what is granted in total and the dimensions with nothing more to
//! grant; then per instance: granted, committed (the most it reported), `live` or `expired`
//! (renewed within `--lease-ttl` seconds or not — set it as `warden serve` has it) and its last
//! renewal. Amounts: tokens, cost in the price table's currency (from nanos), requests.
//!
//! Limits: labels from the database are shown with control characters replaced (they came from
//! gateways); at most `--limit` windows.
//!
//! Exit codes: 0 success, 2 usage or I/O error.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use warden::service::leases::format::{amounts, format_at, limit_amounts, short_key};
use warden::service::leases::{self, LeaseLedger, WindowRow};
use warden::service::usage::format::{clean_label, parse_utc_offset};
use crate::util::unix_now_millis;

/// Arguments of `warden budget`.
#[derive(clap::Args, Debug)]
pub struct BudgetArgs {
    /// What to show.
    #[command(subcommand)]
    pub command: BudgetCommand,
}

/// Subcommands of `warden budget`.
#[derive(clap::Subcommand, Debug)]
pub enum BudgetCommand {
    /// The leases gateway instances hold on shared budgets, per window.
    Leases(LeasesArgs),
}

/// Arguments of `warden budget leases`.
#[derive(clap::Args, Debug)]
pub struct LeasesArgs {
    /// The `warden serve` database.
    #[arg(long, alias = "store", env = "WARDEN_DB", value_name = "FILE", default_value = "warden-approvals.db")]
    pub db: PathBuf,
    /// A lease not renewed for this many seconds shows as expired (as `warden serve --lease-ttl`).
    #[arg(long, env = "WARDEN_LEASE_TTL", value_name = "SECONDS", default_value_t = leases::DEFAULT_TTL_SECONDS)]
    pub lease_ttl: u64,
    /// The zone times are shown in, as an offset from UTC (`+02:00`, `-05:30`, `Z`).
    #[arg(long, value_name = "±HH:MM", default_value = "Z", allow_hyphen_values = true)]
    pub utc_offset: String,
    /// Show at most N windows (newest end first).
    #[arg(long, value_name = "N", default_value_t = leases::DEFAULT_LIST_LIMIT)]
    pub limit: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `warden budget`.
pub fn run(args: &BudgetArgs) -> ExitCode {
    let BudgetCommand::Leases(leases_args) = &args.command;
    match report(leases_args) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("warden budget leases: {message}");
            ExitCode::from(2)
        }
    }
}

fn report(args: &LeasesArgs) -> Result<String, String> {
    let offset = parse_utc_offset(&args.utc_offset).ok_or_else(|| {
        format!("--utc-offset: {:?} is not an offset like +02:00, -05:30 or Z (at most ±14:00)", args.utc_offset)
    })?;
    let ledger = LeaseLedger::open_read_only(&args.db).map_err(|e| format!("{}: {e}", args.db.display()))?;
    let windows = ledger.windows(args.limit.max(1)).map_err(|e| format!("{}: {e}", args.db.display()))?;
    let now_ms = unix_now_millis();
    Ok(if args.json {
        format!("{}\n", leases::listing_json(&windows, now_ms, args.lease_ttl))
    } else {
        table(&windows, now_ms, args.lease_ttl, offset)
    })
}

fn table(windows: &[WindowRow], now_ms: i64, ttl_seconds: u64, offset: i32) -> String {
    if windows.is_empty() {
        return "no budget windows in the ledger (no gateway has asked for a lease)\n".to_string();
    }
    let ttl_ms = i64::try_from(ttl_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let mut out = String::new();
    for window in windows {
        let limits = window.ledger.limits;
        let exhausted = leases::exhausted_names(window.ledger.exhausted());
        let _ = writeln!(
            out,
            "{}  {}  {} → {}",
            clean_label(&window.budget),
            short_key(&window.key, &window.budget),
            format_at(window.window_start, offset),
            format_at(window.window_end, offset)
        );
        let _ = writeln!(
            out,
            "  limits: {}   granted: {}   exhausted: {}",
            limit_amounts(limits),
            amounts(window.ledger.granted, limits),
            if exhausted.is_empty() { "-".to_string() } else { exhausted.join(", ") }
        );
        let rows: Vec<[String; 5]> = window
            .leases
            .iter()
            .map(|held| {
                let live = leases::is_live(held.renewed_ms, now_ms, ttl_ms);
                [
                    clean_label(&held.instance),
                    amounts(held.lease.granted, limits),
                    amounts(held.lease.committed, limits),
                    (if live { "live" } else { "expired" }).to_string(),
                    format_at(held.renewed_ms.div_euclid(1000), offset),
                ]
            })
            .collect();
        let header = ["INSTANCE", "GRANTED", "COMMITTED", "STATE", "RENEWED"].map(str::to_string);
        let mut widths = header.clone().map(|h| h.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let cells: Vec<String> = row.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
            let _ = writeln!(out, "    {}", cells.join("  ").trim_end());
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden::core::budget::lease::{Grant, InstanceLease, Windowed};

    #[test]
    fn the_command_reads_the_services_database_as_a_table_or_the_apis_json() {
        use warden::core::budget::lease::{LeaseAsk, LeaseRequest};
        let path = std::env::temp_dir().join(format!("warden-budget-cli-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        drop(warden::service::store::Store::open(&path).unwrap());
        let limits = Windowed { tokens: Some(1_000), ..Windowed::default() };
        let ask = LeaseAsk {
            key: "warden.budget.team.role.0123456789abcdef".into(),
            budget: "team".into(),
            window_start: 1_796_601_600,
            window_end: 1_796_688_000,
            limits,
            slice: Grant { tokens: 100, ..Grant::default() },
            committed: Grant::default(),
        };
        let request = LeaseRequest { instance: "gw-1".into(), asks: vec![ask] };
        LeaseLedger::open(&path).unwrap().renew(&request, unix_now_millis()).unwrap();
        let args = |json: bool, utc_offset: &str| LeasesArgs {
            db: path.clone(),
            lease_ttl: 30,
            utc_offset: utc_offset.into(),
            limit: 10,
            json,
        };
        let text = report(&args(false, "+01:00")).unwrap();
        assert!(text.starts_with("team  role.01234567…  2026-12-07 01:00:00+01:00"), "{text}");
        assert!(text.contains("gw-1      tokens 100  tokens 0   live"), "{text}");
        let json: serde_json::Value = serde_json::from_str(&report(&args(true, "Z")).unwrap()).unwrap();
        assert_eq!(json["windows"][0]["leases"][0]["granted"]["tokens"], 100);
        assert!(report(&args(false, "Europe/Paris")).unwrap_err().contains("--utc-offset"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let missing = report(&args(false, "Z")).unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
    }

    #[test]
    fn times_read_in_the_viewers_zone_with_its_offset() {
        assert_eq!(format_at(1_796_644_800, 0), "2026-12-07 12:00:00Z");
        assert_eq!(format_at(1_796_644_800, 120), "2026-12-07 14:00:00+02:00");
        assert_eq!(format_at(1_796_644_800, -330), "2026-12-07 06:30:00-05:30");
    }

    #[test]
    fn keys_are_shortened_to_scope_and_hash_prefix_without_terminal_escapes() {
        assert_eq!(short_key("warden.budget.team-daily.role.0123456789abcdef", "team-daily"), "role.01234567…");
        assert_eq!(short_key("warden.budget.b.x", "b"), "x");
        assert_eq!(short_key("warden.budget.b.\u{1b}[2J", "b"), "?[2J");
    }

    #[test]
    fn the_table_shows_limits_grants_and_each_instance_live_or_expired() {
        let limits = Windowed { tokens: Some(1_000), nanos: Some(2_000_000_000), requests: None };
        let lease = |tokens, renewed_ms| leases::LeaseRow {
            instance: format!("gw-{renewed_ms}"),
            lease: InstanceLease {
                granted: Grant { tokens, nanos: 100_000_000, requests: 0 },
                committed: Grant { tokens: tokens / 2, nanos: 0, requests: 0 },
            },
            first_ms: 0,
            renewed_ms,
        };
        let window = WindowRow {
            key: "warden.budget.team.role.0123456789abcdef".into(),
            budget: "team".into(),
            window_start: 1_796_601_600,
            window_end: 1_796_688_000,
            ledger: warden::core::budget::lease::WindowLedger {
                limits,
                granted: Grant { tokens: 1_000, nanos: 200_000_000, requests: 0 },
            },
            leases: vec![lease(600, 1_796_644_790_000), lease(400, 1_796_644_700_000)],
        };
        let text = table(&[window], 1_796_644_800_000, 30, 60);
        assert!(
            text.starts_with("team  role.01234567…  2026-12-07 01:00:00+01:00 → 2026-12-08 01:00:00+01:00\n"),
            "{text}"
        );
        assert!(
            text.contains("limits: tokens 1000 · cost 2.0000   granted: tokens 1000 · cost 0.2000   exhausted: tokens"),
            "{text}"
        );
        assert!(text.contains("gw-1796644790000  tokens 600 · cost 0.1000  tokens 300 · cost 0.0000  live"), "{text}");
        assert!(text.contains("expired  2026-12-07 12:58:20+01:00"), "{text}");
        assert!(!text.contains("requests"), "unlimited dimensions are left out");
        assert!(table(&[], 0, 30, 0).starts_with("no budget windows"));
    }
}
