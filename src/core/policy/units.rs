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

/// Parses a duration: plain seconds (`900`) or number+unit groups in the order h, m, s (`90s`,
/// `15m`, `1h`, `2h30m`, `1h0m5s`). The error says why, without repeating the input.
pub fn parse_duration(text: &str) -> Result<Seconds, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty; use e.g. 90s, 15m, 1h or 2h30m".to_string());
    }
    if text.starts_with('-') {
        return Err("must be positive".to_string());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map(Seconds).map_err(|_| "number too large".to_string());
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
            _ => return Err("expected digits followed by h, m or s, e.g. 2h30m".to_string()),
        };
        if digits.is_empty() {
            return Err("a unit must follow a number".to_string());
        }
        if last_unit.is_some_and(|last| unit >= last) {
            return Err("units must appear once each, in the order h, m, s".to_string());
        }
        let value: u64 = digits.parse().map_err(|_| "number too large".to_string())?;
        total =
            value.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or_else(|| "number too large".to_string())?;
        digits.clear();
        last_unit = Some(unit);
    }
    if !digits.is_empty() {
        return Err("a number needs a unit (h, m or s) when units are used".to_string());
    }
    Ok(Seconds(total))
}

/// Parses `32MiB`, `1MB`, `512KiB`, `100B` or plain bytes.
pub fn parse_size(text: &str) -> Result<Bytes, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("invalid size {text:?}: expected e.g. 32MiB"))?;
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!("invalid size {text:?}: unknown unit {other:?} (use B, KB, MB, GB, KiB, MiB, GiB)"))
        }
    };
    number.checked_mul(multiplier).map(Bytes).ok_or_else(|| format!("invalid size {text:?}: too large"))
}

struct UnitVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
    from_int: fn(u64) -> T,
}

impl<'de, T> Visitor<'de> for UnitVisitor<T> {
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
    fn units_deserialize_from_strings_and_integers() {
        let s: Seconds = serde_json::from_str("\"1h\"").unwrap();
        assert_eq!(s, Seconds(3600));
        let b: Bytes = serde_json::from_str("1024").unwrap();
        assert_eq!(b, Bytes(1024));
        assert!(serde_json::from_str::<Bytes>("-5").is_err());
    }
}
