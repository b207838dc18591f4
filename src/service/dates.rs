//! Dates and times people type, as instants: the parser behind the CLI's `--since`/`--until` and
//! the console's date filters, so both accept exactly the same forms.
//!
//! Accepted (whitespace around is ignored):
//! - a plain date `2026-12-07`: midnight at its start, UTC;
//! - a date and time `2026-12-07T14:30`, `2026-12-07T14:30:05`, `2026-12-07 14:30:05.250`
//!   (`T` or one space; seconds and up to 9 fraction digits optional, kept to the millisecond),
//!   followed by an offset `Z`, `+01:00`, `-0530`, `+01`, or by nothing, which means UTC;
//! - an integer: milliseconds since the Unix epoch (what the options took before; a bare year
//!   such as `2026` therefore reads as 2026 ms after the epoch — write `2026-01-01`).
//!
//! Algorithm: a hand-written parser over the ASCII bytes (no date crate: the forms are few and
//! fixed), days from the civil date by H. Hinnant's `days_from_civil`, all arithmetic checked.
//! Every field is range-checked (month 1–12, day within its month with leap years, hour 0–23,
//! minute and second 0–59, offsets up to ±23:59) and years are 0000–9999.
//!
//! Limits: no week dates, ordinal dates, leap seconds or named zones (`Europe/Paris`); the
//! console's pages send the browser's local time as an instant with its offset.

use std::fmt;

/// Why a text is not a date or time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateError {
    /// What was wrong, for people.
    pub message: String,
}

impl fmt::Display for DateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DateError {}

/// The accepted forms, for error messages and help texts.
pub const FORMS: &str = "a date (2026-12-07), a date and time (2026-12-07T14:30, UTC unless it ends with an offset \
such as Z or +01:00) or milliseconds since the epoch";

fn invalid(text: &str, why: &str) -> DateError {
    DateError { message: format!("{text:?} is not a date or time: {why} (give {FORMS})") }
}

