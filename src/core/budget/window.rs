//! Budget windows: which minute, hour, day or month an instant falls in, in a fixed UTC offset.
//!
//! A window is computed from the instant alone (no state): shift the epoch seconds by the zone's
//! offset, truncate to the period in that local time — the civil date comes from Howard
//! Hinnant's `days_from_civil` / `civil_from_days` algorithms, exact for any proleptic Gregorian
//! date — and shift back. So every worker, and every instance, agrees on a window without talking
//! to the others. A month window runs from the first of the month 00:00 local to the first of the
//! next; a day from 00:00 to 00:00.
//!
//! Limits: zones are fixed offsets (`+02:00`, `-05:30`, `UTC`); a region with daylight-saving
//! time keeps one offset all year (docs/budgets.md says why IANA zones are not in the filter).

/// The length of a budget window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// 60 seconds from a whole minute.
    Minute,
    /// From a whole hour.
    Hour,
    /// From local midnight.
    Day,
    /// From the first of the month, local midnight.
    Month,
}

impl Period {
    /// The period's name in the policy.
    pub fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Month => "month",
        }
    }
}

/// A fixed offset from UTC, in seconds east.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Zone {
    /// Seconds east of UTC (between −18 h and +18 h).
    pub offset_seconds: i64,
}

/// A time zone that is not a fixed UTC offset (the text as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneError(pub String);

impl std::fmt::Display for ZoneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a fixed UTC offset; write UTC, +HH:MM or -HH:MM", self.0)
    }
}

impl std::error::Error for ZoneError {}

impl Zone {
    /// Parses `UTC`, `Z`, `+HH:MM`, `-HH:MM`, `UTC+HH:MM` (hours up to 18).
    pub fn parse(text: &str) -> Result<Zone, ZoneError> {
        let text = text.trim();
        let rest = text.strip_prefix("UTC").unwrap_or(text);
        if rest.is_empty() || rest == "Z" {
            return Ok(Zone::default());
        }
        let bad = || ZoneError(text.to_string());
        let (sign, digits) = match rest.split_at_checked(1) {
            Some(("+", digits)) => (1, digits),
            Some(("-", digits)) => (-1, digits),
            _ => return Err(bad()),
        };
        let (hours, minutes) = digits.split_once(':').ok_or_else(bad)?;
        if hours.len() != 2 || minutes.len() != 2 {
            return Err(bad());
        }
        let hours: i64 = hours.parse().map_err(|_| bad())?;
        let minutes: i64 = minutes.parse().map_err(|_| bad())?;
        if hours > 18 || minutes > 59 || (hours == 18 && minutes > 0) {
            return Err(bad());
        }
        Ok(Zone { offset_seconds: sign * (hours * 3600 + minutes * 60) })
    }

    /// `+HH:MM` (`Z` for UTC).
    pub fn suffix(self) -> String {
        if self.offset_seconds == 0 {
            return "Z".to_string();
        }
        let sign = if self.offset_seconds < 0 { '-' } else { '+' };
        let minutes = self.offset_seconds.abs() / 60;
        format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

/// Instants are clamped to this range (years 0 to 9999), so date arithmetic cannot overflow
/// whatever the clock says.
const MIN_SECONDS: i64 = -62_167_219_200;
const MAX_SECONDS: i64 = 253_402_300_799;

/// The window `[start, end)` (epoch seconds) of `period` in `zone` that contains `now`.
pub fn bounds(period: Period, zone: Zone, now: i64) -> (i64, i64) {
    let local = now.clamp(MIN_SECONDS, MAX_SECONDS) + zone.offset_seconds;
    let (start, end) = match period {
        Period::Minute => {
            let start = local.div_euclid(60) * 60;
            (start, start + 60)
        }
        Period::Hour => {
            let start = local.div_euclid(3600) * 3600;
            (start, start + 3600)
        }
        Period::Day => {
            let start = local.div_euclid(86_400) * 86_400;
            (start, start + 86_400)
        }
        Period::Month => {
            let (year, month, _) = civil_from_days(local.div_euclid(86_400));
            let (next_year, next_month) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
            (days_from_civil(year, month, 1) * 86_400, days_from_civil(next_year, next_month, 1) * 86_400)
        }
    };
    (start - zone.offset_seconds, end - zone.offset_seconds)
}

/// `at` (epoch seconds) as ISO 8601 in `zone`: `2026-12-08T00:00:00+02:00`.
pub fn iso(at: i64, zone: Zone) -> String {
    let local = at.clamp(MIN_SECONDS, MAX_SECONDS) + zone.offset_seconds;
    let (year, month, day) = civil_from_days(local.div_euclid(86_400));
    let second_of_day = local.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{}",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60,
        zone.suffix()
    )
}

/// Days since 1970-01-01 of a civil date (Hinnant).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date (year, month, day) of a day number since 1970-01-01 (Hinnant).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T23:30:00Z.
    const LATE_EVENING: i64 = 1_796_686_200;

