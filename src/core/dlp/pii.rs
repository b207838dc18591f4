//! Checks that tell personal data from other numbers and strings: phone numbering plans, IBAN
//! lengths, the check digits of national identity numbers, and which email addresses are
//! personal.
//!
//! Each function takes the span a detector matched (separators included, as written) and says
//! whether it is plausibly what the detector names:
//! - **Phone numbers** ([`phone`]): the country code must be an assigned ITU-T E.164 code and
//!   the national number must have a length used in that country (a compact table, generous
//!   where a plan mixes lengths); a written trunk `(0)` or a leading trunk `0` after the
//!   country code is ignored. North-American numbers need a valid area code and exchange;
//!   national numbers (`0…`) need 9–13 digits and must not read as a date.
//! - **IBANs** ([`iban_length`]): the exact length the ISO 13616 registry gives the country
//!   (mod-97 itself is [`super::validators::iban`]).
//! - **National ids**, each with its published check: UK National Insurance number (allocated
//!   prefixes), German tax id (ISO 7064 MOD 11,10 and the digit-repetition rule), French NIR
//!   (97 − n mod 97, Corsica 2A/2B), Indian Aadhaar (Verhoeff), Brazilian CPF (two mod-11
//!   digits), Spanish DNI/NIE (mod-23 letter), Dutch BSN (11-test), Canadian SIN (Luhn),
//!   Italian codice fiscale (odd/even check letter), Chinese resident id (ISO 7064 MOD 11-2
//!   and a real birth date).
//!
//! - **Email addresses** ([`email`]): not an example or reserved domain, an ssh user, a
//!   `noreply@` sender or an asset name.
//!
//! Like [`super::validators`], this module depends on nothing else of the DLP engine: the
//! catalog builds detectors, the detectors call these checks, never the other way.
//!
//! Limits: a check digit only rejects most random numbers (one in 10 for Verhoeff and Luhn, one
//! in 97 for the NIR, one in 11 for the BSN); the detectors therefore pair the weaker checks
//! with a distinctive written shape or a nearby label ([`labelled_national_id`]). Numbering
//! plans change; the table errs on accepting. All functions are pure and total.

/// Whether `value` is a plausible phone number: international (`+` or `00`, then an assigned
/// country code and a national number of a length used there), North-American (10 digits, or
/// 11 with a leading `1`) or national (`0` then 8–12 more digits, not a date).
pub fn phone(value: &str) -> bool {
    let without_trunk = value.replace("(0)", "");
    let digits: Vec<u8> = without_trunk.bytes().filter(u8::is_ascii_digit).map(|d| d - b'0').collect();
    if digits.windows(2).all(|pair| pair.first() == pair.last()) {
        return false;
    }
    let trimmed = value.trim_start();
    if trimmed.starts_with('+') {
        return international(&digits);
    }
    if trimmed.starts_with("00") {
        return !reads_as_byte_dump(trimmed) && international(digits.get(2..).unwrap_or_default());
    }
    if digits.first() == Some(&0) {
        return (9..=13).contains(&digits.len()) && !reads_as_date(trimmed);
    }
    match digits.as_slice() {
        [1, rest @ ..] if rest.len() == 10 => north_american(rest),
        rest if rest.len() == 10 => north_american(rest),
        _ => false,
    }
}

/// Whether a `00`-prefixed number is written as a hex dump's bytes: `00` alone, then only
/// two-digit groups, six groups or more (`00 49 30 12 34 56 78 90` of `hexdump -C`). Phone
/// numbers written with `00` group the country code with it or vary their group lengths.
fn reads_as_byte_dump(value: &str) -> bool {
    let mut groups = 0usize;
    for group in value.split(' ') {
        if group.len() != 2 || !group.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        groups += 1;
    }
    value.starts_with("00 ") && groups >= 6
}

