//! Small helpers shared by the service modules: the clock, randomness, event logging and
//! human-readable times.
//!
//! Times are whole seconds since the Unix epoch (`i64`, as SQLite stores integers). Random values
//! come from the operating system (`getrandom`); there is no fallback, so an unavailable source is
//! an error rather than a predictable id or token.

use std::time::{SystemTime, UNIX_EPOCH};
use crate::core::budget::window::civil_from_days;
use crate::core::hex::hex;

/// Current time in whole seconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// Current time in milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// `N` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("the operating system's random source failed: {e}"))?;
    Ok(bytes)
}

/// A new review id: `rev_` and 16 lower-case hex characters (64 random bits).
pub fn new_review_id() -> Result<String, String> {
    Ok(format!("rev_{}", hex(&random_bytes::<8>()?)))
}

/// A new session grant id: `grt_` and 16 lower-case hex characters (64 random bits).
pub fn new_grant_id() -> Result<String, String> {
    Ok(format!("grt_{}", hex(&random_bytes::<8>()?)))
}

/// Writes one event line to stderr: `<UTC time> warden serve: <event>`. Callers never pass a
/// token, key or secret.
pub fn log_event(event: &str) {
    eprintln!("{} warden serve: {event}", format_utc(unix_now()));
}

/// `2025-01-31T12:34:56Z` for `seconds` since the epoch.
pub fn format_utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let in_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", in_day / 3600, in_day % 3600 / 60, in_day % 60)
}

/// A short duration for people: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub fn format_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 if s % 3600 < 60 => format!("{}h", s / 3600),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ if s % 86_400 < 3600 => format!("{}d", s / 86_400),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_are_formatted_like_rfc3339() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_utc(1_767_225_599), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(-3), "0s");
        assert_eq!(format_duration(59), "59s");
        assert_eq!(format_duration(125), "2m");
        assert_eq!(format_duration(3_900), "1h 5m");
        assert_eq!(format_duration(3_600), "1h");
        assert_eq!(format_duration(2 * 86_400 + 4 * 3600), "2d 4h");
        assert_eq!(format_duration(86_400), "1d");
    }

    #[test]
    fn review_ids_are_rev_and_sixteen_hex_characters() {
        let id = new_review_id().unwrap();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("rev_"));
        assert!(id[4..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(id, new_review_id().unwrap());
    }
}
