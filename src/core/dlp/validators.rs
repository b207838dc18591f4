//! Validators that turn a pattern match into a finding, or reject it as a false positive.
//!
//! A regex finds things shaped like a secret or personal data; these checks decide whether the
//! match is plausibly real: card numbers pass Luhn, IBANs pass ISO 7064 mod-97, US social
//! security numbers fall in issued ranges, generic secrets have enough entropy and are not
//! placeholders or documented example values, and a generic assignment's name and value fit
//! together ([`assignment`]; the rules are in [`super::catalog`]'s `generic` family). This module
//! depends on no other part of the DLP engine. All functions are pure, allocation-light and total
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

/// Longest value in which placeholder words (`example`, `your`, `dummy`, …) are looked for: a long
/// random key contains one of them by chance now and then.
const MAX_WORDY_PLACEHOLDER_LEN: usize = 64;

/// Values that look like a secret's slot, not a secret: documented example values, template
/// placeholders (`<your-api-key>`, `${VAR}`, `$VAR`, `{{ var }}`, `%(var)s`, `$(cmd)`,
/// `<%= … %>`), masks and truncations (`****`, `•••`, `sk-...`, `ghp_abc…`), runs of `x`
/// (`ghp_XXXXXXXX…`), repeated or sequential characters (`aaaaaaaa`, `1234567890abcdef`), a
/// secret's own name as its value (`password`), placeholder words in short values (`changeme`,
/// `your-key-here`, `dummy`, `fake`, `sample`, `redacted`), and PEM blocks whose body is elided.
///
/// Never the word `test`: Stripe-style `sk_test_…` keys are real credentials. Every rule looks
/// at the value's own shape; a random value passes.
pub fn is_placeholder(value: &str) -> bool {
    const EXAMPLES: [&str; 4] = [
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        "AKIAI44QH8DHBEXAMPLE",
    ];
    const WORDS: [&str; 14] = [
        "example",
        "placeholder",
        "changeme",
        "change_me",
        "change-me",
        "your",
        "dummy",
        "sample",
        "redacted",
        "fake",
        "replace",
        "insert",
        "here",
        "notreal",
    ];
    let trimmed = value.trim_matches(|c: char| matches!(c, '"' | '\'' | '`'));
    if trimmed.is_empty() || EXAMPLES.contains(&trimmed) {
        return true;
    }
    if trimmed.starts_with("-----BEGIN") {
        return is_elided_pem(trimmed);
    }
    let lower = trimmed.to_ascii_lowercase();
    if is_templated(&lower) || is_masked(&lower) || is_repetitive(&lower) || is_secret_word(&lower) {
        return true;
    }
    trimmed.len() <= MAX_WORDY_PLACEHOLDER_LEN && WORDS.iter().any(|w| lower.contains(w))
}

/// A template or variable reference instead of a value: `<…>` around it, `${`, `{{`, `}}`,
/// `%(name)s`, `$(`, `<%`, `{name}`, or `$NAME`/`%NAME%`.
fn is_templated(lower: &str) -> bool {
    let wrapped = |open: &str, close: &str| lower.starts_with(open) && lower.ends_with(close);
    let bare_variable = |rest: Option<&str>| {
        rest.is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    };
    ["${", "{{", "}}", "%(", "$(", "<%", "#{"].iter().any(|marker| lower.contains(marker))
        || wrapped("<", ">")
        || wrapped("{", "}")
        || wrapped("[", "]")
        || bare_variable(lower.strip_prefix('$'))
        || bare_variable(lower.strip_prefix('%').and_then(|r| r.strip_suffix('%')))
}

/// A masked, elided or truncated value: `***`, `•••`, `…`, `...`, or a run of four `x`.
fn is_masked(lower: &str) -> bool {
    ["***", "•", "…", "...", "xxxx", "[redacted", "(redacted"].iter().any(|marker| lower.contains(marker))
}

/// Few distinct characters (`abababab`), or mostly repeated and consecutive characters
/// (`aaaaaaaa`, `1234567890abcdef`, `abcdefghijklmnop`), counted over letters and digits.
fn is_repetitive(lower: &str) -> bool {
    let alnum: Vec<u8> = lower.bytes().filter(u8::is_ascii_alphanumeric).collect();
    if alnum.len() < 8 {
        return false;
    }
    let mut seen = [false; 128];
    for &b in &alnum {
        if let Some(slot) = seen.get_mut(usize::from(b)) {
            *slot = true;
        }
    }
    let distinct = seen.iter().filter(|&&s| s).count();
    let pairs = alnum.len() - 1;
    let steady = alnum.windows(2).filter(|w| matches!(w, [a, b] if *b == *a || Some(*b) == a.checked_add(1))).count();
    distinct <= 3 || steady * 10 >= pairs * 6
}