/// Whether a national number (after `+` or `00`) has an assigned country code and a length
/// that country uses.
fn international(digits: &[u8]) -> bool {
    for code_len in 1..=3 {
        let (Some(head), Some(national)) = (digits.get(..code_len), digits.get(code_len..)) else { return false };
        let code = head.iter().fold(0u16, |acc, d| acc * 10 + u16::from(*d));
        let Some(&(_, min, max)) = COUNTRY_CODES.iter().find(|(c, _, _)| *c == code) else { continue };
        // A trunk 0 written after the country code (`+44 020 …`) is dialled only nationally;
        // Italy keeps its leading 0.
        let national = match national.split_first() {
            Some((0, rest)) if code != 39 => rest,
            _ => national,
        };
        if code == 1 {
            // Written with `+1`, the number is plainly a phone: any area code 2–9.
            return national.len() == 10 && national.first().is_some_and(|d| *d >= 2);
        }
        return (usize::from(min)..=usize::from(max)).contains(&national.len());
    }
    false
}

/// A North-American number of 10 digits: area code and exchange start with 2–9.
fn north_american(digits: &[u8]) -> bool {
    digits.len() == 10 && digits.first().is_some_and(|d| *d >= 2) && digits.get(3).is_some_and(|d| *d >= 2)
}

/// Whether a national-format span starts like a written date with a four-digit year
/// (`01.02.2024`, `01/02/2024`), unlike French pairs (`06.12.34.56.78`).
fn reads_as_date(value: &str) -> bool {
    let bytes = value.as_bytes();
    let separator = bytes.get(2).copied();
    matches!(separator, Some(b'.' | b'/'))
        && bytes.get(5).copied() == separator
        && bytes.get(6..10).is_some_and(|year| year.iter().all(u8::is_ascii_digit))
}

