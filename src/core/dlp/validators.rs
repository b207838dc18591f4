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

/// Whether a value found where a structure keeps a password (`user:…@host`, `<password>…`,
/// `.netrc`'s `password …`) is one, not the name of one: letters and `_`/`-` only, naming a
/// password, secret, token or key (`PASSWORD`, `DB_PASSWORD`, `yourPassword`, `secret`), is a
/// documentation placeholder.
pub fn not_a_name(value: &str) -> bool {
    const NAMES: [&str; 6] = ["pass", "pwd", "secret", "token", "key", "credential"];
    if !value.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_' || b == b'-') {
        return true;
    }
    let lower = value.to_ascii_lowercase();
    !NAMES.iter().any(|name| lower.contains(name))
}

/// Whether `value` is standard base64 (padding optional) of `user:password`: it decodes to
/// printable ASCII with a `:` after a non-empty user name.
pub fn basic_credentials(value: &str) -> bool {
    let sextet = |b: u8| -> Option<u32> {
        match b {
            b'A'..=b'Z' => Some(u32::from(b - b'A')),
            b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let body = value.trim_end_matches('=');
    let mut decoded: Vec<u8> = Vec::with_capacity(body.len() / 4 * 3 + 2);
    let (mut bits, mut count) = (0u32, 0u32);
    for byte in body.bytes() {
        let Some(six) = sextet(byte) else { return false };
        bits = ((bits << 6) | six) & 0xff_ffff;
        count += 6;
        if count >= 8 {
            count -= 8;
            decoded.push(((bits >> count) & 0xff) as u8);
        }
    }
    let printable = decoded.iter().all(|b| (0x20..0x7f).contains(b));
    printable && decoded.iter().position(|&b| b == b':').is_some_and(|at| at > 0 && at + 1 < decoded.len())
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
    fn names_of_passwords_are_not_passwords() {
        for name in ["PASSWORD", "password", "DB_PASSWORD", "yourPassword", "pass", "secret", "api-token", "KEY"] {
            assert!(!not_a_name(name), "{name}");
        }
        for real in ["hunter2", "tiger", "Zq81mVx0pL", "p@ss", "s3cret-pass!", "correcthorsebattery"] {
            assert!(not_a_name(real), "{real}");
        }
    }

    #[test]
    fn basic_credentials_decode_to_user_and_password() {
        // base64("deploy:Zq81mVx0pL"), base64("a:b") without padding
        for valid in ["ZGVwbG95OlpxODFtVngwcEw=", "YTpi"] {
            assert!(basic_credentials(valid), "{valid}");
        }
        // base64("no colon here"), base64(":nouser"), base64("user:"), binary, not base64
        for invalid in ["bm8gY29sb24gaGVyZQ==", "Om5vdXNlcg==", "dXNlcjo=", "/////w==", "not-base64!"] {
            assert!(!basic_credentials(invalid), "{invalid}");
        }
    }

    proptest::proptest! {
        #[test]
        fn validators_are_total(text in ".{0,64}") {
            let _ = (luhn_card(&text), iban(&text), us_ssn(&text), is_placeholder(&text));
            let _ = (not_a_name(&text), basic_credentials(&text));
            proptest::prop_assert!(entropy_bits_per_char(&text) >= 0.0);
        }
    }
}