/// Parses `text` into milliseconds since the Unix epoch (see the module comment for the forms).
pub fn parse_instant(text: &str) -> Result<i64, DateError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid(text, "it is empty"));
    }
    let digits = trimmed.strip_prefix('-').unwrap_or(trimmed);
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed.parse::<i64>().map_err(|_| invalid(text, "the number is out of range"));
    }
    let mut cursor = Cursor { bytes: trimmed.as_bytes(), at: 0 };
    let year = cursor.number(4).ok_or_else(|| invalid(text, "it does not start with a four-digit year"))?;
    let month =
        cursor.after(b'-').and_then(|c| c.number(2)).ok_or_else(|| invalid(text, "expected -MM after the year"))?;
    let day =
        cursor.after(b'-').and_then(|c| c.number(2)).ok_or_else(|| invalid(text, "expected -DD after the month"))?;
    if !(1..=12).contains(&month) {
        return Err(invalid(text, "the month must be 01–12"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(invalid(text, "that day does not exist in that month"));
    }
    let mut seconds_of_day = 0;
    let mut millis = 0;
    let mut offset_seconds = 0;
    if !cursor.done() {
        if !(cursor.eat(b'T') || cursor.eat(b't') || cursor.eat(b' ')) {
            return Err(invalid(text, "expected T and a time after the date"));
        }
        let hour = cursor.number(2).ok_or_else(|| invalid(text, "expected HH after T"))?;
        let minute =
            cursor.after(b':').and_then(|c| c.number(2)).ok_or_else(|| invalid(text, "expected :MM after the hour"))?;
        let second = if cursor.eat(b':') {
            cursor.number(2).ok_or_else(|| invalid(text, "expected two digits of seconds"))?
        } else {
            0
        };
        if hour > 23 || minute > 59 || second > 59 {
            return Err(invalid(text, "hours must be 00–23, minutes and seconds 00–59"));
        }
        if cursor.eat(b'.') || cursor.eat(b',') {
            let fraction = cursor.digits();
            if fraction.is_empty() || fraction.len() > 9 {
                return Err(invalid(text, "a fraction of a second has 1 to 9 digits"));
            }
            millis = fraction.iter().take(3).enumerate().fold(0, |sum, (index, digit)| {
                sum + i64::from(digit - b'0') * [100, 10, 1].get(index).copied().unwrap_or(0)
            });
        }
        seconds_of_day = hour * 3600 + minute * 60 + second;
        offset_seconds = cursor.offset().ok_or_else(|| invalid(text, "the offset must be Z, ±HH, ±HHMM or ±HH:MM"))?;
    }
    if !cursor.done() {
        return Err(invalid(text, "unexpected text after the date"));
    }
    let seconds = days_from_civil(year, month, day)
        .checked_mul(86_400)
        .and_then(|s| s.checked_add(seconds_of_day))
        .and_then(|s| s.checked_sub(offset_seconds))
        .ok_or_else(|| invalid(text, "out of range"))?;
    seconds.checked_mul(1000).and_then(|ms| ms.checked_add(millis)).ok_or_else(|| invalid(text, "out of range"))
}

/// `parse_instant` with the error as a `String` (clap's `value_parser` and the pages).
pub fn parse_instant_arg(text: &str) -> Result<i64, String> {
    parse_instant(text).map_err(|e| e.to_string())
}

/// A byte cursor over the text being parsed.
struct Cursor<'t> {
    bytes: &'t [u8],
    at: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        if matched {
            self.at += 1;
        }
        matched
    }

    /// `self` after consuming `byte`, if it is next.
    fn after(&mut self, byte: u8) -> Option<&mut Self> {
        self.eat(byte).then_some(self)
    }

    /// Exactly `width` decimal digits as a number.
    fn number(&mut self, width: usize) -> Option<i64> {
        let digits = self.bytes.get(self.at..self.at.checked_add(width)?)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.at += width;
        Some(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    }

    /// The run of digits here (possibly empty).
    fn digits(&mut self) -> &[u8] {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        self.bytes.get(start..self.at).unwrap_or_default()
    }

    /// The offset east of UTC in seconds: none (UTC), `Z`, `±HH`, `±HHMM`, `±HH:MM`.
    fn offset(&mut self) -> Option<i64> {
        if self.done() {
            return Some(0);
        }
        if self.eat(b'Z') || self.eat(b'z') {
            return Some(0);
        }
        let sign = if self.eat(b'+') {
            1
        } else if self.eat(b'-') {
            -1
        } else {
            return None;
        };
        let hours = self.number(2)?;
        let minutes = if self.done() {
            0
        } else {
            self.eat(b':');
            self.number(2)?
        };
        (hours <= 23 && minutes <= 59).then_some(sign * (hours * 3600 + minutes * 60))
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`; `year`
/// is 0–9999 here, so nothing overflows).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 86_400_000;
    /// 2026-12-07T00:00:00Z.
    const DEC_7: i64 = 1_796_601_600_000;

    #[test]
    fn plain_dates_are_midnight_utc() {
        assert_eq!(parse_instant("1970-01-01"), Ok(0));
        assert_eq!(parse_instant("2026-12-07"), Ok(DEC_7));
        assert_eq!(parse_instant(" 2026-12-08 "), Ok(DEC_7 + DAY_MS));
        assert_eq!(parse_instant("2000-02-29"), Ok(951_782_400_000));
        assert_eq!(parse_instant("1969-12-31"), Ok(-DAY_MS));
    }

    #[test]
    fn times_without_an_offset_are_utc_and_offsets_move_them() {
        let at_1430 = DEC_7 + (14 * 3600 + 30 * 60) * 1000;
        assert_eq!(parse_instant("2026-12-07T14:30"), Ok(at_1430));
        assert_eq!(parse_instant("2026-12-07 14:30:00"), Ok(at_1430));
        assert_eq!(parse_instant("2026-12-07t14:30:00z"), Ok(at_1430));
        assert_eq!(parse_instant("2026-12-07T15:30:00+01:00"), Ok(at_1430));
        assert_eq!(parse_instant("2026-12-07T15:30+0100"), Ok(at_1430));
        assert_eq!(parse_instant("2026-12-07T15:30+01"), Ok(at_1430));
        assert_eq!(parse_instant("2026-12-07T09:00-05:30"), Ok(at_1430));
        assert_eq!(parse_instant("2026-12-07T14:30:05.25Z"), Ok(at_1430 + 5_250));
        assert_eq!(parse_instant("2026-12-07T14:30:05.123456789Z"), Ok(at_1430 + 5_123));
        // What a browser's `toISOString()` sends.
        assert_eq!(parse_instant("2026-12-07T14:30:00.000Z"), Ok(at_1430));
    }

    #[test]
    fn integers_are_epoch_milliseconds_as_before() {
        assert_eq!(parse_instant("1796601600000"), Ok(DEC_7));
        assert_eq!(parse_instant("0"), Ok(0));
        assert_eq!(parse_instant("-5"), Ok(-5));
        assert!(parse_instant("99999999999999999999").is_err());
    }

    #[test]
    fn impossible_or_malformed_dates_are_refused_with_the_accepted_forms() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-00-10",
            "2026-02-29",
            "2026-04-31",
            "2026-12-07T24:00",
            "2026-12-07T23:60",
            "2026-12-07T23:59:60",
            "2026-12-07T14:30+24:00",
            "2026-12-07T14:30 UTC",
            "2026-12-7",
            "26-12-07",
            "2026/12/07",
            "2026-12-07T",
            "2026-12-07T14",
            "2026-12-07T14:30:05.",
            "2026-12-07T14:30:05.1234567890",
            "2026-12-07T14:30+1",
            "2026-12-07x",
            "+2026-12-07",
            "２０２６-12-07",
            "2026-12-07T14:30:00+01:00:00",
        ] {
            let error = parse_instant(bad).expect_err(bad);
            assert!(error.message.contains("give a date"), "{bad}: {error}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_parsed_or_refused_without_panicking(text in "\\PC{0,40}") {
            let _ = parse_instant(&text);
        }

        #[test]
        fn date_like_text_is_parsed_or_refused_without_panicking(
            text in "[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{0,12})?)?([Zz]|[+-][0-9]{1,2}(:?[0-9]{0,3})?)?)?"
        ) {
            let _ = parse_instant(&text);
        }

        #[test]
        fn every_second_of_years_0_to_9999_round_trips(seconds in -62_167_219_200_i64..253_402_300_800) {
            let text = crate::service::util::format_utc(seconds);
            proptest::prop_assert_eq!(parse_instant(&text), Ok(seconds * 1000));
        }
    }

    #[test]
    fn every_day_of_four_centuries_round_trips_through_the_utc_formatter() {
        let mut day = days_from_civil(1900, 1, 1);
        for year in 1900..2300 {
            for month in 1..=12 {
                for d in 1..=days_in_month(year, month) {
                    assert_eq!(days_from_civil(year, month, d), day);
                    let text = format!("{year:04}-{month:02}-{d:02}");
                    assert_eq!(crate::service::util::format_utc(day * 86_400).get(..10), Some(text.as_str()));
                    day += 1;
                }
            }
        }
    }
}