/// ITU-T E.164 country codes with the shortest and longest national significant number used
/// in that country (a few plans mix lengths; the bounds are generous). Codes 800, 808, 870,
/// 878, 881–883, 888 and 979 (global services) are not personal numbers and are absent.
const COUNTRY_CODES: &[(u16, u8, u8)] = &[
    (1, 10, 10),
    (7, 10, 10),
    (20, 8, 10),
    (27, 9, 9),
    (30, 10, 10),
    (31, 9, 9),
    (32, 8, 9),
    (33, 9, 9),
    (34, 9, 9),
    (36, 8, 9),
    (39, 6, 11),
    (40, 9, 9),
    (41, 9, 9),
    (43, 4, 13),
    (44, 7, 10),
    (45, 8, 8),
    (46, 7, 13),
    (47, 5, 8),
    (48, 9, 9),
    (49, 5, 13),
    (51, 8, 9),
    (52, 10, 10),
    (53, 8, 8),
    (54, 10, 11),
    (55, 10, 11),
    (56, 9, 9),
    (57, 8, 10),
    (58, 10, 10),
    (60, 8, 10),
    (61, 9, 9),
    (62, 8, 12),
    (63, 8, 10),
    (64, 8, 10),
    (65, 8, 8),
    (66, 8, 9),
    (81, 9, 10),
    (82, 8, 10),
    (84, 9, 10),
    (86, 10, 11),
    (90, 10, 10),
    (91, 10, 10),
    (92, 9, 10),
    (93, 9, 9),
    (94, 9, 9),
    (95, 7, 10),
    (98, 10, 10),
    (211, 9, 9),
    (212, 9, 9),
    (213, 8, 9),
    (216, 8, 8),
    (218, 8, 9),
    (220, 7, 7),
    (221, 9, 9),
    (222, 8, 8),
    (223, 8, 8),
    (224, 8, 9),
    (225, 8, 10),
    (226, 8, 8),
    (227, 8, 8),
    (228, 8, 8),
    (229, 8, 10),
    (230, 7, 8),
    (231, 7, 9),
    (232, 8, 8),
    (233, 9, 9),
    (234, 8, 10),
    (235, 8, 8),
    (236, 8, 8),
    (237, 9, 9),
    (238, 7, 7),
    (239, 7, 7),
    (240, 9, 9),
    (241, 7, 8),
    (242, 9, 9),
    (243, 9, 9),
    (244, 9, 9),
    (245, 7, 9),
    (246, 7, 7),
    (248, 7, 7),
    (249, 9, 9),
    (250, 9, 9),
    (251, 9, 9),
    (252, 7, 9),
    (253, 8, 8),
    (254, 9, 10),
    (255, 9, 9),
    (256, 9, 9),
    (257, 8, 8),
    (258, 8, 9),
    (260, 9, 9),
    (261, 9, 9),
    (262, 9, 9),
    (263, 5, 10),
    (264, 8, 9),
    (265, 7, 9),
    (266, 8, 8),
    (267, 7, 8),
    (268, 8, 8),
    (269, 7, 7),
    (290, 4, 5),
    (291, 7, 7),
    (297, 7, 7),
    (298, 6, 6),
    (299, 6, 6),
    (350, 8, 8),
    (351, 9, 9),
    (352, 4, 11),
    (353, 7, 9),
    (354, 7, 9),
    (355, 8, 9),
    (356, 8, 8),
    (357, 8, 8),
    (358, 5, 12),
    (359, 7, 9),
    (370, 8, 8),
    (371, 8, 8),
    (372, 7, 8),
    (373, 8, 8),
    (374, 8, 8),
    (375, 9, 10),
    (376, 6, 9),
    (377, 8, 9),
    (378, 6, 10),
    (380, 9, 9),
    (381, 6, 12),
    (382, 8, 8),
    (383, 8, 8),
    (385, 6, 9),
    (386, 8, 8),
    (387, 8, 9),
    (389, 8, 8),
    (420, 9, 9),
    (421, 9, 9),
    (423, 7, 9),
    (500, 5, 5),
    (501, 7, 7),
    (502, 8, 8),
    (503, 8, 8),
    (504, 8, 8),
    (505, 8, 8),
    (506, 8, 8),
    (507, 7, 8),
    (508, 6, 6),
    (509, 8, 8),
    (590, 9, 9),
    (591, 8, 8),
    (592, 7, 7),
    (593, 8, 9),
    (594, 9, 9),
    (595, 6, 9),
    (596, 9, 9),
    (597, 6, 7),
    (598, 8, 8),
    (599, 7, 8),
    (670, 7, 8),
    (672, 6, 6),
    (673, 7, 7),
    (674, 7, 7),
    (675, 7, 8),
    (676, 5, 7),
    (677, 5, 7),
    (678, 5, 7),
    (679, 7, 7),
    (680, 7, 7),
    (681, 6, 6),
    (682, 5, 5),
    (683, 4, 7),
    (685, 5, 7),
    (686, 5, 8),
    (687, 6, 6),
    (688, 5, 7),
    (689, 6, 8),
    (690, 4, 7),
    (691, 7, 7),
    (692, 7, 7),
    (850, 8, 10),
    (852, 8, 8),
    (853, 8, 8),
    (855, 8, 9),
    (856, 8, 10),
    (880, 8, 10),
    (886, 8, 9),
    (960, 7, 7),
    (961, 7, 8),
    (962, 8, 9),
    (963, 8, 9),
    (964, 8, 10),
    (965, 8, 8),
    (966, 9, 9),
    (967, 7, 9),
    (968, 8, 8),
    (970, 8, 9),
    (971, 8, 9),
    (972, 8, 9),
    (973, 8, 8),
    (974, 8, 8),
    (975, 7, 8),
    (976, 8, 8),
    (977, 8, 10),
    (992, 9, 9),
    (993, 8, 8),
    (994, 9, 9),
    (995, 9, 9),
    (996, 9, 9),
    (998, 9, 9),
];

/// IBAN lengths of the ISO 13616 registry (and of the countries with IBANs in national use).
const IBAN_LENGTHS: &[(&[u8; 2], u8)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AO", 25),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BF", 28),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BJ", 28),
    (b"BR", 29),
    (b"BY", 28),
    (b"CF", 27),
    (b"CG", 27),
    (b"CH", 21),
    (b"CI", 28),
    (b"CM", 27),
    (b"CR", 22),
    (b"CV", 25),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"DZ", 26),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GA", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GQ", 27),
    (b"GR", 27),
    (b"GT", 28),
    (b"GW", 25),
    (b"HN", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IR", 26),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KM", 27),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MA", 28),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MG", 27),
    (b"MK", 19),
    (b"ML", 28),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"MZ", 25),
    (b"NE", 28),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SN", 28),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TD", 27),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

