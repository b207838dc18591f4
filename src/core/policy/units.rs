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

/// Parses `1h`, `15m`, `90s`, `2h30m` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Seconds, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Seconds(seconds));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("invalid duration {text:?}: unknown unit '{c}' (use s, m or h)")),
        };
        let value: u64 =
            digits.parse().map_err(|_| format!("invalid duration {text:?}: a number must precede '{c}'"))?;
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("invalid duration {text:?}: too large"))?;
        digits.clear();
    }
    if !digits.is_empty() || text.is_empty() {
        return Err(format!("invalid duration {text:?}: expected e.g. 90s, 15m, 1h"));
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
        for bad in ["", "h", "1d", "1.5h", "-1h", "15x"] {
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