/// The name of a secret, or a stock password, used as its own value: `password`, `secret`,
/// `token`, `api_key`, `admin`, `letmein`, `qwerty`, `hunter2`.
fn is_secret_word(lower: &str) -> bool {
    const STOCK: [&str; 18] = [
        "password", "passwd", "pass", "pwd", "secret", "token", "apikey", "api_key", "api-key", "admin", "root",
        "letmein", "qwerty", "hunter2", "welcome", "default", "none", "null",
    ];
    let stripped = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c == '!');
    STOCK.contains(&stripped)
}

/// A PEM block whose body is elided or a placeholder: shorter than a key, or holding `...`,
/// `…`, `xxxx` or `REDACTED`.
fn is_elided_pem(block: &str) -> bool {
    // `-----BEGIN …-----body-----END …-----`: the body is every other piece between dashes.
    let body: String = block.split("-----").step_by(2).collect::<String>().replace("\\n", "").replace("\\r", "");
    let lower = body.to_ascii_lowercase();
    body.chars().filter(|c| !c.is_whitespace()).count() < 40 || is_masked(&lower) || lower.contains("redacted")
}

/// A UUID (`8-4-4-4-12` hex digits): an id, not a secret, as the value of a generic name.
pub fn is_uuid(value: &str) -> bool {
    value.len() == 36
        && value
            .bytes()
            .enumerate()
            .all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { b.is_ascii_hexdigit() })
}