/// Whether an IBAN (spaces allowed, any case) has the exact length its country's registry
/// entry gives. Unknown country codes fail.
pub fn iban_length(value: &str) -> bool {
    let compact: Vec<u8> = value.bytes().filter(|b| *b != b' ').map(|b| b.to_ascii_uppercase()).collect();
    let Some(country) = compact.first_chunk::<2>() else { return false };
    IBAN_LENGTHS.iter().any(|(code, len)| *code == country && usize::from(*len) == compact.len())
}

/// The decimal digits of `value`, ignoring spaces, dots, dashes and slashes; `None` when any
/// other character is present.
fn digits_of(value: &str) -> Option<Vec<u8>> {
    value
        .bytes()
        .filter(|b| !matches!(b, b' ' | b'.' | b'-' | b'/'))
        .map(|b| b.is_ascii_digit().then(|| b - b'0'))
        .collect()
}

/// Whether every digit is the same (`000000000`, `11111111111`): never an issued number.
fn one_digit_repeated(digits: &[u8]) -> bool {
    digits.windows(2).all(|pair| pair.first() == pair.last())
}

/// UK National Insurance number `AB123456C` (spaces allowed): the first letter is not D, F,
/// I, Q, U or V; the second not D, F, I, O, Q, U or V; the prefix is not BG, GB, KN, NK, NT, TN
/// or ZZ (never allocated); six digits; suffix A–D.
pub fn uk_nino(value: &str) -> bool {
    let compact: Vec<u8> = value.bytes().filter(|b| *b != b' ').collect();
    let [first, second, d1, d2, d3, d4, d5, d6, suffix] = compact[..] else { return false };
    const UNALLOCATED: [[u8; 2]; 7] = [*b"BG", *b"GB", *b"KN", *b"NK", *b"NT", *b"TN", *b"ZZ"];
    first.is_ascii_uppercase()
        && second.is_ascii_uppercase()
        && !b"DFIQUV".contains(&first)
        && !b"DFIOQUV".contains(&second)
        && !UNALLOCATED.contains(&[first, second])
        && [d1, d2, d3, d4, d5, d6].iter().all(u8::is_ascii_digit)
        && (b'A'..=b'D').contains(&suffix)
}

/// German tax id (Steuerliche Identifikationsnummer): 11 digits, the first not 0; in the first
/// ten, exactly one digit occurs twice or three times (never three in a row) and the others at
/// most once; the last is the ISO 7064 MOD 11,10 check digit.
pub fn de_tax_id(value: &str) -> bool {
    let Some(digits) = digits_of(value) else { return false };
    let [first, .., check] = digits[..] else { return false };
    if digits.len() != 11 || first == 0 {
        return false;
    }
    let body = digits.get(..10).unwrap_or_default();
    let mut counts = [0u8; 10];
    for d in body {
        if let Some(count) = counts.get_mut(usize::from(*d)) {
            *count += 1;
        }
    }
    let repeated = counts.iter().filter(|c| **c >= 2).count();
    let most = counts.iter().copied().max().unwrap_or(0);
    let three_in_a_row = body.windows(3).any(|w| w.iter().all(|d| Some(d) == w.first()));
    if repeated != 1 || most > 3 || three_in_a_row {
        return false;
    }
    let mut product: u8 = 10;
    for d in body {
        let mut sum = (d + product) % 10;
        if sum == 0 {
            sum = 10;
        }
        product = (sum * 2) % 11;
    }
    let expected = (11 - product) % 10;
    check == expected
}

