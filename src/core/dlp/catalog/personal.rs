//! Personal data: email addresses, phone numbers, payment cards, national ids and bank accounts,
//! with the validators that tell them from other numbers.

use super::{detector, infix};
use crate::core::dlp::detector::{Category, CharClass, DetectorSpec, Trigger, Validator};

/// The detectors of this family.
pub(super) fn detectors() -> Vec<DetectorSpec> {
    vec![
        detector(
            "email",
            Category::Pii,
            "Email address (not example or reserved domains, git@ ssh users or noreply@ senders)",
            infix("@", CharClass::EmailLocal, 64),
            r"[A-Za-z0-9._%+-]*[A-Za-z0-9_-]@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?-u:\b)",
)
        .validated(Validator::Email)
        .max_len(320)
        .priority(20),
        detector(
            "phone",
            Category::Pii,
            "Phone number: international (+44 20 7946 0958, +14155550132) or North American ((415) 555-0132)",
            Trigger::Digits { run: CharClass::Number, min_digits: 8 },
            r"(?P<secret>\+[1-9][0-9]{0,3}(?:[ .-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6}|(?:(?-u:\b)1[ .-]?)?(?:\([2-9][0-9]{2}\)[ .-]?|(?-u:\b)[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4})(?:$|[^0-9.-]|[.-]$|[.-][^0-9])",
)
        .validated(Validator::Phone)
        .max_len(40)
        .priority(20),
        detector(
            "payment-card",
            Category::Pii,
            "Payment card number passing Luhn: 16-digit Visa, Mastercard, Discover, JCB, UnionPay; 15-digit Amex; grouped Diners",
            Trigger::Digits { run: CharClass::Number, min_digits: 13 },
            r"(?-u:\b)(?:(?:4[0-9]{3}|5[1-5][0-9]{2}|2(?:22[1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]|720)|6(?:011|5[0-9]{2}|4[4-9][0-9]|2[0-9]{2})|35(?:2[89]|[3-8][0-9]))(?:[ -]?[0-9]{4}){3}|3[47][0-9]{2}[ -]?[0-9]{6}[ -]?[0-9]{5}|3(?:0[0-5]|[689][0-9])[0-9][ -][0-9]{6}[ -][0-9]{4})(?-u:\b)",
)
        .validated(Validator::Luhn)
        .max_len(32)
        .priority(20),
        detector(
            "us-ssn",
            Category::Pii,
            "US social security number written AAA-GG-SSSS or AAA GG SSSS, in an issued range",
            Trigger::Digits { run: CharClass::Number, min_digits: 9 },
            r"(?-u:\b)(?P<secret>[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4})(?:$|[^0-9 -]|[ -]$|[ -][^0-9])",
)
        .validated(Validator::UsSsn)
        .max_len(16)
        .priority(20),
        // A number-like run of upper-case letters, digits and spaces starts at the country code
        // (or at a later word of the run: every token start is a candidate).
        detector(
            "iban",
            Category::Pii,
            "International bank account number (IBAN), compact or in groups of four, passing mod-97",
            Trigger::Digits { run: CharClass::UpperAlnum, min_digits: 8 },
            r"(?-u:\b)[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[0-9]{1,3})?(?-u:\b)",
)
        .validated(Validator::Iban)
        .max_len(48)
        .priority(20),
    ]
}

/// Whether a matched email address is personal data worth masking: not an example or reserved
/// domain (RFC 2606/6761), not an ssh user (`git@host`), not a `noreply@` sender, not an asset
/// name such as `icon@2x.png`.
pub(crate) fn email(value: &str) -> bool {
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

/// Whether a matched phone number has a plausible number of digits: 8–15 after a `+` (E.164),
/// otherwise 10, or 11 starting with the North-American `1`; and not one digit repeated.
pub(crate) fn phone(value: &str) -> bool {
    let digits: Vec<u8> = value.bytes().filter(u8::is_ascii_digit).collect();
    let count = digits.len();
    let plausible = if value.starts_with('+') {
        (8..=15).contains(&count)
    } else {
        count == 10 || (count == 11 && digits.first() == Some(&b'1'))
    };
    plausible && !digits.iter().all(|d| Some(d) == digits.first())
}

#[cfg(test)]
pub(super) mod cases {
    //! True positives and near misses of this family, checked by [`super::super::tests`].
    use super::super::tests::Case;

    /// True positives with their exact span.
    pub fn positives() -> Vec<Case> {
        Vec::new()
    }

    /// Texts in which the named detector must find nothing.
    pub fn negatives() -> Vec<(&'static str, String)> {
        Vec::new()
    }
}
