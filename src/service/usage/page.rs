//! The usage page of `warden serve` (`GET /usage`): spend over time per role as a chart, the top
//! spenders and the totals per role, for a window of dates in the viewer's time zone.
//!
//! Who may read it: auditors only (signed in as on `/reviews`, in an `approvals.auditors` group),
//! like the session pages — spend per person is personal data. Queries run on the session pages'
//! read-only connection and turn ([`SessionPages`]), so they never hold up ingest.
//!
//! Query string: `from`, `to` (dates `2026-12-07` — `to` included — or any form
//! [`super::format::parse_time`] reads), `tz` (the viewer's offset from UTC in minutes, east
//! positive, −840…840). Without dates the window is the last [`DEFAULT_DAYS`] days up to today.
//! Without `tz` the page is drawn in UTC and the console's script (`/console.js`, the only
//! script any page runs) fills in the browser's offset and reloads once; with scripts off the
//! page stays in UTC and says so.
//!
//! The chart is an inline SVG drawn here (no script, nothing fetched: the console runs
//! air-gapped): one line per role over day buckets (hour buckets for windows of two days or
//! less), the [`MAX_ROLES`] most expensive roles and the rest summed as "other roles"; it plots
//! cost, or tokens when nothing in the window is priced. Stable ids for tests: `usage-window`
//! (the form: `usage-from`, `usage-to`, `usage-tz`), `usage-chart` (the SVG; each role a
//! `<g class="series" data-role=…>` with a `polyline` and one `circle` per bucket), `usage-roles`
//! and `top-spenders` (tables; rows carry `data-subject`/`data-role`, `data-requests` and
//! `data-cost-nanos`).
//!
//! Below them, "Budgets across gateways": the leased budget windows overlapping the page's dates
//! ([`crate::service::leases::page_section`], read on the same connection and turn).
//!
//! Limits: a window spans at most [`MAX_DAYS`] days; the per-role table lists at most
//! [`MAX_ROLE_ROWS`] roles (and counts the rest); buckets use one fixed offset for the whole
//! window (a daylight-saving change inside it shifts the later buckets by an hour); the offset is
//! the browser's at the time of viewing.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use crate::service::console::{self, Section};
use crate::service::approvals::page::{authenticate, error_page, escape, unauthenticated, PageAuth};
use crate::service::console::sessions::{query_failed, SessionPages};
use crate::service::util::unix_now_millis;
use super::aggregate::{aggregate, sort_by_spend, Dimension, Key, Totals, UsageQuery, UsageRow};
use crate::service::usage::format::{format_cost, parse_time, Edge};

/// Days shown when the viewer names no window.
pub const DEFAULT_DAYS: i64 = 14;
/// Longest window, in days.
pub const MAX_DAYS: i64 = 400;
/// Roles drawn as lines of their own (the rest are summed into one).
pub const MAX_ROLES: usize = 8;
/// Rows of the top spenders table.
pub const TOP_SPENDERS: usize = 20;
/// Rows of the per-role table (roles come from the policy: a handful; the rest are counted).
pub const MAX_ROLE_ROWS: usize = 100;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Line colours, one per role (then grey for "other roles").
const COLOURS: [&str; MAX_ROLES] =
    ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
const OTHER_COLOUR: &str = "#6b7280";

const STYLE: &str = "<style>#usage-window{display:flex;gap:1em;align-items:end;flex-wrap:wrap;margin:.5em 0 1em}\
#usage-chart{width:100%;height:auto;background:#fff;border:1px solid #d8dce3;border-radius:6px}\
#usage-chart text{font:11px system-ui,sans-serif;fill:#5a6375}.swatch{display:inline-block;width:.8em;height:.8em;\
border-radius:2px;margin-right:.4em;vertical-align:middle}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}</style>";

/// Query of `/usage`.
#[derive(Debug, Default, Deserialize)]
pub struct UsagePageQuery {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    tz: Option<String>,
    #[serde(default)]
    again: Option<String>,
}

/// The window a page shows, resolved from its query.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    since: i64,
    until: i64,
    /// The viewer's offset (minutes east), `None` when the browser has not told it yet.
    tz: Option<i32>,
    bucket: Dimension,
}