/// French social security number (NIR, "numéro INSEE"): sex 1/2 (or 3, 4, 7, 8 for provisional
/// numbers), year, month (01–12, 20 or 30–42 when unknown, 50–99 for some registrations),
/// department (two digits, or 2A/2B for Corsica), commune, order, then the key
/// 97 − (the 13-digit number mod 97), Corsica counted as 19 (2A) and 18 (2B).
pub fn fr_nir(value: &str) -> bool {
    let compact: Vec<u8> = value.bytes().filter(|b| *b != b' ').map(|b| b.to_ascii_uppercase()).collect();
    if compact.len() != 15 || !matches!(compact.first(), Some(b'1' | b'2' | b'3' | b'4' | b'7' | b'8')) {
        return false;
    }
    let (department, corsica) = match compact.get(5..7) {
        Some(b"2A") => (19u64, true),
        Some(b"2B") => (18, true),
        Some(d) if d.iter().all(u8::is_ascii_digit) => (0, false),
        _ => return false,
    };
    let mut number: u64 = 0;
    for (i, b) in compact.iter().take(13).enumerate() {
        let digit = if corsica && (5..7).contains(&i) {
            continue;
        } else if b.is_ascii_digit() {
            u64::from(b - b'0')
        } else {
            return false;
        };
        number = number * 10 + digit;
        if corsica && i == 4 {
            number = number * 100 + department;
        }
    }
    let Some(key) = compact.get(13..15).filter(|k| k.iter().all(u8::is_ascii_digit)) else { return false };
    let key = key.iter().fold(0u64, |acc, b| acc * 10 + u64::from(b - b'0'));
    let month = compact.get(3..5).map_or(0, |m| m.iter().fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0')));
    let month_ok = (1..=12).contains(&month) || (20..=42).contains(&month) || (50..=99).contains(&month);
    month_ok && key == 97 - number % 97
}

/// Verhoeff's dihedral-group multiplication table.
const VERHOEFF_D: [[u8; 10]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];

/// Verhoeff's position permutations.
const VERHOEFF_P: [[u8; 10]; 8] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];

/// Whether `digits` (check digit last) pass Verhoeff's check.
fn verhoeff(digits: &[u8]) -> bool {
    let mut check = 0u8;
    for (i, d) in digits.iter().rev().enumerate() {
        let permuted = VERHOEFF_P.get(i % 8).and_then(|row| row.get(usize::from(*d)));
        let next = permuted.and_then(|p| VERHOEFF_D.get(usize::from(check)).and_then(|row| row.get(usize::from(*p))));
        let Some(next) = next else { return false };
        check = *next;
    }
    check == 0
}

/// Indian Aadhaar number: 12 digits (spaces or dashes allowed), the first 2–9, not one digit
/// repeated, Verhoeff check digit.
pub fn in_aadhaar(value: &str) -> bool {
    let Some(digits) = digits_of(value) else { return false };
    digits.len() == 12 && digits.first().is_some_and(|d| *d >= 2) && !one_digit_repeated(&digits) && verhoeff(&digits)
}

/// Brazilian CPF: 11 digits (`123.456.789-09` or compact), not one digit repeated, two mod-11
/// check digits.
pub fn br_cpf(value: &str) -> bool {
    let Some(digits) = digits_of(value) else { return false };
    if digits.len() != 11 || one_digit_repeated(&digits) {
        return false;
    }
    let check = |len: usize| {
        let weighted: u32 =
            digits.iter().take(len).enumerate().map(|(i, d)| u32::from(*d) * (len as u32 + 1 - i as u32)).sum();
        (weighted * 10 % 11 % 10) as u8
    };
    digits.get(9) == Some(&check(9)) && digits.get(10) == Some(&check(10))
}