    fn zone(text: &str) -> Zone {
        Zone::parse(text).unwrap()
    }

    #[test]
    fn zones_parse_fixed_offsets_only() {
        assert_eq!(zone("UTC").offset_seconds, 0);
        assert_eq!(zone("+02:00").offset_seconds, 7200);
        assert_eq!(zone("UTC-05:30").offset_seconds, -19_800);
        for bad in ["Europe/Paris", "+2", "+25:00", "+02:60", "02:00", "+18:30"] {
            assert!(Zone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn iso_times_name_the_offset() {
        assert_eq!(iso(LATE_EVENING, Zone::default()), "2026-12-07T23:30:00Z");
        assert_eq!(iso(LATE_EVENING, zone("+02:00")), "2026-12-08T01:30:00+02:00");
        assert_eq!(iso(0, zone("-05:30")), "1969-12-31T18:30:00-05:30");
    }

    #[test]
    fn a_day_rolls_over_at_local_midnight_in_a_non_utc_offset() {
        let plus_two = zone("+02:00");
        // 23:30Z is 01:30 on the 8th in +02:00: that day started at 22:00Z on the 7th.
        let (start, end) = bounds(Period::Day, plus_two, LATE_EVENING);
        assert_eq!(iso(start, plus_two), "2026-12-08T00:00:00+02:00");
        assert_eq!(end - start, 86_400);
        // One second before local midnight is the previous day; midnight itself the next.
        assert_eq!(bounds(Period::Day, plus_two, start - 1).1, start);
        assert_eq!(bounds(Period::Day, plus_two, start).0, start);
        // In UTC the same instant is still the 7th.
        assert_eq!(iso(bounds(Period::Day, Zone::default(), LATE_EVENING).0, Zone::default()), "2026-12-07T00:00:00Z");
    }

    #[test]
    fn months_end_on_their_last_day_including_leap_februaries() {
        let utc = Zone::default();
        let feb_2028 = days_from_civil(2028, 2, 29) * 86_400 + 3600;
        let (start, end) = bounds(Period::Month, utc, feb_2028);
        assert_eq!(
            (iso(start, utc).as_str(), iso(end, utc).as_str()),
            ("2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z")
        );
        let dec = days_from_civil(2026, 12, 31) * 86_400 + 86_399;
        let (start, end) = bounds(Period::Month, utc, dec);
        assert_eq!(
            (iso(start, utc).as_str(), iso(end, utc).as_str()),
            ("2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z")
        );
        assert_eq!(bounds(Period::Month, utc, end).0, end);
    }

    #[test]
    fn minutes_and_hours_are_whole_and_contain_now() {
        for period in [Period::Minute, Period::Hour, Period::Day, Period::Month] {
            for now in [0, LATE_EVENING, LATE_EVENING + 59, -1, i64::MIN, i64::MAX] {
                let (start, end) = bounds(period, zone("-05:30"), now);
                let clamped = now.clamp(MIN_SECONDS, MAX_SECONDS);
                assert!(start <= clamped && clamped < end, "{period:?} {now}");
            }
        }
        let (start, end) = bounds(Period::Minute, Zone::default(), LATE_EVENING + 59);
        assert_eq!((start, end), (LATE_EVENING, LATE_EVENING + 60));
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-719_468, -1, 0, 1, 10_957, 20_819, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
