//! How the budget ledger's windows read for people (`warden budget leases` and the console's
//! usage page): times at an offset from UTC, shortened ledger keys and the amounts a window's
//! limits bound. Pure formatting; labels from the ledger are made safe for a terminal.

use crate::core::budget::lease::{Grant, Windowed};
use crate::core::budget::ledger::KEY_PREFIX;
use crate::service::usage::format::{clean_label, format_cost};
use crate::service::util::format_utc;

/// `2026-12-07 14:30:05+02:00` for `seconds` since the epoch, at `offset` minutes east of UTC.
pub fn format_at(seconds: i64, offset: i32) -> String {
    let local = format_utc(seconds.saturating_add(i64::from(offset) * 60)).replace('T', " ");
    let local = local.strip_suffix('Z').unwrap_or(&local).to_string();
    if offset == 0 {
        return format!("{local}Z");
    }
    let sign = if offset < 0 { '-' } else { '+' };
    format!("{local}{sign}{:02}:{:02}", offset.unsigned_abs() / 60, offset.unsigned_abs() % 60)
}

/// The key without its prefix and budget name: scope and the first 8 hex digits of the hash.
pub fn short_key(key: &str, budget: &str) -> String {
    let rest = key.strip_prefix(KEY_PREFIX).unwrap_or(key);
    let rest = rest.strip_prefix(budget).and_then(|r| r.strip_prefix('.')).unwrap_or(rest);
    let short: String = rest.chars().take(13).collect();
    let cut = if rest.chars().count() > 13 { "…" } else { "" };
    clean_label(&format!("{short}{cut}"))
}

/// The limits as [`amounts`] shows them: `tokens 200000 · requests 500`.
pub fn limit_amounts(limits: Windowed) -> String {
    let limit = |value: Option<u64>| value.unwrap_or(0);
    amounts(
        Grant { tokens: limit(limits.tokens), nanos: limit(limits.nanos), requests: limit(limits.requests) },
        limits,
    )
}

/// `tokens 1200 · cost 0.0300 · requests 5`, the dimensions `limits` bounds.
pub fn amounts(grant: Grant, limits: Windowed) -> String {
    let mut parts = Vec::new();
    if limits.tokens.is_some() {
        parts.push(format!("tokens {}", grant.tokens));
    }
    if limits.nanos.is_some() {
        parts.push(format!("cost {}", format_cost(grant.nanos)));
    }
    if limits.requests.is_some() {
        parts.push(format!("requests {}", grant.requests));
    }
    parts.join(" · ")
}