/// Spanish DNI (8 digits and a letter) or NIE (X, Y or Z, 7 digits and a letter): the letter
/// is `TRWAGMYFPDXBNJZSQVHLCKE` indexed by the number mod 23 (X, Y, Z count as 0, 1, 2).
pub fn es_dni(value: &str) -> bool {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let compact: Vec<u8> = value.bytes().filter(|b| *b != b'-' && *b != b' ').collect();
    let Some((letter, body)) = compact.split_last() else { return false };
    let (lead, digits) = match body.split_first() {
        Some((b'X', rest)) => (0u8, rest),
        Some((b'Y', rest)) => (1, rest),
        Some((b'Z', rest)) => (2, rest),
        _ => (0, body),
    };
    if body.len() != 8 || !digits.iter().all(u8::is_ascii_digit) || one_digit_repeated(digits) {
        return false;
    }
    let number = digits.iter().fold(u32::from(lead), |acc, b| acc * 10 + u32::from(b - b'0'));
    LETTERS.get((number % 23) as usize) == Some(letter)
}

/// Dutch citizen service number (BSN): 9 digits whose weighted sum (9…2, and −1 for the last)
/// is a multiple of 11, not starting with 0 0.
pub fn nl_bsn(digits: &[u8]) -> bool {
    if digits.len() != 9 || digits.starts_with(&[0, 0]) || one_digit_repeated(digits) {
        return false;
    }
    let sum: i32 = digits.iter().enumerate().map(|(i, d)| i32::from(*d) * if i == 8 { -1 } else { 9 - i as i32 }).sum();
    sum.rem_euclid(11) == 0
}

/// Canadian social insurance number: 9 digits passing Luhn, the first not 0 or 8.
pub fn ca_sin(digits: &[u8]) -> bool {
    if digits.len() != 9 || matches!(digits.first(), Some(0 | 8)) || one_digit_repeated(digits) {
        return false;
    }
    // Luhn: every second digit from the right doubled, the digits of the products summed.
    let weighted = |(i, d): (usize, &u8)| u32::from(*d) * if i % 2 == 1 { 2 } else { 1 };
    let sum: u32 = digits.iter().rev().enumerate().map(weighted).map(|x| x / 10 + x % 10).sum();
    sum % 10 == 0
}

/// Italian codice fiscale: 16 characters (six letters, birth year, month letter, day, place
/// code, check letter; digits may be replaced by letters LMNPQRSTUV for homonyms), the last the
/// check letter of the odd/even character tables.
pub fn it_codice_fiscale(value: &str) -> bool {
    /// Values of the characters in odd positions (1st, 3rd, …), indexed by digit or letter.
    const ODD: [u32; 26] =
        [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23];
    let bytes = value.as_bytes();
    if bytes.len() != 16 || !bytes.iter().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
        return false;
    }
    let mut sum = 0u32;
    for (i, b) in bytes.iter().take(15).enumerate() {
        let index = if b.is_ascii_digit() { b - b'0' } else { b - b'A' };
        sum += if i % 2 == 0 { ODD.get(usize::from(index)).copied().unwrap_or(0) } else { u32::from(index) };
    }
    let expected = b'A' + (sum % 26) as u8;
    bytes.get(15) == Some(&expected)
}

