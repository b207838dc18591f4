//! Validators that turn a pattern match into a finding, or reject it as a false positive.
//!
//! A regex finds things shaped like a secret or personal data; these checks decide whether the
//! match is plausibly real: card numbers pass Luhn, IBANs pass ISO 7064 mod-97, US social
//! security numbers fall in issued ranges, generic secrets have enough entropy and are not
//! placeholders or documented example values. All functions are pure, allocation-light and total
//! (no panics on any input).

/// Luhn checksum over the digits of `text` (spaces and dashes ignored; any other character fails).
/// Card numbers have 12–19 digits.
pub fn luhn_card(text: &str) -> bool {
    let digits: Vec<u32> = match text.chars().filter(|c| !matches!(c, ' ' | '-')).map(|c| c.to_digit(10)).collect() {
        Some(digits) => digits,
        None => return false,
    };
    if !(12..=19).contains(&digits.len()) || digits.windows(2).all(|pair| pair.first() == pair.last()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// An IBAN (spaces allowed): two letters, two check digits, 11–30 alphanumerics, and the
/// ISO 7064 mod-97 remainder of the rearranged number is 1.
pub fn iban(text: &str) -> bool {
    let compact: Vec<char> = text.chars().filter(|c| *c != ' ').map(|c| c.to_ascii_uppercase()).collect();
    if !(15..=34).contains(&compact.len()) {
        return false;
    }
    let (head, rest) = compact.split_at(4);
    let country_ok = head.iter().take(2).all(|c| c.is_ascii_uppercase());
    let check_ok = head.iter().skip(2).all(|c| c.is_ascii_digit());
    if !country_ok || !check_ok || !rest.iter().all(|c| c.is_ascii_alphanumeric()) {
        return false;
    }
    let mut remainder: u32 = 0;
    for c in rest.iter().chain(head.iter()) {
        let value = match c.to_digit(36) {
            Some(v) => v,
            None => return false,
        };
        remainder = if value < 10 { (remainder * 10 + value) % 97 } else { (remainder * 100 + value) % 97 };
    }
    remainder == 1
}

/// A US social security number `AAA-GG-SSSS` (dashes or spaces optional) in an issued range:
/// area not 000, 666 or 900–999; group not 00; serial not 0000.
pub fn us_ssn(text: &str) -> bool {
    let digits: Vec<u32> = match text.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_digit(10)).collect() {
        Some(digits) => digits,
        None => return false,
    };
    let [a1, a2, a3, g1, g2, s1, s2, s3, s4] = digits[..] else { return false };
    let area = a1 * 100 + a2 * 10 + a3;
    let group = g1 * 10 + g2;
    let serial = s1 * 1000 + s2 * 100 + s3 * 10 + s4;
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Shannon entropy of `text` in bits per character.
pub fn entropy_bits_per_char(text: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut total = 0u32;
    for byte in text.bytes() {
        if let Some(count) = counts.get_mut(usize::from(byte)) {
            *count += 1;
        }
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    let total = f64::from(total);
    counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = f64::from(n) / total;
            -p * p.log2()
        })
        .sum()
}

/// Values that look like a secret's slot, not a secret: documented examples, template
/// placeholders, masks and repeated characters.
pub fn is_placeholder(value: &str) -> bool {
    const EXAMPLES: [&str; 4] = [
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "sk-ant-api03-xxxx",
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    ];
    // Not "test": Stripe-style `sk_test_…` keys are real credentials.
    const WORDS: [&str; 9] =
        ["example", "placeholder", "changeme", "your", "dummy", "sample", "redacted", "xxxx", "****"];
    let trimmed = value.trim_matches(|c: char| matches!(c, '"' | '\'' | '`'));
    if trimmed.is_empty() || EXAMPLES.contains(&trimmed) {
        return true;
    }
    let lower = trimmed.to_ascii_lowercase();
    let templated = (lower.starts_with('<') && lower.ends_with('>'))
        || (lower.starts_with("${") && lower.ends_with('}'))
        || (lower.starts_with("{{") && lower.ends_with("}}"));
    let first = lower.chars().next();
    let one_char = lower.chars().all(|c| Some(c) == first);
    templated || one_char || WORDS.iter().any(|w| lower.contains(w))
}

/// The checksum of GitHub (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`) and npm (`npm_`) tokens:
/// `None` when `token` has no checksum to check (not `prefix_` + 36 base62 characters),
/// otherwise whether its last 6 characters, read as a base62 number (`0-9A-Za-z`), equal the
/// CRC-32 (IEEE) of the 30 characters before them.
pub fn crc32_base62_tail(token: &str) -> Option<bool> {
    let (_, body) = token.rsplit_once('_')?;
    if body.len() != 36 || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (random, tail) = body.split_at(30);
    let mut claimed: u64 = 0;
    for byte in tail.bytes() {
        let digit = match byte {
            b'0'..=b'9' => byte - b'0',
            b'A'..=b'Z' => byte - b'A' + 10,
            b'a'..=b'z' => byte - b'a' + 36,
            _ => return None,
        };
        // Six base62 digits stay below 62^6 < 2^36: no overflow.
        claimed = claimed * 62 + u64::from(digit);
    }
    Some(claimed == u64::from(crc32(random.as_bytes())))
}

/// CRC-32 (IEEE 802.3, reflected, as zlib's `crc32`), bit by bit: tokens are short.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// `random` followed by its CRC-32 in 6 base62 digits, as GitHub and npm issue tokens (for
/// tests that fabricate them).
#[cfg(test)]
pub(crate) fn with_crc32_base62(random: &str) -> String {
    const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rest = crc32(random.as_bytes());
    let mut tail = String::new();
    for _ in 0..6 {
        tail.insert(0, char::from(BASE62.get((rest % 62) as usize).copied().unwrap_or(b'0')));
        rest /= 62;
    }
    format!("{random}{tail}")
}

/// Whether a token's random part looks typed rather than generated: fewer than 3 bits of
/// entropy per character, 5 equal characters in a row, or 6 consecutive ascending or
/// descending characters (`abcdef`, `123456`). A generated 30-character base62 body shows any
/// of these about once in ten million.
pub fn looks_typed(body: &str) -> bool {
    let bytes = body.as_bytes();
    let run = |width: usize, step: i16| {
        bytes.windows(width).any(|w| w.windows(2).all(|pair| match pair {
            [a, b] => i16::from(*b) - i16::from(*a) == step,
            _ => false,
        }))
    };
    entropy_bits_per_char(body) < 3.0 || run(5, 0) || run(6, 1) || run(6, -1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_test_cards_and_rejects_near_misses() {
        for valid in ["4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "6011111111111117"] {
            assert!(luhn_card(valid), "{valid}");
        }
        for invalid in ["4111 1111 1111 1112", "1234567890123", "0000 0000 0000 0000", "4111-1111-1111-111a", "411"] {
            assert!(!luhn_card(invalid), "{invalid}");
        }
    }

    #[test]
    fn iban_checks_mod_97() {
        for valid in ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "fr1420041010050500013m02606"] {
            assert!(iban(valid), "{valid}");
        }
        for invalid in ["GB82 WEST 1234 5698 7654 33", "DE89", "1289370400440532013000", "DE8937040044053201300!"] {
            assert!(!iban(invalid), "{invalid}");
        }
    }

    #[test]
    fn ssn_ranges_follow_issuance_rules() {
        for valid in ["123-45-6789", "001-01-0001", "899 99 9999"] {
            assert!(us_ssn(valid), "{valid}");
        }
        for invalid in ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "123-45-678"] {
            assert!(!us_ssn(invalid), "{invalid}");
        }
    }

    #[test]
    fn entropy_separates_keys_from_words() {
        assert!(entropy_bits_per_char("aaaaaaaa") < 0.01);
        assert!(entropy_bits_per_char("password") < 3.0);
        assert!(entropy_bits_per_char("q8Zr2LxP0vT7nY4kW9sD") > 4.0);
        assert_eq!(entropy_bits_per_char(""), 0.0);
    }

    #[test]
    fn placeholders_and_documented_examples_are_not_secrets() {
        for placeholder in
            ["AKIAIOSFODNN7EXAMPLE", "<your-api-key>", "${API_KEY}", "{{ token }}", "xxxxxxxx", "changeme", "\"****\""]
        {
            assert!(is_placeholder(placeholder), "{placeholder}");
        }
        for real in ["AKIA2E0A8F3B244C9986", "q8Zr2LxP0vT7nY4kW9sD", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"] {
            assert!(!is_placeholder(real), "{real}");
        }
    }


    #[test]
    fn crc32_matches_the_ieee_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn github_and_npm_checksums_are_verified() {
        let body = with_crc32_base62("Xq7rT2mZpL9vN4bW8kYs1dHf6gJc3a");
        for token in [format!("ghp_{body}"), format!("ghr_{body}"), format!("npm_{body}")] {
            assert_eq!(crc32_base62_tail(&token), Some(true), "{token}");
        }
        // One character changed, in the random part or in the checksum, breaks it.
        let mut broken = format!("ghp_{body}").into_bytes();
        broken[10] = if broken[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(crc32_base62_tail(std::str::from_utf8(&broken).unwrap()), Some(false));
        let wrong_tail = format!("ghp_{}zzzzzz", &body[..30]);
        assert_eq!(crc32_base62_tail(&wrong_tail), Some(false));
        // No checksum to check: another length, symbols, no prefix.
        for other in ["ghp_short", "ghr_Xq7rT2mZpL9vN4bW8kYs1dHf6gJc3aAAAAAAAAA", "ghp_!q7rT2mZpL9vN4bW8kYs1dHf6gJc3aAAAAAA", "plain"] {
            assert_eq!(crc32_base62_tail(other), None, "{other}");
        }
    }

    #[test]
    fn typed_bodies_are_told_from_generated_ones() {
        for typed in ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "abcdefghijklmnopqrstuvwxyzABCD", "Xq7rT2mZ00000pL9vN4bW8kYs1dHf6", "zyxwvu1234567890", "abababababababababab"] {
            assert!(looks_typed(typed), "{typed}");
        }
        assert!(!looks_typed("Xq7rT2mZpL9vN4bW8kYs1dHf6gJc3a"));
    }

    proptest::proptest! {
        #[test]
        fn validators_are_total(text in ".{0,64}") {
            let _ = (luhn_card(&text), iban(&text), us_ssn(&text), is_placeholder(&text));
            let _ = (crc32_base62_tail(&text), looks_typed(&text));
            proptest::prop_assert!(entropy_bits_per_char(&text) >= 0.0);
        }
    }
}
