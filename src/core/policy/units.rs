//! Human-friendly durations (`90s`, `15m`, `1h30m`) and byte sizes (`512KiB`, `32MiB`, `1000000`).
//!
//! Both deserialize from a string or a plain non-negative integer (seconds, bytes), so a policy can
//! be written in YAML or arrive as JSON from Istio. Units are explicit: sizes accept `B`, `KB`/`MB`/
//! `GB` (powers of 1000) and `KiB`/`MiB`/`GiB` (powers of 1024); durations accept `s`, `m`, `h`.

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// A length of time in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(pub u64);

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub u64);

/// Why a duration does not parse; the message does not repeat the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationError {
    /// Nothing but whitespace.
    Empty,
    /// A leading `-`.
    Negative,
    /// The number or the total does not fit in 64 bits of seconds.
    TooLarge,
    /// A character other than a digit or `h`, `m`, `s`.
    UnknownUnit,
    /// A unit with no number before it (`h`).
    UnitWithoutNumber,
    /// A unit repeated or out of the order h, m, s (`30m1h`).
    UnitOrder,
    /// Trailing digits after a unit (`1h30`).
    NumberWithoutUnit,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "empty; use e.g. 90s, 15m, 1h or 2h30m",
            Self::Negative => "must be positive",
            Self::TooLarge => "number too large",
            Self::UnknownUnit => "expected digits followed by h, m or s, e.g. 2h30m",
            Self::UnitWithoutNumber => "a unit must follow a number",
            Self::UnitOrder => "units must appear once each, in the order h, m, s",
            Self::NumberWithoutUnit => "a number needs a unit (h, m or s) when units are used",
        })
    }
}

impl std::error::Error for DurationError {}

/// Why a size does not parse; each names the text as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeError {
    /// No leading number.
    NotANumber(String),
    /// A unit other than B, KB, MB, GB, KiB, MiB, GiB.
    UnknownUnit {
        /// The whole text.
        text: String,
        /// The unit as written.
        unit: String,
    },
    /// More bytes than 64 bits hold.
    TooLarge(String),
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotANumber(text) => write!(f, "invalid size {text:?}: expected e.g. 32MiB"),
            Self::UnknownUnit { text, unit } => {
                write!(f, "invalid size {text:?}: unknown unit {unit:?} (use B, KB, MB, GB, KiB, MiB, GiB)")
            }
            Self::TooLarge(text) => write!(f, "invalid size {text:?}: too large"),
        }
    }
}

impl std::error::Error for SizeError {}

/// Parses a duration: plain seconds (`900`) or number+unit groups in the order h, m, s (`90s`,
/// `15m`, `1h`, `2h30m`, `1h0m5s`). The error says why, without repeating the input.
pub fn parse_duration(text: &str) -> Result<Seconds, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if text.starts_with('-') {
        return Err(DurationError::Negative);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Seconds).map_err(|_| DurationError::TooLarge);
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    // Seconds per unit of the last unit seen: units must strictly shrink (h, then m, then s).
    let mut last_unit: Option<u64> = None;
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(DurationError::UnknownUnit),
        };
        if digits.is_empty() {
            return Err(DurationError::UnitWithoutNumber);
        }
        if last_unit.is_some_and(|last| unit >= last) {
            return Err(DurationError::UnitOrder);
        }
        let value: u64 = digits.parse().map_err(|_| DurationError::TooLarge)?;
        total =
            value.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or(DurationError::TooLarge)?;
        digits.clear();
        last_unit = Some(unit);
    }
    if !digits.is_empty() {
        return Err(DurationError::NumberWithoutUnit);
    }
    Ok(Seconds(total))
}

/// Parses `32MiB`, `1MB`, `512KiB`, `100B` or plain bytes.
pub fn parse_size(text: &str) -> Result<Bytes, SizeError> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| SizeError::NotANumber(text.to_string()))?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(SizeError::UnknownUnit { text: text.to_string(), unit: other.to_string() })
        }
    };
    number.checked_mul(multiplier).map(Bytes).ok_or_else(|| SizeError::TooLarge(text.to_string()))
}

struct UnitVisitor<T, Error> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, Error>,
    from_int: fn(u64) -> T,
}

impl<'de, T, Error: fmt::Display> Visitor<'de> for UnitVisitor<T, Error> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok((self.from_int)(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        u64::try_from(v).map(self.from_int).map_err(|_| E::custom(format!("{v} is negative")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor {
            expecting: "a duration such as 15m or 1h",
            parse: parse_duration,
            from_int: Seconds,
        })
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor { expecting: "a size such as 32MiB", parse: parse_size, from_int: Bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s"), Ok(Seconds(90)));
        assert_eq!(parse_duration("15m"), Ok(Seconds(900)));
        assert_eq!(parse_duration("1h"), Ok(Seconds(3600)));
        assert_eq!(parse_duration("2h30m"), Ok(Seconds(9000)));
        assert_eq!(parse_duration("120"), Ok(Seconds(120)));
        for bad in ["", "h", "1d", "1.5h", "-1h", "15x", "30m1h", "1h1h", "1h30"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("32MiB"), Ok(Bytes(32 << 20)));
        assert_eq!(parse_size("1MB"), Ok(Bytes(1_000_000)));
        assert_eq!(parse_size("512KiB"), Ok(Bytes(512 << 10)));
        assert_eq!(parse_size("100"), Ok(Bytes(100)));
        for bad in ["", "MiB", "1 TB", "1.5MiB", "-1"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn errors_read_as_plain_sentences() {
        assert_eq!(parse_duration("30m1h").unwrap_err().to_string(), "units must appear once each, in the order h, m, s");
        assert_eq!(parse_duration("-1h"), Err(DurationError::Negative));
        assert_eq!(
            parse_size("1 TB").unwrap_err().to_string(),
            "invalid size \"1 TB\": unknown unit \"TB\" (use B, KB, MB, GB, KiB, MiB, GiB)"
        );
        let error = serde_json::from_str::<Seconds>("\"1h30\"").unwrap_err().to_string();
        assert!(error.starts_with("a number needs a unit (h, m or s) when units are used"), "{error}");
    }

    #[test]
    fn units_deserialize_from_strings_and_integers() {
        let s: Seconds = serde_json::from_str("\"1h\"").unwrap();
        assert_eq!(s, Seconds(3600));
        let b: Bytes = serde_json::from_str("1024").unwrap();
        assert_eq!(b, Bytes(1024));
        assert!(serde_json::from_str::<Bytes>("-5").is_err());
    }
}