/// Chinese resident identity number: 17 digits and a check character (0–9 or X) of ISO 7064
/// MOD 11-2; the birth date (digits 7–14) is a real date from 1900 on.
pub fn cn_resident_id(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() != 18 || !bytes.iter().take(17).all(u8::is_ascii_digit) {
        return false;
    }
    let number = |range: std::ops::Range<usize>| {
        bytes.get(range).map_or(0, |s| s.iter().fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0')))
    };
    let (year, month, day) = (number(6..10), number(10..12), number(12..14));
    if !(1900..=2099).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = bytes.iter().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    let expected = b"10X98765432".get((sum % 11) as usize).copied();
    bytes.get(17).map(u8::to_ascii_uppercase) == expected
}

/// A number written next to a national-id label (`Aadhaar:`, `CPF`, `Steuer-ID`, `BSN`,
/// `social insurance number`, `tax id`, …): passes the check of an id of its length — 9
/// digits a Dutch BSN or Canadian SIN, 11 a Brazilian CPF or German tax id, 12 an Aadhaar,
/// 13 or 15 a French NIR (15 with its key).
pub fn labelled_national_id(value: &str) -> bool {
    let Some(digits) = digits_of(value) else { return false };
    match digits.len() {
        9 => nl_bsn(&digits) || ca_sin(&digits),
        11 => br_cpf(value) || de_tax_id(value),
        12 => in_aadhaar(value),
        15 => fr_nir(value),
        _ => false,
    }
}

/// Whether a matched email address is personal data worth masking: not an example or reserved
/// domain (RFC 2606/6761), not an ssh user (`git@host`), not a `noreply@` sender, not an asset
/// name such as `icon@2x.png`.
pub fn email(value: &str) -> bool {
    const NOT_PERSONAL: [&str; 3] = ["git", "noreply", "no-reply"];
    const EXAMPLE_DOMAINS: [&str; 3] = ["example.com", "example.org", "example.net"];
    const RESERVED_TLDS: [&str; 5] = ["test", "example", "invalid", "localhost", "local"];
    const FILE_EXTENSIONS: [&str; 9] = ["png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "avif"];
    let Some((local, domain)) = value.rsplit_once('@') else { return false };
    let local = local.trim_start_matches(['.', '_', '%', '+', '-']).to_ascii_lowercase();
    let domain = domain.to_ascii_lowercase();
    let tld = domain.rsplit('.').next().unwrap_or_default();
    let example = EXAMPLE_DOMAINS
        .iter()
        .any(|d| domain.strip_suffix(d).is_some_and(|rest| rest.is_empty() || rest.ends_with('.')));
    !(local.is_empty()
        || NOT_PERSONAL.contains(&local.as_str())
        || example
        || RESERVED_TLDS.contains(&tld)
        || FILE_EXTENSIONS.contains(&tld))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hex_dumps_bytes_are_not_a_phone_number() {
        assert!(!phone("00 49 30 12 34 56 78 90"));
        assert!(!phone("00 44 20 79 46 09 58 01"));
        // Written phone numbers with a 00 prefix still pass.
        assert!(phone("0049 30 12345678"));
        assert!(phone("00 44 20 7946 0958"));
    }

    #[test]
    fn phone_numbers_need_an_assigned_country_code_and_a_length_used_there() {
        for plausible in [
            "+44 20 7946 0958",
            "+49 (0)30 1234567",
            "+33 6 12 34 56 78",
            "+91 98765 43210",
            "+55 11 91234-5678",
            "+81 3-1234-5678",
            "0044 20 7946 0958",
            "00 49 30 1234567",
            "+44 020 7946 0958",
            "+14155550132",
            "(415) 555-0132",
            "1-800-555-0199",
            "06 12 34 56 78",
            "07.17.64.67.97",
            "+1 555 010 0199",
            "07700 900123",
            "0151 23456789",
        ] {
            assert!(phone(plausible), "{plausible}");
        }
        for implausible in [
            "+1 2345",
            "+1234567890123456",
            "+11111111111",
            "+1 123 555 0132",
            "+44 20 7946 09581234",
            "+999 1234 5678",
            "+33 6 12 34",
            "555-0132",
            "12 345 678 9012",
            "01.02.2024 10",
            "01/02/2024 1030",
            "0000000000",
        ] {
            assert!(!phone(implausible), "{implausible}");
        }
    }

    #[test]
    fn iban_lengths_follow_the_registry() {
        for exact in ["DE89 3704 0044 0532 0130 00", "NO9386011117947", "fr1420041010050500013m02606"] {
            assert!(iban_length(exact), "{exact}");
        }
        for wrong in ["DE89 3704 0044 0532 0130 0", "NO93860111179470", "XX12345678901234", "D"] {
            assert!(!iban_length(wrong), "{wrong}");
        }
    }

    #[test]
    fn nino_follows_the_allocation_rules() {
        for valid in ["AB123456C", "JG 10 37 93 D", "PR010203A"] {
            assert!(uk_nino(valid), "{valid}");
        }
        for invalid in ["QQ123456C", "GB123456A", "AO123456B", "DA123456A", "AB123456E", "AB12345C", "ab123456c"] {
            assert!(!uk_nino(invalid), "{invalid}");
        }
    }

    #[test]
    fn german_tax_id_checks_repetition_and_mod_11_10() {
        // 6701343259, then its check digit 1: 3 twice, every other digit at most once.
        assert!(de_tax_id("67013432591"));
        assert!(de_tax_id("67 013 432 591"));
        for invalid in ["67013432592", "07013432591", "11111111111", "12345678903", "6701343259", "67013332591"] {
            assert!(!de_tax_id(invalid), "{invalid}");
        }
    }

    #[test]
    fn french_nir_key_is_97_minus_the_number_mod_97() {
        assert!(fr_nir("113109265519338"));
        assert!(fr_nir("1 13 10 92 655 193 38"));
        assert!(fr_nir("212092A57806268"));
        for invalid in ["113109265519339", "513109265519338", "11310926551933", "212092C57806268", "113139265519338"] {
            assert!(!fr_nir(invalid), "{invalid}");
        }
    }

    #[test]
    fn aadhaar_uses_verhoeff() {
        assert!(verhoeff(&[2, 3, 6]));
        assert!(in_aadhaar("5786 5797 5438"));
        assert!(in_aadhaar("578657975438"));
        for invalid in ["5786 5797 5439", "1786 5797 5438", "578657975", "2222 2222 2222"] {
            assert!(!in_aadhaar(invalid), "{invalid}");
        }
    }

    #[test]
    fn cpf_has_two_mod_11_check_digits() {
        for valid in ["123.456.789-09", "12345678909", "529.982.247-25"] {
            assert!(br_cpf(valid), "{valid}");
        }
        for invalid in ["123.456.789-08", "111.111.111-11", "123.456.789-0"] {
            assert!(!br_cpf(invalid), "{invalid}");
        }
    }

    #[test]
    fn spanish_ids_check_their_letter() {
        for valid in ["12345678Z", "12345678-Z", "X1234567L", "Y0189555A", "11862527R"] {
            assert!(es_dni(valid), "{valid}");
        }
        for invalid in ["12345678A", "X1234567A", "1234567Z", "W1234567L"] {
            assert!(!es_dni(invalid), "{invalid}");
        }
    }

    #[test]
    fn bsn_sin_codice_fiscale_and_chinese_ids_check_their_digits() {
        assert!(nl_bsn(&[1, 1, 1, 2, 2, 2, 3, 3, 3]));
        assert!(!nl_bsn(&[1, 1, 1, 2, 2, 2, 3, 3, 4]));
        assert!(ca_sin(&[1, 4, 9, 7, 4, 6, 5, 0, 5]));
        assert!(!ca_sin(&[1, 4, 9, 7, 4, 6, 5, 0, 6]));
        assert!(!ca_sin(&[8, 4, 9, 7, 4, 6, 5, 0, 5]));
        assert!(it_codice_fiscale("RSSMRA85T10A562S"));
        assert!(!it_codice_fiscale("RSSMRA85T10A562T"));
        assert!(cn_resident_id("11010519491231002X"));
        assert!(cn_resident_id("412768197503276849"));
        assert!(it_codice_fiscale("OLFTDP07D37E366N"));
        assert!(!cn_resident_id("110105194912310021"));
        assert!(!cn_resident_id("11010519491331002X"));
    }

    #[test]
    fn labelled_ids_pass_the_check_of_an_id_of_their_length() {
        for valid in ["111222333", "149-746-505", "12345678909", "67013432591", "578657975438", "113109265519338"] {
            assert!(labelled_national_id(valid), "{valid}");
        }
        for invalid in ["111222334", "12345678908", "578657975439", "1234567", "12a456789"] {
            assert!(!labelled_national_id(invalid), "{invalid}");
        }
    }

    proptest::proptest! {
        #[test]
        fn checks_are_total(text in ".{0,40}") {
            let _ = (phone(&text), iban_length(&text), uk_nino(&text), de_tax_id(&text), fr_nir(&text));
            let _ = (in_aadhaar(&text), br_cpf(&text), es_dni(&text), it_codice_fiscale(&text));
            let _ = (cn_resident_id(&text), labelled_national_id(&text));
        }
    }
}
