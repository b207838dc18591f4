//! The time and money forms of the usage reports (`warden usage`, `warden budget leases` and
//! the console's usage page): window edges parsed from epoch milliseconds, plain dates or ISO
//! 8601 date-times ([`parse_time`]), UTC offsets ([`parse_utc_offset`]), costs in billionths of
//! the policy's currency ([`format_cost`], [`exact_cost`]) and labels made safe for a terminal
//! ([`clean_label`]). Pure functions; years 1970–9999 only, so window arithmetic never overflows.

/// Which end of a window a time names (a plain date as an end means the end of that day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The first instant included.
    Start,
    /// The first instant excluded.
    End,
}

/// `1.234567890` for `1234567890` nanos: the exact decimal amount.
pub fn exact_cost(nanos: u64) -> String {
    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}

/// `1.2346` for `1234567890` nanos: rounded half up to four decimals, for people.
pub fn format_cost(nanos: u64) -> String {
    let tenths_of_thousandths = nanos / 100_000 + u64::from(nanos % 100_000 >= 50_000);
    format!("{}.{:04}", tenths_of_thousandths / 10_000, tenths_of_thousandths % 10_000)
}

/// A label made safe for a terminal: control characters (escape sequences) become `?`.
pub fn clean_label(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Minutes east of UTC in `+HH:MM`, `-HH:MM`, `+HHMM`, `+HH` or `Z` form (at most ±14:00).
pub fn parse_utc_offset(text: &str) -> Option<i32> {
    let text = text.trim();
    if text == "Z" || text == "z" {
        return Some(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, text.get(1..)?),
        b'-' => (-1, text.get(1..)?),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    let colon_placed = !rest.contains(':') || (rest.len() == 5 && rest.find(':') == Some(2));
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) || !colon_placed {
        return None;
    }
    let hours: i32 = digits.get(..2)?.parse().ok()?;
    let minutes: i32 = if digits.len() == 4 { digits.get(2..)?.parse().ok()? } else { 0 };
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= 14 * 60).then_some(sign * total)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A fixed-width decimal field of `text` at `range`, within `bounds`.
fn field(text: &str, range: std::ops::Range<usize>, bounds: std::ops::RangeInclusive<i64>) -> Option<i64> {
    let digits = text.get(range)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| bounds.contains(n))
}

/// The last millisecond of the year 9999: later epoch times are refused (so window arithmetic
/// never overflows).
pub const LAST_MS: i64 = 253_402_300_799_999;

/// Milliseconds since the epoch of `text`: epoch milliseconds (digits only), a plain date
/// (`2026-12-07`: its midnight, or with [`Edge::End`] the next midnight, so the day is
/// included) or a date-time `2026-12-07T09:30[:15[.250]]` (`T` or a space) with an optional zone
/// (`Z`, `±HH:MM`, `±HHMM`). Dates and times without a zone are read `offset_minutes` east of
/// UTC. Years 1970–9999 (epoch milliseconds up to the end of 9999).
pub fn parse_time(text: &str, offset_minutes: i32, edge: Edge) -> Result<i64, String> {
    const FORMS: &str = "epoch ms, a date (2026-12-07) or an ISO date-time (2026-12-07T09:30, 2026-12-07T09:30:00Z)";
    let text = text.trim();
    let invalid = || format!("{text:?} is not a time: use {FORMS}");
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok().filter(|ms| *ms <= LAST_MS).ok_or_else(invalid);
    }
    let date = (|| {
        if text.as_bytes().get(4) != Some(&b'-') || text.as_bytes().get(7) != Some(&b'-') {
            return None;
        }
        let year = field(text, 0..4, 1970..=9999)?;
        let month = field(text, 5..7, 1..=12)?;
        let day = field(text, 8..10, 1..=days_in_month(year, month))?;
        Some(days_from_civil(year, month, day))
    })()
    .ok_or_else(invalid)?;
    let day_ms = date * 86_400_000;
    let local_offset_ms = i64::from(offset_minutes) * 60_000;
    let rest = text.get(10..).ok_or_else(invalid)?;
    if rest.is_empty() {
        let end = if edge == Edge::End { 86_400_000 } else { 0 };
        return Ok(day_ms + end - local_offset_ms);
    }
    if !(rest.starts_with('T') || rest.starts_with('t') || rest.starts_with(' ')) {
        return Err(invalid());
    }
    let clock = rest.get(1..).ok_or_else(invalid)?;
    let hour = field(clock, 0..2, 0..=23).ok_or_else(invalid)?;
    if clock.as_bytes().get(2) != Some(&b':') {
        return Err(invalid());
    }
    let minute = field(clock, 3..5, 0..=59).ok_or_else(invalid)?;
    let mut at = 5;
    let mut second = 0;
    let mut millis = 0;
    if clock.as_bytes().get(at) == Some(&b':') {
        second = field(clock, 6..8, 0..=59).ok_or_else(invalid)?;
        at = 8;
        if clock.as_bytes().get(at) == Some(&b'.') {
            let digits = clock.get(at + 1..).unwrap_or("").bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return Err(invalid());
            }
            let fraction = clock.get(at + 1..at + 1 + digits.min(3)).ok_or_else(invalid)?;
            millis = format!("{fraction:0<3}").parse::<i64>().map_err(|_| invalid())?;
            at += 1 + digits;
        }
    }
    let zone = clock.get(at..).ok_or_else(invalid)?;
    let offset_ms =
        if zone.is_empty() { local_offset_ms } else { i64::from(parse_utc_offset(zone).ok_or_else(invalid)?) * 60_000 };
    Ok(day_ms + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset_ms)
}