impl Window {
    fn offset(&self) -> i32 {
        self.tz.unwrap_or(0)
    }

    fn bucket_ms(&self) -> i64 {
        if self.bucket == Dimension::Hour {
            HOUR_MS
        } else {
            DAY_MS
        }
    }

    fn query(&self, by: Vec<Dimension>) -> UsageQuery {
        UsageQuery { since: Some(self.since), until: Some(self.until), by, utc_offset_minutes: self.offset() }
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The window of `query` at `now` (ms), or what is wrong with it.
fn window(query: &UsagePageQuery, now: i64) -> Result<Window, String> {
    let tz = match non_empty(&query.tz) {
        None => None,
        Some(text) => match text.parse::<i32>() {
            Ok(minutes) if (-840..=840).contains(&minutes) => Some(minutes),
            _ => return Err("tz must be the offset from UTC in minutes (−840 to 840)".to_string()),
        },
    };
    let offset_ms = i64::from(tz.unwrap_or(0)) * 60_000;
    let tomorrow = (now + offset_ms).div_euclid(DAY_MS).saturating_add(1).saturating_mul(DAY_MS) - offset_ms;
    let until = match non_empty(&query.to) {
        Some(text) => parse_time(text, tz.unwrap_or(0), Edge::End).map_err(|e| format!("to: {e}"))?,
        None => tomorrow,
    };
    let since = match non_empty(&query.from) {
        Some(text) => parse_time(text, tz.unwrap_or(0), Edge::Start).map_err(|e| format!("from: {e}"))?,
        None => until.saturating_sub(DEFAULT_DAYS * DAY_MS),
    };
    if until <= since {
        return Err("the window's end must be after its start".to_string());
    }
    if until - since > MAX_DAYS * DAY_MS {
        return Err(format!("choose a window of at most {MAX_DAYS} days"));
    }
    let bucket = if until - since <= 2 * DAY_MS { Dimension::Hour } else { Dimension::Day };
    Ok(Window { since, until, tz, bucket })
}

/// What the page shows, read in one turn.
struct Figures {
    series: Vec<UsageRow>,
    roles: Vec<UsageRow>,
    spenders: Vec<UsageRow>,
    spender_count: usize,
    total: Totals,
    /// The budget windows leased by gateways that overlap the page's window.
    budgets: Vec<crate::service::leases::WindowRow>,
}

/// `GET /usage`.
pub async fn usage(
    State(state): State<Arc<SessionPages>>,
    headers: HeaderMap,
    Query(query): Query<UsagePageQuery>,
) -> Response {
    let service = &state.service;
    let (approver, source) = match authenticate(service, &headers).await {
        PageAuth::Approver(approver, source) => (approver, source),
        other => return unauthenticated(service, other, "/usage", query.again.is_some()),
    };
    let who = Some((&approver, source));
    if service.ensure_auditor(&approver).is_err() {
        let message = format!(
            "{} is not in an auditor group of the policy (approvals.auditors): spend per person is for auditors",
            approver.subject
        );
        return error_page(StatusCode::FORBIDDEN, who, &message);
    }
    let window = match window(&query, unix_now_millis()) {
        Ok(window) => window,
        Err(message) => return error_page(StatusCode::BAD_REQUEST, who, &message),
    };
    let asked = window.clone();
    let read = state
        .query(move |store| {
            let connection = store.connection();
            // Two scans: the roles and the total are sums of the series.
            let series = aggregate(connection, &asked.query(vec![asked.bucket, Dimension::Role]))?;
            let roles = roles_of(&series);
            let total = Totals::of(&roles);
            let mut spenders = aggregate(connection, &asked.query(vec![Dimension::Subject]))?;
            let spender_count = spenders.len();
            spenders.truncate(TOP_SPENDERS);
            let seconds = (asked.since.div_euclid(1000), asked.until.div_euclid(1000).saturating_add(1));
            let budgets = crate::service::leases::windows_on(connection, Some(seconds), crate::service::leases::PAGE_WINDOWS)?;
            Ok(Figures { series, roles, spenders, spender_count, total, budgets })
        })
        .await;
    let figures = match read {
        Ok(figures) => figures,
        Err(e) => return query_failed(who, "reading usage", e),
    };
    let mut content = render(&window, &figures);
    let budgets =
        crate::service::leases::page_section(&figures.budgets, unix_now_millis(), state.lease_ttl_seconds, window.offset());
    content.push_str(&budgets);
    console::respond(StatusCode::OK, console::page("Usage", Some(Section::Usage), who, &content))
}

/// `UTC+05:30`.
fn zone_name(minutes: i32) -> String {
    let sign = if minutes < 0 { '−' } else { '+' };
    let minutes = minutes.unsigned_abs();
    format!("UTC{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// `2026-12-07` of `ms` at `offset` minutes east.
fn local_date(ms: i64, offset: i32) -> String {
    let text = crate::service::util::format_utc((ms + i64::from(offset) * 60_000).div_euclid(1000));
    text.get(..10).unwrap_or(&text).to_string()
}

fn role_label(key: Option<&Key>) -> String {
    key.and_then(Key::text).unwrap_or("(no role)").to_string()
}

fn render(window: &Window, figures: &Figures) -> String {
    let offset = window.offset();
    let (from, to) = if window.tz.is_some() {
        (local_date(window.since, offset), local_date(window.until - 1, offset))
    } else {
        (String::new(), String::new())
    };
    let zone = match window.tz {
        Some(minutes) => format!("Dates in your time zone ({})", zone_name(minutes)),
        None => "Dates in UTC (your browser did not send its time zone)".to_string(),
    };
    let tz = window.tz.map(|m| m.to_string()).unwrap_or_default();
    let priced = figures.total.cost_nanos > 0;
    let mut out = format!(
        r#"{STYLE}<section id="usage"><h2>Usage</h2>
<form method="get" action="/usage" id="usage-window">
<label>From <input type="date" name="from" id="usage-from" value="{from}"></label>
<label>To <input type="date" name="to" id="usage-to" value="{to}"></label>
<input type="hidden" name="tz" id="usage-tz" value="{tz}">
<button type="submit">Show</button><span class="note" id="usage-zone">{zone}</span></form>
<p id="usage-summary">{requests} requests, {tokens} tokens, cost {cost}{flag} from {since} to {until}.</p>"#,
        from = escape(&from),
        to = escape(&to),
        tz = escape(&tz),
        zone = escape(&zone),
        requests = figures.total.requests,
        tokens = figures.total.tokens(),
        cost = format_cost(figures.total.cost_nanos),
        flag = if figures.total.unpriced_requests > 0 { "*" } else { "" },
        since = escape(&local_date(window.since, offset)),
        until = escape(&local_date(window.until - 1, offset)),
    );
    let roles = chart_roles(&figures.roles);
    out.push_str(&chart(window, &figures.series, &roles, priced));
    out.push_str(&roles_table(&figures.roles, &roles));
    out.push_str(&spenders_table(&figures.spenders, figures.spender_count));
    if figures.total.unpriced_requests > 0 {
        let _ = write!(
            out,
            r#"<p class="note" id="usage-unpriced">* {} request(s) used tokens but carry no cost (the policy priced nothing for them): their tokens are counted, their cost is not.</p>"#,
            figures.total.unpriced_requests
        );
    }
    out.push_str("</section>");
    out
}

/// Per-role totals of `series` (rows keyed by bucket then role), most expensive first.
fn roles_of(series: &[UsageRow]) -> Vec<UsageRow> {
    let mut sums: std::collections::BTreeMap<Option<String>, Totals> = std::collections::BTreeMap::new();
    for row in series {
        let role = row.keys.get(1).and_then(Key::text).map(str::to_string);
        sums.entry(role).or_default().add(&row.totals);
    }
    let mut roles: Vec<UsageRow> =
        sums.into_iter().map(|(role, totals)| UsageRow { keys: vec![Key::Label(role)], totals }).collect();
    sort_by_spend(&mut roles);
    roles
}

/// The roles drawn as lines, most expensive first (at most [`MAX_ROLES`]).
fn chart_roles(roles: &[UsageRow]) -> Vec<String> {
    roles.iter().take(MAX_ROLES).map(|row| role_label(row.keys.first())).collect()
}

/// The value a chart plots for `totals`: cost when the window is priced, else tokens.
fn plotted(totals: &Totals, priced: bool) -> u64 {
    if priced {
        totals.cost_nanos
    } else {
        totals.tokens()
    }
}

/// A round axis maximum at or above `value` (1, 2 or 5 times a power of ten).
fn axis_max(value: u64) -> u64 {
    let mut step: u64 = 1;
    loop {
        for factor in [1, 2, 5] {
            let candidate = step.saturating_mul(factor);
            if candidate >= value || candidate == u64::MAX {
                return candidate.max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// How an axis value reads: cost in currency units, or tokens.
fn axis_text(value: u64, priced: bool) -> String {
    if priced {
        format_cost(value)
    } else {
        value.to_string()
    }
}

/// How the bucket starting at `start` (ms) reads at the window's offset: `2026-12-07`, or
/// `12-07 13:00` for hours.
fn bucket_label(window: &Window, start: i64) -> String {
    if window.bucket == Dimension::Hour {
        let text = crate::service::util::format_utc((start + i64::from(window.offset()) * 60_000).div_euclid(1000));
        text.get(5..16).unwrap_or(&text).replace('T', " ")
    } else {
        local_date(start, window.offset())
    }
}

/// The SVG chart of `series` (rows keyed by bucket then role).
fn chart(window: &Window, series: &[UsageRow], roles: &[String], priced: bool) -> String {
    const WIDTH: i64 = 800;
    const HEIGHT: i64 = 280;
    const LEFT: i64 = 90;
    const RIGHT: i64 = 780;
    const TOP: i64 = 16;
    const BOTTOM: i64 = 240;
    let bucket_ms = window.bucket_ms();
    let offset_ms = i64::from(window.offset()) * 60_000;
    let first = (window.since + offset_ms).div_euclid(bucket_ms) * bucket_ms - offset_ms;
    let buckets = usize::try_from((window.until - first + bucket_ms - 1) / bucket_ms).unwrap_or(1).max(1);
    // values[line][bucket]; the last line sums the roles beyond the drawn ones.
    let mut values = vec![vec![0u64; buckets]; roles.len() + 1];
    for row in series {
        let (Some(Key::Period { start_ms, .. }), Some(role)) = (row.keys.first(), row.keys.get(1)) else { continue };
        let Ok(index) = usize::try_from((start_ms - first).div_euclid(bucket_ms)) else { continue };
        let role = role_label(Some(role));
        let line = roles.iter().position(|r| *r == role).unwrap_or(roles.len());
        if let Some(slot) = values.get_mut(line).and_then(|l| l.get_mut(index)) {
            *slot = slot.saturating_add(plotted(&row.totals, priced));
        }
    }
    let has_other = values.last().is_some_and(|l| l.iter().any(|v| *v > 0));
    let peak = values.iter().flatten().copied().max().unwrap_or(0);
    let top = axis_max(peak);
    let x = |index: usize| -> i64 {
        let index = i64::try_from(index).unwrap_or(0);
        let span = i64::try_from(buckets).unwrap_or(1);
        if span <= 1 {
            (LEFT + RIGHT) / 2
        } else {
            LEFT + (RIGHT - LEFT) * index / (span - 1)
        }
    };
    let y = |value: u64| -> i64 {
        let scaled = u128::from(value) * u128::from(u64::try_from(BOTTOM - TOP).unwrap_or(1)) / u128::from(top);
        BOTTOM - i64::try_from(scaled).unwrap_or(0)
    };
    let metric = if priced { "cost" } else { "tokens (nothing in this window is priced)" };
    let mut svg = format!(
        r#"<svg id="usage-chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" data-metric="{}">"#,
        escape(&format!("{metric} per role over time")),
        if priced { "cost" } else { "tokens" }
    );
    for (value, label) in
        [(0, axis_text(0, priced)), (top / 2, axis_text(top / 2, priced)), (top, axis_text(top, priced))]
    {
        let at = y(value);
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{at}" x2="{RIGHT}" y2="{at}" stroke="#e3e6eb"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            LEFT - 6,
            at + 4,
            escape(&label)
        );
    }
    let last = buckets - 1;
    let mut labelled = vec![0, last / 2, last];
    labelled.dedup();
    for index in labelled {
        let label = bucket_label(window, first + bucket_ms * i64::try_from(index).unwrap_or(0));
        // The first label starts at its point and the last ends at it: both stay inside the chart.
        let anchor = match index {
            _ if last == 0 => "middle",
            0 => "start",
            i if i == last => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="{anchor}">{}</text>"#,
            x(index),
            BOTTOM + 18,
            escape(&label)
        );
    }
    let _ = write!(svg, r#"<text x="8" y="{}">{}</text>"#, HEIGHT - 6, escape(metric));
    let other = "other roles".to_string();
    for (line, points) in values.iter().enumerate() {
        let (name, colour) = match roles.get(line) {
            Some(role) => (role, COLOURS.get(line).copied().unwrap_or(OTHER_COLOUR)),
            None if has_other => (&other, OTHER_COLOUR),
            None => continue,
        };
        let path: Vec<String> = points.iter().enumerate().map(|(i, v)| format!("{},{}", x(i), y(*v))).collect();
        let _ = write!(
            svg,
            r#"<g class="series" data-role="{role}"><polyline points="{}" fill="none" stroke="{colour}" stroke-width="2.5"/>"#,
            path.join(" "),
            role = escape(name),
        );
        for (index, value) in points.iter().enumerate() {
            let start = first + bucket_ms * i64::try_from(index).unwrap_or(0);
            let _ = write!(
                svg,
                r#"<circle cx="{}" cy="{}" r="3.5" fill="{colour}"><title>{}</title></circle>"#,
                x(index),
                y(*value),
                escape(&format!("{name}, {}: {}", bucket_label(window, start), axis_text(*value, priced)))
            );
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

fn number_cells(totals: &Totals) -> String {
    let flag = if totals.unpriced_requests > 0 { "*" } else { "" };
    format!(
        r#"<td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}</td><td class="n">{}{flag}</td>"#,
        totals.requests,
        totals.input_tokens,
        totals.output_tokens,
        totals.cache_read_tokens,
        totals.cache_creation_tokens,
        totals.web_search_requests,
        format_cost(totals.cost_nanos),
    )
}

const NUMBER_HEADERS: &str = r#"<th class="n">Requests</th><th class="n">Input</th><th class="n">Output</th><th class="n">Cache read</th><th class="n">Cache write</th><th class="n">Web search</th><th class="n">Cost</th>"#;

fn roles_table(rows: &[UsageRow], drawn: &[String]) -> String {
    let mut out = format!(
        r#"<h3>Per role</h3><table id="usage-roles"><thead><tr><th>Role</th>{NUMBER_HEADERS}</tr></thead><tbody>"#
    );
    for row in rows.iter().take(MAX_ROLE_ROWS) {
        let role = role_label(row.keys.first());
        let colour =
            drawn.iter().position(|r| *r == role).and_then(|i| COLOURS.get(i)).copied().unwrap_or(OTHER_COLOUR);
        let _ = write!(
            out,
            r#"<tr class="role" data-role="{role}" data-requests="{}" data-cost-nanos="{}"><td><span class="swatch" style="background:{colour}"></span>{role}</td>{}</tr>"#,
            row.totals.requests,
            row.totals.cost_nanos,
            number_cells(&row.totals),
            role = escape(&role),
        );
    }
    if rows.is_empty() {
        out.push_str(r#"<tr id="no-usage"><td colspan="8" class="note">No requests in this window.</td></tr>"#);
    }
    if let Some(more) = rows.len().checked_sub(MAX_ROLE_ROWS).filter(|n| *n > 0) {
        let _ = write!(out, r#"<tr id="more-roles"><td colspan="8" class="note">and {more} more roles</td></tr>"#);
    }
    out.push_str("</tbody></table>");
    out
}

fn spenders_table(rows: &[UsageRow], count: usize) -> String {
    let heading = if count > rows.len() {
        format!("Top spenders (the first {} of {count})", rows.len())
    } else {
        "Top spenders".to_string()
    };
    let mut out = format!(
        r#"<h3>{heading}</h3><table id="top-spenders"><thead><tr><th>Subject</th>{NUMBER_HEADERS}</tr></thead><tbody>"#
    );
    for row in rows {
        let subject = row.keys.first().and_then(Key::text).unwrap_or("(unknown)");
        let _ = write!(
            out,
            r#"<tr class="spender" data-subject="{subject}" data-requests="{}" data-cost-nanos="{}"><td>{subject}</td>{}</tr>"#,
            row.totals.requests,
            row.totals.cost_nanos,
            number_cells(&row.totals),
            subject = escape(subject),
        );
    }
    out.push_str("</tbody></table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T00:00:00Z.
    const DEC_7: i64 = 1_796_601_600_000;

    fn query(from: &str, to: &str, tz: &str) -> UsagePageQuery {
        let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
        UsagePageQuery { from: some(from), to: some(to), tz: some(tz), again: None }
    }

    fn row(keys: Vec<Key>, cost: u64, tokens: u64) -> UsageRow {
        UsageRow { keys, totals: Totals { requests: 1, input_tokens: tokens, cost_nanos: cost, ..Totals::default() } }
    }

    #[test]
    fn the_window_is_read_in_the_viewers_zone_and_defaults_to_the_last_two_weeks() {
        let w = window(&query("2026-12-01", "2026-12-07", "120"), 0).unwrap();
        assert_eq!((w.since, w.until), (DEC_7 - 6 * DAY_MS - 2 * HOUR_MS, DEC_7 + DAY_MS - 2 * HOUR_MS));
        assert_eq!((w.tz, w.bucket), (Some(120), Dimension::Day));
        // 2026-12-07T23:30Z is already the 8th at UTC+01:00: the window ends with that day.
        let late = DEC_7 + 23 * HOUR_MS + 30 * 60_000;
        let w = window(&query("", "", "60"), late).unwrap();
        assert_eq!(w.until, DEC_7 + 2 * DAY_MS - HOUR_MS);
        assert_eq!(w.until - w.since, DEFAULT_DAYS * DAY_MS);
        let w = window(&query("2026-12-07", "2026-12-07", ""), 0).unwrap();
        assert_eq!((w.since, w.until, w.tz, w.bucket), (DEC_7, DEC_7 + DAY_MS, None, Dimension::Hour));
    }

    #[test]
    fn a_bad_window_is_refused_with_its_reason() {
        assert!(window(&query("2026-12-08", "2026-12-01", "0"), 0).unwrap_err().contains("after its start"));
        assert!(window(&query("2020-01-01", "2026-12-01", "0"), 0).unwrap_err().contains("at most 400 days"));
        assert!(window(&query("", "", "900"), 0).unwrap_err().contains("tz must be"));
        assert!(window(&query("", "", "x"), 0).unwrap_err().contains("tz must be"));
        assert!(window(&query("<script>", "", "0"), 0).unwrap_err().starts_with("from: "));
        assert!(window(&query("", "99999999999999999", "0"), 0).unwrap_err().starts_with("to: "));
        // The latest window there is still draws.
        let last = window(&query("9999-12-01", "9999-12-31", "-840"), 0).unwrap();
        assert!(chart(&last, &[], &[], false).contains(r#"text-anchor="end">9999-12-31<"#));
    }

    #[test]
    fn the_chart_draws_one_line_per_role_with_a_point_per_bucket() {
        let w = window(&query("2026-12-07", "2026-12-09", "0"), 0).unwrap();
        let day = |n: i64, label: &str| Key::Period { start_ms: DEC_7 + n * DAY_MS, label: label.into() };
        let role = |r: &str| Key::Label(Some(r.to_string()));
        let series = vec![
            row(vec![day(0, "2026-12-07"), role("developer")], 2_000_000_000, 5),
            row(vec![day(2, "2026-12-09"), role("analyst")], 500_000_000, 5),
        ];
        let svg = chart(&w, &series, &["developer".into(), "analyst".into()], true);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 6, "3 days × 2 roles");
        assert!(svg.contains(r#"data-role="developer""#) && svg.contains(r#"data-role="analyst""#));
        assert!(svg.contains("developer, 2026-12-07: 2.0000"), "{svg}");
        assert!(svg.contains(r#"data-metric="cost""#));
        assert!(svg.contains(r#"text-anchor="start">2026-12-07<"#) && svg.contains(r#"text-anchor="end">2026-12-09<"#));
        // The peak sits on the top grid line.
        assert!(svg.contains(r#"points="90,16 435,240 780,240""#), "{svg}");
    }

    #[test]
    fn roles_beyond_the_drawn_ones_are_summed_and_an_unpriced_window_plots_tokens() {
        let w = window(&query("2026-12-07", "2026-12-07", "0"), 0).unwrap();
        let hour = Key::Period { start_ms: DEC_7, label: "2026-12-07T00:00".into() };
        let series = vec![
            row(vec![hour.clone(), Key::Label(Some("a".into()))], 0, 10),
            row(vec![hour.clone(), Key::Label(Some("b".into()))], 0, 3),
            row(vec![hour, Key::Label(None)], 0, 4),
        ];
        let svg = chart(&w, &series, &["a".into()], false);
        assert!(svg.contains(r#"data-role="other roles""#) && svg.contains("other roles, 12-07 00:00: 7"), "{svg}");
        assert!(svg.contains(r#"data-metric="tokens""#));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a, 12-07 00:00: 10") && svg.contains("a, 12-07 23:00: 0"), "hour buckets: {svg}");
    }

    #[test]
    fn every_label_is_escaped_in_the_chart_and_the_tables() {
        let w = window(&query("2026-12-07", "2026-12-08", "0"), 0).unwrap();
        let evil = r#"<script>alert("x")</script>"#;
        let day = Key::Period { start_ms: DEC_7, label: "2026-12-07".into() };
        let label = Key::Label(Some(evil.to_string()));
        let figures = Figures {
            series: vec![row(vec![day, label.clone()], 1, 1)],
            roles: vec![row(vec![label.clone()], 1, 1)],
            spenders: vec![row(vec![label], 1, 1)],
            spender_count: 1,
            total: Totals::default(),
            budgets: vec![],
        };
        let html = render(&w, &figures);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
        assert!(!html.contains("<script"), "no script of its own: {html}");
    }

    #[test]
    fn role_totals_are_summed_from_the_series_most_expensive_first() {
        let day = |n: i64| Key::Period { start_ms: DEC_7 + n * DAY_MS, label: String::new() };
        let role = |r: Option<&str>| Key::Label(r.map(str::to_string));
        let roles = roles_of(&[
            row(vec![day(0), role(Some("a"))], 5, 1),
            row(vec![day(1), role(Some("a"))], 5, 1),
            row(vec![day(0), role(Some("b"))], 20, 1),
            row(vec![day(1), role(None)], 0, 7),
        ]);
        let found: Vec<(Option<&str>, u64, u64)> =
            roles.iter().map(|r| (r.keys[0].text(), r.totals.cost_nanos, r.totals.requests)).collect();
        assert_eq!(found, vec![(Some("b"), 20, 1), (Some("a"), 10, 2), (None, 0, 1)]);
    }

    #[test]
    fn the_per_role_table_is_bounded() {
        let rows: Vec<UsageRow> =
            (0..MAX_ROLE_ROWS + 3).map(|i| row(vec![Key::Label(Some(format!("role-{i}")))], 1, 1)).collect();
        let html = roles_table(&rows, &[]);
        assert_eq!(html.matches(r#"<tr class="role""#).count(), MAX_ROLE_ROWS);
        assert!(html.contains("and 3 more roles"));
    }

    #[test]
    fn axis_maxima_are_round_and_never_zero() {
        assert_eq!([0, 1, 3, 7, 10, 11, 450, 2_000_000_001].map(axis_max), [1, 1, 5, 10, 10, 20, 500, 5_000_000_000]);
        assert_eq!(axis_max(u64::MAX), u64::MAX);
    }

    #[test]
    fn the_zone_reads_as_an_offset() {
        assert_eq!(zone_name(330), "UTC+05:30");
        assert_eq!(zone_name(-300), "UTC−05:00");
    }
}