/// The words of an identifier or phrase, lower-case: split at every character other than a
/// letter or digit, at lower-to-upper changes (`apiKey`), at the end of an acronym (`APIKey`)
/// and at letter-digit changes (`PASSWORD2`).
pub fn identifier_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut previous: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            previous = None;
            continue;
        }
        let next = chars.peek().copied();
        let boundary = previous.is_some_and(|p| {
            (p.is_ascii_lowercase() && c.is_ascii_uppercase())
                || p.is_ascii_digit() != c.is_ascii_digit()
                || (p.is_ascii_uppercase() && c.is_ascii_uppercase() && next.is_some_and(|n| n.is_ascii_lowercase()))
        });
        if boundary && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        current.push(c.to_ascii_lowercase());
        previous = Some(c);
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Words joined, not random characters: an identifier (`userPassword`, `ENCRYPTION_KEY_NOT_SET`,
/// `my-tls-secret`), a dotted name (`spring.datasource.url`) or a phrase. Every letter run
/// between separators, case changes and digits is 2+ letters that could be pronounced (up to 4
/// letters without a vowel, such as `tls`; else a sixth or more vowels and no 5 consonants in a
/// row), about a third of them at most are 1–2 letters, at most two digit runs of up to 8, one run is 3+
/// letters, and vowels (`aeiouy`) are a quarter of the letters or more, as in words. Random keys
/// almost always hold a lone letter between digits or case changes (`q8Zr2LxP`), many
/// two-letter humps (`QcZjCw`) or too few vowels.
pub fn is_wordy(value: &str) -> bool {
    let words = identifier_words(value);
    let pronounceable = |word: &str| {
        let vowels = word.bytes().filter(|b| b"aeiouy".contains(b)).count();
        let mut run = 0usize;
        let mut longest_consonants = 0usize;
        for b in word.bytes() {
            run = if b"aeiouy".contains(&b) { 0 } else { run + 1 };
            longest_consonants = longest_consonants.max(run);
        }
        word.len() >= 2 && longest_consonants <= 4 && (word.len() <= 4 || vowels * 6 >= word.len())
    };
    let is_number = |w: &&String| w.bytes().all(|b| b.is_ascii_digit());
    let letters: Vec<&String> = words.iter().filter(|w| !is_number(w)).collect();
    let short = letters.iter().filter(|w| w.len() <= 2).count();
    let letters_ok = letters.iter().all(|w| pronounceable(w)) && short * 3 <= letters.len() + 1;
    let numbers: Vec<&String> = words.iter().filter(is_number).collect();
    let digits_ok = numbers.len() <= 2 && numbers.iter().all(|w| w.len() <= 8);
    let has_word = letters.iter().any(|w| w.len() >= 3);
    let letter_count: usize = letters.iter().map(|w| w.len()).sum();
    let vowel_count: usize = letters.iter().map(|w| w.bytes().filter(|b| b"aeiouy".contains(b)).count()).sum();
    has_word && letters_ok && digits_ok && vowel_count * 4 >= letter_count
}

/// A reference, not a value: a URL (`://`), a home or relative path, variable or format string
/// by its first character (`~`, `.`, `$`, `%`), a colour (`#ff00aa`), a flag, comment,
/// decorator or glob (`-AsSecureString`, `#comment`, `@types`, `*.acme.io`), a value cut
/// short before a concatenation (ends with `.`, or with `-`/`_` and holds no digit:
/// `"sk-ant-bench-" + suffix`), a version (`v1.2.3`, `2.31.0-beta`), or words joined by dots
/// or slashes (`config.appKey`, `/etc/secrets/api.key`, `prod/app/db-credentials`). A leading
/// or trailing `/` alone proves nothing: base64 keys have them.
pub fn looks_like_code_or_location(value: &str) -> bool {
    let rest = value.trim_start_matches(['-', '#', '@', '*']);
    let colour =
        value.starts_with('#') && matches!(rest.len(), 3 | 4 | 6 | 8) && rest.bytes().all(|b| b.is_ascii_hexdigit());
    let marked_word = rest.len() < value.len() && (is_wordy(rest) || rest.starts_with('.'));
    let starts = value.starts_with(['~', '.', '$', '%']) || colour || marked_word;
    let cut_short = value.ends_with('.') || (value.ends_with(['-', '_']) && !value.bytes().any(|b| b.is_ascii_digit()));
    let version = {
        let rest = value.strip_prefix(['v', 'V']).unwrap_or(value);
        let numeric: Vec<&str> = rest.split(['-', '+']).next().unwrap_or("").split('.').collect();
        numeric.len() >= 2 && numeric.iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    let pieces: Vec<&str> = value.split(['.', '/']).filter(|piece| !piece.is_empty()).collect();
    let plain = |piece: &&str| {
        is_wordy(piece)
            || piece.bytes().all(|b| b.is_ascii_digit())
            || (piece.len() <= 4 && piece.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
    };
    // `warden.budget.team-daily.0123456789abcdef`: an id after two or more words is a name too.
    let (last, names) = pieces.split_last().map_or((None, &[][..]), |(l, n)| (Some(l), n));
    let id_after_words = names.len() >= 2 && names.iter().all(|p| is_wordy(p)) && last.is_some();
    let joined_words =
        value.contains(['.', '/']) && !value.contains(['+', '=']) && (pieces.iter().all(plain) || id_after_words);
    value.contains("://") || starts || cut_short || version || joined_words
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
        bytes.windows(width).any(|w| {
            w.windows(2).all(|pair| match pair {
                [a, b] => i16::from(*b) - i16::from(*a) == step,
                _ => false,
            })
        })
    };
    entropy_bits_per_char(body) < 3.0 || run(5, 0) || run(6, 1) || run(6, -1)
}

// ---- Generic assignments: a secret's name and its value judged together ----

/// How strongly a name says its value is a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strength {
    /// A password: people choose it, so words and digits are fine.
    Password,
    /// A secret, token, credential, API or private key: machine-made, so not words.
    Strong,
    /// A bare `key` or a vendor's `*_key`, `auth`, `bearer`, `jwt`: the value must look random.
    Weak,
}

/// Words that say a name's value is not a secret, even when the name ends like one.
const NOT_SECRET_WORDS: [&str; 62] = [
    "public",
    "publishable",
    "pub",
    "cache",
    "sort",
    "primary",
    "foreign",
    "partition",
    "row",
    "hash",
    "hashed",
    "sha",
    "sha1",
    "sha256",
    "md5",
    "digest",
    "checksum",
    "etag",
    "integrity",
    "commit",
    "page",
    "next",
    "prev",
    "continuation",
    "cursor",
    "cancellation",
    "idempotency",
    "dedup",
    "i18n",
    "translation",
    "label",
    "title",
    "text",
    "message",
    "object",
    "file",
    "path",
    "url",
    "uri",
    "endpoint",
    "name",
    "type",
    "length",
    "count",
    "max",
    "min",
    "limit",
    "size",
    "header",
    "field",
    "prefix",
    "suffix",
    "pattern",
    "format",
    "column",
    "index",
    "lookup",
    "map",
    "version",
    "ref",
    "fingerprint",
    "csrf",
];
/// Words before `key` that make it a secret's key (`SIGNING_KEY`, `api_key`, `masterKey`).
const SECRET_KEY_QUALIFIERS: [&str; 26] = [
    "api",
    "secret",
    "private",
    "access",
    "master",
    "signing",
    "sign",
    "encryption",
    "encrypt",
    "crypt",
    "crypto",
    "cipher",
    "aes",
    "hmac",
    "license",
    "licence",
    "client",
    "app",
    "auth",
    "deploy",
    "service",
    "account",
    "subscription",
    "admin",
    "consumer",
    "webhook",
];
/// Single-word names that end in a secret word (`apikey`, `dbpassword`) whose last part is a
/// secret: checked by suffix.
const PASSWORD_WORDS: [&str; 4] = ["password", "passwd", "passphrase", "pwd"];

/// Whether `value`, assigned after `context` (the name from the start of its identifier run, the
/// operator and any quote), is a secret worth masking: see the module header.
pub fn assignment(context: &str, value: &str) -> bool {
    let name_len =
        context.bytes().take_while(|&b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')).count();
    let (name, separator) = context.split_at(name_len.min(context.len()));
    let Some(strength) = name_strength(name) else { return false };
    // After blanks (`--token v`, `SMTP_PASS is set to v`) a value is no password of words.
    let blank_separated = !separator.contains(['=', ':', '>', ',']);
    let strength = if blank_separated && strength == Strength::Password { Strength::Strong } else { strength };
    value_fits(strength, value)
}

/// The strength of a secret's name, or `None` when it does not name a secret.
fn name_strength(name: &str) -> Option<Strength> {
    let mut words = identifier_words(name);
    while words
        .last()
        .is_some_and(|w| w.bytes().all(|b| b.is_ascii_digit()) || matches!(w.as_str(), "value" | "str" | "string"))
    {
        words.pop();
    }
    if words.iter().any(|w| NOT_SECRET_WORDS.contains(&w.as_str())) {
        return None;
    }
    let last = words.last()?.as_str();
    let before = words.len().checked_sub(2).and_then(|i| words.get(i)).map(String::as_str);
    if PASSWORD_WORDS.iter().any(|w| last.ends_with(w)) || last == "pass" {
        return Some(Strength::Password);
    }
    if matches!(last, "secret" | "secrets" | "token" | "credential" | "credentials" | "creds")
        || ["secret", "token"]
            .iter()
            .any(|w| last.ends_with(w) && SECRET_KEY_QUALIFIERS.iter().any(|q| last == format!("{q}{w}")))
    {
        return Some(Strength::Strong);
    }
    if last == "key" {
        return Some(match before {
            Some(q) if SECRET_KEY_QUALIFIERS.contains(&q) || matches!(q, "secret" | "token") => Strength::Strong,
            _ => Strength::Weak,
        });
    }
    if SECRET_KEY_QUALIFIERS.iter().any(|q| last == format!("{q}key")) {
        return Some(Strength::Strong);
    }
    matches!(last, "auth" | "bearer" | "jwt").then_some(Strength::Weak)
}

/// Whether `value` looks like a secret for a name of `strength`.
fn value_fits(strength: Strength, value: &str) -> bool {
    if looks_like_code_or_location(value) {
        return false;
    }
    let digits_only = value.bytes().all(|b| b.is_ascii_digit());
    let entropy = entropy_bits_per_char(value);
    match strength {
        Strength::Password => {
            let identifier =
                is_wordy(value) && (value.contains(['_', '.']) || value.bytes().all(|b| b.is_ascii_alphabetic()));
            entropy >= 2.5 && !is_stock_password(value) && !identifier && !names_a_secret(value)
        }
        Strength::Strong => entropy >= 2.5 && !digits_only && !is_wordy(value),
        Strength::Weak => {
            let classes = [
                value.bytes().any(|b| b.is_ascii_lowercase()),
                value.bytes().any(|b| b.is_ascii_uppercase()),
                value.bytes().any(|b| b.is_ascii_digit()),
                value.bytes().any(|b| !b.is_ascii_alphanumeric()),
            ];
            value.len() >= 16
                && entropy >= 3.0
                && classes.iter().filter(|&&c| c).count() >= 2
                && !is_uuid(value)
                && !is_wordy(value)
        }
    }
}

/// A variable that holds a secret rather than a secret: an identifier path of letters-only
/// words joined by `_` or `.`, one of which names a secret (`password_mgr`, `self.passwd`,
/// `settings.secret_store`), as in `self.passwd = password_mgr`.
fn names_a_secret(value: &str) -> bool {
    const SECRET_WORDS: [&str; 9] =
        ["password", "passwd", "pwd", "pass", "secret", "secrets", "token", "credentials", "creds"];
    let identifier = value.bytes().all(|b| b.is_ascii_alphabetic() || matches!(b, b'_' | b'.'))
        && value.contains(['_', '.'])
        && value.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    identifier && identifier_words(value).iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
}

/// A documentation password: stock words and digits only (`Password123`, `admin2024!`,
/// `test1234`, `secret-password`).
fn is_stock_password(value: &str) -> bool {
    const STOCK: [&str; 22] = [
        "password", "pass", "passwd", "pwd", "secret", "admin", "root", "user", "test", "demo", "default", "example",
        "changeme", "letmein", "qwerty", "welcome", "guest", "my", "foo", "bar", "hello", "world",
    ];
    identifier_words(value).iter().all(|w| w.bytes().all(|b| b.is_ascii_digit()) || STOCK.contains(&w.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_assigned_from_another_variable_is_not_a_secret() {
        for reference in ["password_mgr", "self.passwd", "settings.secret_store", "_token_cache"] {
            assert!(!assignment("self.passwd = ", reference), "{reference}");
        }
        for password in ["hunter2hunter2", "s3cr3t-V4lue!", "Tr0ub4dor&3-horse"] {
            assert!(assignment("password = \"", password), "{password}");
        }
    }

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
        for placeholder in [
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "<your-api-key>",
            "${API_KEY}",
            "$API_KEY",
            "%API_KEY%",
            "{{ token }}",
            "%(password)s",
            "$(cat /run/secrets/token)",
            "<%= ENV['TOKEN'] %>",
            "{token}",
            "xxxxxxxx",
            "ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
            "sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            "sk-...",
            "ghp_abc123…",
            "•••••••••",
            "changeme",
            "YOUR_API_KEY_HERE",
            "your-client-secret",
            "dummy-password-123",
            "fake-api-key-for-tests",
            "PLACEHOLDER_SECRET",
            "REDACTED",
            "password",
            "Password1!",
            "\"****\"",
            "aaaaaaaaaaaa",
            "abababab",
            "1234567890abcdef",
            "0123456789abcdefghijklmnopqrstuv",
            "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN OPENSSH PRIVATE KEY-----\n<your key here>\n-----END OPENSSH PRIVATE KEY-----",
        ] {
            assert!(is_placeholder(placeholder), "{placeholder}");
        }
        let pem_body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj";
        let escaped_pem = format!("-----BEGIN PRIVATE KEY-----\\n{pem_body}\\n-----END PRIVATE KEY-----");
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{pem_body}\n-----END PRIVATE KEY-----");
        for real in [
            "AKIA2E0A8F3B244C9986",
            "q8Zr2LxP0vT7nY4kW9sD",
            "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "ghp_R2x9Kq7LmP0vT3nY8kW4sDz1BcF6hJ5gE2aQ",
            "s3cr3t-V4lue!",
            "hunter2hunter2",
            pem.as_str(),
            escaped_pem.as_str(),
        ] {
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
        for other in [
            "ghp_short",
            "ghr_Xq7rT2mZpL9vN4bW8kYs1dHf6gJc3aAAAAAAAAA",
            "ghp_!q7rT2mZpL9vN4bW8kYs1dHf6gJc3aAAAAAA",
            "plain",
        ] {
            assert_eq!(crc32_base62_tail(other), None, "{other}");
        }
    }

    #[test]
    fn wordy_values_are_identifiers_and_phrases_not_random_keys() {
        for wordy in [
            "userPassword",
            "ENCRYPTION_KEY_NOT_SET",
            "my-tls-secret-name",
            "spring.datasource.url",
            "CSRF_TOKEN_HEADER_NAME",
            "Read-Host",
            "password_confirmation",
            "hunter2hunter2",
        ] {
            assert!(is_wordy(wordy), "{wordy}");
        }
        for random in
            ["q8Zr2LxP0vT7nY4kW9sD", "QYNInQcZJCw76Gh2HiSt", "2b998ed4488521efb74a2ee2a0e57f8a", "N9xZ0+v90131zwtDxk98"]
        {
            assert!(!is_wordy(random), "{random}");
        }
    }

    /// Random keys of the usual alphabets and lengths are almost never taken for words.
    #[test]
    fn random_keys_are_rarely_wordy() {
        let alphabets = [
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            "0123456789abcdef",
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            "abcdefghijklmnopqrstuvwxyz0123456789",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut wordy = 0;
        let mut total = 0;
        for alphabet in alphabets {
            let chars: Vec<char> = alphabet.chars().collect();
            for len in [16, 20, 24, 32, 40] {
                for _ in 0..200 {
                    let key: String = (0..len)
                        .map(|_| {
                            state ^= state << 13;
                            state ^= state >> 7;
                            state ^= state << 17;
                            chars.get((state % chars.len() as u64) as usize).copied().unwrap_or('a')
                        })
                        .collect();
                    total += 1;
                    if is_wordy(&key) || looks_like_code_or_location(&key) || is_placeholder(&key) {
                        wordy += 1;
                    }
                }
            }
        }
        assert!(wordy * 200 <= total, "{wordy} of {total} random keys rejected");
    }

    #[test]
    fn references_versions_and_paths_are_not_values() {
        for reference in [
            "https://oauth2.googleapis.com/token",
            "/etc/secrets/api.key",
            "~/.ssh/id_ed25519",
            "#ff00aa",
            "v1.2.3-beta.4",
            "2.31.0",
            "keys/private.pem",
            "prod/app/db-credentials",
            "config.appKey",
            "warden.budget.team-daily.role.0123456789abcdef",
            "app/cache/v2/",
        ] {
            assert!(looks_like_code_or_location(reference), "{reference}");
        }
        for value in ["q8Zr2LxP0vT7nY4kW9sD", "N9xZ0+v90131zwtDxk98277gL5EmW+Rbkw1w+GLU", "a8f3.Zq81mVx0pL"] {
            assert!(!looks_like_code_or_location(value), "{value}");
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

    #[test]
    fn uuids_and_identifier_words() {
        assert!(is_uuid("123e4567-e89b-42d3-a456-426614174000"));
        assert!(!is_uuid("123e4567-e89b-42d3-a456-42661417400g"));
        assert!(!is_uuid("123e4567e89b42d3a456426614174000"));
        assert_eq!(identifier_words("APIKey"), ["api", "key"]);
        assert_eq!(identifier_words("x-api-key"), ["x", "api", "key"]);
        assert_eq!(identifier_words("authToken2"), ["auth", "token", "2"]);
        assert_eq!(identifier_words("spring.datasource.password"), ["spring", "datasource", "password"]);
    }

    #[test]
    fn typed_bodies_are_told_from_generated_ones() {
        for typed in [
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abcdefghijklmnopqrstuvwxyzABCD",
            "Xq7rT2mZ00000pL9vN4bW8kYs1dHf6",
            "zyxwvu1234567890",
            "abababababababababab",
        ] {
            assert!(looks_typed(typed), "{typed}");
        }
        assert!(!looks_typed("Xq7rT2mZpL9vN4bW8kYs1dHf6gJc3a"));
    }

    proptest::proptest! {
        #[test]
        fn validators_are_total(text in ".{0,64}") {
            let _ = (luhn_card(&text), iban(&text), us_ssn(&text), is_placeholder(&text));
            let _ = (not_a_name(&text), basic_credentials(&text));
            let _ = (luhn_card(&text), iban(&text), us_ssn(&text), is_placeholder(&text), is_wordy(&text));
            let _ = (is_uuid(&text), looks_like_code_or_location(&text), identifier_words(&text));
            let _ = (crc32_base62_tail(&text), looks_typed(&text));
            proptest::prop_assert!(entropy_bits_per_char(&text) >= 0.0);
        }
    }
}
